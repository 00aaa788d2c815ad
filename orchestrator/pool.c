/* pool.c - worker pool over a ring buffer (see pool.h). */
#include "pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct job {
    exec_job_fn fn;
    void *arg;
};

struct exec_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *ring; /* owned; queue_max slots */
    size_t cap, head, len;
    bool stopping;
    pthread_t *threads;
    int nthreads;
};

static void *worker_main(void *arg) {
    struct exec_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->len == 0 && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->len == 0)
            break; /* stopping and drained */
        struct job j = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->len--;
        pthread_mutex_unlock(&p->mu);
        j.fn(j.arg);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

enum err exec_pool_new(int threads, size_t queue_max, struct exec_pool **ret_pool) {
    if (threads < 1 || queue_max < 1)
        return ERR_INVALID_FIELD;
    struct exec_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return ERR_NOMEM;
    p->ring = calloc(queue_max, sizeof(*p->ring));
    p->threads = calloc((size_t)threads, sizeof(*p->threads));
    if (!p->ring || !p->threads) {
        free(p->ring);
        free(p->threads);
        free(p);
        return ERR_NOMEM;
    }
    p->cap = queue_max;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0)
            break;
        p->nthreads++;
    }
    if (p->nthreads != threads) {
        exec_pool_free(p);
        return ERR_INTERNAL;
    }
    *ret_pool = p;
    return ERR_OK;
}

struct exec_pool *exec_pool_free(struct exec_pool *p) {
    if (!p)
        return NULL;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->ring);
    free(p->threads);
    free(p);
    return NULL;
}

enum err exec_pool_submit(struct exec_pool *p, exec_job_fn fn, void *arg) {
    enum err e = ERR_OK;
    pthread_mutex_lock(&p->mu);
    if (p->stopping)
        e = ERR_UNAVAILABLE;
    else if (p->len == p->cap)
        e = ERR_OVERLOADED;
    else {
        p->ring[(p->head + p->len) % p->cap] = (struct job){fn, arg};
        p->len++;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return e;
}

size_t exec_pool_queued(struct exec_pool *p) {
    pthread_mutex_lock(&p->mu);
    size_t n = p->len;
    pthread_mutex_unlock(&p->mu);
    return n;
}
