/* pool.h - a fixed pool of worker threads with a bounded job queue.
 *
 * CPU stages of a query run here while libmicrohttpd keeps the connection
 * suspended.  The queue has a hard cap: a full queue is an immediate
 * ERR_OVERLOADED (HTTP 503), never unbounded growth. */
#ifndef SLORAG_POOL_H
#define SLORAG_POOL_H

#include <stddef.h>
#include "err.h"

struct exec_pool;
typedef void (*exec_job_fn)(void *arg);

enum err exec_pool_new(int threads, size_t queue_max, struct exec_pool **ret_pool);
/* Runs every queued job, then joins the threads.  NULL-safe. */
struct exec_pool *exec_pool_free(struct exec_pool *p);
enum err exec_pool_submit(struct exec_pool *p, exec_job_fn fn, void *arg);
size_t exec_pool_queued(struct exec_pool *p);

#endif
