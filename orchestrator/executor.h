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
#include "profile.h"
#include "intent.h"

#include <pthread.h>
#include <stdatomic.h>

struct exec_query_req {
    const char *request_id;
    const char *tenant;
    const char *question;
    const char *collection;
    int k;           /* 0 = planner decides */
    int deadline_ms; /* 0 = profile default */
    int mode;        /* enum ret_mode, -1 = planner decides */
    int tier;        /* enum slo_tier, -1 = planner decides */
    int pin;         /* a configuration's space index + 1 (the request's "config"), 0 = planner decides */
    int64_t arrived_us; /* clock_us() when the request arrived */
    uint64_t cancel_key; /* non-zero: agent_pool_cancel(pool, key) cancels its LLM calls,
                          * and the query then ends with ERR_CANCELLED */
    /* Streaming (NULL: not streamed).  on_plan is called once, when the plan
     * is made and the collection found, before retrieval, with
     * {request_id, intent, plan} (borrowed); on_delta with each piece of the
     * answer as a single LLM call generates it, on the backend I/O thread.
     * An answer that was streamed is not escalated afterwards. */
    void (*on_plan)(void *ud, json_t *plan_event);
    void (*on_delta)(void *ud, const char *text, size_t len);
    void *stream_ud;
    const struct slo_intent_model *intent_model; /* the tenant's classifier, NULL = built-in;
                                                    read only before exec_query_start returns */

    /* SLO planning (used when exec_env.slo is set) */
    const struct slo_profile *profile; /* the tenant's; NULL = defaults */
    struct slo_tightening tighten;     /* the request's own "slo"; SLO_TIGHTENING_NONE */
    double spent_day, spent_month;     /* the tenant's spend so far */
    int *ret_retry_after;              /* set (seconds) when the budget refuses */
    int *ret_config;                   /* set to the plan's space index, or -1 */
};

/* The SLO engine's shared, learned state: one per process. */
struct exec_slo {
    pthread_rwlock_t lock;    /* guards model */
    struct slo_model *model;  /* owned */
    atomic_ullong counter;    /* requests planned, for exploration draws */
    uint64_t seed;
    double explore_rate;
};

enum err exec_slo_new(double explore_rate, uint64_t seed, struct exec_slo **ret);
struct exec_slo *exec_slo_free(struct exec_slo *s);
/* Model state as JSON for persistence, and back. */
json_t *exec_slo_save(struct exec_slo *s);
enum err exec_slo_load(struct exec_slo *s, const json_t *j, char *errbuf, size_t errlen);
/* Replaces the built-in priors from a calibration document (before
 * exec_slo_load: learned state then builds on the new priors). */
enum err exec_slo_calibrate(struct exec_slo *s, const json_t *j, char *errbuf, size_t errlen);
/* Feedback for an answered request: its plan (space index), intent and a rating 0..1. */
void exec_slo_feedback(struct exec_slo *s, int config, int intent, double rating);

struct agent_pool;

/* What a query runs against; borrowed for the query's life. */
struct exec_env {
    struct ret_engine *engine;
    struct agent_pool *pool; /* LLM backends; may have none */
    struct exec_slo *slo;    /* the SLO engine; NULL = the fixed planner */
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
