/* ledger.c - the in-memory spend and attainment aggregator.
 *
 * Tenants live in an open-addressing hash table (FNV-1a, linear probing,
 * never deleted) that doubles up to twice max_tenants slots, so a lookup is
 * constant time and memory is bounded.  Each slot keeps the day and month
 * its sums belong to; a read or write in a later day or month starts from
 * zero, which is the whole rollover logic.
 *
 * The calendar is computed, not looked up: days since the epoch are turned
 * into a civil year and month with the proleptic Gregorian rules (400-year
 * eras of 146097 days, years starting in March so that the leap day is
 * last), which avoids timegm()/gmtime_r() and their locale and TZ baggage. */
#include "ledger.h"
#include "util.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- calendar ---- */

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

/* Civil date of a day number (0 = 1970-01-01). */
static void civil_from_days(int64_t z, int64_t *ret_y, int *ret_m) {
    z += 719468; /* days from 0000-03-01 to 1970-01-01 */
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;                                  /* 0..146096 */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);           /* 0..365, from March 1 */
    int64_t mp = (5 * doy + 2) / 153;                                /* 0..11, March = 0 */
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *ret_y = yoe + era * 400 + (m <= 2);
    *ret_m = m;
}

/* Day number of the first day of a civil month. */
static int64_t days_from_civil(int64_t y, int m) {
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t mp = m > 2 ? m - 3 : m + 9;
    int64_t doy = (153 * mp + 2) / 5; /* day 1 of the month */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t slo_utc_day(int64_t s) { return floor_div(s, 86400); }

int64_t slo_utc_month(int64_t s) {
    int64_t y;
    int m;
    civil_from_days(slo_utc_day(s), &y, &m);
    return y * 12 + m - 1;
}

int64_t slo_utc_seconds_to_next_day(int64_t s) { return (slo_utc_day(s) + 1) * 86400 - s; }

int64_t slo_utc_seconds_to_next_month(int64_t s) {
    int64_t y;
    int m;
    civil_from_days(slo_utc_day(s), &y, &m);
    if (++m > 12)
        m = 1, y++;
    return days_from_civil(y, m) * 86400 - s;
}

/* ---- aggregator ---- */

struct tenant_slot {
    char id[SLO_TENANT_MAX + 1]; /* "" = free */
    int64_t day, month;           /* the periods the sums belong to */
    double day_sum, month_sum;
    uint64_t met[SLO_LEDGER_CHECKS], total[SLO_LEDGER_CHECKS];
};

struct slo_ledger {
    pthread_mutex_t mu;
    struct tenant_slot *slots; /* owned, cap entries */
    size_t cap, count, max;
};

static uint64_t hash_id(const char *s) {
    return util_fnv64(UTIL_FNV64_BASIS, s, strlen(s));
}

static bool tenant_valid(const char *t) {
    size_t n = t ? strlen(t) : 0;
    return n > 0 && n <= SLO_TENANT_MAX;
}

enum err slo_ledger_new(size_t max_tenants, struct slo_ledger **ret) {
    if (max_tenants < 1 || max_tenants > 1000000)
        return ERR_INVALID_FIELD;
    struct slo_ledger *l = calloc(1, sizeof *l);
    if (!l)
        return ERR_NOMEM;
    l->cap = 16;
    l->max = max_tenants;
    l->slots = calloc(l->cap, sizeof *l->slots);
    if (!l->slots) {
        free(l);
        return ERR_NOMEM;
    }
    pthread_mutex_init(&l->mu, NULL);
    *ret = l;
    return ERR_OK;
}

struct slo_ledger *slo_ledger_free(struct slo_ledger *l) {
    if (l) {
        pthread_mutex_destroy(&l->mu);
        free(l->slots);
        free(l);
    }
    return NULL;
}

static struct tenant_slot *probe(struct tenant_slot *slots, size_t cap, const char *id) {
    for (size_t i = hash_id(id) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!slots[i].id[0] || strcmp(slots[i].id, id) == 0)
            return &slots[i];
}

static bool grow(struct slo_ledger *l) {
    size_t cap = l->cap * 2;
    struct tenant_slot *s = calloc(cap, sizeof *s);
    if (!s)
        return false;
    for (size_t i = 0; i < l->cap; i++)
        if (l->slots[i].id[0])
            *probe(s, cap, l->slots[i].id) = l->slots[i];
    free(l->slots);
    l->slots = s;
    l->cap = cap;
    return true;
}

/* The tenant's slot, created on first use; NULL when full or out of memory
 * (*ret_e says which).  Called with the mutex held. */
static struct tenant_slot *slot_get(struct slo_ledger *l, const char *id, bool create, enum err *ret_e) {
    struct tenant_slot *s = probe(l->slots, l->cap, id);
    if (s->id[0] || !create)
        return s->id[0] ? s : NULL;
    if (l->count >= l->max) {
        *ret_e = ERR_OVERLOADED;
        return NULL;
    }
    /* keep the load factor at or below 1/2 */
    if ((l->count + 1) * 2 > l->cap) {
        if (!grow(l)) {
            *ret_e = ERR_NOMEM;
            return NULL;
        }
        s = probe(l->slots, l->cap, id);
    }
    memset(s, 0, sizeof *s);
    strcpy(s->id, id);
    l->count++;
    return s;
}

/* Moves the slot's periods forward to now's; never backwards. */
static void roll(struct tenant_slot *s, int64_t now_s) {
    int64_t d = slo_utc_day(now_s), m = slo_utc_month(now_s);
    if (d > s->day) {
        s->day = d;
        s->day_sum = 0;
    }
    if (m > s->month) {
        s->month = m;
        s->month_sum = 0;
    }
}

/* Live spend at now_s: counted in the slot's current day and month even
 * when the clock went back behind them. */
static void add_live(struct tenant_slot *s, double cost, int64_t now_s) {
    roll(s, now_s);
    s->day_sum += cost;
    s->month_sum += cost;
}

/* A stored row spent at ts_s, replayed at now_s: counted only in the
 * periods it belongs to. */
static void add_row(struct tenant_slot *s, double cost, int64_t ts_s, int64_t now_s) {
    roll(s, now_s);
    if (slo_utc_day(ts_s) >= s->day)
        s->day_sum += cost;
    if (slo_utc_month(ts_s) >= s->month)
        s->month_sum += cost;
}

enum err slo_ledger_add(struct slo_ledger *l, const char *tenant, double cost, int64_t now_s) {
    if (!tenant_valid(tenant) || !(cost >= 0) || !isfinite(cost))
        return ERR_INVALID_FIELD;
    enum err e = ERR_OK;
    pthread_mutex_lock(&l->mu);
    struct tenant_slot *s = slot_get(l, tenant, true, &e);
    if (s)
        add_live(s, cost, now_s);
    pthread_mutex_unlock(&l->mu);
    return e;
}

void slo_ledger_spent(struct slo_ledger *l, const char *tenant, int64_t now_s, double *ret_day, double *ret_month) {
    double d = 0, m = 0;
    if (tenant_valid(tenant)) {
        pthread_mutex_lock(&l->mu);
        struct tenant_slot *s = slot_get(l, tenant, false, NULL);
        if (s) {
            d = slo_utc_day(now_s) > s->day ? 0 : s->day_sum;
            m = slo_utc_month(now_s) > s->month ? 0 : s->month_sum;
        }
        pthread_mutex_unlock(&l->mu);
    }
    *ret_day = d;
    *ret_month = m;
}

void slo_ledger_entry_judge(struct slo_ledger_entry *e, const struct slo_objectives *o, int deadline_ms) {
    unsigned checked = 1u << SLO_OBJ_COST | 1u << SLO_OBJ_LATENCY | 1u << SLO_LEDGER_DEADLINE, met = 0;
    if (e->quality >= 0) {
        checked |= 1u << SLO_OBJ_QUALITY;
        if (e->quality >= o->quality_min)
            met |= 1u << SLO_OBJ_QUALITY;
    }
    if (e->cost <= o->cost_max)
        met |= 1u << SLO_OBJ_COST;
    if (e->latency_ms <= o->latency_p95_ms)
        met |= 1u << SLO_OBJ_LATENCY;
    if (e->latency_ms <= deadline_ms)
        met |= 1u << SLO_LEDGER_DEADLINE;
    e->checked = checked;
    e->met = met;
}

enum err slo_ledger_record(struct slo_ledger *l, const struct slo_ledger_entry *e) {
    if (!tenant_valid(e->tenant) || !(e->cost >= 0) || !isfinite(e->cost))
        return ERR_INVALID_FIELD;
    enum err err = ERR_OK;
    int64_t ts_s = floor_div(e->ts_ms, 1000);
    pthread_mutex_lock(&l->mu);
    struct tenant_slot *s = slot_get(l, e->tenant, true, &err);
    if (s) {
        add_live(s, e->cost, ts_s);
        for (int c = 0; c < SLO_LEDGER_CHECKS; c++)
            if (e->checked & (1u << c)) {
                s->total[c]++;
                s->met[c] += (e->met >> c) & 1u;
            }
    }
    pthread_mutex_unlock(&l->mu);
    return err;
}

void slo_ledger_attainment(struct slo_ledger *l, const char *tenant, int check, uint64_t *ret_met,
                           uint64_t *ret_total) {
    uint64_t met = 0, total = 0;
    if (tenant_valid(tenant) && check >= 0 && check < SLO_LEDGER_CHECKS) {
        pthread_mutex_lock(&l->mu);
        struct tenant_slot *s = slot_get(l, tenant, false, NULL);
        if (s) {
            met = s->met[check];
            total = s->total[check];
        }
        pthread_mutex_unlock(&l->mu);
    }
    *ret_met = met;
    *ret_total = total;
}

enum err slo_ledger_rebuild(struct slo_ledger *l, const struct slo_ledger_spend *rows, size_t n, int64_t now_s) {
    enum err result = ERR_OK;
    pthread_mutex_lock(&l->mu);
    memset(l->slots, 0, l->cap * sizeof *l->slots);
    l->count = 0;
    for (size_t i = 0; i < n; i++) {
        const struct slo_ledger_spend *r = &rows[i];
        if (!tenant_valid(r->tenant) || !(r->cost >= 0) || !isfinite(r->cost) ||
            slo_utc_month(r->ts_s) < slo_utc_month(now_s))
            continue; /* older months take no slot */
        enum err e = ERR_OK;
        struct tenant_slot *s = slot_get(l, r->tenant, true, &e);
        if (s)
            add_row(s, r->cost, r->ts_s, now_s);
        else
            result = e;
    }
    pthread_mutex_unlock(&l->mu);
    return result;
}

json_t *slo_ledger_entry_to_json(const struct slo_ledger_entry *e) {
    json_t *slo = json_object();
    if (!slo)
        return NULL;
    static const char *const names[SLO_LEDGER_CHECKS] = {"quality", "cost", "latency", "deadline"};
    for (int c = 0; c < SLO_LEDGER_CHECKS; c++)
        if (e->checked & (1u << c))
            json_object_set_new(slo, names[c], json_boolean((e->met >> c) & 1u));
    return json_pack("{s:s, s:s, s:s, s:I, s:{s:f, s:f, s:f}, s:{s:f, s:f, s:o}, s:o, s:b, s:b}", "tenant", e->tenant,
                     "intent", slo_intent_name(e->intent), "plan", e->plan_key, "ts_ms", (json_int_t)e->ts_ms,
                     "predicted", "quality", e->predicted_quality, "cost", e->predicted_cost, "latency_ms",
                     e->predicted_latency_ms, "actual", "cost", e->cost, "latency_ms", e->latency_ms, "quality",
                     e->quality >= 0 ? json_real(e->quality) : json_null(), "slo_met", slo, "exploring", e->exploring,
                     "degraded", e->degraded);
}
