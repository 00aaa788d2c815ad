/* http.h - the HTTP front end on libmicrohttpd. */
#ifndef SLORAG_HTTP_H
#define SLORAG_HTTP_H

#include <stdbool.h>
#include "config.h"
#include "err.h"
#include "pool.h"

struct agent_pool;
struct ledger;
struct exec_slo;
struct intents_cache;
#include "engine.h"
#include "tenants.h"

struct http_server;

struct http_deps {
    struct cfg_slot *cfg;     /* borrowed: the current config snapshot */
    struct ret_engine *engine; /* borrowed */
    struct exec_pool *pool;   /* borrowed */
    struct agent_pool *llm;   /* borrowed; LLM backends */
    struct cfg_tenants *tenants; /* borrowed; tenants and API keys */
    struct ledger *ledger;    /* borrowed; usage ledger */
    struct exec_slo *slo;     /* borrowed; the SLO engine (NULL: fixed planner) */
    struct intents_cache *intents; /* borrowed; per-tenant intent classifiers (NULL: built-in only) */
};

/* Listens on cfg's address; errmsg says why when it fails. */
enum err http_start(const struct cfg *cfg, const struct http_deps *deps, char *errmsg, size_t errlen,
                    struct http_server **ret_srv);
int http_port(const struct http_server *srv);
/* Stops accepting connections; requests arriving on open connections get 503. */
void http_quiesce(struct http_server *srv);
/* Waits until no request is in flight; false on timeout. */
bool http_wait_idle(struct http_server *srv, int timeout_ms);
long http_in_flight(const struct http_server *srv);
struct http_server *http_stop(struct http_server *srv);

#endif
