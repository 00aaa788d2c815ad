/* engine.h - a tenant's collections as one searchable whole: the SQLite
 * store (truth), the embedder, and one FAISS index per collection (derived).
 *
 * Writes go through the engine so the store and the vector index change
 * together: the store commits, then the index applies the same change under
 * its write lock, serialised by one engine mutex so two writers can never
 * apply out of commit order. */
#ifndef SLORAG_ENGINE_H
#define SLORAG_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "embed.h"
#include "err.h"
#include "store.h"

struct ret_engine;

enum ret_mode { RET_MODE_LEXICAL, RET_MODE_DENSE, RET_MODE_HYBRID };

struct ret_engine_opts {
    const char *index_dir;      /* where c<id>.g<gen>.faiss files live */
    const char *index_factory;  /* FAISS factory string, e.g. "Flat" */
    int dim;                    /* built-in embedder dimension */
    /* NULL: the built-in embedder; else an HTTP one (dim 0 there: learned
     * from one probe request while opening) */
    const struct ret_embed_http_opts *http;
    int save_interval_ms;       /* how often dirty indexes are written */
    /* Approximate search for large collections: once a collection holds
     * ann_threshold vectors (0: never), a background build replaces its
     * exact index with one made by ann_factory ("{nlist}" in it stands for
     * 4·sqrt(n), at most n/39), trained on the collection's own vectors; writes go on
     * meanwhile and are replayed into the new index before the swap.  It
     * is rebuilt, retrained, each time the collection has grown 4-fold.
     * ann_nprobe: IVF lists searched per query (0: 40% of them). */
    int64_t ann_threshold;
    const char *ann_factory;    /* NULL: "IVF{nlist},Flat" */
    int ann_nprobe;
    /* Called from the background thread after each approximate build
     * (e = ERR_OK or why it failed; the old index then stays).  May be
     * NULL.  The engine itself never logs. */
    void (*ann_done)(void *ud, int64_t collection_id, enum err e, const char *detail, int64_t vectors, int nlist,
                     int nprobe, double seconds);
    void *ann_ud;
    /* Keep an in-memory BM25 index (lexindex.h) of each collection beside
     * FTS5 and search it instead: built from SQLite by a background thread
     * at open (FTS5 answers meanwhile), kept in step with every write. */
    bool lexical_index;
    /* Hybrid searches of collections with at least this many vectors run
     * the lexical search on a thread of its own while the dense one runs
     * (0: 20000; negative: never). */
    int64_t hybrid_parallel_min;
    struct ret_chunk_opts chunk;
};

/* Per-hit detail from each retriever; rank 0 = not returned by it. */
struct ret_scored {
    struct ret_hit hit;
    double lexical_score, dense_score, fused_score;
    int lexical_rank, dense_rank;
};

/* The signals the planner and stage gates read. */
struct ret_signals {
    double top_score;    /* of the final list */
    double score_margin; /* top - second */
    double overlap;      /* |dense top-k ∩ lexical top-k| / k */
    size_t candidates;   /* distinct chunks seen by any retriever */
    size_t lexical_hits, dense_hits;
};

struct ret_startup_report {
    size_t collections, loaded, rebuilt;
    int64_t vectors;
};

/* What kind of vector index a collection has now (for /v1/collections and
 * tests). */
struct ret_index_info {
    bool approximate;      /* built by ann_factory */
    bool building;         /* an approximate build is under way */
    int64_t vectors;
    int nlist, nprobe;     /* 0 unless approximate IVF */
    int64_t builds;        /* approximate builds completed since start */
    bool lexical_ready;    /* the in-memory lexical index answers searches */
    int64_t lexical_chunks;
    size_t lexical_bytes;
    size_t quantized_bytes; /* the exact index's 8-bit copy (vindex.h); 0: none built */
};
enum err ret_engine_index_info(struct ret_engine *eng, int64_t collection_id, struct ret_index_info *ret_info);
/* The number of IVF lists an approximate build over n vectors uses for
 * "{nlist}": 4*sqrt(n), at most n/39, at least 1. */
int ret_ann_nlist(size_t n);

/* Opens the engine over an open store: loads each collection's index file
 * when its generation matches SQLite's, else rebuilds it from the stored
 * embeddings.  A collection whose stored embeddings have another dimension
 * than the embedder's is opened in conflict: its dense searches and its
 * writes fail with ERR_CONFLICT (lexical search and deletes still work)
 * until it holds no embedding of the old dimension.  Takes ownership of
 * nothing; on failure ret_last_error() may say more. */
enum err ret_engine_open(struct ret_store *store, const struct ret_engine_opts *opts,
                         struct ret_startup_report *ret_report, struct ret_engine **ret_eng);
/* Saves dirty indexes, stops the saver thread.  NULL-safe. */
struct ret_engine *ret_engine_free(struct ret_engine *eng);

struct ret_store *ret_engine_store(struct ret_engine *eng);
int ret_engine_dim(const struct ret_engine *eng);
/* "builtin" or "http <model>". */
const char *ret_engine_embedder_name(const struct ret_engine *eng);
/* Collections opened in conflict (see ret_engine_open). */
size_t ret_engine_conflicts(struct ret_engine *eng);
/* Collections with an in-memory index: every live one that has been
 * opened or written to; a dropped collection's goes at once. */
size_t ret_engine_collections(struct ret_engine *eng);

enum err ret_engine_put(struct ret_engine *eng, int64_t collection_id, const struct ret_doc_in *doc,
                        struct ret_change *ret_change);
enum err ret_engine_delete(struct ret_engine *eng, int64_t collection_id, const char *ext_id);
enum err ret_engine_drop_collection(struct ret_engine *eng, const char *tenant, const char *name);

/* Searches one collection in the given mode; results in a, best first. */
enum err ret_engine_search(struct ret_engine *eng, int64_t collection_id, const char *query, int k, enum ret_mode mode,
                           struct arena *a, struct ret_scored **ret_res, size_t *ret_n, struct ret_signals *ret_sig);

/* Writes every dirty index now (also done periodically and on free). */
enum err ret_engine_flush(struct ret_engine *eng);
int64_t ret_engine_vectors(struct ret_engine *eng);

const char *ret_mode_name(enum ret_mode m);
int ret_mode_parse(const char *name); /* -1 when unknown */

#endif
