/* llm.h - the LLM generator agent's pure parts: the grounded prompt with
 * numbered passages, and reading citations and abstention back out of the
 * model's answer.  The network call itself goes through backend.h. */
#ifndef SLORAG_LLM_H
#define SLORAG_LLM_H

#include "agent.h"

#define AGENT_LLM_ABSTAIN "I cannot answer from the documents."

/* Builds the system and user messages for io->question over io->hits
 * (passages numbered from 1).  Strings are arena-allocated. */
enum err agent_llm_prompt(const struct agent_io *io, struct arena *a, const char **ret_system, const char **ret_user);

/* Reads the model's answer into io: answer, abstained, citations ([n]
 * markers mapped to io->hits, unknown numbers ignored) and a confidence
 * signal: the share of the answer's content words found in the passages it
 * cites (0 when it cites none). */
enum err agent_llm_read_answer(const char *answer, struct agent_io *io, struct arena *a);

/* The LLM judge over n candidate answers to question (n >= 2): candidates
 * are numbered from 1 on lines of their own, and the judge is asked to
 * reply with the number of the best-supported one in square brackets.
 * Strings are arena-allocated; candidates longer than 2,000 bytes are cut. */
enum err agent_llm_judge_prompt(const char *question, const char *const *candidates, size_t n, struct arena *a,
                                const char **ret_system, const char **ret_user);
/* The judge's pick: the first "[k]" (or, failing that, the first bare
 * number) with 1 <= k <= n in its reply, as a 0-based index; -1 when the
 * reply names no candidate. */
int agent_llm_judge_pick(const char *reply, size_t n);

#endif
