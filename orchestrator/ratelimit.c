/* ratelimit.c - token buckets per tenant (see ratelimit.h).
 *
 * A small open-addressing table keyed by tenant id under one mutex: the
 * critical section is a lookup and a few float operations.  The table has a
 * fixed size; when it is full the least recently used entry is reused,
 * which can only make a limit more lenient for a tenant idle long enough to
 * be evicted. */
#include "ratelimit.h"
#include "tenants.h"
#include "util.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RL_SLOTS 4096

struct bucket {
    char tenant[CFG_TENANT_ID_MAX + 1];
    double req_tokens;
    int64_t req_at;
    double llm_tokens;
    int64_t llm_at;
    int64_t used_at;
    bool req_init, llm_init;
};

struct rl_table {
    pthread_mutex_t mu;
    struct bucket slots[RL_SLOTS];
};

struct rl_table *rl_new(void) {
    struct rl_table *t = calloc(1, sizeof(*t));
    if (t)
        pthread_mutex_init(&t->mu, NULL);
    return t;
}

struct rl_table *rl_free(struct rl_table *t) {
    if (t) {
        pthread_mutex_destroy(&t->mu);
        free(t);
    }
    return NULL;
}

static uint64_t hash(const char *s) {
    return util_fnv64(UTIL_FNV64_BASIS, s, strlen(s));
}

/* Finds or claims the tenant's slot (under mu). */
static struct bucket *find(struct rl_table *t, const char *tenant, int64_t now) {
    size_t start = hash(tenant) % RL_SLOTS;
    struct bucket *lru = NULL;
    for (size_t i = 0; i < 64; i++) { /* bounded probe */
        struct bucket *b = &t->slots[(start + i) % RL_SLOTS];
        if (strcmp(b->tenant, tenant) == 0) {
            b->used_at = now;
            return b;
        }
        if (!b->tenant[0] || !lru || b->used_at < lru->used_at)
            lru = b;
        if (!b->tenant[0])
            break;
    }
    memset(lru, 0, sizeof(*lru));
    snprintf(lru->tenant, sizeof lru->tenant, "%s", tenant);
    lru->used_at = now;
    return lru;
}

static void refill(double *tokens, int64_t *at, bool *init, double per_s, double cap, int64_t now) {
    if (!*init) {
        *tokens = cap;
        *at = now;
        *init = true;
        return;
    }
    *tokens = fmin(cap, *tokens + per_s * (double)(now - *at) / 1e6);
    *at = now;
}

static int retry_s(double deficit, double per_s) {
    double s = per_s > 0 ? deficit / per_s : 1;
    return s < 1 ? 1 : (int)ceil(s);
}

bool rl_take_request(struct rl_table *t, const char *tenant, double rps, int64_t now_us, int *ret_retry_s) {
    if (rps <= 0)
        return true;
    pthread_mutex_lock(&t->mu);
    struct bucket *b = find(t, tenant, now_us);
    double cap = rps < 1 ? 1 : rps;
    refill(&b->req_tokens, &b->req_at, &b->req_init, rps, cap, now_us);
    bool ok = b->req_tokens >= 1;
    if (ok)
        b->req_tokens -= 1;
    else if (ret_retry_s)
        *ret_retry_s = retry_s(1 - b->req_tokens, rps);
    pthread_mutex_unlock(&t->mu);
    return ok;
}

bool rl_tokens_available(struct rl_table *t, const char *tenant, double tpm, int64_t now_us, int *ret_retry_s) {
    if (tpm <= 0)
        return true;
    pthread_mutex_lock(&t->mu);
    struct bucket *b = find(t, tenant, now_us);
    refill(&b->llm_tokens, &b->llm_at, &b->llm_init, tpm / 60.0, tpm, now_us);
    bool ok = b->llm_tokens > 0;
    if (!ok && ret_retry_s)
        *ret_retry_s = retry_s(1 - b->llm_tokens, tpm / 60.0);
    pthread_mutex_unlock(&t->mu);
    return ok;
}

void rl_spend_tokens(struct rl_table *t, const char *tenant, double tpm, double tokens, int64_t now_us) {
    if (tpm <= 0 || tokens <= 0)
        return;
    pthread_mutex_lock(&t->mu);
    struct bucket *b = find(t, tenant, now_us);
    refill(&b->llm_tokens, &b->llm_at, &b->llm_init, tpm / 60.0, tpm, now_us);
    b->llm_tokens -= tokens;
    pthread_mutex_unlock(&t->mu);
}
