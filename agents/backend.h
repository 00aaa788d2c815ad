/* backend.h - the pool of OpenAI-compatible LLM backends.
 *
 * All backend I/O runs on one thread driving libcurl's multi interface:
 * callers submit a chat completion with a completion callback and return at
 * once; no thread waits per call.  Each backend has a concurrency limit
 * (excess calls queue, FIFO, until their deadline), retries with jittered
 * backoff where that is safe, and a circuit breaker whose state the planner
 * can read. */
#ifndef SLORAG_BACKEND_H
#define SLORAG_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

struct agent_pool;

enum agent_breaker { AGENT_BREAKER_CLOSED, AGENT_BREAKER_OPEN, AGENT_BREAKER_HALF_OPEN };

struct agent_llm_result {
    enum err err;          /* ERR_OK, ERR_BACKEND, ERR_DEADLINE, ERR_UNAVAILABLE, ... */
    char errmsg[256];
    int http_status;       /* of the last attempt, 0 when none */
    const char *content;   /* the answer text (valid during the callback) */
    int prompt_tokens, completion_tokens;
    bool usage_estimated;  /* the backend sent no usage: words * 4/3 */
    double ms, ttft_ms;    /* total and time to first byte of the final attempt */
    double wait_ms;        /* queued for a slot (max_concurrency) before the first attempt */
    int attempts;
    const char *backend;   /* name (valid during the callback) */
    double cost;           /* from the backend's prices */
};

/* Runs on the pool's I/O thread: keep it short, never block. */
typedef void (*agent_llm_done)(void *ud, const struct agent_llm_result *res);

struct agent_llm_call {
    const char *tier;      /* small | medium | large */
    const char *system;    /* system message, may be NULL */
    const char *user;      /* user message */
    int max_tokens;
    bool stream;           /* use SSE streaming (first-token timeout applies to the first event) */
    int64_t deadline_us;   /* absolute, on clock_us() */
    int seed;              /* > 0: sent as the request's sampling seed (replicas differ by it) */
    uint64_t cancel_key;   /* non-zero: agent_pool_cancel(key) cancels this call */
    /* With stream: called on the I/O thread with each piece of content as
     * it arrives (keep it short).  Once a piece has been delivered the call
     * is never retried, so a consumer never sees text twice. */
    void (*on_delta)(void *ud, const char *text, size_t len);
};

struct agent_backend_health {
    char name[32];
    char tier[16];
    enum agent_breaker breaker;
    int in_flight, queued, max_concurrency;
    uint64_t calls, failures, retries;
    double latency_ewma_ms; /* of successful calls */
    bool retired;           /* removed by a reload; finishing its in-flight calls */
};

enum err agent_pool_new(const struct cfg *cfg, struct agent_pool **ret_pool);
/* Fails every queued call with ERR_UNAVAILABLE, waits for the thread. */
struct agent_pool *agent_pool_free(struct agent_pool *p);
/* Applies a new config: resizes and retunes backends by name, adds new
 * ones, retires removed ones (their in-flight calls finish). */
void agent_pool_reconfigure(struct agent_pool *p, const struct cfg *cfg);

/* Queues a chat completion.  On ERR_OK, done is called exactly once, later,
 * on the I/O thread.  Fails at once with ERR_UNAVAILABLE when no backend of
 * the tier is usable (none configured, or every breaker open). */
enum err agent_pool_chat(struct agent_pool *p, const struct agent_llm_call *call, agent_llm_done done, void *ud);

/* Cancels every call submitted with this cancel_key that has not finished:
 * queued, waiting to retry or in transfer (the connection to the backend
 * is closed).  Each one's done is called, on the I/O thread, with
 * ERR_CANCELLED; a call that already finished is not touched.  Returns at
 * once (the I/O thread does the work within one poll cycle).  A cancelled
 * call counts neither as a backend failure nor as a success. */
void agent_pool_cancel(struct agent_pool *p, uint64_t key);
bool agent_pool_has_tier(struct agent_pool *p, const char *tier);
size_t agent_pool_health(struct agent_pool *p, struct agent_backend_health *out, size_t max);
const char *agent_breaker_name(enum agent_breaker b);

#endif
