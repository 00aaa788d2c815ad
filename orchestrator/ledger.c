/* ledger.c - group-committed usage ledger (see ledger.h).
 *
 * Appenders push onto a list and signal; the ledger thread takes whatever
 * has accumulated (at most max_batch), writes it in one transaction and
 * then runs the callbacks.  It never waits for company: entries that
 * arrive during one commit's fsync go together in the next, so under load
 * one fsync covers many responses, and a lone answer waits for one.
 *
 * Spend per tenant for the current UTC day and month is kept by the SLO
 * module's aggregator (slo/ledger.c), rebuilt from the table at open, so a
 * budget check is a lookup. */
#include "ledger.h"
#include "log.h"
#include "sqlkept.h"
#include "util.h"

#include "../slo/ledger.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


struct pending {
    struct pending *next;
    struct ledger_entry e;
    ledger_done_fn done;
    void *ud;
};

enum { W_BEGIN, W_INSERT, W_COMMIT, W_ROLLBACK, W__COUNT };
static const char *const write_sql[W__COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_INSERT] = "INSERT INTO ledger(ts_ms, tenant, request_id, intent, plan, cost, predicted_cost,"
                 " latency_ms, predicted_latency_ms, quality, predicted_quality, slo_met, slo_total, slo)"
                 " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
};

struct ledger {
    sqlite3 *db;        /* the ledger thread's */
    sqlite3 *reader;    /* lookups from request threads, under read_mu */
    pthread_mutex_t read_mu;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pending *head, *tail;
    bool stopping;
    int max_batch;
    int64_t committed;
    int64_t prune_before_ms;  /* a prune asked for and not done; 0 = none */
    int64_t pruned;
    struct slo_ledger *spend; /* per-tenant day/month spend (slo/ledger.c) */
    sqlite3_stmt *st[W__COUNT]; /* write_batch's, prepared once on the ledger thread */
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS ledger("
    "  id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, tenant TEXT NOT NULL, request_id TEXT NOT NULL,"
    "  intent TEXT, plan TEXT, cost REAL NOT NULL, predicted_cost REAL, latency_ms REAL, predicted_latency_ms REAL,"
    "  quality REAL, predicted_quality REAL, slo_met INTEGER, slo_total INTEGER, slo TEXT);"
    "CREATE INDEX IF NOT EXISTS ledger_by_tenant_ts ON ledger(tenant, ts_ms);"
    "CREATE INDEX IF NOT EXISTS ledger_by_request ON ledger(tenant, request_id);";

/* The ledger thread's kept statements (sqlkept.h). */
static sqlite3_stmt *wstmt(struct ledger *l, int which) {
    return sql_kept(l->db, &l->st[which], write_sql[which]);
}

static bool wexec(struct ledger *l, int which) {
    return sql_kept_exec(l->db, &l->st[which], write_sql[which]);
}

static enum err write_batch(struct ledger *l, struct pending *batch) {
    if (!wexec(l, W_BEGIN))
        return ERR_STORAGE;
    sqlite3_stmt *st = wstmt(l, W_INSERT);
    enum err e = st ? ERR_OK : ERR_STORAGE;
    for (struct pending *p = batch; p && !e; p = p->next) {
        const struct ledger_entry *x = &p->e;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, x->ts_ms);
        sqlite3_bind_text(st, 2, x->tenant, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, x->request_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, x->intent, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, x->plan, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 6, x->cost);
        sqlite3_bind_double(st, 7, x->predicted_cost);
        sqlite3_bind_double(st, 8, x->latency_ms);
        sqlite3_bind_double(st, 9, x->predicted_latency_ms);
        sqlite3_bind_double(st, 10, x->quality);
        sqlite3_bind_double(st, 11, x->predicted_quality);
        sqlite3_bind_int(st, 12, x->slo_met);
        sqlite3_bind_int(st, 13, x->slo_total);
        sqlite3_bind_text(st, 14, x->slo_json, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            e = ERR_STORAGE;
    }
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st); /* the texts were bound SQLITE_STATIC and are freed after the batch */
    }
    if (!e && !wexec(l, W_COMMIT))
        e = ERR_STORAGE;
    if (e)
        wexec(l, W_ROLLBACK);
    return e;
}

/* Deletes up to LEDGER_PRUNE_BATCH rows older than before_ms among the
 * oldest rows (by id, the order they were written in); how many, or -1. */
static int64_t prune_batch(struct ledger *l, int64_t before_ms) {
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(l->db,
                           "DELETE FROM ledger WHERE id IN (SELECT id FROM ledger ORDER BY id LIMIT ?2)"
                           " AND ts_ms < ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, before_ms);
        sqlite3_bind_int(st, 2, LEDGER_PRUNE_BATCH);
        if (sqlite3_step(st) == SQLITE_DONE)
            n = sqlite3_changes(l->db);
    }
    sqlite3_finalize(st);
    return n;
}

static void *ledger_main(void *arg) {
    struct ledger *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->head && !l->prune_before_ms && !l->stopping)
            pthread_cond_wait(&l->cv, &l->mu);
        if (!l->head && l->prune_before_ms && !l->stopping) {
            /* one batch, then new rows again if any came meanwhile */
            int64_t before = l->prune_before_ms;
            pthread_mutex_unlock(&l->mu);
            int64_t n = prune_batch(l, before);
            pthread_mutex_lock(&l->mu);
            if (n > 0)
                l->pruned += n;
            if (n < LEDGER_PRUNE_BATCH && l->prune_before_ms == before) {
                l->prune_before_ms = 0;
                if (n < 0)
                    log_msg(LOG_WARN, "ledger_prune_failed", LOG_S("reason", sqlite3_errmsg(l->db)), LOG_END);
                else
                    log_msg(LOG_INFO, "ledger_pruned", LOG_I("rows_total", l->pruned), LOG_END);
            }
            continue;
        }
        if (!l->head)
            break; /* stopping and drained */
        /* take up to max_batch */
        struct pending *batch = l->head, *last = l->head;
        for (int i = 1; i < l->max_batch && last->next; i++)
            last = last->next;
        l->head = last->next;
        if (!l->head)
            l->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&l->mu);

        enum err e = write_batch(l, batch);
        int64_t rows = 0;
        for (struct pending *p = batch, *next; p; p = next) {
            next = p->next;
            rows++;
            p->done(p->ud, e);
            free(p);
        }
        pthread_mutex_lock(&l->mu);
        if (!e)
            l->committed += rows;
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Earlier versions kept the ledger table in the store's file (slorag.db).
 * Every query's row then invalidated the page cache of every reader of the
 * store (SQLite drops a connection's cache when another one has written to
 * the file), costing ~50 page reads a query.  Its rows move here once:
 * copied in one transaction, skipping rows already here (a crash between
 * the two files' commits leaves rows in both, and the copy runs again),
 * then the old table is dropped. */
static enum err move_legacy_rows(sqlite3 *db, const char *legacy) {
    if (!legacy || access(legacy, F_OK) != 0)
        return ERR_OK;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS legacy", -1, &st, NULL) != SQLITE_OK)
        return ERR_STORAGE;
    sqlite3_bind_text(st, 1, legacy, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ERR_STORAGE;
    enum err e = ERR_OK;
    bool present = false;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM legacy.sqlite_master WHERE type = 'table' AND name = 'ledger'", -1, &st,
                           NULL) != SQLITE_OK)
        e = ERR_STORAGE;
    else
        present = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    static const char move_sql[] =
        "BEGIN IMMEDIATE;"
        "INSERT INTO main.ledger(ts_ms, tenant, request_id, intent, plan, cost, predicted_cost, latency_ms,"
        " predicted_latency_ms, quality, predicted_quality, slo_met, slo_total, slo)"
        " SELECT ts_ms, tenant, request_id, intent, plan, cost, predicted_cost, latency_ms, predicted_latency_ms,"
        " quality, predicted_quality, slo_met, slo_total, slo FROM legacy.ledger o"
        " WHERE NOT EXISTS (SELECT 1 FROM main.ledger m"
        "  WHERE m.tenant = o.tenant AND m.request_id = o.request_id AND m.ts_ms = o.ts_ms)"
        " ORDER BY o.id;"
        "COMMIT;"
        "DROP TABLE legacy.ledger;";
    if (!e && present && sqlite3_exec(db, move_sql, NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        e = ERR_STORAGE;
    }
    sqlite3_exec(db, "DETACH DATABASE legacy", NULL, NULL, NULL);
    return e;
}

static int64_t month_start_ms(int64_t now_s) {
    time_t t = (time_t)now_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    return (int64_t)timegm(&tm) * 1000;
}

enum err ledger_open(const char *db_path, const char *legacy_path, int max_batch, struct ledger **ret_l) {
    struct ledger *l = calloc(1, sizeof(*l));
    if (!l)
        return ERR_NOMEM;
    l->max_batch = max_batch > 0 ? max_batch : 256;
    if (sqlite3_open_v2(db_path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(l->db, 5000) != SQLITE_OK ||
        sqlite3_exec(l->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(l->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        move_legacy_rows(l->db, legacy_path) != ERR_OK) {
        sqlite3_close(l->db);
        free(l);
        return ERR_STORAGE;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->read_mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (sqlite3_open_v2(db_path, &l->reader, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        sqlite3_close(l->reader);
        l->reader = NULL; /* feedback lookups will answer "not found" */
    } else {
        sqlite3_busy_timeout(l->reader, 5000);
    }
    /* rebuild this month's spend per tenant from the table */
    int64_t now = (int64_t)time(NULL);
    if (slo_ledger_new(100000, &l->spend) != ERR_OK) {
        sqlite3_close(l->reader);
        sqlite3_close(l->db);
        free(l);
        return ERR_NOMEM;
    }
    /* one row per tenant and day is enough: the day's total at a moment of
     * that day */
    sqlite3_stmt *st = NULL;
    struct slo_ledger_spend *rows = NULL;
    size_t nrows = 0, cap = 0;
    if (sqlite3_prepare_v2(l->db,
                           "SELECT tenant, sum(cost), max(ts_ms) FROM ledger WHERE ts_ms >= ?1"
                           " GROUP BY tenant, ts_ms / 86400000",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, month_start_ms(now));
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (nrows == cap) {
                cap = cap ? cap * 2 : 64;
                struct slo_ledger_spend *v = realloc(rows, cap * sizeof(*v));
                if (!v)
                    break;
                rows = v;
            }
            char *tenant = strdup((const char *)sqlite3_column_text(st, 0));
            if (!tenant)
                break;
            rows[nrows++] = (struct slo_ledger_spend){tenant, sqlite3_column_double(st, 1),
                                                      sqlite3_column_int64(st, 2) / 1000};
        }
    }
    sqlite3_finalize(st);
    slo_ledger_rebuild(l->spend, rows, nrows, now);
    for (size_t i = 0; i < nrows; i++)
        free((char *)rows[i].tenant);
    free(rows);
    if (sqlite3_prepare_v2(l->db, "SELECT count(*) FROM ledger", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        l->committed = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (pthread_create(&l->thread, NULL, ledger_main, l) != 0) {
        sqlite3_close(l->db);
        free(l);
        return ERR_INTERNAL;
    }
    *ret_l = l;
    return ERR_OK;
}

struct ledger *ledger_free(struct ledger *l) {
    if (!l)
        return NULL;
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    slo_ledger_free(l->spend);
    for (int i = 0; i < W__COUNT; i++)
        sqlite3_finalize(l->st[i]);
    sqlite3_close(l->db);
    sqlite3_close(l->reader);
    pthread_mutex_destroy(&l->read_mu);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
    return NULL;
}

enum err ledger_append(struct ledger *l, const struct ledger_entry *e, ledger_done_fn done, void *ud) {
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return ERR_NOMEM;
    p->e = *e;
    p->done = done;
    p->ud = ud;
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        pthread_mutex_unlock(&l->mu);
        free(p);
        return ERR_UNAVAILABLE;
    }
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    slo_ledger_add(l->spend, e->tenant, e->cost, e->ts_ms / 1000);
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return ERR_OK;
}

void ledger_spent(struct ledger *l, const char *tenant, int64_t now_s, double *ret_day, double *ret_month) {
    slo_ledger_spent(l->spend, tenant, now_s, ret_day, ret_month);
}

void ledger_prune(struct ledger *l, int retention_days, int64_t now_s) {
    if (retention_days <= 0)
        return;
    int64_t before = now_s * 1000 - (int64_t)retention_days * 86400000, month = month_start_ms(now_s);
    if (before <= 0)
        return; /* nothing is that old */
    pthread_mutex_lock(&l->mu);
    l->prune_before_ms = before < month ? before : month;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

int64_t ledger_pruned(struct ledger *l) {
    pthread_mutex_lock(&l->mu);
    int64_t n = l->pruned;
    pthread_mutex_unlock(&l->mu);
    return n;
}

int64_t ledger_committed(struct ledger *l) {
    pthread_mutex_lock(&l->mu);
    int64_t n = l->committed;
    pthread_mutex_unlock(&l->mu);
    return n;
}

enum err ledger_find(struct ledger *l, const char *tenant, const char *request_id, char *ret_plan, size_t plan_len,
                     char *ret_intent, size_t intent_len) {
    if (!l->reader)
        return ERR_NOT_FOUND;
    pthread_mutex_lock(&l->read_mu);
    sqlite3_stmt *st = NULL;
    enum err e = ERR_STORAGE;
    if (sqlite3_prepare_v2(l->reader, "SELECT plan, intent FROM ledger WHERE tenant = ?1 AND request_id = ?2 LIMIT 1", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, request_id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            snprintf(ret_plan, plan_len, "%s", (const char *)sqlite3_column_text(st, 0));
            snprintf(ret_intent, intent_len, "%s", (const char *)sqlite3_column_text(st, 1));
            e = ERR_OK;
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&l->read_mu);
    return e;
}
