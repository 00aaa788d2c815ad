/* ingest.h - loading files and directories into a collection. */
#ifndef SLORAG_INGEST_H
#define SLORAG_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include "engine.h"

struct ret_ingest_stats {
    size_t total_bytes; /* file bytes to read, from a first pass over the paths */
    size_t read_bytes;  /* file bytes processed so far */
    size_t documents; /* stored */
    size_t skipped;   /* unsupported, empty, too large, binary or not UTF-8 */
    size_t bytes;     /* text bytes stored */
    size_t chunks;
};

struct ret_ingest_opts {
    long max_document_bytes;
    /* Called after each file; `why` is NULL when it was stored. */
    void (*on_file)(void *ud, const char *path, const char *why, const struct ret_ingest_stats *st);
    void *ud;
};

/* Walks each path (files, or directories recursively, in name order) and
 * stores every .md/.markdown/.txt file as one document whose id is its path,
 * every .html/.htm file as its text (tags stripped; id = path; title from
 * <title>), and every line of a .jsonl file as one document
 * ({"id", "text", "title"?, "metadata"?}; id defaults to PATH:LINE).
 * A file that cannot be used is skipped and reported through on_file; only
 * a storage failure stops the walk. */
enum err ret_ingest_paths(struct ret_engine *eng, int64_t collection_id, char *const *paths, size_t npaths,
                          const struct ret_ingest_opts *opts, struct ret_ingest_stats *ret_stats);

#endif
