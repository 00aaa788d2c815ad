/* executor.h - runs one query through the pipeline:
 * classify -> plan -> retrieve -> generate -> decision record. */
#ifndef SLORAG_EXECUTOR_H
#define SLORAG_EXECUTOR_H

#include <jansson.h>
#include <stdint.h>

#include "arena.h"
#include "config.h"
#include "err.h"
#include "engine.h"

struct exec_query_req {
    const char *request_id;
    const char *tenant;
    const char *question;
    const char *collection;
    int k;           /* 0 = planner decides */
    int deadline_ms; /* 0 = profile default */
    int mode;        /* enum ret_mode, -1 = planner decides */
    int tier;        /* enum slo_tier, -1 = planner decides */
    int64_t arrived_us; /* clock_us() when the request arrived */
};

struct agent_pool;

/* What a query runs against; borrowed for the query's life. */
struct exec_env {
    struct ret_engine *engine;
    struct agent_pool *pool; /* LLM backends; may have none */
};

/* Called exactly once per query: with a new JSON body (ownership passes to
 * the callee) or an error and a message a client can act on.  It may run
 * before exec_query_start returns (extractive tier, early errors) or later
 * on the backend pool's I/O thread (LLM tiers). */
typedef void (*exec_done_fn)(void *ud, enum err e, json_t *body, const char *errmsg);

/* req, cfg and a must stay valid until done has been called. */
void exec_query_start(const struct exec_env *env, const struct cfg *cfg, const struct exec_query_req *req,
                      struct arena *a, exec_done_fn done, void *ud);
/* Retrieval only: ranked chunks with per-retriever scores and the signals. */
enum err exec_retrieve(struct ret_engine *eng, const struct cfg *cfg, const struct exec_query_req *req,
                       struct arena *a, json_t **ret_body, char *errmsg, size_t errlen);

#endif
