/* eval_retrieval.h - retrieval quality on a SQuAD-format dataset. */
#ifndef SLORAG_EVAL_RETRIEVAL_H
#define SLORAG_EVAL_RETRIEVAL_H

#include <stdbool.h>
#include "config.h"

/* Prints recall@1/5/10 and MRR per retrieval mode; returns an exit status. */
int eval_retrieval_run(const struct cfg *c, const char *dataset, bool json_out);

#endif
