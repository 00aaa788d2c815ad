/* squad.h - a SQuAD-format file loaded into a scratch store, shared by
 * `slorag eval` and `slorag eval-retrieval`. */
#ifndef SLORAG_SQUAD_H
#define SLORAG_SQUAD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "engine.h"

struct squad_scratch {
    char dir[32];             /* temporary data directory, removed on close */
    json_t *root;             /* the parsed file (owned) */
    json_t *articles;         /* root's "data" array (borrowed) */
    struct ret_store *store;  /* owned */
    struct ret_engine *engine;/* owned */
    int64_t collection_id;
    size_t paragraphs;        /* stored, each as document "a<article>.p<paragraph>" */
    double ingest_ms;
};

/* Loads the file (tool names the command in messages) and stores every
 * paragraph in a fresh scratch store, with progress on a terminal.
 * Returns an exit status: 0, 2 for a file that is not SQuAD, 1 otherwise. */
int squad_scratch_open(const struct cfg *c, const char *tool, const char *dataset, struct squad_scratch *ret);
void squad_scratch_close(struct squad_scratch *s);
/* The document id of a paragraph: "a<article>.p<paragraph>". */
void squad_paragraph_id(size_t article, size_t paragraph, char *out, size_t n);

#endif
