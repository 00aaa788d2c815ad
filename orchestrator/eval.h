/* eval.h - `slorag eval`: answer quality on a SQuAD-format dataset. */
#ifndef SLORAG_EVAL_H
#define SLORAG_EVAL_H

#include <stdbool.h>
#include "config.h"

struct eval_opts {
    const char *dataset;
    const char *tier;     /* NULL = the config's default tier */
    const char *mode;     /* retriever, NULL = default */
    int pin;              /* a configuration's space index + 1 to use exactly (in-process), 0 = none */
    const char *out_json; /* also write the report as JSON here, or NULL */
    int limit;            /* at most this many questions, 0 = all */
    bool quiet;           /* no Markdown report on stdout */
    const char *url;      /* a running slorag's base URL, or NULL: in-process */
    const char *api_key;  /* the tenant key for url (NULL: open mode) */
};

/* Runs in-process on a scratch store (the user's data is not touched),
 * with the config's backends; prints a Markdown report.  Returns an exit
 * status. */
int eval_run(const struct cfg *c, const struct eval_opts *o);

/* `slorag eval --calibrate FILE`: runs the dataset once per generator tier
 * that has a backend (and the extractive tier) and per retriever, each a
 * single call at the config's default k and token limit, and writes a
 * calibration document (slo_model_calibrate's format) with the measured
 * quality (F1, and abstention on unanswerable questions), cost and p95
 * latency per intent, and the generator's own signal's mean; for each LLM
 * tier also x3 vote and x2 judge, pinned whole.  Configurations not
 * measured directly get the built-in prior shifted by what the nearest
 * measurement changed (calibrate.c).  The file is written whole or not at
 * all.  Returns an exit status. */
int eval_calibrate(const struct cfg *c, const struct eval_opts *o, const char *out_path);

/* SQuAD answer normalisation and scores, exposed for tests. */
void eval_normalize(const char *s, char *out, size_t n);
double eval_f1(const char *prediction, const char *gold);
bool eval_exact(const char *prediction, const char *gold);

#endif
