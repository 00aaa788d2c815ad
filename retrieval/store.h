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
#include "chunk.h"
#include "err.h"
#include "lexindex.h"
#include "textcache.h"

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

/* What a write changed, so the caller can update derived indexes.  The
 * arrays are malloc'd; release them with ret_change_done(). */
struct ret_change {
    bool replaced;         /* a document with that id existed before */
    size_t nchunks;        /* chunks now stored for the document */
    int64_t generation;    /* the collection's generation after the commit */
    int64_t *removed_ids;  /* chunk ids that no longer exist */
    size_t nremoved;
    int64_t *added_ids;    /* chunk ids inserted ... */
    float *added_vecs;     /* ... and their embeddings (nadded * dim), or NULL */
    size_t nadded;
};

void ret_change_done(struct ret_change *c);

struct ret_embedder;

struct ret_doc_out {
    const char *document_id, *title, *source, *metadata, *text; /* arena-owned */
    int64_t bytes, chunks, created_at;
    const char *content_hash;
};

struct ret_collection_info {
    const char *name; /* arena-owned */
    int64_t id, documents, chunks, bytes, created_at;
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

/* The cache of returned chunks' texts (textcache.h) that
 * ret_store_fill_hits reads before SQLite: RET_TEXT_CACHE_DEFAULT bytes
 * from ret_store_open; another size (0: none) replaces it, before the
 * store is used by more than one thread. */
#define RET_TEXT_CACHE_DEFAULT ((size_t)64 << 20)
enum err ret_store_set_text_cache(struct ret_store *s, size_t cap_bytes);
void ret_store_text_cache_stats(struct ret_store *s, struct ret_textcache_stats *ret);

enum err ret_collection_ensure(struct ret_store *s, const char *tenant, const char *name, int64_t *ret_id);
/* ERR_NOT_FOUND when the tenant has no such collection. */
enum err ret_collection_find(struct ret_store *s, const char *tenant, const char *name, int64_t *ret_id);
/* True for 1..64 bytes of [A-Za-z0-9._-], not starting with '.'. */
bool ret_name_valid(const char *name);

/* A document chunked and embedded, ready to commit: the expensive part of
 * a write, done without any lock. */
struct ret_prepared {
    struct ret_chunk_span *spans; /* owned */
    size_t n;
    float *vecs;                  /* owned; n * dim, or NULL */
    int dim;
};

enum err ret_document_prepare(const struct ret_doc_in *doc, const struct ret_chunk_opts *opts,
                              struct ret_embedder *emb, struct ret_prepared *ret_prep);
void ret_prepared_done(struct ret_prepared *p);
/* Commits a prepared document (replacing one with the same id); the
 * embeddings move into the change. */
enum err ret_document_commit(struct ret_store *s, int64_t collection_id, const struct ret_doc_in *doc,
                             struct ret_prepared *prep, struct ret_change *ret_change);

/* Stores (or atomically replaces) one document and its chunks, with their
 * embeddings when emb is not NULL (computed before the write lock).  The
 * collection's generation goes up by one in the same transaction. */
enum err ret_document_put(struct ret_store *s, int64_t collection_id, const struct ret_doc_in *doc,
                          const struct ret_chunk_opts *opts, struct ret_embedder *emb, struct ret_change *ret_change);
/* ERR_NOT_FOUND when there is no such document. */
enum err ret_document_delete(struct ret_store *s, int64_t collection_id, const char *ext_id,
                             struct ret_change *ret_change);
enum err ret_document_get(struct ret_store *s, int64_t collection_id, const char *ext_id, struct arena *a,
                          struct ret_doc_out *ret_doc);
/* Deletes a collection with all its documents. */
enum err ret_collection_delete(struct ret_store *s, const char *tenant, const char *name, int64_t *ret_id);
enum err ret_collection_list(struct ret_store *s, const char *tenant, struct arena *a,
                             struct ret_collection_info **ret_list, size_t *ret_n);
/* Every collection id of every tenant, for start-up. */
enum err ret_collection_ids(struct ret_store *s, int64_t **ret_ids, size_t *ret_n);
enum err ret_collection_chunk_count(struct ret_store *s, int64_t collection_id, int64_t *ret_count);
/* The dimension of one stored embedding of the collection whose dimension
 * is not dim, or 0 when every stored embedding has dim. */
enum err ret_collection_other_dim(struct ret_store *s, int64_t collection_id, int dim, int *ret_other);
enum err ret_collection_generation(struct ret_store *s, int64_t collection_id, int64_t *ret_gen);

/* Calls fn for batches of (chunk id, embedding) of one collection; used to
 * rebuild a vector index without re-embedding.  Chunks whose embedding is
 * missing or of another dimension are counted in *ret_skipped. */
enum err ret_store_embeddings(struct ret_store *s, int64_t collection_id, int dim,
                              enum err (*fn)(void *ud, const int64_t *ids, const float *vecs, size_t n), void *ud,
                              size_t *ret_skipped);
/* Fills hits (document id, title, text, offsets) for the given chunk ids of
 * one collection; ids not found get chunk_id -1. */
enum err ret_store_fill_hits(struct ret_store *s, int64_t collection_id, struct ret_hit *hits, size_t n,
                             struct arena *a);

/* BM25 search over one collection; results are allocated in a. */
enum err ret_search_lexical(struct ret_store *s, int64_t collection_id, const char *query, int k,
                            struct arena *a, struct ret_hit **ret_hits, size_t *ret_n);

enum err ret_store_stats(struct ret_store *s, struct ret_store_stats *ret_stats);

/* ---- for the in-memory lexical index (lexindex.h) ---- */

/* An instance of the tokenizer chunks_fts uses (porter over unicode61,
 * remove_diacritics 2), so the in-memory index sees FTS5's very tokens.
 * One per thread at a time; valid while the store is open. */
struct ret_tokenizer;
enum err ret_tokenizer_new(struct ret_store *s, struct ret_tokenizer **ret);
void ret_tokenizer_free(struct ret_tokenizer *t);
/* text's tokens into out (cleared first); query: as FTS5 tokenises a
 * query phrase. */
enum err ret_tokenize(struct ret_tokenizer *t, const char *text, size_t len, bool query, struct ret_lex_tokens *out);
/* The query's content words as lexical search uses them (lower-cased,
 * stop words dropped, at most max): each becomes one quoted FTS5 phrase. */
size_t ret_query_words(const char *q, char (*out)[64], size_t max);
#define RET_QUERY_MAX_WORDS 32
/* Calls cb for up to limit chunks of the collection with id > after, in
 * id order; *ret_last = the last id seen (after when none). */
enum err ret_store_chunk_texts(struct ret_store *s, int64_t collection_id, int64_t after, int limit,
                               enum err (*cb)(void *ud, int64_t id, const char *text, size_t len), void *ud,
                               int64_t *ret_last, size_t *ret_n);

#endif
