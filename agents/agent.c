/* agent.c - the registry of agent kinds. */
#include "agent.h"

#include <string.h>

static const struct agent_ops *const registry[] = {
    &agent_lexical,
    &agent_dense,
    &agent_hybrid,
    &agent_extractive,
    &agent_rerank,
};

const struct agent_ops *agent_find(const char *name) {
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}
