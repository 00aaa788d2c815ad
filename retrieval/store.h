/* store.h - the document store: collections, documents and chunks in SQLite,
 * with an FTS5 (BM25) index over chunk text.
 *
 * SQLite in WAL mode with synchronous=FULL is the source of truth: a call
 * that returns ERR_OK has committed.  One writer connection (serialised by a
 * mutex) and a small pool of reader connections let searches run while an
 * ingestion commits. */
#ifndef SLORAG_STORE_H
#define SLORAG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "err.h"

struct ret_store;

struct ret_doc_in {
    const char *ext_id;   /* caller's document id, unique in a collection */
    const char *title;
    const char *source;   /* path or URL, may be NULL */
    const char *metadata; /* JSON text, may be NULL */
    const char *text;
    size_t text_len;
};

struct ret_chunk_opts {
    int max_tokens;
    int overlap_tokens;
};

struct ret_put_result {
    bool replaced;  /* a document with that id existed and was replaced */
    size_t nchunks;
};

struct ret_hit {
    int64_t chunk_id;
    const char *document_id; /* caller's id; arena-owned */
    const char *title;       /* arena-owned */
    const char *text;        /* chunk text; arena-owned */
    int64_t start, end;      /* byte offsets of the chunk in its document */
    double score;            /* higher is better */
};

struct ret_store_stats {
    int64_t collections, documents, chunks;
};

enum err ret_store_open(const char *path, int readers, struct ret_store **ret_store);
struct ret_store *ret_store_free(struct ret_store *s);

enum err ret_collection_ensure(struct ret_store *s, const char *tenant, const char *name, int64_t *ret_id);
/* ERR_NOT_FOUND when the tenant has no such collection. */
enum err ret_collection_find(struct ret_store *s, const char *tenant, const char *name, int64_t *ret_id);
/* True for 1..64 bytes of [A-Za-z0-9._-], not starting with '.'. */
bool ret_name_valid(const char *name);

/* Stores (or atomically replaces) one document and its chunks. */
enum err ret_document_put(struct ret_store *s, int64_t collection_id, const struct ret_doc_in *doc,
                          const struct ret_chunk_opts *opts, struct ret_put_result *ret_result);

/* BM25 search over one collection; results are allocated in a. */
enum err ret_search_lexical(struct ret_store *s, int64_t collection_id, const char *query, int k,
                            struct arena *a, struct ret_hit **ret_hits, size_t *ret_n);

enum err ret_store_stats(struct ret_store *s, struct ret_store_stats *ret_stats);

#endif
