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

#endif
