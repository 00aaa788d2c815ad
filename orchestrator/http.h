/* http.h - the HTTP front end on libmicrohttpd. */
#ifndef SLORAG_HTTP_H
#define SLORAG_HTTP_H

#include <stdbool.h>
#include <sys/socket.h>
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
/* Of those in flight, requests still receiving their body: the client,
 * not the server, owes the next step. */
long http_reading(const struct http_server *srv);
/* Hands an already connected stream socket to the server as if it had
 * been accepted on the listener; addr is the peer the requests come from.
 * The server owns fd from the call on, also when it fails.  For the HTTP
 * fuzz target (tests/fuzz/fuzz-http.c), which feeds raw bytes through a
 * socketpair. */
enum err http_add_connection(struct http_server *srv, int fd, const struct sockaddr *addr, socklen_t addrlen);
struct http_server *http_stop(struct http_server *srv);

#endif
