/* eval.h - `slorag eval`: answer quality on a SQuAD-format dataset. */
#ifndef SLORAG_EVAL_H
#define SLORAG_EVAL_H

#include <stdbool.h>
#include "config.h"

struct eval_opts {
    const char *dataset;
    const char *tier;     /* NULL = the config's default tier */
    const char *mode;     /* retriever, NULL = default */
    const char *out_json; /* also write the report as JSON here, or NULL */
    int limit;            /* at most this many questions, 0 = all */
};

/* Runs in-process on a scratch store (the user's data is not touched),
 * with the config's backends; prints a Markdown report.  Returns an exit
 * status. */
int eval_run(const struct cfg *c, const struct eval_opts *o);

/* SQuAD answer normalisation and scores, exposed for tests. */
void eval_normalize(const char *s, char *out, size_t n);
double eval_f1(const char *prediction, const char *gold);
bool eval_exact(const char *prediction, const char *gold);

#endif
