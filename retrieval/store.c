/* store.c - SQLite document store with FTS5 BM25 search (see store.h).
 *
 * The FTS5 table is an external-content index over `chunks`, kept in sync by
 * triggers, so a document and its index entries commit in one transaction
 * and a reader sees either all of a document or none of it.
 *
 * Query text is never passed to FTS5 as syntax: it is tokenised here, stop
 * words dropped, and each token double-quoted and OR-ed, so user input can't
 * produce an FTS5 syntax error or an expensive operator. */
#include "store.h"
#include "chunk.h"
#include "embed.h"
#include "sqlkept.h"
#include "text.h"
#include "textcache.h"
#include "util.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STORE_MAX_READERS 32
#define STORE_MAX_QUERY_TERMS RET_QUERY_MAX_WORDS

/* The read path's per-query statements, prepared once per reader
 * connection (SQLITE_PREPARE_PERSISTENT) instead of parsed on every call. */
enum kept_sql { KEPT_BEGIN, KEPT_COMMIT, KEPT_FIND, KEPT_FILL, KEPT__COUNT };
static const char *const kept_sql[KEPT__COUNT] = {
    [KEPT_BEGIN] = "BEGIN",
    [KEPT_COMMIT] = "COMMIT",
    [KEPT_FIND] = "SELECT id FROM collections WHERE tenant=?1 AND name=?2",
    [KEPT_FILL] = "SELECT d.ext_id, d.title, c.text, c.start_off, c.end_off FROM chunks c"
                  " JOIN documents d ON d.id = c.document_id WHERE c.id=?1 AND c.collection_id=?2",
};

#define STORE_COLL_SLOTS 256
#define COLL_TENANT_MAX 64 /* longer ones (none: tenant ids are at most 64) are not kept */
#define COLL_NAME_MAX 64   /* ret_name_valid */

struct ret_store {
    sqlite3 *writer;
    pthread_mutex_t write_mu;

    pthread_mutex_t read_mu;
    pthread_cond_t read_cv;
    sqlite3 *readers[STORE_MAX_READERS];
    sqlite3_stmt *kept[STORE_MAX_READERS][KEPT__COUNT]; /* reader_stmt's, per reader connection */
    int nreaders;
    int free_stack[STORE_MAX_READERS]; /* indexes of idle readers */
    int nfree;

    fts5_api *fts5; /* the writer connection's, for its tokenizers */

    /* texts of recently returned chunks (ret_store_fill_hits); replaced
     * only by ret_store_set_text_cache, before concurrent use */
    struct ret_textcache *texts;

    /* (tenant, name) -> id of collections found recently: every query
     * looks its collection up.  Direct-mapped; an entry is valid while its
     * generation is the current one, which every collection delete bumps
     * (an id is never reused for another collection while it is kept: a
     * delete comes first).  Misses are not kept. */
    pthread_mutex_t coll_mu;
    uint64_t coll_gen;
    struct coll_slot {
        uint64_t gen; /* 0: empty */
        int64_t id;
        char tenant[COLL_TENANT_MAX + 1], name[COLL_NAME_MAX + 1];
    } coll[STORE_COLL_SLOTS];
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS collections("
    "  id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, generation INTEGER NOT NULL DEFAULT 0, UNIQUE(tenant, name));"
    "CREATE TABLE IF NOT EXISTS documents("
    "  id INTEGER PRIMARY KEY,"
    "  collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,"
    "  ext_id TEXT NOT NULL, title TEXT NOT NULL, source TEXT, metadata TEXT,"
    "  content_hash TEXT NOT NULL, body TEXT NOT NULL, bytes INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL, UNIQUE(collection_id, ext_id));"
    "CREATE TABLE IF NOT EXISTS chunks("
    "  id INTEGER PRIMARY KEY,"
    "  document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,"
    "  collection_id INTEGER NOT NULL, ord INTEGER NOT NULL,"
    "  start_off INTEGER NOT NULL, end_off INTEGER NOT NULL, tokens INTEGER NOT NULL,"
    "  text TEXT NOT NULL, embedding BLOB);"
    "CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id);"
    "CREATE INDEX IF NOT EXISTS chunks_by_collection ON chunks(collection_id);"
    /* start-up counts embedded chunks per collection from this index alone */
    "CREATE INDEX IF NOT EXISTS chunks_embedded ON chunks(collection_id) WHERE embedding IS NOT NULL;"
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
    "  text, content='chunks', content_rowid='id',"
    "  tokenize='porter unicode61 remove_diacritics 2');"
    "CREATE TRIGGER IF NOT EXISTS chunks_fts_insert AFTER INSERT ON chunks BEGIN"
    "  INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END;"
    "CREATE TRIGGER IF NOT EXISTS chunks_fts_delete AFTER DELETE ON chunks BEGIN"
    "  INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END;";

#define STORE_MMAP_BYTES "268435456" /* 256 MiB a reader: address space, not memory */

static enum err open_conn(const char *path, bool create, sqlite3 **ret_db) {
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return ERR_STORAGE;
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                     "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16000;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return ERR_STORAGE;
    }
    /* Readers map the file: a page the connection's cache lacks is then
     * read in place, not copied in by a pread() (every answer reads about
     * a dozen chunks at random; the chunks table is ~2 KB a row with its
     * embedding, far larger than the cache at 10k chunks and up).  The
     * file only grows (no VACUUM), so the mapping stays valid. */
    if (!create)
        sqlite3_exec(db, "PRAGMA mmap_size=" STORE_MMAP_BYTES, NULL, NULL, NULL);
    *ret_db = db;
    return ERR_OK;
}

/* The connection's FTS5 API (the documented "SELECT fts5(?1)" handshake),
 * or NULL. */
static fts5_api *fts5_api_of(sqlite3 *db) {
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return api;
}

enum err ret_store_open(const char *path, int readers, struct ret_store **ret_store) {
    if (readers < 1)
        readers = 1;
    if (readers > STORE_MAX_READERS)
        readers = STORE_MAX_READERS;
    struct ret_store *s = calloc(1, sizeof(*s));
    if (!s)
        return ERR_NOMEM;
    pthread_mutex_init(&s->write_mu, NULL);
    pthread_mutex_init(&s->read_mu, NULL);
    pthread_cond_init(&s->read_cv, NULL);
    pthread_mutex_init(&s->coll_mu, NULL);
    s->coll_gen = 1;
    enum err e = (s->texts = ret_textcache_new(RET_TEXT_CACHE_DEFAULT)) ? ERR_OK : ERR_NOMEM;
    if (!e)
        e = open_conn(path, true, &s->writer);
    if (!e && sqlite3_exec(s->writer, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
        e = ERR_STORAGE;
    if (!e && !(s->fts5 = fts5_api_of(s->writer)))
        e = ERR_STORAGE;
    for (int i = 0; !e && i < readers; i++) {
        e = open_conn(path, false, &s->readers[i]);
        if (!e) {
            s->free_stack[s->nfree++] = i;
            s->nreaders++;
        }
    }
    if (e) {
        ret_store_free(s);
        return e;
    }
    *ret_store = s;
    return ERR_OK;
}

enum err ret_store_set_text_cache(struct ret_store *s, size_t cap_bytes) {
    struct ret_textcache *c = ret_textcache_new(cap_bytes);
    if (!c)
        return ERR_NOMEM;
    ret_textcache_free(s->texts);
    s->texts = c;
    return ERR_OK;
}

void ret_store_text_cache_stats(struct ret_store *s, struct ret_textcache_stats *ret) {
    ret_textcache_stats(s->texts, ret);
}

struct ret_store *ret_store_free(struct ret_store *s) {
    if (!s)
        return NULL;
    for (int i = 0; i < s->nreaders; i++) {
        for (int k = 0; k < KEPT__COUNT; k++)
            sqlite3_finalize(s->kept[i][k]);
        sqlite3_close(s->readers[i]);
    }
    sqlite3_close(s->writer);
    ret_textcache_free(s->texts);
    pthread_mutex_destroy(&s->write_mu);
    pthread_mutex_destroy(&s->read_mu);
    pthread_cond_destroy(&s->read_cv);
    pthread_mutex_destroy(&s->coll_mu);
    free(s);
    return NULL;
}

static sqlite3 *reader_get(struct ret_store *s, int *ret_slot) {
    pthread_mutex_lock(&s->read_mu);
    while (s->nfree == 0)
        pthread_cond_wait(&s->read_cv, &s->read_mu);
    int slot = s->free_stack[--s->nfree];
    pthread_mutex_unlock(&s->read_mu);
    *ret_slot = slot;
    return s->readers[slot];
}

static void reader_put(struct ret_store *s, int slot) {
    pthread_mutex_lock(&s->read_mu);
    s->free_stack[s->nfree++] = slot;
    pthread_cond_signal(&s->read_cv);
    pthread_mutex_unlock(&s->read_mu);
}

bool ret_name_valid(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The reader's kept statement (sqlkept.h), reset; NULL when it cannot be
 * prepared. */
static sqlite3_stmt *reader_stmt(struct ret_store *s, int slot, enum kept_sql which) {
    return sql_kept(s->readers[slot], &s->kept[slot][which], kept_sql[which]);
}

static bool reader_exec(struct ret_store *s, int slot, enum kept_sql which) {
    return sql_kept_exec(s->readers[slot], &s->kept[slot][which], kept_sql[which]);
}

static enum err lookup_step(sqlite3_stmt *st, const char *tenant, const char *name, int64_t *ret_id) {
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    enum err e = ERR_OK;
    if (rc == SQLITE_ROW)
        *ret_id = sqlite3_column_int64(st, 0);
    else
        e = rc == SQLITE_DONE ? ERR_NOT_FOUND : ERR_STORAGE;
    return e;
}

static enum err collection_lookup(sqlite3 *db, const char *tenant, const char *name, int64_t *ret_id) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, kept_sql[KEPT_FIND], -1, &st, NULL))
        return ERR_STORAGE;
    enum err e = lookup_step(st, tenant, name, ret_id);
    sqlite3_finalize(st);
    return e;
}

static struct coll_slot *coll_slot_of(struct ret_store *s, const char *tenant, const char *name) {
    uint32_t h = util_fnv32(UTIL_FNV32_BASIS, tenant, strlen(tenant) + 1); /* "tenant\0name" */
    h = util_fnv32(h, name, strlen(name));
    return &s->coll[h % STORE_COLL_SLOTS];
}

enum err ret_collection_find(struct ret_store *s, const char *tenant, const char *name, int64_t *ret_id) {
    bool keepable = strlen(tenant) <= COLL_TENANT_MAX && strlen(name) <= COLL_NAME_MAX;
    struct coll_slot *c = keepable ? coll_slot_of(s, tenant, name) : NULL;
    uint64_t gen = 0;
    pthread_mutex_lock(&s->coll_mu);
    gen = s->coll_gen;
    bool hit = c && c->gen == gen && strcmp(c->tenant, tenant) == 0 && strcmp(c->name, name) == 0;
    if (hit)
        *ret_id = c->id;
    pthread_mutex_unlock(&s->coll_mu);
    if (hit)
        return ERR_OK;
    int slot;
    reader_get(s, &slot);
    sqlite3_stmt *st = reader_stmt(s, slot, KEPT_FIND);
    enum err e = st ? lookup_step(st, tenant, name, ret_id) : ERR_STORAGE;
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st); /* the names were bound SQLITE_STATIC */
    }
    reader_put(s, slot);
    if (!e && c) {
        /* gen was read before the lookup's snapshot: a delete committed
         * since has bumped it, and then this is not kept */
        pthread_mutex_lock(&s->coll_mu);
        if (gen == s->coll_gen) {
            c->gen = gen;
            c->id = *ret_id;
            memcpy(c->tenant, tenant, strlen(tenant) + 1);
            memcpy(c->name, name, strlen(name) + 1);
        }
        pthread_mutex_unlock(&s->coll_mu);
    }
    return e;
}

enum err ret_collection_ensure(struct ret_store *s, const char *tenant, const char *name, int64_t *ret_id) {
    if (!ret_name_valid(name))
        return ERR_INVALID_FIELD;
    pthread_mutex_lock(&s->write_mu);
    enum err e = collection_lookup(s->writer, tenant, name, ret_id);
    if (e == ERR_NOT_FOUND) {
        sqlite3_stmt *st = NULL;
        e = ERR_STORAGE;
        if (sqlite3_prepare_v2(s->writer,
                               "INSERT INTO collections(tenant, name, created_at) VALUES (?1, ?2, ?3)", -1,
                               &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
            if (sqlite3_step(st) == SQLITE_DONE) {
                *ret_id = sqlite3_last_insert_rowid(s->writer);
                e = ERR_OK;
            }
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->write_mu);
    return e;
}

/* 64-bit FNV-1a, as hex: a change detector for content, not a security hash. */
static void content_hash(const char *p, size_t n, char out[17]) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static enum err exec_sql(sqlite3 *db, const char *sql) {
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? ERR_OK : ERR_STORAGE;
}

void ret_change_done(struct ret_change *c) {
    free(c->removed_ids);
    free(c->added_ids);
    free(c->added_vecs);
    memset(c, 0, sizeof(*c));
}

static enum err step_done(sqlite3_stmt *st) {
    return sqlite3_step(st) == SQLITE_DONE ? ERR_OK : ERR_STORAGE;
}

/* Collects the chunk ids of a document (about to be deleted). */
static enum err chunk_ids_of(sqlite3 *db, int64_t collection_id, const char *ext_id, struct ret_change *c) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id"
                           " WHERE d.collection_id=?1 AND d.ext_id=?2",
                           -1, &st, NULL))
        return ERR_STORAGE;
    sqlite3_bind_int64(st, 1, collection_id);
    sqlite3_bind_text(st, 2, ext_id, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    enum err e = ERR_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (c->nremoved == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *v = realloc(c->removed_ids, cap * sizeof(*v));
            if (!v) {
                e = ERR_NOMEM;
                break;
            }
            c->removed_ids = v;
        }
        c->removed_ids[c->nremoved++] = sqlite3_column_int64(st, 0);
    }
    if (!e && rc != SQLITE_DONE)
        e = ERR_STORAGE;
    sqlite3_finalize(st);
    return e;
}

static enum err bump_generation(sqlite3 *db, int64_t collection_id, int64_t *ret_gen) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "UPDATE collections SET generation = generation + 1 WHERE id=?1 RETURNING generation",
                           -1, &st, NULL))
        return ERR_STORAGE;
    sqlite3_bind_int64(st, 1, collection_id);
    enum err e = ERR_NOT_FOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *ret_gen = sqlite3_column_int64(st, 0);
        e = sqlite3_step(st) == SQLITE_DONE ? ERR_OK : ERR_STORAGE;
    }
    sqlite3_finalize(st);
    return e;
}

static enum err delete_doc(sqlite3 *db, int64_t collection_id, const char *ext_id, struct ret_change *c) {
    enum err e = chunk_ids_of(db, collection_id, ext_id, c);
    if (e)
        return e;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "DELETE FROM documents WHERE collection_id=?1 AND ext_id=?2", -1, &st, NULL))
        return ERR_STORAGE;
    sqlite3_bind_int64(st, 1, collection_id);
    sqlite3_bind_text(st, 2, ext_id, -1, SQLITE_STATIC);
    e = step_done(st);
    if (!e)
        c->replaced = sqlite3_changes(db) > 0;
    sqlite3_finalize(st);
    return e;
}

static enum err put_locked(sqlite3 *db, int64_t collection_id, const struct ret_doc_in *doc,
                           const struct ret_chunk_span *spans, size_t nspans, const float *vecs, int dim,
                           struct ret_change *c) {
    sqlite3_stmt *st = NULL;
    enum err e = delete_doc(db, collection_id, doc->ext_id, c);
    if (e)
        return e;
    char hash[17];
    content_hash(doc->text, doc->text_len, hash);
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO documents(collection_id, ext_id, title, source, metadata,"
                           " content_hash, body, bytes, created_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
                           -1, &st, NULL))
        return ERR_STORAGE;
    sqlite3_bind_int64(st, 1, collection_id);
    sqlite3_bind_text(st, 2, doc->ext_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, doc->title ? doc->title : doc->ext_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, doc->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, doc->metadata, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, doc->text, (int)doc->text_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)doc->text_len);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)time(NULL));
    e = step_done(st);
    sqlite3_finalize(st);
    if (e)
        return e;
    int64_t doc_id = sqlite3_last_insert_rowid(db);

    if (sqlite3_prepare_v2(db,
                           "INSERT INTO chunks(document_id, collection_id, ord, start_off, end_off,"
                           " tokens, text, embedding) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                           -1, &st, NULL))
        return ERR_STORAGE;
    for (size_t i = 0; !e && i < nspans; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, doc_id);
        sqlite3_bind_int64(st, 2, collection_id);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)i);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)spans[i].start);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)spans[i].end);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)spans[i].tokens);
        sqlite3_bind_text(st, 7, doc->text + spans[i].start, (int)(spans[i].end - spans[i].start), SQLITE_STATIC);
        if (vecs)
            sqlite3_bind_blob(st, 8, vecs + i * (size_t)dim, dim * (int)sizeof(float), SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 8);
        e = step_done(st);
        if (!e)
            c->added_ids[i] = sqlite3_last_insert_rowid(db);
    }
    sqlite3_finalize(st);
    if (!e)
        e = bump_generation(db, collection_id, &c->generation);
    return e;
}

/* Runs fn inside BEGIN IMMEDIATE .. COMMIT under the write mutex. */
static enum err in_write_txn(struct ret_store *s, enum err (*fn)(sqlite3 *db, void *ud), void *ud) {
    pthread_mutex_lock(&s->write_mu);
    enum err e = exec_sql(s->writer, "BEGIN IMMEDIATE");
    if (!e) {
        e = fn(s->writer, ud);
        if (!e)
            e = exec_sql(s->writer, "COMMIT");
        if (e)
            exec_sql(s->writer, "ROLLBACK");
    }
    pthread_mutex_unlock(&s->write_mu);
    return e;
}

struct put_args {
    int64_t collection_id;
    const struct ret_doc_in *doc;
    const struct ret_chunk_span *spans;
    size_t nspans;
    const float *vecs;
    int dim;
    struct ret_change *c;
};

static enum err put_txn(sqlite3 *db, void *ud) {
    struct put_args *a = ud;
    return put_locked(db, a->collection_id, a->doc, a->spans, a->nspans, a->vecs, a->dim, a->c);
}

enum err ret_document_prepare(const struct ret_doc_in *doc, const struct ret_chunk_opts *opts,
                              struct ret_embedder *emb, struct ret_prepared *ret_prep) {
    if (!doc->ext_id || !*doc->ext_id || strlen(doc->ext_id) > 256 || doc->text_len > INT32_MAX)
        return ERR_INVALID_FIELD;
    struct ret_prepared p = {.dim = emb ? emb->dim : 0};
    enum err e = ret_chunk_text(doc->text, doc->text_len, opts->max_tokens, opts->overlap_tokens, &p.spans, &p.n);
    if (!e && emb && p.n) {
        p.vecs = malloc(p.n * (size_t)p.dim * sizeof(float));
        const char **texts = malloc(p.n * sizeof(*texts));
        size_t *lens = malloc(p.n * sizeof(*lens));
        if (!p.vecs || !texts || !lens)
            e = ERR_NOMEM;
        for (size_t i = 0; !e && i < p.n; i++) {
            texts[i] = doc->text + p.spans[i].start;
            lens[i] = p.spans[i].end - p.spans[i].start;
        }
        if (!e)
            e = ret_embed(emb, texts, lens, p.n, p.vecs);
        free(texts);
        free(lens);
    }
    if (e) {
        ret_prepared_done(&p);
        return e;
    }
    *ret_prep = p;
    return ERR_OK;
}

void ret_prepared_done(struct ret_prepared *p) {
    free(p->spans);
    free(p->vecs);
    memset(p, 0, sizeof(*p));
}

enum err ret_document_commit(struct ret_store *s, int64_t collection_id, const struct ret_doc_in *doc,
                             struct ret_prepared *prep, struct ret_change *ret_change) {
    struct ret_change c = {.nchunks = prep->n, .nadded = prep->n};
    c.added_ids = malloc((prep->n ? prep->n : 1) * sizeof(int64_t));
    if (!c.added_ids)
        return ERR_NOMEM;
    struct put_args args = {collection_id, doc, prep->spans, prep->n, prep->vecs, prep->dim, &c};
    enum err e = in_write_txn(s, put_txn, &args);
    if (e) {
        ret_change_done(&c);
        return e;
    }
    if (c.replaced || c.nremoved) /* chunks deleted: their ids may come back */
        ret_textcache_invalidate(s->texts);
    c.added_vecs = prep->vecs; /* the change reports them for the index */
    prep->vecs = NULL;
    *ret_change = c;
    return ERR_OK;
}

enum err ret_document_put(struct ret_store *s, int64_t collection_id, const struct ret_doc_in *doc,
                          const struct ret_chunk_opts *opts, struct ret_embedder *emb, struct ret_change *ret_change) {
    struct ret_prepared p;
    enum err e = ret_document_prepare(doc, opts, emb, &p);
    if (!e)
        e = ret_document_commit(s, collection_id, doc, &p, ret_change);
    ret_prepared_done(&p);
    return e;
}

struct delete_args {
    int64_t collection_id;
    const char *ext_id;
    struct ret_change *c;
};

static enum err delete_txn(sqlite3 *db, void *ud) {
    struct delete_args *a = ud;
    enum err e = delete_doc(db, a->collection_id, a->ext_id, a->c);
    if (!e && !a->c->replaced)
        e = ERR_NOT_FOUND;
    if (!e)
        e = bump_generation(db, a->collection_id, &a->c->generation);
    return e;
}

enum err ret_document_delete(struct ret_store *s, int64_t collection_id, const char *ext_id,
                             struct ret_change *ret_change) {
    struct ret_change c = {0};
    struct delete_args args = {collection_id, ext_id, &c};
    enum err e = in_write_txn(s, delete_txn, &args);
    if (e) {
        ret_change_done(&c);
        return e;
    }
    ret_textcache_invalidate(s->texts);
    *ret_change = c;
    return ERR_OK;
}

static const char *col_text(struct arena *a, sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? arena_strdup(a, (const char *)t) : NULL;
}

enum err ret_document_get(struct ret_store *s, int64_t collection_id, const char *ext_id, struct arena *a,
                          struct ret_doc_out *ret_doc) {
    int slot;
    sqlite3 *db = reader_get(s, &slot);
    sqlite3_stmt *st = NULL;
    enum err e = ERR_STORAGE;
    if (sqlite3_prepare_v2(db,
                           "SELECT ext_id, title, source, metadata, body, bytes, created_at, content_hash,"
                           " (SELECT count(*) FROM chunks WHERE document_id = documents.id)"
                           " FROM documents WHERE collection_id=?1 AND ext_id=?2",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, collection_id);
        sqlite3_bind_text(st, 2, ext_id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            struct ret_doc_out d = {
                .document_id = col_text(a, st, 0),
                .title = col_text(a, st, 1),
                .source = col_text(a, st, 2),
                .metadata = col_text(a, st, 3),
                .text = col_text(a, st, 4),
                .bytes = sqlite3_column_int64(st, 5),
                .created_at = sqlite3_column_int64(st, 6),
                .content_hash = col_text(a, st, 7),
                .chunks = sqlite3_column_int64(st, 8),
            };
            e = d.document_id && d.text ? ERR_OK : ERR_NOMEM;
            if (!e)
                *ret_doc = d;
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
    }
    sqlite3_finalize(st);
    reader_put(s, slot);
    return e;
}

struct coll_delete_args {
    const char *tenant, *name;
    int64_t id;
};

static enum err coll_delete_txn(sqlite3 *db, void *ud) {
    struct coll_delete_args *a = ud;
    enum err e = collection_lookup(db, a->tenant, a->name, &a->id);
    if (e)
        return e;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "DELETE FROM collections WHERE id=?1", -1, &st, NULL))
        return ERR_STORAGE;
    sqlite3_bind_int64(st, 1, a->id);
    e = step_done(st);
    sqlite3_finalize(st);
    return e;
}

enum err ret_collection_delete(struct ret_store *s, const char *tenant, const char *name, int64_t *ret_id) {
    struct coll_delete_args args = {tenant, name, 0};
    enum err e = in_write_txn(s, coll_delete_txn, &args);
    if (!e) {
        ret_textcache_invalidate(s->texts);
        pthread_mutex_lock(&s->coll_mu);
        s->coll_gen++; /* every kept (tenant, name) -> id goes */
        pthread_mutex_unlock(&s->coll_mu);
    }
    if (!e && ret_id)
        *ret_id = args.id;
    return e;
}

enum err ret_collection_list(struct ret_store *s, const char *tenant, struct arena *a,
                             struct ret_collection_info **ret_list, size_t *ret_n) {
    int slot;
    sqlite3 *db = reader_get(s, &slot);
    sqlite3_stmt *st = NULL;
    enum err e = ERR_STORAGE;
    struct ret_collection_info *list = NULL;
    size_t n = 0, cap = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT c.id, c.name, c.created_at,"
                           " (SELECT count(*) FROM documents d WHERE d.collection_id = c.id),"
                           " (SELECT count(*) FROM chunks k WHERE k.collection_id = c.id),"
                           " (SELECT coalesce(sum(bytes), 0) FROM documents d WHERE d.collection_id = c.id)"
                           " FROM collections c WHERE c.tenant=?1 ORDER BY c.name",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
        int rc;
        e = ERR_OK;
        while (!e && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                struct ret_collection_info *nl = arena_alloc(a, ncap * sizeof(*nl));
                if (!nl) {
                    e = ERR_NOMEM;
                    break;
                }
                if (n)
                    memcpy(nl, list, n * sizeof(*nl));
                list = nl;
                cap = ncap;
            }
            list[n] = (struct ret_collection_info){
                .id = sqlite3_column_int64(st, 0),
                .name = col_text(a, st, 1),
                .created_at = sqlite3_column_int64(st, 2),
                .documents = sqlite3_column_int64(st, 3),
                .chunks = sqlite3_column_int64(st, 4),
                .bytes = sqlite3_column_int64(st, 5),
            };
            e = list[n].name ? ERR_OK : ERR_NOMEM;
            n++;
        }
        if (!e && rc != SQLITE_DONE)
            e = ERR_STORAGE;
    }
    sqlite3_finalize(st);
    reader_put(s, slot);
    if (e)
        return e;
    *ret_list = list;
    *ret_n = n;
    return ERR_OK;
}

enum err ret_collection_ids(struct ret_store *s, int64_t **ret_ids, size_t *ret_n) {
    int slot;
    sqlite3 *db = reader_get(s, &slot);
    sqlite3_stmt *st = NULL;
    enum err e = ERR_STORAGE;
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    if (sqlite3_prepare_v2(db, "SELECT id FROM collections ORDER BY id", -1, &st, NULL) == SQLITE_OK) {
        int rc;
        e = ERR_OK;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                int64_t *v = realloc(ids, cap * sizeof(*v));
                if (!v) {
                    e = ERR_NOMEM;
                    break;
                }
                ids = v;
            }
            ids[n++] = sqlite3_column_int64(st, 0);
        }
        if (!e && rc != SQLITE_DONE)
            e = ERR_STORAGE;
    }
    sqlite3_finalize(st);
    reader_put(s, slot);
    if (e) {
        free(ids);
        return e;
    }
    *ret_ids = ids;
    *ret_n = n;
    return ERR_OK;
}

/* One int64 from a one-row query keyed by collection id. */
static enum err select_one(struct ret_store *s, const char *sql, int64_t collection_id, int64_t *ret_v) {
    int slot;
    sqlite3 *db = reader_get(s, &slot);
    sqlite3_stmt *st = NULL;
    enum err e = ERR_STORAGE;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, collection_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *ret_v = sqlite3_column_int64(st, 0);
            e = ERR_OK;
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
    }
    sqlite3_finalize(st);
    reader_put(s, slot);
    return e;
}

enum err ret_collection_generation(struct ret_store *s, int64_t collection_id, int64_t *ret_gen) {
    return select_one(s, "SELECT generation FROM collections WHERE id=?1", collection_id, ret_gen);
}

enum err ret_collection_chunk_count(struct ret_store *s, int64_t collection_id, int64_t *ret_count) {
    return select_one(s, "SELECT count(*) FROM chunks WHERE collection_id=?1 AND embedding IS NOT NULL",
                      collection_id, ret_count);
}

enum err ret_collection_other_dim(struct ret_store *s, int64_t collection_id, int dim, int *ret_other) {
    int slot;
    sqlite3 *db = reader_get(s, &slot);
    sqlite3_stmt *st = NULL;
    enum err e = ERR_STORAGE;
    if (sqlite3_prepare_v2(db,
                           "SELECT length(embedding) FROM chunks WHERE collection_id=?1 AND embedding IS NOT NULL"
                           " AND length(embedding) != ?2 LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, collection_id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)dim * (sqlite3_int64)sizeof(float));
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            sqlite3_int64 bytes = sqlite3_column_int64(st, 0);
            *ret_other = bytes < (sqlite3_int64)sizeof(float) ? 1 : (int)(bytes / (sqlite3_int64)sizeof(float));
            e = ERR_OK;
        } else if (rc == SQLITE_DONE) {
            *ret_other = 0;
            e = ERR_OK;
        }
    }
    sqlite3_finalize(st);
    reader_put(s, slot);
    return e;
}

enum err ret_store_embeddings(struct ret_store *s, int64_t collection_id, int dim,
                              enum err (*fn)(void *ud, const int64_t *ids, const float *vecs, size_t n), void *ud,
                              size_t *ret_skipped) {
    enum { BATCH = 4096 };
    int64_t *ids = malloc(BATCH * sizeof(*ids));
    float *vecs = malloc((size_t)BATCH * (size_t)dim * sizeof(float));
    if (!ids || !vecs) {
        free(ids);
        free(vecs);
        return ERR_NOMEM;
    }
    int slot;
    sqlite3 *db = reader_get(s, &slot);
    sqlite3_stmt *st = NULL;
    enum err e = ERR_STORAGE;
    size_t n = 0, skipped = 0;
    /* one read transaction: a consistent snapshot even while writers commit */
    if (exec_sql(db, "BEGIN") == ERR_OK) {
        if (sqlite3_prepare_v2(db, "SELECT id, embedding FROM chunks WHERE collection_id=?1 ORDER BY id", -1, &st,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, collection_id);
            int rc;
            e = ERR_OK;
            while (!e && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                const void *blob = sqlite3_column_blob(st, 1);
                int bytes = sqlite3_column_bytes(st, 1);
                if (!blob || bytes != dim * (int)sizeof(float)) {
                    skipped++;
                    continue;
                }
                ids[n] = sqlite3_column_int64(st, 0);
                memcpy(vecs + n * (size_t)dim, blob, (size_t)bytes);
                if (++n == BATCH) {
                    e = fn(ud, ids, vecs, n);
                    n = 0;
                }
            }
            if (!e && rc != SQLITE_DONE)
                e = ERR_STORAGE;
            if (!e && n)
                e = fn(ud, ids, vecs, n);
        }
        sqlite3_finalize(st);
        exec_sql(db, "COMMIT");
    }
    reader_put(s, slot);
    free(ids);
    free(vecs);
    if (!e && ret_skipped)
        *ret_skipped = skipped;
    return e;
}

enum err ret_store_fill_hits(struct ret_store *s, int64_t collection_id, struct ret_hit *hits, size_t n,
                             struct arena *a) {
    /* the cache first; SQLite for the rest, if any */
    size_t miss = 0;
    for (size_t i = 0; i < n; i++)
        if (!ret_textcache_get(s->texts, hits[i].chunk_id, collection_id, a, &hits[i].document_id, &hits[i].title,
                               &hits[i].text, &hits[i].start, &hits[i].end)) {
            hits[i].text = NULL; /* marks the ones SQLite fills */
            miss++;
        }
    if (miss == 0)
        return ERR_OK;
    /* read before the snapshot begins: a delete committed after this may
     * be missing from the rows read, and then they are not cached */
    uint64_t gen = ret_textcache_gen(s->texts);
    int slot;
    reader_get(s, &slot);
    enum err e = ERR_STORAGE;
    /* one read transaction for all of them: one snapshot, one lock */
    bool txn = reader_exec(s, slot, KEPT_BEGIN);
    sqlite3_stmt *st = reader_stmt(s, slot, KEPT_FILL);
    if (st) {
        e = ERR_OK;
        for (size_t i = 0; !e && i < n; i++) {
            if (hits[i].text) /* from the cache */
                continue;
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, hits[i].chunk_id);
            sqlite3_bind_int64(st, 2, collection_id);
            int rc = sqlite3_step(st);
            if (rc == SQLITE_ROW) {
                hits[i].document_id = col_text(a, st, 0);
                hits[i].title = col_text(a, st, 1);
                hits[i].text = col_text(a, st, 2);
                hits[i].start = sqlite3_column_int64(st, 3);
                hits[i].end = sqlite3_column_int64(st, 4);
                if (!hits[i].document_id || !hits[i].title || !hits[i].text)
                    e = ERR_NOMEM;
                else
                    ret_textcache_put(s->texts, gen, hits[i].chunk_id, collection_id, hits[i].document_id,
                                      hits[i].title, hits[i].text, hits[i].start, hits[i].end);
            } else if (rc == SQLITE_DONE) {
                hits[i].chunk_id = -1; /* deleted since the index was searched */
            } else {
                e = ERR_STORAGE;
            }
        }
    }
    if (st)
        sqlite3_reset(st);
    if (txn)
        reader_exec(s, slot, KEPT_COMMIT);
    reader_put(s, slot);
    return e;
}

/* ---- FTS5's tokenizer, for the in-memory lexical index ---- */

struct ret_tokenizer {
    fts5_tokenizer api;
    Fts5Tokenizer *tok;
};

enum err ret_tokenizer_new(struct ret_store *s, struct ret_tokenizer **ret) {
    /* as chunks_fts is declared: porter over unicode61 remove_diacritics 2 */
    const char *args[] = {"unicode61", "remove_diacritics", "2"};
    struct ret_tokenizer *t = calloc(1, sizeof(*t));
    void *ud = NULL;
    if (!t)
        return ERR_NOMEM;
    if (s->fts5->xFindTokenizer(s->fts5, "porter", &ud, &t->api) != SQLITE_OK ||
        t->api.xCreate(ud, args, 3, &t->tok) != SQLITE_OK) {
        free(t);
        return ERR_STORAGE;
    }
    *ret = t;
    return ERR_OK;
}

void ret_tokenizer_free(struct ret_tokenizer *t) {
    if (!t)
        return;
    t->api.xDelete(t->tok);
    free(t);
}

static int token_cb(void *ud, int flags, const char *tok, int n, int start, int end) {
    (void)flags, (void)start, (void)end;
    return ret_lex_tokens_add(ud, tok, (size_t)n) ? SQLITE_NOMEM : SQLITE_OK;
}

enum err ret_tokenize(struct ret_tokenizer *t, const char *text, size_t len, bool query, struct ret_lex_tokens *out) {
    ret_lex_tokens_clear(out);
    if (len > INT32_MAX)
        return ERR_TOO_LARGE;
    int rc = t->api.xTokenize(t->tok, out, query ? FTS5_TOKENIZE_QUERY : FTS5_TOKENIZE_DOCUMENT, text, (int)len,
                              token_cb);
    return rc == SQLITE_OK ? ERR_OK : rc == SQLITE_NOMEM ? ERR_NOMEM : ERR_STORAGE;
}

enum err ret_store_chunk_texts(struct ret_store *s, int64_t collection_id, int64_t after, int limit,
                               enum err (*cb)(void *ud, int64_t id, const char *text, size_t len), void *ud,
                               int64_t *ret_last, size_t *ret_n) {
    int slot;
    sqlite3 *db = reader_get(s, &slot);
    sqlite3_stmt *st = NULL;
    enum err e = ERR_STORAGE;
    size_t n = 0;
    int64_t last = after;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, text FROM chunks WHERE collection_id=?1 AND id>?2 ORDER BY id LIMIT ?3",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, collection_id);
        sqlite3_bind_int64(st, 2, after);
        sqlite3_bind_int(st, 3, limit);
        int rc;
        e = ERR_OK;
        while (!e && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            last = sqlite3_column_int64(st, 0);
            const char *text = (const char *)sqlite3_column_text(st, 1);
            e = text ? cb(ud, last, text, (size_t)sqlite3_column_bytes(st, 1)) : ERR_NOMEM;
            n++;
        }
        if (!e && rc != SQLITE_DONE)
            e = ERR_STORAGE;
    }
    sqlite3_finalize(st);
    reader_put(s, slot);
    *ret_last = last;
    *ret_n = n;
    return e;
}

size_t ret_query_words(const char *q, char (*out)[64], size_t max) {
    size_t qn = strlen(q), pos = 0, n = 0;
    struct text_token t;
    while (n < max && text_next_token(q, qn, &pos, &t)) {
        text_token_lower(q, &t, out[n], sizeof out[n]);
        if (!text_is_stopword(out[n]))
            n++;
    }
    return n;
}

/* Builds `"t1" OR "t2" ...` from the query's content words.  Tokens contain
 * only word bytes (no quotes), so quoting them is enough to neutralise FTS5
 * syntax.  Returns false when the query has no usable term. */
static bool build_match(const char *q, char *out, size_t outlen) {
    char words[STORE_MAX_QUERY_TERMS][64];
    size_t n = ret_query_words(q, words, STORE_MAX_QUERY_TERMS), used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out + used, outlen - used, "%s\"%s\"", i ? " OR " : "", words[i]);
        if (w < 0 || (size_t)w >= outlen - used)
            break;
        used += (size_t)w;
    }
    return n > 0;
}

static const char fast_sql[] =
    "SELECT c.id, d.ext_id, d.title, c.text, c.start_off, c.end_off, f.rank"
    " FROM (SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY rank LIMIT ?4) f"
    " JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = c.document_id"
    " WHERE c.collection_id = ?2 ORDER BY f.rank LIMIT ?3";

static const char full_sql[] =
    "SELECT c.id, d.ext_id, d.title, c.text, c.start_off, c.end_off, bm25(chunks_fts) AS rank"
    " FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid"
    " JOIN documents d ON d.id = c.document_id"
    " WHERE chunks_fts MATCH ?1 AND c.collection_id = ?2"
    " ORDER BY rank LIMIT ?3";

static enum err lexical_query(sqlite3 *db, const char *sql, const char *match, int64_t collection_id, int k, int depth,
                              struct arena *a, struct ret_hit *hits, size_t *ret_n) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return ERR_STORAGE;
    sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, collection_id);
    sqlite3_bind_int(st, 3, k);
    if (depth)
        sqlite3_bind_int(st, 4, depth);
    enum err e = ERR_OK;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < (size_t)k) {
        struct ret_hit *h = &hits[n];
        h->chunk_id = sqlite3_column_int64(st, 0);
        h->document_id = arena_strdup(a, (const char *)sqlite3_column_text(st, 1));
        h->title = arena_strdup(a, (const char *)sqlite3_column_text(st, 2));
        h->text = arena_strdup(a, (const char *)sqlite3_column_text(st, 3));
        h->start = sqlite3_column_int64(st, 4);
        h->end = sqlite3_column_int64(st, 5);
        h->score = -sqlite3_column_double(st, 6); /* FTS5 bm25 is lower-is-better */
        if (!h->document_id || !h->title || !h->text) {
            e = ERR_NOMEM;
            break;
        }
        n++;
    }
    if (!e && rc != SQLITE_ROW && rc != SQLITE_DONE)
        e = ERR_STORAGE;
    sqlite3_finalize(st);
    *ret_n = n;
    return e;
}

enum err ret_search_lexical(struct ret_store *s, int64_t collection_id, const char *query, int k,
                            struct arena *a, struct ret_hit **ret_hits, size_t *ret_n) {
    char match[STORE_MAX_QUERY_TERMS * 72];
    if (k < 1)
        return ERR_INVALID_FIELD;
    if (!build_match(query, match, sizeof match)) {
        *ret_hits = NULL;
        *ret_n = 0;
        return ERR_OK;
    }
    struct ret_hit *hits = arena_calloc(a, (size_t)k, sizeof(*hits));
    if (!hits)
        return ERR_NOMEM;
    int slot;
    sqlite3 *db = reader_get(s, &slot);
    size_t n = 0;
    /* Fast path: let FTS5 rank with its top-N heap, then join only those
     * rows.  Matches from other collections can crowd the top list, so
     * when it leaves fewer than k for this collection, rank them all. */
    int depth = k * 8 < 64 ? 64 : k * 8;
    enum err e = lexical_query(db, fast_sql, match, collection_id, k, depth, a, hits, &n);
    if (!e && n < (size_t)k)
        e = lexical_query(db, full_sql, match, collection_id, k, 0, a, hits, &n);
    reader_put(s, slot);
    if (e)
        return e;
    *ret_hits = hits;
    *ret_n = n;
    return ERR_OK;
}

enum err ret_store_stats(struct ret_store *s, struct ret_store_stats *ret_stats) {
    int slot;
    sqlite3 *db = reader_get(s, &slot);
    sqlite3_stmt *st = NULL;
    enum err e = ERR_STORAGE;
    if (sqlite3_prepare_v2(db,
                           "SELECT (SELECT count(*) FROM collections), (SELECT count(*) FROM documents),"
                           " (SELECT count(*) FROM chunks)",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        ret_stats->collections = sqlite3_column_int64(st, 0);
        ret_stats->documents = sqlite3_column_int64(st, 1);
        ret_stats->chunks = sqlite3_column_int64(st, 2);
        e = ERR_OK;
    }
    sqlite3_finalize(st);
    reader_put(s, slot);
    return e;
}
