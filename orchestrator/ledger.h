/* ledger.h - the usage ledger: one row per answered query (tenant, intent,
 * plan, predicted and actual cost/latency/quality, SLOs met), written to
 * SQLite by one thread in group commits, plus per-tenant spend for the
 * current UTC day and month that budget checks read in constant time.
 *
 * Durability: ledger_append's callback runs only after the transaction
 * holding the entry has committed (WAL, synchronous=FULL), so a response
 * that waits for it never acknowledges spend that a crash could lose. */
#ifndef SLORAG_LEDGER_H
#define SLORAG_LEDGER_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

struct ledger;

struct ledger_entry {
    char tenant[65];
    char request_id[33];
    int64_t ts_ms;         /* wall clock, UTC */
    char intent[24];
    char plan[64];         /* tier/retriever/kN/xR */
    double cost, predicted_cost;
    double latency_ms, predicted_latency_ms;
    double quality, predicted_quality; /* quality: the answer's confidence signal */
    int slo_met, slo_total;  /* objectives met / checked */
    char slo_json[160];      /* {"deadline": true, ...} */
};

typedef void (*ledger_done_fn)(void *ud, enum err e);

/* Opens (creates) the ledger in db_path, its own SQLite file.  legacy_path:
 * the store's file, whose ledger table (earlier versions kept it there) is
 * moved here on first open; NULL for none.  A commit takes what is queued,
 * max_batch entries at most, without waiting for more. */
enum err ledger_open(const char *db_path, const char *legacy_path, int max_batch, struct ledger **ret_l);
/* Commits what is queued, then stops.  NULL-safe. */
struct ledger *ledger_free(struct ledger *l);
/* Queues e; done runs on the ledger thread after the commit (or failure).
 * The tenant's spend counters include e from the moment this returns. */
enum err ledger_append(struct ledger *l, const struct ledger_entry *e, ledger_done_fn done, void *ud);
/* Spend of the current UTC day and month (now_s: wall clock seconds). */
void ledger_spent(struct ledger *l, const char *tenant, int64_t now_s, double *ret_day, double *ret_month);
/* The plan key and intent recorded for a tenant's request (for feedback);
 * ERR_NOT_FOUND when that tenant has no such answered request. */
enum err ledger_find(struct ledger *l, const char *tenant, const char *request_id, char *ret_plan, size_t plan_len,
                     char *ret_intent, size_t intent_len);
/* Rows committed so far (for tests and metrics). */
int64_t ledger_committed(struct ledger *l);
/* Asks the ledger thread to delete the rows older than retention_days
 * before now_s, but never a row of the current UTC month (its spend is
 * rebuilt from them at open), oldest first: LEDGER_PRUNE_BATCH rows a
 * transaction, between commits of new rows, which always go first.
 * Returns at once. */
#define LEDGER_PRUNE_BATCH 5000
void ledger_prune(struct ledger *l, int retention_days, int64_t now_s);
/* Rows deleted by ledger_prune so far. */
int64_t ledger_pruned(struct ledger *l);

#endif
