/* hangup.h - notices clients that hang up while their answer is generated.
 *
 * While a request waits for an LLM backend its connection is suspended in
 * libmicrohttpd, which then does not look at the socket and so cannot see
 * the client leave.  This watcher does: every HANGUP_PERIOD_MS it peeks at
 * each watched socket (recv MSG_PEEK, never consuming a byte), and a socket
 * at end of file or in error means the client is gone; the watcher then
 * calls the cancel function with the request's key, once.
 *
 * A client that half-closes its side (shutdown(SHUT_WR)) while waiting
 * looks the same as one that left, and is cancelled too: HTTP/1.1 clients
 * do not do that in practice (curl, browsers and the OpenAI SDKs keep the
 * connection open until the response). */
#ifndef SLORAG_HANGUP_H
#define SLORAG_HANGUP_H

#include <stdbool.h>
#include <stdint.h>

#define HANGUP_PERIOD_MS 100
#define HANGUP_MAX_WATCHED 8192

struct hangup;

typedef void (*hangup_cancel_fn)(void *ud, uint64_t key);

struct hangup *hangup_new(hangup_cancel_fn cancel, void *ud);
struct hangup *hangup_free(struct hangup *h);

/* Watches fd for the request with this key (non-zero).  False when the
 * table is full: that request is simply not watched.  The caller keeps fd
 * open until hangup_unwatch returns. */
bool hangup_watch(struct hangup *h, int fd, uint64_t key);
/* Stops watching; after it returns the cancel function is not called for
 * key any more.  Returns true when the key had been cancelled. */
bool hangup_unwatch(struct hangup *h, uint64_t key);
/* Requests cancelled because their client left, since start. */
uint64_t hangup_cancelled(struct hangup *h);

#endif
