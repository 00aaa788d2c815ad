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
    int64_t arrived_us; /* clock_us() when the request arrived */
};

/* On success *ret_body is a new JSON object (caller decrefs).  On failure
 * errmsg says what went wrong in words a client can act on. */
enum err exec_query(struct ret_engine *eng, const struct cfg *cfg, const struct exec_query_req *req,
                    struct arena *a, json_t **ret_body, char *errmsg, size_t errlen);
/* Retrieval only: ranked chunks with per-retriever scores and the signals. */
enum err exec_retrieve(struct ret_engine *eng, const struct cfg *cfg, const struct exec_query_req *req,
                       struct arena *a, json_t **ret_body, char *errmsg, size_t errlen);

#endif
