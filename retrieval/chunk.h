/* chunk.h - splitting a document into overlapping, citable chunks. */
#ifndef SLORAG_CHUNK_H
#define SLORAG_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include "err.h"

struct ret_chunk_span {
    size_t start;  /* byte offsets into the document: [start, end) */
    size_t end;
    size_t tokens; /* whitespace word count */
};

/* Splits text into chunks of at most max_tokens words (a single sentence
 * longer than that is cut on word boundaries), never crossing a paragraph
 * boundary unless the chunk so far is under half full, and repeating about
 * overlap_tokens words of trailing sentences at the start of the next chunk
 * inside one paragraph.  *ret_spans is malloc'd; the caller frees it. */
enum err ret_chunk_text(const char *text, size_t len, int max_tokens, int overlap_tokens,
                        struct ret_chunk_span **ret_spans, size_t *ret_n);

/* A unit is a sentence, heading, list item or table row. */
struct ret_unit {
    size_t start, end; /* byte offsets, trimmed of white space */
    size_t tokens;
    bool para_start;   /* a blank line (or the start of text) precedes it */
};

struct ret_unit_iter {
    const char *text;
    size_t len, pos;
    bool para;
};

void ret_units_init(struct ret_unit_iter *it, const char *text, size_t len);
bool ret_units_next(struct ret_unit_iter *it, struct ret_unit *ret_unit);

#endif
