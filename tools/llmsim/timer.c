/* timer.c - see timer.h.
 *
 * Lock order: the timer mutex is taken before libmicrohttpd's own (when
 * suspending under it), and the thread never calls into libmicrohttpd with
 * the mutex held: due entries are popped into a local batch and resumed
 * after unlocking.  Checking `stopping` and suspending under one lock is
 * what makes sim_timer_stop() final: nothing can be suspended after it. */
#include "timer.h"
#include "util.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define BATCH 64

struct entry {
    int64_t due_us;
    uint64_t seq; /* FIFO among equal due times */
    struct MHD_Connection *conn;
};

struct sim_timer {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC, like clock_us() */
    pthread_t thread;
    bool started, stopping, joined;
    struct entry *heap; /* capacity entries, allocated up front */
    size_t len, capacity;
    uint64_t seq;
};

static bool before(const struct entry *a, const struct entry *b) {
    return a->due_us < b->due_us || (a->due_us == b->due_us && a->seq < b->seq);
}

static void heap_push(struct sim_timer *t, struct entry e) {
    size_t i = t->len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&e, &t->heap[parent]))
            break;
        t->heap[i] = t->heap[parent];
        i = parent;
    }
    t->heap[i] = e;
}

static struct entry heap_pop(struct sim_timer *t) {
    struct entry top = t->heap[0];
    struct entry last = t->heap[--t->len];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= t->len)
            break;
        if (child + 1 < t->len && before(&t->heap[child + 1], &t->heap[child]))
            child++;
        if (!before(&t->heap[child], &last))
            break;
        t->heap[i] = t->heap[child];
        i = child;
    }
    if (t->len)
        t->heap[i] = last;
    return top;
}

static void *run(void *arg) {
    struct sim_timer *t = arg;
    struct MHD_Connection *batch[BATCH];
    pthread_mutex_lock(&t->mu);
    for (;;) {
        if (t->stopping && t->len == 0)
            break;
        if (t->len == 0) {
            pthread_cond_wait(&t->cv, &t->mu);
            continue;
        }
        int64_t now = clock_us();
        if (!t->stopping && t->heap[0].due_us > now) {
            int64_t due = t->heap[0].due_us;
            struct timespec ts = {(time_t)(due / 1000000), (long)(due % 1000000) * 1000};
            pthread_cond_timedwait(&t->cv, &t->mu, &ts);
            continue;
        }
        size_t n = 0;
        while (n < BATCH && t->len && (t->stopping || t->heap[0].due_us <= now))
            batch[n++] = heap_pop(t).conn;
        pthread_mutex_unlock(&t->mu);
        for (size_t i = 0; i < n; i++)
            MHD_resume_connection(batch[i]);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

enum err sim_timer_new(size_t capacity, struct sim_timer **ret_timer) {
    struct sim_timer *t = calloc(1, sizeof *t);
    if (!t)
        return ERR_NOMEM;
    t->capacity = capacity;
    t->heap = calloc(capacity ? capacity : 1, sizeof *t->heap);
    if (!t->heap) {
        free(t);
        return ERR_NOMEM;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&t->mu, NULL);
    if (pthread_create(&t->thread, NULL, run, t) != 0) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        free(t->heap);
        free(t);
        return ERR_INTERNAL;
    }
    t->started = true;
    *ret_timer = t;
    return ERR_OK;
}

bool sim_timer_suspend(struct sim_timer *t, struct MHD_Connection *conn, int64_t due_us) {
    pthread_mutex_lock(&t->mu);
    if (t->stopping || t->len == t->capacity) {
        pthread_mutex_unlock(&t->mu);
        return false;
    }
    MHD_suspend_connection(conn);
    heap_push(t, (struct entry){due_us, t->seq++, conn});
    if (t->heap[0].conn == conn)
        pthread_cond_signal(&t->cv); /* new earliest entry: re-arm the sleep */
    pthread_mutex_unlock(&t->mu);
    return true;
}

size_t sim_timer_pending(struct sim_timer *t) {
    pthread_mutex_lock(&t->mu);
    size_t n = t->len;
    pthread_mutex_unlock(&t->mu);
    return n;
}

void sim_timer_stop(struct sim_timer *t) {
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (t->started && !t->joined) {
        pthread_join(t->thread, NULL);
        t->joined = true;
    }
}

struct sim_timer *sim_timer_free(struct sim_timer *t) {
    if (t) {
        sim_timer_stop(t);
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        free(t->heap);
        free(t);
    }
    return NULL;
}
