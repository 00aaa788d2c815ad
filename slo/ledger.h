/* ledger.h - per-tenant spend and SLO attainment, in memory.
 *
 * The aggregator answers "how much has this tenant spent today and this
 * month (UTC calendar)?" in constant time, for the planner's budget checks,
 * and counts per (tenant, objective) how often the SLO was met.  It is
 * thread-safe (one mutex, held for a hash lookup).  It persists nothing:
 * the caller stores struct slo_ledger_entry rows in batches and, at start-
 * up, rebuilds the spend from (tenant, cost, timestamp) triples.
 *
 * Days and months only roll forward: a timestamp older than the tenant's
 * current day (a clock stepped back) is counted in the current day, which
 * over-counts spend rather than forgetting it. */
#ifndef SLORAG_SLO_LEDGER_H
#define SLORAG_SLO_LEDGER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "intent.h"
#include "profile.h"
#include "space.h"

#define SLO_TENANT_MAX 64 /* as CFG_TENANT_ID_MAX */

/* What attainment is counted for: the three objectives and the deadline. */
#define SLO_LEDGER_DEADLINE SLO_OBJ__COUNT
#define SLO_LEDGER_CHECKS (SLO_OBJ__COUNT + 1)

struct slo_ledger;

/* One answered request, as the caller persists it. */
struct slo_ledger_entry {
    char tenant[SLO_TENANT_MAX + 1];
    enum slo_intent intent;
    char plan_key[SLO_KEY_MAX]; /* slo_space_key of the configuration that ran */
    double predicted_quality, quality; /* quality < 0: no signal for this request */
    double predicted_cost, cost;
    double predicted_latency_ms, latency_ms;
    unsigned checked, met; /* bit (1u << c), c = enum slo_objective or SLO_LEDGER_DEADLINE */
    bool exploring, degraded;
    int64_t ts_ms; /* wall clock, UTC, milliseconds */
};

/* A spend row for rebuilding: ts_s is wall-clock seconds (UTC). */
struct slo_ledger_spend {
    const char *tenant;
    double cost;
    int64_t ts_s;
};

/* ---- UTC calendar (pure) ---- */
int64_t slo_utc_day(int64_t s);   /* days since 1970-01-01 */
int64_t slo_utc_month(int64_t s); /* year * 12 + month - 1 */
int64_t slo_utc_seconds_to_next_day(int64_t s);
int64_t slo_utc_seconds_to_next_month(int64_t s);

/* max_tenants bounds memory (1..1000000); ERR_OVERLOADED when a further
 * tenant would exceed it. */
enum err slo_ledger_new(size_t max_tenants, struct slo_ledger **ret);
struct slo_ledger *slo_ledger_free(struct slo_ledger *l); /* NULL-safe, returns NULL */

/* Adds cost (>= 0) spent at now_s.  ERR_INVALID_FIELD for a bad tenant id
 * or cost, ERR_OVERLOADED when the tenant table is full. */
enum err slo_ledger_add(struct slo_ledger *l, const char *tenant, double cost, int64_t now_s);
/* Spend of the UTC day and month that hold now_s; 0 for unknown tenants. */
void slo_ledger_spent(struct slo_ledger *l, const char *tenant, int64_t now_s, double *ret_day, double *ret_month);

/* Judges e against the objectives it was planned for: sets checked and met
 * (quality only when e->quality >= 0; latency against latency_p95_ms, so
 * the share met is the p95 attainment; deadline against deadline_ms). */
void slo_ledger_entry_judge(struct slo_ledger_entry *e, const struct slo_objectives *o, int deadline_ms);
/* Adds e's cost at e->ts_ms and counts its attainment. */
enum err slo_ledger_record(struct slo_ledger *l, const struct slo_ledger_entry *e);
/* Requests checked for and meeting one objective (or SLO_LEDGER_DEADLINE)
 * since the aggregator was created or rebuilt. */
void slo_ledger_attainment(struct slo_ledger *l, const char *tenant, int check, uint64_t *ret_met,
                           uint64_t *ret_total);

/* Clears all spend and counts, then adds the rows that fall in now_s's day
 * and month.  Rows with an invalid tenant are skipped; ERR_OVERLOADED when
 * the rows name more tenants than the table holds (what fitted is kept). */
enum err slo_ledger_rebuild(struct slo_ledger *l, const struct slo_ledger_spend *rows, size_t n, int64_t now_s);

json_t *slo_ledger_entry_to_json(const struct slo_ledger_entry *e);

#endif
