/* lexindex.h - an in-memory BM25 index of one collection's chunks.
 *
 * SQLite FTS5 stays the lexical index of record; this one is derived from
 * it, for speed.  FTS5 scores every chunk that holds any query term, so a
 * query with a common word costs time linear in that word's postings (44 ms
 * at 100k chunks, docs/benchmarks.md).  This index scores with the formula
 * FTS5's bm25() uses (k1 1.2, b 0.75, idf log((N - n + 0.5) / (n + 0.5)),
 * floored at 1e-6), over the tokens FTS5's own tokenizer produces, and finds
 * the top k with MaxScore dynamic pruning: once k chunks are held, a term
 * whose best possible contribution cannot lift a chunk above the k-th is no
 * longer walked, only probed for the chunks the other terms bring up.
 *
 * Statistics (N, average length, document frequencies) are the
 * collection's own, where FTS5's bm25() uses the whole table's: with one
 * collection in the store the scores are FTS5's to rounding.
 *
 * Not thread-safe: the engine guards each index with a read-write lock
 * (searches share it, changes take it alone). */
#ifndef SLORAG_LEXINDEX_H
#define SLORAG_LEXINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct ret_lexindex;

/* One chunk's tokens, in order, each NUL-terminated, packed in buf. */
struct ret_lex_tokens {
    char *buf;
    size_t len, cap;
    uint32_t ntok;
};

/* Appends one token (n bytes) to t. */
enum err ret_lex_tokens_add(struct ret_lex_tokens *t, const char *tok, size_t n);
void ret_lex_tokens_clear(struct ret_lex_tokens *t);
void ret_lex_tokens_done(struct ret_lex_tokens *t);

enum err ret_lexindex_new(struct ret_lexindex **ret);
struct ret_lexindex *ret_lexindex_free(struct ret_lexindex *li);

/* Adds a chunk; a chunk id already present is left as it is. */
enum err ret_lexindex_add(struct ret_lexindex *li, int64_t chunk_id, const struct ret_lex_tokens *toks);
/* Removes chunks; ids not present are ignored.  The space is reclaimed
 * by a compaction once a quarter of the index is removed chunks. */
enum err ret_lexindex_remove(struct ret_lexindex *li, const int64_t *ids, size_t n);
int64_t ret_lexindex_chunks(const struct ret_lexindex *li);
/* Bytes held (postings, dictionary, per-chunk arrays). */
size_t ret_lexindex_bytes(const struct ret_lexindex *li);

/* The top k chunks (at most) for the query terms (each one FTS5 token;
 * a term given twice counts twice, as FTS5 counts a repeated phrase),
 * best first.  Equal scores come in ascending chunk id order, except that
 * a chunk only tying the k-th may be left out.  ids and scores hold k. */
enum err ret_lexindex_search(const struct ret_lexindex *li, const char *const *terms, size_t nterms, int k,
                             int64_t *ids, double *scores, size_t *ret_n);

#endif
