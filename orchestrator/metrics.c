/* metrics.c - the metrics registry (see metrics.h).
 *
 * Series live in a small open-addressing table per family keyed by the
 * joined label values, under one mutex: an update is a hash, a probe and an
 * add.  Histograms use one fixed bucket layout (seconds, 1 ms .. 60 s),
 * which covers both CPU stages and LLM calls. */
#include "metrics.h"
#include "util.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 14
static const double buckets[NBUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10,   60};

#define TABLE_SLOTS (2 * METRICS_MAX_SERIES)
#define LABEL_MAX 64

struct family_def {
    const char *name;
    const char *help;
    enum metric_kind kind;
    int nlabels;
    const char *labels[3];
};

static const struct family_def defs[M__COUNT] = {
    [M_HTTP_REQUESTS] = {"slorag_http_requests_total", "HTTP requests by route and status code", METRIC_COUNTER, 2,
                         {"route", "code"}},
    [M_QUERIES] = {"slorag_queries_total", "Queries by tenant, intent and outcome", METRIC_COUNTER, 3,
                   {"tenant", "intent", "outcome"}},
    [M_STAGE_SECONDS] = {"slorag_stage_duration_seconds", "Time spent per pipeline stage", METRIC_HISTOGRAM, 1,
                         {"stage"}},
    [M_QUERY_SECONDS] = {"slorag_query_duration_seconds", "End-to-end query latency by tenant", METRIC_HISTOGRAM, 1,
                         {"tenant"}},
    [M_SLO] = {"slorag_slo_total", "SLO checks by tenant, objective and result (met or missed)", METRIC_COUNTER, 3,
               {"tenant", "objective", "result"}},
    [M_COST] = {"slorag_cost_total", "Backend cost spent, in the currency units of the backend prices",
                METRIC_COUNTER, 1, {"tenant"}},
    [M_TOKENS] = {"slorag_tokens_total", "LLM tokens by tenant and direction", METRIC_COUNTER, 2,
                  {"tenant", "direction"}},
    [M_STAGE_DECISIONS] = {"slorag_stage_decisions_total", "Adaptive-depth decisions: stages skipped or expanded",
                           METRIC_COUNTER, 2, {"stage", "decision"}},
    [M_PLANS] = {"slorag_plans_total", "Plans chosen, by generator tier and retriever", METRIC_COUNTER, 2,
                 {"tier", "retriever"}},
};

struct series {
    char labels[3][LABEL_MAX];
    bool used;
    double value;             /* counter */
    double sum;               /* histogram */
    uint64_t count;
    uint64_t bucket[NBUCKETS];
};

struct family {
    struct series *slots; /* TABLE_SLOTS */
    int nseries;
};

struct metrics {
    pthread_mutex_t mu;
    struct family fam[M__COUNT];
};

struct metrics *metrics_new(void) {
    struct metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    for (int f = 0; f < M__COUNT; f++) {
        m->fam[f].slots = calloc(TABLE_SLOTS, sizeof(struct series));
        if (!m->fam[f].slots) {
            metrics_free(m);
            return NULL;
        }
    }
    return m;
}

struct metrics *metrics_free(struct metrics *m) {
    if (m) {
        for (int f = 0; f < M__COUNT; f++)
            free(m->fam[f].slots);
        pthread_mutex_destroy(&m->mu);
        free(m);
    }
    return NULL;
}

static uint64_t hash_labels(const char *const *v, int n) {
    uint64_t h = UTIL_FNV64_BASIS;
    for (int i = 0; i < n; i++)
        h = util_fnv64(util_fnv64(h, v[i], strlen(v[i])), "\xff", 1); /* each label, then a separator */
    return h;
}

static bool same(const struct series *s, const char *const *v, int n) {
    for (int i = 0; i < n; i++)
        if (strncmp(s->labels[i], v[i], LABEL_MAX - 1) != 0)
            return false;
    return true;
}

/* Finds or creates the series (under mu); folds into "_other" when full. */
static struct series *lookup(struct family *fam, const struct family_def *d, const char *l1, const char *l2,
                             const char *l3) {
    const char *v[3] = {l1 ? l1 : "", l2 ? l2 : "", l3 ? l3 : ""};
    static const char *const other[3] = {"_other", "_other", "_other"};
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *const *vals = attempt == 0 ? v : other;
        uint64_t h = hash_labels(vals, d->nlabels);
        for (size_t i = 0; i < TABLE_SLOTS; i++) {
            struct series *s = &fam->slots[(h + i) % TABLE_SLOTS];
            if (s->used && same(s, vals, d->nlabels))
                return s;
            if (!s->used) {
                if (attempt == 0 && fam->nseries >= METRICS_MAX_SERIES - 1)
                    break; /* keep the last slot for "_other" */
                s->used = true;
                fam->nseries++;
                for (int k = 0; k < d->nlabels; k++)
                    snprintf(s->labels[k], LABEL_MAX, "%s", vals[k]);
                return s;
            }
        }
    }
    return NULL;
}

void metrics_add(struct metrics *m, enum metric_family f, double v, const char *l1, const char *l2, const char *l3) {
    if (!m || v < 0 || !isfinite(v))
        return; /* counters only go up */
    pthread_mutex_lock(&m->mu);
    struct series *s = lookup(&m->fam[f], &defs[f], l1, l2, l3);
    if (s)
        s->value += v;
    pthread_mutex_unlock(&m->mu);
}

void metrics_observe(struct metrics *m, enum metric_family f, double v, const char *l1, const char *l2,
                     const char *l3) {
    if (!m || !isfinite(v))
        return;
    pthread_mutex_lock(&m->mu);
    struct series *s = lookup(&m->fam[f], &defs[f], l1, l2, l3);
    if (s) {
        s->sum += v;
        s->count++;
        for (int b = 0; b < NBUCKETS; b++)
            if (v <= buckets[b])
                s->bucket[b]++;
    }
    pthread_mutex_unlock(&m->mu);
}

void metrics_escape(const char *v, char *out, size_t n) {
    size_t j = 0;
    for (size_t i = 0; v[i] && j + 2 < n; i++) {
        char c = v[i];
        if (c == '\\' || c == '"' || c == '\n') {
            out[j++] = '\\';
            out[j++] = c == '\n' ? 'n' : c;
        } else {
            out[j++] = c;
        }
    }
    out[j] = '\0';
}

static enum err labels_text(const struct family_def *d, const struct series *s, const char *extra, char *out, size_t n) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < d->nlabels; i++) {
        char esc[2 * LABEL_MAX];
        metrics_escape(s->labels[i], esc, sizeof esc);
        int w = snprintf(out + used, n - used, "%s%s=\"%s\"", i ? "," : "", d->labels[i], esc);
        if (w < 0 || (size_t)w >= n - used)
            return ERR_TOO_LARGE;
        used += (size_t)w;
    }
    if (extra) {
        int w = snprintf(out + used, n - used, "%s%s", d->nlabels ? "," : "", extra);
        if (w < 0 || (size_t)w >= n - used)
            return ERR_TOO_LARGE;
    }
    return ERR_OK;
}

enum err metrics_render(struct metrics *m, struct buf *out) {
    enum err e = ERR_OK;
    pthread_mutex_lock(&m->mu);
    for (int f = 0; !e && f < M__COUNT; f++) {
        const struct family_def *d = &defs[f];
        e = buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name,
                       d->kind == METRIC_COUNTER ? "counter" : "histogram");
        for (size_t i = 0; !e && i < TABLE_SLOTS; i++) {
            const struct series *s = &m->fam[f].slots[i];
            if (!s->used)
                continue;
            char lab[512];
            if (d->kind == METRIC_COUNTER) {
                e = labels_text(d, s, NULL, lab, sizeof lab);
                if (!e)
                    e = buf_printf(out, "%s{%s} %.17g\n", d->name, lab, s->value);
                continue;
            }
            /* histogram name ends in _seconds: series are _bucket, _sum, _count */
            for (int b = 0; !e && b <= NBUCKETS; b++) {
                char le[32];
                if (b < NBUCKETS)
                    snprintf(le, sizeof le, "le=\"%g\"", buckets[b]);
                else
                    snprintf(le, sizeof le, "le=\"+Inf\"");
                e = labels_text(d, s, le, lab, sizeof lab);
                if (!e)
                    e = buf_printf(out, "%s_bucket{%s} %llu\n", d->name, lab,
                                   (unsigned long long)(b < NBUCKETS ? s->bucket[b] : s->count));
            }
            if (!e)
                e = labels_text(d, s, NULL, lab, sizeof lab);
            if (!e)
                e = buf_printf(out, "%s_sum{%s} %.17g\n%s_count{%s} %llu\n", d->name, lab, s->sum, d->name, lab,
                               (unsigned long long)s->count);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return e;
}

enum err metrics_gauge_header(struct buf *out, const char *name, const char *help) {
    return buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

enum err metrics_gauge(struct buf *out, const char *name, const char *labels, double v) {
    return labels && *labels ? buf_printf(out, "%s{%s} %.17g\n", name, labels, v) : buf_printf(out, "%s %.17g\n", name, v);
}
