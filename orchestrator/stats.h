/* stats.h - rolling per-tenant statistics for GET /v1/stats and the
 * dashboard: totals since start, plus a one-minute timeline of the last
 * hour, all in bounded memory. */
#ifndef SLORAG_STATS_H
#define SLORAG_STATS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define STATS_MAX_TENANTS 256
#define STATS_WINDOW_MIN 60
#define STATS_SLO_TARGET 0.95 /* the attainment goal the dashboard compares against */

struct stats;

struct stats_query {
    const char *tenant, *intent, *outcome, *plan; /* plan: "tier/retriever" */
    double latency_ms, cost;
    int nslo;
    const char *slo_name[4];
    bool slo_met[4];
    int ndecisions;
    const char *decision[8]; /* "stage/skipped" or "stage/expanded" */
};

struct stats *stats_new(void);
struct stats *stats_free(struct stats *s);
void stats_record(struct stats *s, const struct stats_query *q, int64_t now_s);
/* The tenants array for /v1/stats (only that tenant when only_tenant is
 * not NULL); a new reference. */
json_t *stats_tenants_json(struct stats *s, const char *only_tenant, int64_t now_s);

#endif
