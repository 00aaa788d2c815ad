/* hangup.c - see hangup.h. */
#include "hangup.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

struct watched {
    int fd;
    uint64_t key; /* 0 = free slot */
    bool cancelled;
};

struct hangup {
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* wakes the thread to stop */
    bool stopping;
    pthread_t thread;
    hangup_cancel_fn cancel;
    void *ud;
    struct watched *w;   /* HANGUP_MAX_WATCHED slots */
    int used;            /* slots [0, used) may hold entries */
    int live;            /* entries with a key */
    uint64_t cancelled;
};

/* True when the peer has closed or reset the connection. */
static bool peer_gone(int fd) {
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
        return true; /* orderly close */
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return true; /* reset, or the socket is broken */
    return false;    /* nothing to read (waiting), or pipelined bytes */
}

static void *hangup_main(void *arg) {
    struct hangup *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += HANGUP_PERIOD_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->cv, &h->mu, &until);
        if (h->stopping)
            break;
        /* The cancel function must not block (agent_pool_cancel only
         * queues the key); holding mu while calling it is what makes
         * "no cancel after unwatch" true. */
        for (int i = 0; i < h->used; i++) {
            struct watched *w = &h->w[i];
            if (w->key && !w->cancelled && peer_gone(w->fd)) {
                w->cancelled = true;
                h->cancelled++;
                h->cancel(h->ud, w->key);
            }
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

struct hangup *hangup_new(hangup_cancel_fn cancel, void *ud) {
    struct hangup *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->w = calloc(HANGUP_MAX_WATCHED, sizeof(*h->w));
    h->cancel = cancel;
    h->ud = ud;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (!h->w || pthread_create(&h->thread, NULL, hangup_main, h) != 0) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        free(h->w);
        free(h);
        return NULL;
    }
    return h;
}

struct hangup *hangup_free(struct hangup *h) {
    if (!h)
        return NULL;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h->w);
    free(h);
    return NULL;
}

bool hangup_watch(struct hangup *h, int fd, uint64_t key) {
    if (!h || fd < 0 || key == 0)
        return false;
    bool ok = false;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < HANGUP_MAX_WATCHED; i++) {
        if (h->w[i].key)
            continue;
        h->w[i] = (struct watched){.fd = fd, .key = key};
        if (i >= h->used)
            h->used = i + 1;
        h->live++;
        ok = true;
        break;
    }
    pthread_mutex_unlock(&h->mu);
    return ok;
}

bool hangup_unwatch(struct hangup *h, uint64_t key) {
    if (!h || key == 0)
        return false;
    bool was = false;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->used; i++) {
        if (h->w[i].key != key)
            continue;
        was = h->w[i].cancelled;
        h->w[i].key = 0;
        h->live--;
        break;
    }
    while (h->used > 0 && h->w[h->used - 1].key == 0)
        h->used--;
    pthread_mutex_unlock(&h->mu);
    return was;
}

uint64_t hangup_cancelled(struct hangup *h) {
    pthread_mutex_lock(&h->mu);
    uint64_t n = h->cancelled;
    pthread_mutex_unlock(&h->mu);
    return n;
}
