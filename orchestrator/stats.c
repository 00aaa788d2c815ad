/* stats.c - per-tenant rolling statistics (see stats.h).
 *
 * Latency percentiles come from log-spaced histograms (buckets 10% apart
 * from 1 ms to about 2 minutes), so a percentile is exact to within one
 * bucket (±5%) and costs no per-sample memory.  Name->count maps (intents,
 * plans, decisions) keep at most STATS_MAX_KEYS names; later names are
 * counted under "_other".  Tenants beyond STATS_MAX_TENANTS share one
 * "_other" entry. */
#include "stats.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NB 128            /* latency buckets */
#define B_BASE 1.0        /* ms, upper bound of bucket 0 */
#define B_FACTOR 1.1
#define STATS_MAX_KEYS 32
#define KEY_MAX 48

struct keyed {
    char name[STATS_MAX_KEYS][KEY_MAX];
    uint64_t count[STATS_MAX_KEYS];
    int n;
};

struct minute {
    int64_t t; /* start of the minute, epoch seconds; 0 = empty */
    uint32_t queries, slo_met, slo_total;
    double cost;
    uint32_t lat[NB];
};

struct tenant_stats {
    char name[72];
    uint64_t queries;
    struct keyed outcomes, intents, plans, decisions;
    uint64_t slo_met[4], slo_missed[4];
    char slo_names[4][16];
    int nslo_names;
    double cost;
    uint64_t lat[NB];
    struct minute window[STATS_WINDOW_MIN];
};

struct stats {
    pthread_mutex_t mu;
    struct tenant_stats *t; /* STATS_MAX_TENANTS + 1 ("_other") */
    int n;
};

struct stats *stats_new(void) {
    struct stats *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->t = calloc(STATS_MAX_TENANTS + 1, sizeof(*s->t));
    if (!s->t) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

struct stats *stats_free(struct stats *s) {
    if (s) {
        pthread_mutex_destroy(&s->mu);
        free(s->t);
        free(s);
    }
    return NULL;
}

static int bucket_of(double ms) {
    if (!(ms > B_BASE))
        return 0;
    int b = (int)ceil(log(ms / B_BASE) / log(B_FACTOR));
    return b >= NB ? NB - 1 : b;
}

static double bucket_upper(int b) {
    return B_BASE * pow(B_FACTOR, b);
}

static void keyed_add(struct keyed *k, const char *name) {
    if (!name)
        return;
    for (int i = 0; i < k->n; i++)
        if (strcmp(k->name[i], name) == 0) {
            k->count[i]++;
            return;
        }
    if (k->n < STATS_MAX_KEYS - 1) {
        snprintf(k->name[k->n], KEY_MAX, "%s", name);
        k->count[k->n++] = 1;
        return;
    }
    /* the last slot is "_other" */
    snprintf(k->name[STATS_MAX_KEYS - 1], KEY_MAX, "_other");
    k->n = STATS_MAX_KEYS;
    k->count[STATS_MAX_KEYS - 1]++;
}

static struct tenant_stats *tenant_of(struct stats *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0)
            return &s->t[i];
    if (s->n < STATS_MAX_TENANTS) {
        struct tenant_stats *t = &s->t[s->n++];
        snprintf(t->name, sizeof t->name, "%s", name);
        return t;
    }
    struct tenant_stats *o = &s->t[STATS_MAX_TENANTS];
    snprintf(o->name, sizeof o->name, "_other");
    return o;
}

void stats_record(struct stats *s, const struct stats_query *q, int64_t now_s) {
    pthread_mutex_lock(&s->mu);
    struct tenant_stats *t = tenant_of(s, q->tenant ? q->tenant : "_unknown");
    t->queries++;
    keyed_add(&t->outcomes, q->outcome);
    keyed_add(&t->intents, q->intent);
    keyed_add(&t->plans, q->plan);
    for (int i = 0; i < q->ndecisions && i < 8; i++)
        keyed_add(&t->decisions, q->decision[i]);
    t->cost += q->cost > 0 ? q->cost : 0;
    int b = bucket_of(q->latency_ms);
    t->lat[b]++;
    int64_t minute = now_s - now_s % 60;
    struct minute *m = &t->window[(minute / 60) % STATS_WINDOW_MIN];
    if (m->t != minute) {
        memset(m, 0, sizeof(*m));
        m->t = minute;
    }
    m->queries++;
    m->cost += q->cost > 0 ? q->cost : 0;
    m->lat[b]++;
    for (int i = 0; i < q->nslo && i < 4; i++) {
        int k = 0;
        while (k < t->nslo_names && strcmp(t->slo_names[k], q->slo_name[i]) != 0)
            k++;
        if (k == t->nslo_names) {
            if (k == 4)
                continue;
            snprintf(t->slo_names[k], sizeof t->slo_names[k], "%s", q->slo_name[i]);
            t->nslo_names++;
        }
        if (q->slo_met[i])
            t->slo_met[k]++;
        else
            t->slo_missed[k]++;
        m->slo_total++;
        m->slo_met += q->slo_met[i];
    }
    pthread_mutex_unlock(&s->mu);
}

static double percentile(const uint64_t *h, uint64_t total, double p) {
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)ceil(p * (double)total), acc = 0;
    for (int b = 0; b < NB; b++) {
        acc += h[b];
        if (acc >= want)
            return bucket_upper(b);
    }
    return bucket_upper(NB - 1);
}

static json_t *keyed_json(const struct keyed *k) {
    json_t *o = json_object();
    for (int i = 0; i < k->n; i++)
        json_object_set_new(o, k->name[i], json_integer((json_int_t)k->count[i]));
    return o;
}

static json_t *tenant_json(const struct tenant_stats *t, int64_t now_s) {
    json_t *slo = json_object();
    for (int k = 0; k < t->nslo_names; k++)
        json_object_set_new(slo, t->slo_names[k],
                            json_pack("{s:I, s:I, s:f}", "met", (json_int_t)t->slo_met[k], "missed",
                                      (json_int_t)t->slo_missed[k], "target", STATS_SLO_TARGET));
    json_t *timeline = json_array();
    int64_t now_min = now_s - now_s % 60;
    for (int64_t m = now_min - (STATS_WINDOW_MIN - 1) * 60; m <= now_min; m += 60) {
        const struct minute *w = &t->window[(m / 60) % STATS_WINDOW_MIN];
        if (w->t != m || w->queries == 0)
            continue;
        uint64_t h[NB];
        for (int b = 0; b < NB; b++)
            h[b] = w->lat[b];
        json_array_append_new(timeline, json_pack("{s:I, s:i, s:f, s:f, s:f, s:i, s:i}", "t", (json_int_t)m, "queries",
                                                  (int)w->queries, "p50_ms", percentile(h, w->queries, 0.5), "p95_ms",
                                                  percentile(h, w->queries, 0.95), "cost", w->cost, "slo_met",
                                                  (int)w->slo_met, "slo_total", (int)w->slo_total));
    }
    return json_pack("{s:s, s:I, s:o, s:o, s:o, s:{s:f, s:f, s:f}, s:{s:f, s:f}, s:o, s:o, s:o}", "tenant", t->name,
                     "queries", (json_int_t)t->queries, "outcomes", keyed_json(&t->outcomes), "intents",
                     keyed_json(&t->intents), "slo", slo, "latency_ms", "p50", percentile(t->lat, t->queries, 0.5),
                     "p95", percentile(t->lat, t->queries, 0.95), "p99", percentile(t->lat, t->queries, 0.99), "cost",
                     "total", t->cost, "per_query", t->queries ? t->cost / (double)t->queries : 0.0, "plans",
                     keyed_json(&t->plans), "decisions", keyed_json(&t->decisions), "timeline", timeline);
}

json_t *stats_tenants_json(struct stats *s, const char *only_tenant, int64_t now_s) {
    json_t *arr = json_array();
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i <= STATS_MAX_TENANTS; i++) {
        if (i >= s->n && i != STATS_MAX_TENANTS)
            continue; /* unused slots; the last one is "_other" */
        const struct tenant_stats *t = &s->t[i];
        if (t->queries == 0 || (only_tenant && strcmp(t->name, only_tenant) != 0))
            continue;
        json_array_append_new(arr, tenant_json(t, now_s));
    }
    pthread_mutex_unlock(&s->mu);
    return arr;
}
