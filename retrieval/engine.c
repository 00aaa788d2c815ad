/* engine.c - store + embedder + per-collection FAISS indexes (see engine.h).
 *
 * Index files are named c<collection>.g<generation>.faiss.  The generation
 * is a counter in SQLite bumped by every committed write to the collection,
 * so at start-up a file whose generation matches SQLite's is exactly the
 * collection's current content; anything else (missing, stale, corrupt,
 * wrong dimension or count) is rebuilt from the embeddings stored in SQLite
 * without re-embedding.  Saving is write-then-rename, done by a background
 * thread for dirty indexes and once more at shutdown.
 *
 * A collection whose stored embeddings have another dimension than the
 * embedder's (the embedder was changed) is opened "in conflict": no index,
 * its files left alone (switching back loads them), dense search and writes
 * refused with ERR_CONFLICT rather than mixing vectors of two models.
 * Deleting documents still works, and once no embedding of the old
 * dimension is left the collection gets a fresh index.
 *
 * Hybrid search fuses the lexical and dense lists with reciprocal rank
 * fusion (score = sum of 1/(60 + rank)): rank-based, so BM25's unbounded
 * scores and cosine similarities need no calibration against each other. */
#include "engine.h"
#include "vindex.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RRF_K 60.0
#define FUSION_DEPTH_MIN 20
#define FUSION_DEPTH_MAX 200
/* Collections at least this large run a hybrid query's two searches in
 * parallel by default: below it the dense scan takes well under a
 * millisecond and a thread's start would be a good share of it. */
#define PARALLEL_HYBRID_MIN 20000

/* One dense query waiting to be searched (see dense_batch). */
struct dense_req {
    const float *q;
    int depth;
    float *scores;     /* depth of them */
    int64_t *ids;      /* depth of them */
    int64_t count;     /* vectors in the index when it was searched */
    enum err e;
    bool done;
    struct dense_req *next;
};

struct dense_slot {
    int64_t cid;
    /* Dense queries that arrive while another is being searched wait here
     * and go to FAISS together in one call (see dense_batch). */
    pthread_mutex_t batch_mu;
    pthread_cond_t batch_cv;
    struct dense_req *pending;
    bool searching;
    /* Approximate index (see ret_engine_opts.ann_threshold).  approx and
     * approx_at change under lock (write); want_ann, journal under the
     * engine's write_mu; building is read without a lock (atomics). */
    bool approx;             /* vi was built by ann_factory */
    int64_t approx_at;       /* vectors it was built over */
    int64_t builds;          /* approximate builds swapped in */
    int64_t failed_at;       /* vectors when a build last failed: retried at twice that */
    bool want_ann;           /* queued for the builder */
    int building;            /* 1 while queued or building (atomic) */
    struct journal *journal, **journal_tail; /* changes since the build began */
    bool journaling;
    pthread_rwlock_t lock;   /* readers search; writers add/remove/swap */
    struct ret_vindex *vi;   /* owned */
    int64_t generation;      /* SQLite generation the in-memory index reflects */
    int64_t saved_generation;/* generation of the file on disk, -1 if none */
    bool dirty;
    double next_save_s;      /* periodic saves wait until then (mono_s; saver thread only) */
    int conflict_dim;        /* dimension of stored embeddings unlike the embedder's; 0 = none (vi set) */
    /* In-memory lexical index (lexindex.h), when the engine keeps them.
     * Chunks with ids up to lex_cursor are in it, and changes to them are
     * applied as they commit (under write_mu); the background builder
     * brings in the rest a page at a time, also under write_mu, then sets
     * lex_ready (atomic) and searches use it. */
    pthread_rwlock_t lex_lock;
    struct ret_lexindex *lex;
    int64_t lex_cursor;
    int lex_ready;
    /* References (atomic): one for the slots array while the collection
     * lives, one for each search, saver or builder using the slot
     * (slot_get, slots_snapshot).  A dropped collection's slot leaves the
     * array at once and is freed by the last slot_put. */
    int refs;
};

/* A committed change kept for replay into an index being built. */
struct journal {
    int64_t *removed, *added;
    float *vecs;
    size_t nremoved, nadded;
    struct journal *next;
};

struct ret_engine {
    struct ret_store *store;     /* borrowed */
    struct ret_embedder *emb;    /* owned */
    char emb_name[160];
    char *index_dir, *factory;   /* owned */
    struct ret_chunk_opts chunk;
    int save_interval_ms;

    pthread_mutex_t write_mu;    /* serialises store write + index apply */
    pthread_mutex_t save_mu;     /* one flush at a time (they share temp file names) */
    pthread_mutex_t slots_mu;    /* guards the slots array itself */
    struct dense_slot **slots;
    size_t nslots, cap;

    int64_t ann_threshold;
    char *ann_factory;           /* owned */
    int ann_nprobe;
    void (*ann_done)(void *, int64_t, enum err, const char *, int64_t, int, int, double);
    void *ann_ud;

    bool lexical_index;          /* keep in-memory lexical indexes */
    int64_t hybrid_parallel_min; /* see ret_engine_opts */
    int writers_waiting;         /* writes waiting for write_mu (atomic): the builder lets them in */
    pthread_t lexer;             /* builds them at open */
    bool lexer_started;

    pthread_t saver;             /* saves dirty indexes, builds approximate ones */
    pthread_mutex_t saver_mu;
    pthread_cond_t saver_cv;
    bool stopping, saver_started, ann_pending;
};

static void *lexer_main(void *arg);

/* write_mu for a document write: counted while waiting, so the lexical
 * index builder, which takes write_mu page after page, gives way. */
static void write_lock(struct ret_engine *eng) {
    __atomic_add_fetch(&eng->writers_waiting, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&eng->write_mu);
    __atomic_sub_fetch(&eng->writers_waiting, 1, __ATOMIC_RELAXED);
}

const char *ret_mode_name(enum ret_mode m) {
    static const char *const n[] = {"lexical", "dense", "hybrid"};
    return (unsigned)m < 3 ? n[m] : "unknown";
}

int ret_mode_parse(const char *name) {
    for (int i = 0; i < 3; i++)
        if (strcmp(ret_mode_name((enum ret_mode)i), name) == 0)
            return i;
    return -1;
}

struct ret_store *ret_engine_store(struct ret_engine *eng) { return eng->store; }
int ret_engine_dim(const struct ret_engine *eng) { return eng->emb->dim; }
const char *ret_engine_embedder_name(const struct ret_engine *eng) { return eng->emb_name; }

size_t ret_engine_conflicts(struct ret_engine *eng) {
    size_t n = 0;
    pthread_mutex_lock(&eng->slots_mu);
    for (size_t i = 0; i < eng->nslots; i++) {
        pthread_rwlock_rdlock(&eng->slots[i]->lock);
        n += eng->slots[i]->cid >= 0 && eng->slots[i]->conflict_dim != 0;
        pthread_rwlock_unlock(&eng->slots[i]->lock);
    }
    pthread_mutex_unlock(&eng->slots_mu);
    return n;
}

size_t ret_engine_collections(struct ret_engine *eng) {
    pthread_mutex_lock(&eng->slots_mu);
    size_t n = eng->nslots;
    pthread_mutex_unlock(&eng->slots_mu);
    return n;
}

/* Sets the thread's error detail for a collection in conflict. */
static enum err conflict_error(const struct ret_engine *eng, int stored_dim) {
    ret_set_error("embedding dimension changed: the collection's stored embeddings have %d dimensions, the "
                  "embedder (%s) gives %d - re-embed the collection (see docs/retrieval.md)",
                  stored_dim, eng->emb_name, eng->emb->dim);
    return ERR_CONFLICT;
}

/* The slot's conflict dimension (0 = none) under its read lock. */
static int slot_conflict(struct dense_slot *s) {
    pthread_rwlock_rdlock(&s->lock);
    int d = s->conflict_dim;
    pthread_rwlock_unlock(&s->lock);
    return d;
}

static void index_path(const struct ret_engine *eng, int64_t cid, int64_t gen, char *out, size_t n) {
    snprintf(out, n, "%s/c%lld.g%lld.faiss", eng->index_dir, (long long)cid, (long long)gen);
}

/* Removes c<cid>.g*.faiss files other than keep_gen (-1: all). */
static void remove_stale_files(const struct ret_engine *eng, int64_t cid, int64_t keep_gen) {
    DIR *d = opendir(eng->index_dir);
    if (!d)
        return;
    char prefix[48];
    int pl = snprintf(prefix, sizeof prefix, "c%lld.g", (long long)cid);
    for (struct dirent *de; (de = readdir(d));) {
        if (strncmp(de->d_name, prefix, (size_t)pl) != 0)
            continue;
        long long g = strtoll(de->d_name + pl, NULL, 10);
        if (g == keep_gen && strstr(de->d_name, ".faiss") && !strstr(de->d_name, ".tmp"))
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", eng->index_dir, de->d_name);
        unlink(p);
    }
    closedir(d);
}

static size_t slot_index_locked(struct ret_engine *eng, int64_t cid) {
    size_t i = 0;
    while (i < eng->nslots && eng->slots[i]->cid != cid)
        i++;
    return i;
}

/* cid's slot, without a reference: only for a caller holding write_mu,
 * which a drop takes too. */
static struct dense_slot *slot_find(struct ret_engine *eng, int64_t cid) {
    pthread_mutex_lock(&eng->slots_mu);
    size_t i = slot_index_locked(eng, cid);
    struct dense_slot *s = i < eng->nslots ? eng->slots[i] : NULL;
    pthread_mutex_unlock(&eng->slots_mu);
    return s;
}

/* cid's slot with a reference (give it back with slot_put), or NULL. */
static struct dense_slot *slot_get(struct ret_engine *eng, int64_t cid) {
    pthread_mutex_lock(&eng->slots_mu);
    size_t i = slot_index_locked(eng, cid);
    struct dense_slot *s = i < eng->nslots ? eng->slots[i] : NULL;
    if (s)
        __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&eng->slots_mu);
    return s;
}

static void slot_free(struct dense_slot *s);

static void slot_put(struct dense_slot *s) {
    if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
        slot_free(s);
}

static enum err slot_insert(struct ret_engine *eng, struct dense_slot *s) {
    pthread_mutex_lock(&eng->slots_mu);
    enum err e = ERR_OK;
    if (eng->nslots == eng->cap) {
        size_t cap = eng->cap ? eng->cap * 2 : 16;
        struct dense_slot **v = realloc(eng->slots, cap * sizeof(*v));
        if (!v)
            e = ERR_NOMEM;
        else {
            eng->slots = v;
            eng->cap = cap;
        }
    }
    if (!e)
        eng->slots[eng->nslots++] = s;
    pthread_mutex_unlock(&eng->slots_mu);
    return e;
}

static struct dense_slot *slot_new(int64_t cid) {
    struct dense_slot *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cid = cid;
    s->refs = 1; /* the array's, once inserted */
    s->saved_generation = -1;
    s->journal_tail = &s->journal;
    pthread_rwlock_init(&s->lock, NULL);
    pthread_rwlock_init(&s->lex_lock, NULL);
    pthread_mutex_init(&s->batch_mu, NULL);
    pthread_cond_init(&s->batch_cv, NULL);
    return s;
}

static void journal_free(struct dense_slot *s) {
    for (struct journal *j = s->journal, *next; j; j = next) {
        next = j->next;
        free(j->removed);
        free(j->added);
        free(j->vecs);
        free(j);
    }
    s->journal = NULL;
    s->journal_tail = &s->journal;
}

static void slot_free(struct dense_slot *s) {
    if (!s)
        return;
    journal_free(s);
    ret_vindex_free(s->vi);
    ret_lexindex_free(s->lex);
    pthread_rwlock_destroy(&s->lock);
    pthread_rwlock_destroy(&s->lex_lock);
    pthread_mutex_destroy(&s->batch_mu);
    pthread_cond_destroy(&s->batch_cv);
    free(s);
}

static enum err add_batch(void *ud, const int64_t *ids, const float *vecs, size_t n) {
    return ret_vindex_add(ud, n, vecs, ids);
}

/* Collects all embeddings (for factories that must be trained first). */
struct collect {
    const bool *stop; /* read atomically; abandons the read when set */
    int dim;
    int64_t *ids;
    float *vecs;
    size_t n, cap;
};

static enum err collect_batch(void *ud, const int64_t *ids, const float *vecs, size_t n) {
    struct collect *c = ud;
    if (c->stop && __atomic_load_n(c->stop, __ATOMIC_RELAXED))
        return ERR_CANCELLED;
    if (c->n + n > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->n + n)
            cap *= 2;
        int64_t *ni = realloc(c->ids, cap * sizeof(*ni));
        if (!ni)
            return ERR_NOMEM;
        c->ids = ni;
        float *nv = realloc(c->vecs, cap * (size_t)c->dim * sizeof(float));
        if (!nv)
            return ERR_NOMEM;
        c->vecs = nv;
        c->cap = cap;
    }
    memcpy(c->ids + c->n, ids, n * sizeof(*ids));
    memcpy(c->vecs + c->n * (size_t)c->dim, vecs, n * (size_t)c->dim * sizeof(float));
    c->n += n;
    return ERR_OK;
}

/* Builds a fresh index for cid from SQLite. */
static enum err build_from_store(struct ret_engine *eng, int64_t cid, struct ret_vindex **ret_vi) {
    struct ret_vindex *vi = NULL;
    enum err e = ret_vindex_new(eng->emb->dim, eng->factory, &vi);
    if (e)
        return e;
    if (ret_vindex_is_trained(vi)) {
        e = ret_store_embeddings(eng->store, cid, eng->emb->dim, add_batch, vi, NULL);
    } else {
        struct collect c = {.dim = eng->emb->dim};
        e = ret_store_embeddings(eng->store, cid, eng->emb->dim, collect_batch, &c, NULL);
        if (!e && c.n > 0) {
            e = ret_vindex_train(vi, c.n, c.vecs);
            if (!e)
                e = ret_vindex_add(vi, c.n, c.vecs, c.ids);
        }
        free(c.ids);
        free(c.vecs);
    }
    if (e) {
        ret_vindex_free(vi);
        return e;
    }
    *ret_vi = vi;
    return ERR_OK;
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes s's index when it changed.  A save holds the collection's read
 * lock, so writes to it wait meanwhile: at 1M vectors a save (1 GB, with
 * its fsync) takes seconds, and saving every save_interval_ms kept
 * ingestion waiting most of the time.  So a periodic save comes no sooner
 * than four times its last duration after that one ended: the saver holds
 * the lock a fifth of the time at most.  Final saves (periodic false)
 * always write. */
static enum err slot_save(struct ret_engine *eng, struct dense_slot *s, bool periodic) {
    double t0 = mono_s();
    if (periodic && t0 < s->next_save_s)
        return ERR_OK;
    pthread_rwlock_rdlock(&s->lock);
    enum err e = ERR_OK;
    int64_t gen = s->generation;
    bool saved = false;
    if (s->dirty && s->vi) {
        char path[4096];
        index_path(eng, s->cid, gen, path, sizeof path);
        e = ret_vindex_save(s->vi, path);
        if (!e) {
            s->saved_generation = gen;
            s->dirty = false;
        }
        saved = true;
    }
    pthread_rwlock_unlock(&s->lock);
    if (saved) {
        double t1 = mono_s();
        s->next_save_s = t1 + 4 * (t1 - t0);
    }
    if (!e)
        remove_stale_files(eng, s->cid, s->saved_generation);
    return e;
}

/* Loads the index file for cid if it matches SQLite; otherwise rebuilds. */
static enum err slot_open(struct ret_engine *eng, int64_t cid, bool *ret_rebuilt) {
    int64_t gen = 0, count = 0;
    enum err e = ret_collection_generation(eng->store, cid, &gen);
    if (!e)
        e = ret_collection_chunk_count(eng->store, cid, &count);
    if (e)
        return e;
    struct dense_slot *s = slot_new(cid);
    if (!s)
        return ERR_NOMEM;
    char path[4096];
    index_path(eng, cid, gen, path, sizeof path);
    struct ret_vindex *vi = NULL;
    if (ret_vindex_load(path, &vi) == ERR_OK && ret_vindex_dim(vi) == eng->emb->dim && ret_vindex_count(vi) == count) {
        s->vi = vi;
        s->saved_generation = gen;
        *ret_rebuilt = false;
        /* an approximate index saved earlier: kept, and retrained once the
         * collection has grown 4-fold past its size now */
        if (ret_vindex_nlist(vi) > 0) {
            s->approx = true;
            s->approx_at = count;
            if (eng->ann_nprobe > 0)
                ret_vindex_set_nprobe(vi, eng->ann_nprobe < ret_vindex_nlist(vi) ? eng->ann_nprobe : ret_vindex_nlist(vi));
        }
    } else {
        ret_vindex_free(vi);
        e = build_from_store(eng, cid, &s->vi);
        s->dirty = true;
        *ret_rebuilt = true;
        /* fewer vectors than embedded chunks: some have another dimension */
        int other = 0;
        if (!e && ret_vindex_count(s->vi) != count)
            e = ret_collection_other_dim(eng->store, cid, eng->emb->dim, &other);
        if (!e && other) {
            s->vi = ret_vindex_free(s->vi);
            s->conflict_dim = other;
            s->dirty = false;
        }
    }
    s->generation = gen;
    if (!e && s->dirty)
        e = slot_save(eng, s, false);
    if (!e && eng->lexical_index) {
        /* an empty collection's index is complete as it is; any other is
         * filled by the builder (lexer_main) */
        e = ret_lexindex_new(&s->lex);
        s->lex_cursor = count ? 0 : INT64_MAX;
        s->lex_ready = !count;
    }
    if (!e)
        e = slot_insert(eng, s);
    if (e) {
        slot_free(s);
        return e;
    }
    if (!s->conflict_dim) /* in conflict, the old files stay for a switch back */
        remove_stale_files(eng, cid, s->saved_generation);
    return ERR_OK;
}

/* A copy of the slots array, each with a reference, for walking the slots
 * without slots_mu; give it back with snapshot_done. */
static struct dense_slot **slots_snapshot(struct ret_engine *eng, size_t *ret_n) {
    pthread_mutex_lock(&eng->slots_mu);
    size_t n = eng->nslots;
    struct dense_slot **copy = malloc((n ? n : 1) * sizeof(*copy));
    for (size_t i = 0; copy && i < n; i++) {
        copy[i] = eng->slots[i];
        __atomic_add_fetch(&copy[i]->refs, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&eng->slots_mu);
    *ret_n = n;
    return copy;
}

static void snapshot_done(struct dense_slot **copy, size_t n) {
    for (size_t i = 0; copy && i < n; i++)
        slot_put(copy[i]);
    free(copy);
}

/* ---- approximate indexes ---- */

/* Queues s for an approximate build when it has crossed the threshold (or
 * grown 4-fold since its last build).  Caller holds write_mu. */
static void maybe_queue_ann(struct ret_engine *eng, struct dense_slot *s) {
    if (eng->ann_threshold <= 0 || s->want_ann || s->journaling)
        return;
    pthread_rwlock_rdlock(&s->lock);
    int64_t n = s->vi ? ret_vindex_count(s->vi) : 0;
    bool due = s->vi && s->cid >= 0 && !s->conflict_dim &&
               (s->approx ? n >= 4 * s->approx_at : n >= eng->ann_threshold) && n >= 2 * s->failed_at;
    pthread_rwlock_unlock(&s->lock);
    if (!due)
        return;
    s->want_ann = true;
    __atomic_store_n(&s->building, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&eng->saver_mu);
    eng->ann_pending = true;
    pthread_cond_signal(&eng->saver_cv);
    pthread_mutex_unlock(&eng->saver_mu);
}

/* Keeps a copy of a change applied while s's approximate index is being
 * built.  Caller holds write_mu.  On failure the build is abandoned. */
static void journal_append(struct ret_engine *eng, struct dense_slot *s, const struct ret_change *c) {
    if (!s->journaling)
        return;
    size_t dim = (size_t)eng->emb->dim;
    struct journal *j = calloc(1, sizeof(*j));
    bool ok = j != NULL;
    if (ok && c->nremoved) {
        j->removed = malloc(c->nremoved * sizeof(*j->removed));
        ok = j->removed != NULL;
        if (ok)
            memcpy(j->removed, c->removed_ids, c->nremoved * sizeof(*j->removed));
        j->nremoved = c->nremoved;
    }
    if (ok && c->nadded && c->added_vecs) {
        j->added = malloc(c->nadded * sizeof(*j->added));
        j->vecs = malloc(c->nadded * dim * sizeof(*j->vecs));
        ok = j->added && j->vecs;
        if (ok) {
            memcpy(j->added, c->added_ids, c->nadded * sizeof(*j->added));
            memcpy(j->vecs, c->added_vecs, c->nadded * dim * sizeof(*j->vecs));
        }
        j->nadded = c->nadded;
    }
    if (j) {
        *s->journal_tail = j;
        s->journal_tail = &j->next;
    }
    if (!ok)
        s->journaling = false; /* the builder sees it and drops its index */
}

/* Replays the journal into a freshly built index (caller holds write_mu).
 * Every change is "delete these ids, upsert those": replaying all of them,
 * in order, over any state between the first and the last gives the last
 * state, whatever part of them the build's read already saw. */
static enum err journal_replay(const struct dense_slot *s, struct ret_vindex *vi) {
    enum err e = ERR_OK;
    for (const struct journal *j = s->journal; !e && j; j = j->next) {
        if (j->nremoved)
            e = ret_vindex_remove(vi, j->nremoved, j->removed, NULL);
        if (!e && j->nadded)
            e = ret_vindex_remove(vi, j->nadded, j->added, NULL);
        if (!e && j->nadded)
            e = ret_vindex_add(vi, j->nadded, j->vecs, j->added);
    }
    return e;
}

int ret_ann_nlist(size_t n) {
    /* the usual 4*sqrt(n) lists, but at least 39 points per list, below
     * which FAISS's k-means warns (on stderr) that it cannot train well */
    int nlist = (int)(4.0 * sqrt((double)n));
    if ((size_t)nlist > n / 39)
        nlist = (int)(n / 39);
    return nlist < 1 ? 1 : nlist;
}

/* ann_factory with nlist in place of "{nlist}". */
static void ann_factory_for(const struct ret_engine *eng, int nlist, char *out, size_t len) {
    const char *tpl = eng->ann_factory, *at = strstr(tpl, "{nlist}");
    if (at)
        snprintf(out, len, "%.*s%d%s", (int)(at - tpl), tpl, nlist, at + 7);
    else
        snprintf(out, len, "%s", tpl);
}

/* Makes the approximate index over the collected vectors. */
static enum err make_ann(struct ret_engine *eng, const struct collect *c, struct ret_vindex **ret_vi, int *ret_nlist,
                         int *ret_nprobe) {
    char factory[256];
    ann_factory_for(eng, ret_ann_nlist(c->n), factory, sizeof factory);
    struct ret_vindex *vi = NULL;
    enum err e = ret_vindex_new(c->dim, factory, &vi);
    if (e) {
        ret_set_error("approximate index factory \"%s\" refused: %s", factory, ret_vindex_last_error());
        return e;
    }
    if (!ret_vindex_is_trained(vi)) {
        /* k-means on 48 points per list is plenty and bounds the cost at
         * large sizes (FAISS itself would sample 256 per list) */
        size_t want = (size_t)ret_vindex_nlist(vi) * 48, dim = (size_t)c->dim;
        const float *train = c->vecs;
        float *sample = NULL;
        size_t nt = c->n;
        if (want > 0 && c->n > want) {
            sample = malloc(want * dim * sizeof(*sample));
            if (!sample) {
                ret_vindex_free(vi);
                return ERR_NOMEM;
            }
            for (size_t i = 0; i < want; i++) /* evenly spaced: ids are in insertion order */
                memcpy(sample + i * dim, c->vecs + (i * c->n / want) * dim, dim * sizeof(*sample));
            train = sample;
            nt = want;
        }
        e = ret_vindex_train(vi, nt, train);
        free(sample);
        if (e)
            ret_set_error("training the approximate index failed: %s", ret_vindex_last_error());
    }
    if (!e)
        e = ret_vindex_add(vi, c->n, c->vecs, c->ids);
    int ivf_lists = e ? 0 : ret_vindex_nlist(vi), nprobe = 0;
    if (ivf_lists > 0) {
        nprobe = eng->ann_nprobe > 0 ? eng->ann_nprobe : (ivf_lists * 2 + 4) / 5; /* 40%: see ann_nprobe */
        if (nprobe > ivf_lists)
            nprobe = ivf_lists;
        ret_vindex_set_nprobe(vi, nprobe);
    }
    if (e) {
        ret_vindex_free(vi);
        return e;
    }
    *ret_vi = vi;
    *ret_nlist = ivf_lists;
    *ret_nprobe = nprobe;
    return ERR_OK;
}

/* Builds s's approximate index off every lock but the store's readers,
 * then, under write_mu, replays the writes made meanwhile and swaps it in:
 * searches wait for nothing longer than the pointer swap. */
static void build_ann(struct ret_engine *eng, struct dense_slot *s) {
    double t0 = mono_s();
    pthread_mutex_lock(&eng->write_mu);
    bool go = s->want_ann && s->cid >= 0;
    int64_t cid = s->cid;
    s->want_ann = false;
    if (go) {
        s->journaling = true;
        journal_free(s);
    }
    pthread_mutex_unlock(&eng->write_mu);
    if (!go) {
        __atomic_store_n(&s->building, 0, __ATOMIC_RELAXED);
        return;
    }
    struct collect c = {.stop = &eng->stopping, .dim = eng->emb->dim};
    struct ret_vindex *vi = NULL;
    int nlist = 0, nprobe = 0;
    ret_clear_error();
    enum err e = ret_store_embeddings(eng->store, cid, eng->emb->dim, collect_batch, &c, NULL);
    if (!e)
        e = c.n > 0 ? make_ann(eng, &c, &vi, &nlist, &nprobe) : ERR_NOT_FOUND;
    free(c.ids);
    free(c.vecs);
    int64_t vectors = 0;
    pthread_mutex_lock(&eng->write_mu);
    if (!e && (!s->journaling || s->cid != cid || slot_conflict(s)))
        e = ERR_CANCELLED; /* dropped, in conflict, or a journal copy failed */
    if (!e)
        e = journal_replay(s, vi);
    if (!e) {
        pthread_rwlock_wrlock(&s->lock);
        struct ret_vindex *old = s->vi;
        s->vi = vi;
        s->approx = true;
        s->approx_at = vectors = ret_vindex_count(vi);
        s->builds++;
        s->dirty = true;
        pthread_rwlock_unlock(&s->lock);
        vi = old;
    }
    if (e && e != ERR_CANCELLED)
        s->failed_at = c.n > 0 ? (int64_t)c.n : 1;
    s->journaling = false;
    journal_free(s);
    pthread_mutex_unlock(&eng->write_mu);
    ret_vindex_free(vi);
    __atomic_store_n(&s->building, 0, __ATOMIC_RELAXED);
    if (eng->ann_done)
        eng->ann_done(eng->ann_ud, cid, e, e ? ret_last_error() : "", vectors, nlist, nprobe, mono_s() - t0);
}

/* Runs the queued approximate builds, one at a time. */
static void run_ann_builds(struct ret_engine *eng) {
    size_t n = 0;
    struct dense_slot **copy = slots_snapshot(eng, &n);
    if (!copy) { /* try again on the next round */
        pthread_mutex_lock(&eng->saver_mu);
        eng->ann_pending = true;
        pthread_mutex_unlock(&eng->saver_mu);
        return;
    }
    for (size_t i = 0; i < n && !__atomic_load_n(&eng->stopping, __ATOMIC_RELAXED); i++)
        if (__atomic_load_n(&copy[i]->building, __ATOMIC_RELAXED))
            build_ann(eng, copy[i]);
    snapshot_done(copy, n);
}

enum err ret_engine_index_info(struct ret_engine *eng, int64_t collection_id, struct ret_index_info *ret_info) {
    struct dense_slot *s = slot_get(eng, collection_id);
    struct ret_index_info info = {0};
    if (s) {
        pthread_rwlock_rdlock(&s->lock);
        info.approximate = s->approx;
        info.vectors = s->vi ? ret_vindex_count(s->vi) : 0;
        info.nlist = s->vi && s->approx ? ret_vindex_nlist(s->vi) : 0;
        info.nprobe = s->vi && s->approx ? ret_vindex_nprobe(s->vi) : 0;
        info.builds = s->builds;
        info.quantized_bytes = s->vi ? ret_vindex_quantized_bytes(s->vi) : 0;
        pthread_rwlock_unlock(&s->lock);
        info.building = __atomic_load_n(&s->building, __ATOMIC_RELAXED) != 0;
        pthread_rwlock_rdlock(&s->lex_lock);
        info.lexical_ready = s->lex && __atomic_load_n(&s->lex_ready, __ATOMIC_ACQUIRE);
        info.lexical_chunks = s->lex ? ret_lexindex_chunks(s->lex) : 0;
        info.lexical_bytes = s->lex ? ret_lexindex_bytes(s->lex) : 0;
        pthread_rwlock_unlock(&s->lex_lock);
        slot_put(s);
    }
    *ret_info = info;
    return ERR_OK;
}

static enum err flush_slots(struct ret_engine *eng, bool periodic) {
    enum err first = ERR_OK;
    size_t n = 0;
    struct dense_slot **copy = slots_snapshot(eng, &n);
    if (!copy)
        return ERR_NOMEM;
    /* No engine lock: the snapshot holds a reference to each slot (a
     * collection dropped meanwhile keeps its slot until then), and each
     * save holds only its own slot's read lock, so other collections'
     * writers never wait. */
    pthread_mutex_lock(&eng->save_mu);
    for (size_t i = 0; i < n; i++) {
        enum err e = slot_save(eng, copy[i], periodic);
        if (e && !first)
            first = e;
    }
    pthread_mutex_unlock(&eng->save_mu);
    snapshot_done(copy, n);
    return first;
}

enum err ret_engine_flush(struct ret_engine *eng) {
    return flush_slots(eng, false);
}

static void *saver_main(void *arg) {
    struct ret_engine *eng = arg;
    pthread_mutex_lock(&eng->saver_mu);
    while (!eng->stopping) {
        if (!eng->ann_pending) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += eng->save_interval_ms / 1000;
            ts.tv_nsec += (long)(eng->save_interval_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&eng->saver_cv, &eng->saver_mu, &ts);
        }
        if (eng->stopping)
            break;
        bool builds = eng->ann_pending;
        eng->ann_pending = false;
        pthread_mutex_unlock(&eng->saver_mu);
        if (builds)
            run_ann_builds(eng);
        flush_slots(eng, true); /* a failed save stays dirty and is retried */
        pthread_mutex_lock(&eng->saver_mu);
    }
    pthread_mutex_unlock(&eng->saver_mu);
    return NULL;
}

enum err ret_engine_open(struct ret_store *store, const struct ret_engine_opts *opts,
                         struct ret_startup_report *ret_report, struct ret_engine **ret_eng) {
    ret_clear_error();
    if (mkdir(opts->index_dir, 0750) != 0 && errno != EEXIST)
        return ERR_IO;
    struct ret_engine *eng = calloc(1, sizeof(*eng));
    if (!eng)
        return ERR_NOMEM;
    eng->store = store;
    eng->chunk = opts->chunk;
    eng->save_interval_ms = opts->save_interval_ms > 0 ? opts->save_interval_ms : 2000;
    pthread_mutex_init(&eng->write_mu, NULL);
    pthread_mutex_init(&eng->save_mu, NULL);
    pthread_mutex_init(&eng->slots_mu, NULL);
    pthread_mutex_init(&eng->saver_mu, NULL);
    pthread_cond_init(&eng->saver_cv, NULL);
    eng->index_dir = strdup(opts->index_dir);
    eng->factory = strdup(opts->index_factory ? opts->index_factory : "Flat");
    eng->ann_threshold = opts->ann_threshold;
    eng->ann_factory = strdup(opts->ann_factory && opts->ann_factory[0] ? opts->ann_factory : "IVF{nlist},Flat");
    eng->ann_nprobe = opts->ann_nprobe;
    eng->ann_done = opts->ann_done;
    eng->ann_ud = opts->ann_ud;
    eng->lexical_index = opts->lexical_index;
    eng->hybrid_parallel_min = opts->hybrid_parallel_min ? opts->hybrid_parallel_min : PARALLEL_HYBRID_MIN;
    enum err e = eng->index_dir && eng->factory && eng->ann_factory ? ERR_OK : ERR_NOMEM;
    if (!e && opts->http) {
        e = ret_embedder_http_new(opts->http, &eng->emb);
        if (!e)
            e = ret_embedder_http_learn_dim(eng->emb);
        snprintf(eng->emb_name, sizeof eng->emb_name, "http %s", opts->http->model);
    } else if (!e) {
        e = ret_embedder_builtin_new(opts->dim, &eng->emb);
        snprintf(eng->emb_name, sizeof eng->emb_name, "builtin");
    }
    if (!e) {
        /* Indexes are updated document by document; a factory that must be
         * trained first (IVF, PQ) would refuse the first writes. */
        struct ret_vindex *probe = NULL;
        e = ret_vindex_new(eng->emb->dim, eng->factory, &probe);
        if (!e && !ret_vindex_is_trained(probe))
            e = ERR_CONFIG;
        ret_vindex_free(probe);
    }
    if (!e && eng->ann_threshold > 0) {
        /* the approximate factory, with 16 lists for {nlist} */
        char f[256];
        ann_factory_for(eng, 16, f, sizeof f);
        struct ret_vindex *probe = NULL;
        if (ret_vindex_new(eng->emb->dim, f, &probe) != ERR_OK) {
            ret_set_error("retrieval.ann_factory: \"%s\" is not a FAISS index-factory string this build accepts "
                          "for dimension %d", eng->ann_factory, eng->emb->dim);
            e = ERR_INVALID_FIELD;
        } else if (ret_vindex_nlist(probe) == 0) {
            /* it must take deletes and ids in place: an IVF at the top */
            ret_set_error("retrieval.ann_factory: \"%s\" is not an IVF index (e.g. IVF{nlist},Flat, "
                          "IVF{nlist},SQ8, IVF{nlist},PQ32)", eng->ann_factory);
            e = ERR_INVALID_FIELD;
        }
        ret_vindex_free(probe);
    }
    struct ret_startup_report rep = {0};
    int64_t *ids = NULL;
    size_t n = 0;
    if (!e)
        e = ret_collection_ids(store, &ids, &n);
    for (size_t i = 0; !e && i < n; i++) {
        bool rebuilt = false;
        e = slot_open(eng, ids[i], &rebuilt);
        rep.collections++;
        rep.rebuilt += rebuilt;
        rep.loaded += !rebuilt;
    }
    free(ids);
    for (size_t i = 0; !e && i < eng->nslots; i++) {
        pthread_mutex_lock(&eng->write_mu);
        maybe_queue_ann(eng, eng->slots[i]);
        pthread_mutex_unlock(&eng->write_mu);
    }
    if (!e) {
        if (pthread_create(&eng->saver, NULL, saver_main, eng) != 0)
            e = ERR_INTERNAL;
        else
            eng->saver_started = true;
    }
    if (!e && eng->lexical_index) {
        if (pthread_create(&eng->lexer, NULL, lexer_main, eng) != 0)
            e = ERR_INTERNAL;
        else
            eng->lexer_started = true;
    }
    if (e) {
        ret_engine_free(eng);
        return e;
    }
    rep.vectors = ret_engine_vectors(eng);
    if (ret_report)
        *ret_report = rep;
    *ret_eng = eng;
    return ERR_OK;
}

struct ret_engine *ret_engine_free(struct ret_engine *eng) {
    if (!eng)
        return NULL;
    __atomic_store_n(&eng->stopping, true, __ATOMIC_RELAXED);
    if (eng->lexer_started)
        pthread_join(eng->lexer, NULL); /* stops between two pages */
    if (eng->saver_started) {
        pthread_mutex_lock(&eng->saver_mu);
        pthread_cond_signal(&eng->saver_cv);
        pthread_mutex_unlock(&eng->saver_mu);
        pthread_join(eng->saver, NULL);
        ret_engine_flush(eng);
    }
    for (size_t i = 0; i < eng->nslots; i++)
        slot_put(eng->slots[i]);
    free(eng->slots);
    ret_embedder_free(eng->emb);
    free(eng->index_dir);
    free(eng->factory);
    free(eng->ann_factory);
    pthread_mutex_destroy(&eng->write_mu);
    pthread_mutex_destroy(&eng->save_mu);
    pthread_mutex_destroy(&eng->slots_mu);
    pthread_mutex_destroy(&eng->saver_mu);
    pthread_cond_destroy(&eng->saver_cv);
    free(eng);
    return NULL;
}

int64_t ret_engine_vectors(struct ret_engine *eng) {
    int64_t total = 0;
    pthread_mutex_lock(&eng->slots_mu);
    for (size_t i = 0; i < eng->nslots; i++) {
        pthread_rwlock_rdlock(&eng->slots[i]->lock);
        if (eng->slots[i]->vi)
            total += ret_vindex_count(eng->slots[i]->vi);
        pthread_rwlock_unlock(&eng->slots[i]->lock);
    }
    pthread_mutex_unlock(&eng->slots_mu);
    return total;
}

/* ---- the in-memory lexical index ---- */

/* Drops s's lexical index (out of memory): searches go back to FTS5. */
static void lex_drop_locked(struct dense_slot *s) {
    __atomic_store_n(&s->lex_ready, 0, __ATOMIC_RELEASE);
    s->lex = ret_lexindex_free(s->lex);
}

/* Applies a committed change to s's lexical index (caller holds write_mu):
 * removals always, additions of chunks the builder has passed.  toks: one
 * token list per added chunk, or NULL when none were added. */
static void lex_apply(struct dense_slot *s, const struct ret_change *c, const struct ret_lex_tokens *toks) {
    if (!s->lex)
        return;
    pthread_rwlock_wrlock(&s->lex_lock);
    enum err e = ret_lexindex_remove(s->lex, c->removed_ids, c->nremoved);
    if (!toks && c->nadded)
        e = ERR_NOMEM; /* the chunks could not be tokenised: the index would miss them */
    for (size_t i = 0; !e && toks && i < c->nadded; i++)
        if (c->added_ids[i] <= s->lex_cursor)
            e = ret_lexindex_add(s->lex, c->added_ids[i], &toks[i]);
    if (e)
        lex_drop_locked(s);
    pthread_rwlock_unlock(&s->lex_lock);
}

struct lex_page {
    struct dense_slot *s;
    struct ret_tokenizer *tok;
    struct ret_lex_tokens toks;
};

static enum err lex_page_add(void *ud, int64_t id, const char *text, size_t len) {
    struct lex_page *p = ud;
    enum err e = ret_tokenize(p->tok, text, len, false, &p->toks);
    return e ? e : ret_lexindex_add(p->s->lex, id, &p->toks);
}

#define LEX_PAGE 256 /* chunks read per hold of write_mu: a few ms */

/* Fills one collection's lexical index from SQLite.  Each page is read and
 * added under write_mu, so no commit falls between the read and the add:
 * a page holds exactly the chunks then stored, and every later change to
 * chunks up to the cursor is applied by lex_apply. */
static void lex_build(struct ret_engine *eng, struct dense_slot *s, struct ret_tokenizer *tok) {
    struct lex_page p = {.s = s, .tok = tok};
    for (;;) {
        pthread_mutex_lock(&eng->write_mu);
        if (__atomic_load_n(&eng->stopping, __ATOMIC_RELAXED) || s->cid < 0 || !s->lex || s->lex_ready) {
            pthread_mutex_unlock(&eng->write_mu);
            break;
        }
        int64_t last = 0;
        size_t n = 0;
        pthread_rwlock_wrlock(&s->lex_lock);
        enum err e = ret_store_chunk_texts(eng->store, s->cid, s->lex_cursor, LEX_PAGE, lex_page_add, &p, &last, &n);
        if (e) {
            lex_drop_locked(s); /* a storage error or no memory: FTS5 answers */
        } else if (n < LEX_PAGE) {
            s->lex_cursor = INT64_MAX;
            __atomic_store_n(&s->lex_ready, 1, __ATOMIC_RELEASE);
        } else {
            s->lex_cursor = last;
        }
        pthread_rwlock_unlock(&s->lex_lock);
        pthread_mutex_unlock(&eng->write_mu);
        /* a mutex goes to whoever asks first after it is released, which
         * would be this loop again: writers waiting go first */
        while (__atomic_load_n(&eng->writers_waiting, __ATOMIC_RELAXED) > 0 &&
               !__atomic_load_n(&eng->stopping, __ATOMIC_RELAXED))
            sched_yield();
    }
    ret_lex_tokens_done(&p.toks);
}

static void *lexer_main(void *arg) {
    struct ret_engine *eng = arg;
    struct ret_tokenizer *tok = NULL;
    if (ret_tokenizer_new(eng->store, &tok))
        return NULL; /* every search stays on FTS5 */
    size_t n = 0;
    struct dense_slot **slots = slots_snapshot(eng, &n);
    for (size_t i = 0; slots && i < n; i++)
        lex_build(eng, slots[i], tok);
    snapshot_done(slots, n);
    ret_tokenizer_free(tok);
    return NULL;
}

static void lex_tokens_free(struct ret_lex_tokens *toks, size_t n) {
    for (size_t i = 0; toks && i < n; i++)
        ret_lex_tokens_done(&toks[i]);
    free(toks);
}

/* Tokenises a prepared document's chunks for lex_apply (outside every
 * lock).  NULL when the engine keeps no lexical index or the tokenizer
 * fails: the change then reaches only removals, and additions are lost
 * to the index, so that case drops it (see ret_engine_put). */
static struct ret_lex_tokens *lex_tokenize(struct ret_engine *eng, const struct ret_doc_in *doc,
                                           const struct ret_prepared *prep) {
    if (!eng->lexical_index || prep->n == 0)
        return NULL;
    struct ret_lex_tokens *toks = calloc(prep->n, sizeof(*toks));
    struct ret_tokenizer *tok = NULL;
    enum err e = toks ? ret_tokenizer_new(eng->store, &tok) : ERR_NOMEM;
    for (size_t i = 0; !e && i < prep->n; i++)
        e = ret_tokenize(tok, doc->text + prep->spans[i].start, prep->spans[i].end - prep->spans[i].start, false,
                         &toks[i]);
    ret_tokenizer_free(tok);
    if (e) {
        lex_tokens_free(toks, prep->n);
        toks = NULL;
    }
    return toks;
}

/* Applies a committed change to cid's index (caller holds write_mu).  If
 * FAISS refuses, the index is rebuilt from SQLite, which already holds the
 * truth. */
static enum err apply_change(struct ret_engine *eng, int64_t cid, const struct ret_change *c,
                             const struct ret_lex_tokens *toks) {
    struct dense_slot *s = slot_find(eng, cid);
    if (!s) {
        s = slot_new(cid);
        if (!s)
            return ERR_NOMEM;
        enum err e = ret_vindex_new(eng->emb->dim, eng->factory, &s->vi);
        if (!e && eng->lexical_index) {
            /* a collection new since open: its index starts complete */
            e = ret_lexindex_new(&s->lex);
            s->lex_cursor = INT64_MAX;
            s->lex_ready = 1;
        }
        if (!e)
            e = slot_insert(eng, s);
        if (e) {
            slot_free(s);
            return e;
        }
    }
    lex_apply(s, c, toks);
    if (slot_conflict(s)) {
        /* only deletes reach a collection in conflict: once no embedding
         * of the old dimension is left it gets a fresh, empty index */
        int other = 0;
        enum err e = ret_collection_other_dim(eng->store, cid, eng->emb->dim, &other);
        struct ret_vindex *fresh = NULL;
        if (!e && !other)
            e = build_from_store(eng, cid, &fresh);
        if (e)
            return e;
        pthread_rwlock_wrlock(&s->lock);
        if (fresh) {
            s->vi = fresh;
            s->approx = false;
            s->conflict_dim = 0;
            s->dirty = true;
        }
        s->generation = c->generation;
        pthread_rwlock_unlock(&s->lock);
        return ERR_OK;
    }
    pthread_rwlock_wrlock(&s->lock);
    enum err e = ERR_OK;
    if (c->nremoved)
        e = ret_vindex_remove(s->vi, c->nremoved, c->removed_ids, NULL);
    if (!e && c->nadded && c->added_vecs)
        e = ret_vindex_is_trained(s->vi) ? ret_vindex_add(s->vi, c->nadded, c->added_vecs, c->added_ids) : ERR_INDEX;
    pthread_rwlock_unlock(&s->lock);
    if (e) {
        struct ret_vindex *fresh = NULL;
        e = build_from_store(eng, cid, &fresh);
        if (e)
            return e;
        pthread_rwlock_wrlock(&s->lock);
        struct ret_vindex *old = s->vi;
        s->vi = fresh; /* exact again; maybe_queue_ann below queues a new build */
        s->approx = false;
        pthread_rwlock_unlock(&s->lock);
        ret_vindex_free(old);
    }
    pthread_rwlock_wrlock(&s->lock);
    s->generation = c->generation;
    s->dirty = true;
    pthread_rwlock_unlock(&s->lock);
    journal_append(eng, s, c);
    maybe_queue_ann(eng, s);
    return ERR_OK;
}

enum err ret_engine_put(struct ret_engine *eng, int64_t collection_id, const struct ret_doc_in *doc,
                        struct ret_change *ret_change) {
    struct ret_change c;
    struct ret_prepared prep;
    ret_clear_error();
    /* a collection in conflict takes no new vectors (only deletes clear a
     * conflict, so checking before the embedding is enough) */
    struct dense_slot *s = slot_get(eng, collection_id);
    int stored = s ? slot_conflict(s) : 0;
    slot_put(s);
    if (stored)
        return conflict_error(eng, stored);
    /* chunk and embed first, outside every lock: writers to the same store
     * only serialise on the commit and the index update */
    enum err e = ret_document_prepare(doc, &eng->chunk, eng->emb, &prep);
    if (e)
        return e;
    struct ret_lex_tokens *toks = lex_tokenize(eng, doc, &prep);
    size_t nchunks = prep.n;
    write_lock(eng);
    e = ret_document_commit(eng->store, collection_id, doc, &prep, &c);
    if (!e)
        e = apply_change(eng, collection_id, &c, toks);
    pthread_mutex_unlock(&eng->write_mu);
    lex_tokens_free(toks, nchunks);
    ret_prepared_done(&prep);
    if (e)
        return e;
    if (ret_change)
        *ret_change = c;
    else
        ret_change_done(&c);
    return ERR_OK;
}

enum err ret_engine_delete(struct ret_engine *eng, int64_t collection_id, const char *ext_id) {
    struct ret_change c;
    write_lock(eng);
    enum err e = ret_document_delete(eng->store, collection_id, ext_id, &c);
    if (!e) {
        e = apply_change(eng, collection_id, &c, NULL);
        ret_change_done(&c);
    }
    pthread_mutex_unlock(&eng->write_mu);
    return e;
}

enum err ret_engine_drop_collection(struct ret_engine *eng, const char *tenant, const char *name) {
    int64_t cid = -1;
    write_lock(eng);
    enum err e = ret_collection_delete(eng->store, tenant, name, &cid);
    if (!e) {
        /* The slot leaves the array, retired (cid -1); a search that found
         * it a moment ago holds a reference, and the last one frees it. */
        pthread_mutex_lock(&eng->slots_mu);
        size_t i = slot_index_locked(eng, cid);
        struct dense_slot *gone = NULL;
        if (i < eng->nslots) {
            gone = eng->slots[i];
            gone->cid = -1;
            eng->slots[i] = eng->slots[--eng->nslots];
        }
        pthread_mutex_unlock(&eng->slots_mu);
        if (gone) {
            pthread_rwlock_wrlock(&gone->lock);
            gone->vi = ret_vindex_free(gone->vi);
            gone->dirty = false;
            pthread_rwlock_unlock(&gone->lock);
            pthread_rwlock_wrlock(&gone->lex_lock);
            lex_drop_locked(gone);
            pthread_rwlock_unlock(&gone->lex_lock);
            slot_put(gone);
        }
        remove_stale_files(eng, cid, -1);
    }
    pthread_mutex_unlock(&eng->write_mu);
    return e;
}

/* ---- search ---- */

/* Searches a batch of queries in one FAISS call under the slot's read lock.
 * One call for many queries reads the index once for all of them (and,
 * for a Flat index, becomes a matrix product): the per-query cost falls
 * by an order of magnitude at 100k vectors (docs/benchmarks.md). */
static void search_batch(struct ret_engine *eng, struct dense_slot *s, struct dense_req *batch) {
    size_t nq = 0;
    int depth = 0;
    for (struct dense_req *r = batch; r; r = r->next) {
        nq++;
        if (r->depth > depth)
            depth = r->depth;
    }
    size_t dim = (size_t)eng->emb->dim;
    float *q = NULL, *scores = NULL;
    int64_t *ids = NULL;
    enum err e = ERR_OK;
    if (nq > 1) {
        q = malloc(nq * dim * sizeof(*q));
        scores = malloc(nq * (size_t)depth * sizeof(*scores));
        ids = malloc(nq * (size_t)depth * sizeof(*ids));
        if (!q || !scores || !ids)
            e = ERR_NOMEM;
        size_t i = 0;
        for (struct dense_req *r = batch; !e && r; r = r->next, i++)
            memcpy(q + i * dim, r->q, dim * sizeof(*q));
    }
    pthread_rwlock_rdlock(&s->lock);
    int64_t count = s->vi ? ret_vindex_count(s->vi) : 0;
    if (!e && count > 0) {
        if (nq == 1)
            e = ret_vindex_search(s->vi, 1, batch->q, batch->depth, batch->scores, batch->ids);
        else
            e = ret_vindex_search(s->vi, nq, q, depth, scores, ids);
    }
    pthread_rwlock_unlock(&s->lock);
    size_t i = 0;
    for (struct dense_req *r = batch; r; r = r->next, i++) {
        r->e = e;
        r->count = count;
        if (!e && count > 0 && nq > 1) {
            memcpy(r->scores, scores + i * (size_t)depth, (size_t)r->depth * sizeof(*scores));
            memcpy(r->ids, ids + i * (size_t)depth, (size_t)r->depth * sizeof(*ids));
        }
    }
    free(q);
    free(scores);
    free(ids);
}

#define DENSE_BATCH_MAX 64

/* Runs req, batched with whatever else is waiting on the slot.  No thread
 * waits on a timer: when no search is running the caller searches at once
 * (alone, when the slot is quiet); queries that arrive meanwhile queue up,
 * and when that search ends one of their threads takes up to
 * DENSE_BATCH_MAX of them into the next call. */
static void dense_batch(struct ret_engine *eng, struct dense_slot *s, struct dense_req *req) {
    /* An index slorag scans itself is searched at once, side by side with
     * the others: its one-query scan (the quantized one above
     * retrieval.quantized_scan_min) costs less than a share of FAISS's
     * batch, which reads every float vector (bench-retrieval, concurrency:
     * 4 threads at 100k chunks got 87 queries/s batched, 378 one thread
     * alone). */
    pthread_rwlock_rdlock(&s->lock);
    bool alone = s->vi && ret_vindex_scans_itself(s->vi);
    pthread_rwlock_unlock(&s->lock);
    if (alone) { /* a batch of one (an index swapped meanwhile is still searched right, unbatched) */
        req->next = NULL;
        search_batch(eng, s, req);
        req->done = true;
        return;
    }
    pthread_mutex_lock(&s->batch_mu);
    req->next = s->pending;
    s->pending = req;
    while (!req->done) {
        if (s->searching) {
            pthread_cond_wait(&s->batch_cv, &s->batch_mu);
            continue;
        }
        /* lead: take the oldest DENSE_BATCH_MAX (the list is newest first) */
        struct dense_req **cut = &s->pending;
        size_t n = 0;
        for (struct dense_req *r = s->pending; r; r = r->next)
            n++;
        for (size_t skip = n > DENSE_BATCH_MAX ? n - DENSE_BATCH_MAX : 0; skip > 0; skip--)
            cut = &(*cut)->next;
        struct dense_req *batch = *cut;
        *cut = NULL;
        s->searching = true;
        pthread_mutex_unlock(&s->batch_mu);
        search_batch(eng, s, batch);
        pthread_mutex_lock(&s->batch_mu);
        for (struct dense_req *r = batch; r; r = r->next)
            r->done = true;
        s->searching = false;
        pthread_cond_broadcast(&s->batch_cv);
    }
    pthread_mutex_unlock(&s->batch_mu);
}

static enum err dense_search_slot(struct ret_engine *eng, struct dense_slot *s, const char *query, int depth,
                                  struct arena *a, struct ret_hit **ret_hits, size_t *ret_n) {
    int stored = slot_conflict(s);
    if (stored)
        return conflict_error(eng, stored);
    int dim = eng->emb->dim;
    float *q = arena_alloc(a, (size_t)dim * sizeof(float));
    float *scores = arena_alloc(a, (size_t)depth * sizeof(float));
    int64_t *ids = arena_alloc(a, (size_t)depth * sizeof(int64_t));
    struct ret_hit *hits = arena_calloc(a, (size_t)depth, sizeof(*hits));
    if (!q || !scores || !ids || !hits)
        return ERR_NOMEM;
    size_t qlen = strlen(query);
    enum err e = ret_embed(eng->emb, &query, &qlen, 1, q);
    if (e)
        return e;
    struct dense_req req = {.q = q, .depth = depth, .scores = scores, .ids = ids};
    dense_batch(eng, s, &req);
    if (req.e || req.count == 0)
        return req.e;
    size_t n = 0;
    for (int i = 0; i < depth; i++) {
        if (ids[i] < 0)
            break;
        hits[n].chunk_id = ids[i];
        hits[n].score = scores[i];
        n++;
    }
    *ret_hits = hits; /* ids and scores: ret_engine_search fills the ones it returns */
    *ret_n = n;
    return ERR_OK;
}

static enum err dense_search(struct ret_engine *eng, int64_t cid, const char *query, int depth, struct arena *a,
                             struct ret_hit **ret_hits, size_t *ret_n) {
    *ret_hits = NULL;
    *ret_n = 0;
    struct dense_slot *s = slot_get(eng, cid);
    if (!s)
        return ERR_OK;
    enum err e = dense_search_slot(eng, s, query, depth, a, ret_hits, ret_n);
    slot_put(s);
    return e;
}

/* Lexical search through the collection's in-memory index.  *ret_used is
 * false when that index cannot answer (none, not built yet, or a query
 * word FTS5 would split into several tokens, i.e. a phrase): the caller
 * then asks FTS5. */
static enum err lex_search_slot(struct ret_engine *eng, struct dense_slot *s, const char *query, int k,
                                struct arena *a, struct ret_hit **ret_hits, size_t *ret_n, bool *ret_used) {
    if (!__atomic_load_n(&s->lex_ready, __ATOMIC_ACQUIRE))
        return ERR_OK;
    char words[RET_QUERY_MAX_WORDS][64];
    size_t nw = ret_query_words(query, words, RET_QUERY_MAX_WORDS);
    const char *terms[RET_QUERY_MAX_WORDS];
    struct ret_tokenizer *tok = NULL;
    struct ret_lex_tokens t = {0};
    enum err e = nw ? ret_tokenizer_new(eng->store, &tok) : ERR_OK;
    size_t nt = 0;
    for (size_t i = 0; !e && i < nw; i++) {
        e = ret_tokenize(tok, words[i], strlen(words[i]), true, &t);
        if (!e && t.ntok != 1)
            break;
        if (!e && !(terms[nt++] = arena_strdup(a, t.buf)))
            e = ERR_NOMEM;
    }
    ret_tokenizer_free(tok);
    ret_lex_tokens_done(&t);
    if (e || nt < nw)
        return e;
    int64_t *ids = arena_alloc(a, (size_t)k * sizeof(*ids));
    double *scores = arena_alloc(a, (size_t)k * sizeof(*scores));
    struct ret_hit *hits = arena_calloc(a, (size_t)k, sizeof(*hits));
    if (!ids || !scores || !hits)
        return ERR_NOMEM;
    size_t n = 0;
    pthread_rwlock_rdlock(&s->lex_lock);
    bool ready = s->lex && __atomic_load_n(&s->lex_ready, __ATOMIC_ACQUIRE);
    if (ready)
        e = ret_lexindex_search(s->lex, terms, nt, k, ids, scores, &n);
    pthread_rwlock_unlock(&s->lex_lock);
    if (!ready || e)
        return e;
    for (size_t i = 0; i < n; i++) {
        hits[i].chunk_id = ids[i];
        hits[i].score = scores[i];
    }
    *ret_hits = hits; /* ids and scores: ret_engine_search fills the ones it returns */
    *ret_n = n;
    *ret_used = true;
    return ERR_OK;
}

static enum err lex_search(struct ret_engine *eng, int64_t cid, const char *query, int k, struct arena *a,
                           struct ret_hit **ret_hits, size_t *ret_n, bool *ret_used) {
    *ret_used = false;
    struct dense_slot *s = eng->lexical_index ? slot_get(eng, cid) : NULL;
    if (!s)
        return ERR_OK;
    enum err e = lex_search_slot(eng, s, query, k, a, ret_hits, ret_n, ret_used);
    slot_put(s);
    return e;
}

static int64_t collection_vectors(struct ret_engine *eng, int64_t cid) {
    struct dense_slot *s = slot_get(eng, cid);
    int64_t n = 0;
    if (s) {
        pthread_rwlock_rdlock(&s->lock);
        n = s->vi ? ret_vindex_count(s->vi) : 0;
        pthread_rwlock_unlock(&s->lock);
        slot_put(s);
    }
    return n;
}

/* A lexical search, on its own thread or the caller's. */
struct lex_job {
    struct ret_engine *eng;
    int64_t cid;
    const char *query;
    int depth;
    struct arena *a; /* the job's results live here */
    pthread_t thread;
    struct ret_hit *hits;
    size_t n;
    enum err e;
};

static void *lex_job_main(void *arg) {
    struct lex_job *j = arg;
    bool used = false;
    j->e = lex_search(j->eng, j->cid, j->query, j->depth, j->a, &j->hits, &j->n, &used);
    if (!j->e && !used)
        j->e = ret_search_lexical(j->eng->store, j->cid, j->query, j->depth, j->a, &j->hits, &j->n);
    return NULL;
}

static const char *dup_or_null(struct arena *a, const char *s, bool *ok) {
    if (!s)
        return NULL;
    const char *d = arena_strdup(a, s);
    *ok = *ok && d;
    return d;
}

/* Hits from another arena into a. */
static enum err copy_hits(struct arena *a, const struct ret_hit *from, size_t n, struct ret_hit **ret) {
    struct ret_hit *h = arena_calloc(a, n + 1, sizeof(*h));
    if (!h)
        return ERR_NOMEM;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        h[i] = from[i];
        h[i].document_id = dup_or_null(a, from[i].document_id, &ok);
        h[i].title = dup_or_null(a, from[i].title, &ok);
        h[i].text = dup_or_null(a, from[i].text, &ok);
    }
    *ret = h;
    return ok ? ERR_OK : ERR_NOMEM;
}

static int cmp_fused(const void *x, const void *y) {
    const struct ret_scored *a = x, *b = y;
    if (a->fused_score != b->fused_score)
        return a->fused_score < b->fused_score ? 1 : -1;
    return a->hit.chunk_id < b->hit.chunk_id ? -1 : a->hit.chunk_id > b->hit.chunk_id;
}

enum err ret_engine_search(struct ret_engine *eng, int64_t collection_id, const char *query, int k, enum ret_mode mode,
                           struct arena *a, struct ret_scored **ret_res, size_t *ret_n, struct ret_signals *ret_sig) {
    ret_clear_error();
    if (k < 1)
        return ERR_INVALID_FIELD;
    int depth = mode == RET_MODE_HYBRID ? 2 * k : k;
    if (mode == RET_MODE_HYBRID && depth < FUSION_DEPTH_MIN)
        depth = FUSION_DEPTH_MIN;
    if (depth > FUSION_DEPTH_MAX && depth > k)
        depth = k > FUSION_DEPTH_MAX ? k : FUSION_DEPTH_MAX;
    struct ret_hit *lex = NULL, *den = NULL;
    size_t nlex = 0, nden = 0;
    enum err e = ERR_OK;
    /* Hybrid over a large collection runs its two searches at once: the
     * lexical one on a thread of its own (into its own arena), the dense
     * one here, where concurrent dense queries batch. */
    struct lex_job job = {.eng = eng, .cid = collection_id, .query = query, .depth = depth};
    bool parallel = mode == RET_MODE_HYBRID && eng->hybrid_parallel_min >= 0 &&
                    collection_vectors(eng, collection_id) >= eng->hybrid_parallel_min &&
                    (job.a = arena_new(0)) != NULL;
    if (parallel && pthread_create(&job.thread, NULL, lex_job_main, &job) != 0) {
        job.a = arena_free(job.a);
        parallel = false;
    }
    if (mode != RET_MODE_DENSE && !parallel) {
        job.a = a;
        lex_job_main(&job);
        e = job.e;
        lex = job.hits;
        nlex = job.n;
    }
    if (!e && mode != RET_MODE_LEXICAL)
        e = dense_search(eng, collection_id, query, depth, a, &den, &nden);
    if (parallel) {
        pthread_join(job.thread, NULL);
        if (!e)
            e = job.e ? job.e : copy_hits(a, job.hits, job.n, &lex);
        nlex = job.n;
        arena_free(job.a);
    }
    if (e)
        return e;

    struct ret_scored *all = arena_calloc(a, nlex + nden + 1, sizeof(*all));
    if (!all)
        return ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < nlex; i++) {
        all[n] = (struct ret_scored){.hit = lex[i], .lexical_score = lex[i].score, .lexical_rank = (int)i + 1};
        all[n].fused_score = mode == RET_MODE_HYBRID ? 1.0 / (RRF_K + (double)(i + 1)) : lex[i].score;
        n++;
    }
    for (size_t i = 0; i < nden; i++) {
        struct ret_scored *m = NULL;
        for (size_t j = 0; j < nlex; j++)
            if (all[j].hit.chunk_id == den[i].chunk_id)
                m = &all[j];
        if (!m) {
            m = &all[n++];
            *m = (struct ret_scored){.hit = den[i]};
        }
        m->dense_score = den[i].score;
        m->dense_rank = (int)i + 1;
        m->fused_score += mode == RET_MODE_HYBRID ? 1.0 / (RRF_K + (double)(i + 1)) : den[i].score;
    }
    qsort(all, n, sizeof(*all), cmp_fused);

    struct ret_signals sig = {.candidates = n, .lexical_hits = nlex, .dense_hits = nden};
    if (mode == RET_MODE_HYBRID) {
        size_t both = 0, lk = nlex < (size_t)k ? nlex : (size_t)k, dk = nden < (size_t)k ? nden : (size_t)k;
        for (size_t i = 0; i < lk; i++)
            for (size_t j = 0; j < dk; j++)
                both += lex[i].chunk_id == den[j].chunk_id;
        sig.overlap = (double)both / (double)k;
    }
    if (n > (size_t)k)
        n = (size_t)k;
    /* Text, titles and offsets for what is returned, from one SQLite read
     * (the in-memory indexes return ids): at most k lookups, not one per
     * candidate of each retriever.  A chunk deleted since the search is
     * dropped. */
    struct ret_hit *fill = arena_calloc(a, n + 1, sizeof(*fill));
    if (!fill)
        return ERR_NOMEM;
    size_t nfill = 0;
    for (size_t i = 0; i < n; i++)
        if (!all[i].hit.text)
            fill[nfill++] = all[i].hit;
    if (nfill) {
        e = ret_store_fill_hits(eng->store, collection_id, fill, nfill, a);
        if (e)
            return e;
        size_t kept = 0;
        for (size_t i = 0, f = 0; i < n; i++) {
            if (!all[i].hit.text) {
                struct ret_hit h = fill[f++];
                if (h.chunk_id < 0)
                    continue;
                h.score = all[i].hit.score;
                all[i].hit = h;
            }
            all[kept++] = all[i];
        }
        n = kept;
    }
    for (size_t i = 0; i < n; i++)
        all[i].hit.score = all[i].fused_score;
    if (n > 0)
        sig.top_score = all[0].fused_score;
    if (n > 1)
        sig.score_margin = all[0].fused_score - all[1].fused_score;
    *ret_res = all;
    *ret_n = n;
    if (ret_sig)
        *ret_sig = sig;
    return ERR_OK;
}
