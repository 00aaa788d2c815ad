/* metrics.h - Prometheus metrics: counters and histograms with bounded
 * label sets, rendered in the text exposition format.
 *
 * Each family has up to three labels.  A family holds at most
 * METRICS_MAX_SERIES label combinations; past that, new combinations are
 * folded into one series whose label values are all "_other", so a client
 * cannot grow the scrape without bound by inventing tenants or intents. */
#ifndef SLORAG_METRICS_H
#define SLORAG_METRICS_H

#include <stddef.h>
#include "buf.h"

#define METRICS_MAX_SERIES 512

struct metrics;

enum metric_kind { METRIC_COUNTER, METRIC_HISTOGRAM };

/* Families; the table in metrics.c gives names, help and labels. */
enum metric_family {
    M_HTTP_REQUESTS,   /* route, code */
    M_QUERIES,         /* tenant, intent, outcome */
    M_STAGE_SECONDS,   /* stage (histogram) */
    M_QUERY_SECONDS,   /* tenant (histogram) */
    M_SLO,             /* tenant, objective, result */
    M_COST,            /* tenant */
    M_TOKENS,          /* tenant, direction */
    M_STAGE_DECISIONS, /* stage, decision */
    M_PLANS,           /* tier, retriever */
    M__COUNT
};

struct metrics *metrics_new(void);
struct metrics *metrics_free(struct metrics *m);

/* Label values in the family's label order; NULL-terminated list not needed:
 * pass exactly as many as the family has. */
void metrics_add(struct metrics *m, enum metric_family f, double v, const char *l1, const char *l2, const char *l3);
void metrics_observe(struct metrics *m, enum metric_family f, double v, const char *l1, const char *l2,
                     const char *l3);

/* Appends the whole registry in Prometheus text format. */
enum err metrics_render(struct metrics *m, struct buf *out);

/* Helpers for gauges computed at scrape time by the caller. */
enum err metrics_gauge_header(struct buf *out, const char *name, const char *help);
enum err metrics_gauge(struct buf *out, const char *name, const char *labels, double v);
/* Escapes a label value for the exposition format into out (size n). */
void metrics_escape(const char *v, char *out, size_t n);

#endif
