/* timer.h - one thread that resumes suspended connections when they are due.
 *
 * Every delay in the simulator (time to first token, the gap between
 * streamed tokens, a hung request's next liveness probe) is a suspended
 * libmicrohttpd connection with an entry in this timer's min-heap.  One
 * thread sleeps on a condition variable until the earliest entry is due,
 * then resumes that connection; libmicrohttpd calls the handler or content
 * reader again on its own thread.  No thread is held per request. */
#ifndef SLORAG_LLMSIM_TIMER_H
#define SLORAG_LLMSIM_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct MHD_Connection;
struct sim_timer;

/* capacity: the most connections suspended at once (the connection limit). */
enum err sim_timer_new(size_t capacity, struct sim_timer **ret_timer);

/* Suspends conn and resumes it once clock_us() >= due_us.  Call it only
 * from a libmicrohttpd callback for conn.  Returns false, leaving conn
 * running, once the timer is stopping or full; the caller then ends the
 * request instead of waiting. */
bool sim_timer_suspend(struct sim_timer *t, struct MHD_Connection *conn, int64_t due_us);

/* Resumes every waiting connection at once, refuses new ones from then on,
 * and joins the thread: afterwards no connection is suspended by the timer,
 * so the daemon may be stopped. */
void sim_timer_stop(struct sim_timer *t);

/* Entries waiting right now. */
size_t sim_timer_pending(struct sim_timer *t);

/* Stops (if still running) and frees; NULL-safe, returns NULL. */
struct sim_timer *sim_timer_free(struct sim_timer *t);

#endif
