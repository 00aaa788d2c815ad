/* planner.c - choosing a configuration per query.
 *
 * One pass predicts every configuration the limits and hints allow into a
 * fixed array on the stack; then at most four passes over that array pick
 * the winner with 0, 1, 2 or 3 objectives relaxed.  Everything the passes
 * need per tier and per generator (usable?, queueing delay) is computed
 * once per call, so the inner loop is a few loads and compares.
 *
 * Why relaxed objectives are minimised rather than ignored: dropping the
 * cost ceiling and then maximising quality would pick the most expensive
 * configuration, the opposite of "keep cost as close to the ceiling as
 * you can".  So with cost relaxed the planner takes the cheapest
 * configuration that meets the objectives it still holds.
 *
 * Exploration draws u = hash(seed, counter) in [0,1); when u < rate it
 * picks, among the near-feasible alternatives, the one with the smallest
 * hash(seed, counter, index): a uniform choice without a second array. */
#include "planner.h"
#include "jsonput.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

struct cand {
    float q, c, l, queue;
    int16_t index;
};

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit(uint64_t h) { return (double)(h >> 11) * (1.0 / 9007199254740992.0); }

double slo_planner_queue_ms(const struct slo_planner_input *in, enum slo_tier t, int replicas) {
    if (t == SLO_TIER_EXTRACTIVE || (unsigned)t >= SLO_TIERS)
        return 0;
    const struct slo_tier_live *tl = &in->tiers[t];
    if (tl->max_concurrency <= 0)
        return 0;
    /* A slot frees every service/max_concurrency ms on average; our last
     * call starts after `ahead` of them have freed.  The service time is
     * what the backends' calls take now, in milliseconds; the model's
     * tier level is in units of its nominal latencies (a 1.2 s p95 for
     * small), right as a factor but not as a duration: with it, waits
     * behind a simulator ten times faster were predicted 11 to 18 times
     * too long (docs/slo-experiment.md).  It stands in until a call has
     * been measured. */
    int ahead = tl->in_flight + tl->queued + replicas - tl->max_concurrency;
    if (ahead <= 0)
        return 0;
    double service = tl->service_ms > 0 ? tl->service_ms
                     : in->model        ? slo_model_tier_live_ms(in->model, t)
                                        : slo_model_tier_nominal_p95_ms(t);
    return ahead * service / tl->max_concurrency;
}

static double quality_hedged(const struct slo_planner_input *in, double q) {
    double conf = clampd(in->intent_confidence, 0, 1);
    return q - (1 - conf) * SLO_INTENT_UNCERTAINTY * (1 - q);
}

void slo_planner_predict(const struct slo_planner_input *in, int config, struct slo_prediction *ret) {
    struct slo_estimate e;
    struct slo_config c;
    if (!slo_space_config(config, &c)) {
        *ret = (struct slo_prediction){0};
        return;
    }
    slo_model_estimate(in->model, config, in->intent, in->now_s, &e);
    double queue = slo_planner_queue_ms(in, c.tier, c.replicas);
    *ret = (struct slo_prediction){
        .quality = quality_hedged(in, e.quality),
        .cost = e.cost,
        .latency_p95_ms = e.latency_p95_ms + queue,
        .queue_ms = queue,
    };
}

/* What the space may offer this call. */
struct filter {
    struct slo_space_limits lim;
    int retriever; /* -1 = any */
    int tier;      /* -1 = any */
    int k;         /* forced k level value, 0 = any */
    int pin;       /* the one space index allowed, -1 = any */
};

/* Predicts every configuration f allows into out; returns how many. */
static int collect(const struct slo_planner_input *in, const struct filter *f, struct cand *out) {
    /* per generator digit: allowed?, tier, queueing */
    bool gen_ok[SLO_SPACE_GENERATORS];
    float gen_queue[SLO_SPACE_GENERATORS];
    enum slo_tier gen_tier[SLO_SPACE_GENERATORS];
    float factor[SLO_TIERS];
    for (int t = 0; t < SLO_TIERS; t++)
        factor[t] = (float)(slo_model_tier_factor(in->model, (enum slo_tier)t, in->now_s) * /* for p95s */
                            slo_model_tier_spread(in->model, (enum slo_tier)t, in->now_s));
    for (int g = 0; g < SLO_SPACE_GENERATORS; g++) {
        struct slo_config c;
        slo_space_config(g, &c); /* retriever 0, k level 0, no rerank: only the generator matters */
        struct slo_space_limits lim = f->lim;
        lim.retrievers = 1u << c.retriever;
        lim.max_k = slo_space_k_levels[0];
        gen_ok[g] = slo_space_allowed(&lim, g) && (f->tier < 0 || (int)c.tier == f->tier);
        gen_tier[g] = c.tier;
        gen_queue[g] = (float)slo_planner_queue_ms(in, c.tier, c.replicas);
    }
    int n = 0, index = 0;
    for (int r = 0; r < SLO_RETRIEVERS; r++)
        for (int kl = 0; kl < SLO_SPACE_KS; kl++)
            for (int rr = 0; rr < 2; rr++, index += SLO_SPACE_GENERATORS) {
                int k = slo_space_k_levels[kl];
                if (!(f->lim.retrievers & (1u << r)) || (f->retriever >= 0 && r != f->retriever))
                    continue;
                if (f->k ? k != f->k : !(k <= f->lim.max_k || kl == 0))
                    continue;
                if (rr && !f->lim.reranker)
                    continue;
                for (int g = 0; g < SLO_SPACE_GENERATORS; g++) {
                    if (!gen_ok[g] || (f->pin >= 0 && index + g != f->pin))
                        continue;
                    int idx = index + g;
                    const struct slo_cell *cell = &in->model->cells[idx][in->intent];
                    out[n++] = (struct cand){
                        .q = (float)quality_hedged(in, cell->quality),
                        .c = cell->cost,
                        .l = cell->latency_p95_ms * factor[gen_tier[g]] + gen_queue[g],
                        .queue = gen_queue[g],
                        .index = (int16_t)idx,
                    };
                }
            }
    return n;
}

struct bounds {
    double qmin, cap, lat, left; /* left: hard budget */
    const enum slo_objective *prio;
};

/* How far x misses objective o; 0 when met.  Predictions are stored as
 * floats, so a prior of exactly 0.7 reads 0.69999999: misses below a
 * tolerance (1e-6 quality, 1e-6 relative cost, 1e-3 ms) count as met. */
static double violation(const struct cand *x, enum slo_objective o, const struct bounds *b) {
    double d;
    switch (o) {
    case SLO_OBJ_QUALITY:
        d = b->qmin - x->q;
        return d > 1e-6 ? d : 0;
    case SLO_OBJ_COST:
        d = x->c - b->cap;
        return d > 1e-6 * b->cap + 1e-12 ? d : 0;
    default:
        d = x->l - b->lat;
        return d > 1e-3 ? d : 0;
    }
}

static bool meets(const struct cand *x, enum slo_objective o, const struct bounds *b) {
    return violation(x, o, b) == 0;
}

/* True when x beats y with `relaxed` objectives relaxed. */
static bool better(const struct cand *x, const struct cand *y, unsigned relaxed, const struct bounds *b) {
    for (int i = 0; i < SLO_OBJ__COUNT; i++) {
        enum slo_objective o = b->prio[i];
        if (!(relaxed & (1u << o)))
            continue;
        double vx = violation(x, o, b), vy = violation(y, o, b);
        if (vx != vy)
            return vx < vy;
    }
    if (x->q != y->q)
        return x->q > y->q;
    if (x->c != y->c)
        return x->c < y->c;
    if (x->l != y->l)
        return x->l < y->l;
    return x->index < y->index;
}

/* The best candidate meeting every objective not in relaxed and the hard
 * budget; -1 when there is none.  *ret_count: how many qualified. */
static int pick(const struct cand *c, int n, unsigned relaxed, const struct bounds *b, int *ret_count) {
    int best = -1, count = 0;
    for (int i = 0; i < n; i++) {
        if (c[i].c > b->left)
            continue;
        bool ok = true;
        for (int o = 0; o < SLO_OBJ__COUNT && ok; o++)
            if (!(relaxed & (1u << o)))
                ok = meets(&c[i], (enum slo_objective)o, b);
        if (!ok)
            continue;
        count++;
        if (best < 0 || better(&c[i], &c[best], relaxed, b))
            best = i;
    }
    *ret_count = count;
    return best;
}

static int affordable(const struct cand *c, int n, double left) {
    int count = 0;
    for (int i = 0; i < n; i++)
        count += c[i].c <= left;
    return count;
}

/* The k level nearest to want among those max_k allows (ties: the larger). */
static int nearest_k(int want, int max_k) {
    int best = slo_space_k_levels[0];
    for (int i = 0; i < SLO_SPACE_KS; i++) {
        int k = slo_space_k_levels[i];
        if (k > max_k && i > 0)
            continue;
        if (abs(k - want) <= abs(best - want))
            best = k;
    }
    return best;
}

static const char *relaxed_reason(unsigned mask) {
    static const char *const r[8] = {
        "every objective met: best predicted quality",
        "quality floor unreachable: relaxed quality",
        "cost ceiling unreachable: relaxed cost",
        "relaxed quality and cost",
        "latency target unreachable: relaxed latency",
        "relaxed quality and latency",
        "relaxed cost and latency",
        "no objective reachable: relaxed all three",
    };
    return r[mask & 7];
}

static void refuse(struct slo_decision *d, struct slo_plan *p, const struct slo_objectives *o, double min_conf) {
    d->refuse = true;
    d->config = -1;
    d->key[0] = '\0';
    *p = (struct slo_plan){
        .retriever = SLO_RETRIEVER_HYBRID,
        .k = slo_space_k_levels[1],
        .tier = SLO_TIER_EXTRACTIVE,
        .replicas = 1,
        .aggregate = SLO_AGG_NONE,
        .max_tokens = slo_space_token_levels[0],
        .deadline_ms = o->deadline_ms,
        .min_confidence = min_conf,
        .reason = "refused",
    };
}

void slo_planner_choose(const struct slo_planner_input *in, struct slo_plan *ret_plan,
                        struct slo_decision *ret_decision) {
    struct slo_decision d = {.config = -1, .pace = 1, .budget_left = -1};
    struct slo_plan p;
    struct slo_planner_input checked;
    if ((unsigned)in->intent >= SLO_INTENT__COUNT) { /* the models are indexed by it */
        checked = *in;
        checked.intent = SLO_INTENT_OUT_OF_SCOPE;
        in = &checked;
    }
    struct slo_objectives o = in->objectives;
    if (in->hints.deadline_ms > 0 && in->hints.deadline_ms < o.deadline_ms)
        o.deadline_ms = in->hints.deadline_ms;
    if (o.latency_p95_ms > o.deadline_ms)
        o.latency_p95_ms = o.deadline_ms;

    /* ---- budget ---- */
    const struct slo_budget *bud = &in->budget;
    double left_day = bud->per_day > 0 ? bud->per_day - in->spent_day : INFINITY;
    double left_month = bud->per_month > 0 ? bud->per_month - in->spent_month : INFINITY;
    double left = fmin(left_day, left_month);
    if (isfinite(left))
        d.budget_left = left > 0 ? left : 0;
    bool degraded = false;
    if (left <= 0) {
        d.budget_spent = true;
        bool month = left_month <= 0;
        d.retry_after_s = (int)(month ? slo_utc_seconds_to_next_month(in->now_s) : slo_utc_seconds_to_next_day(in->now_s));
        if (bud->when_spent == SLO_SPENT_REFUSE) {
            snprintf(d.reason, sizeof d.reason, "%s budget of %g spent (%g)", month ? "monthly" : "daily",
                     month ? bud->per_month : bud->per_day, month ? in->spent_month : in->spent_day);
            refuse(&d, &p, &o, in->min_confidence);
            *ret_plan = p;
            *ret_decision = d;
            return;
        }
        degraded = true;
    }
    /* The hard cap: what is left.  Degraded requests are answered for free. */
    double hard = degraded ? INFINITY : left;
    /* Pacing: when the recent spend rate would exhaust what is left before
     * the day (month) ends, scale the per-query ceiling by the shortfall. */
    if (in->spend_rate_per_hour > 0) {
        double proj_day = in->spend_rate_per_hour * slo_utc_seconds_to_next_day(in->now_s) / 3600.0;
        double proj_month = in->spend_rate_per_hour * slo_utc_seconds_to_next_month(in->now_s) / 3600.0;
        if (isfinite(left_day) && left_day > 0 && proj_day > left_day)
            d.pace = fmin(d.pace, left_day / proj_day);
        if (isfinite(left_month) && left_month > 0 && proj_month > left_month)
            d.pace = fmin(d.pace, left_month / proj_month);
    }
    d.cost_cap = o.cost_max * d.pace;

    /* ---- the space this request may use ---- */
    struct filter f = {.lim = in->limits, .retriever = -1, .tier = -1, .pin = -1};
    for (int t = SLO_TIER_SMALL; t < SLO_TIERS; t++)
        if (!in->tiers[t].usable)
            f.lim.tiers &= ~SLO_TIER_BIT(t);
    if (f.lim.max_replicas > SLO_MAX_REPLICAS)
        f.lim.max_replicas = SLO_MAX_REPLICAS;
    if (degraded)
        f.lim.tiers = SLO_TIER_BIT(SLO_TIER_EXTRACTIVE);
    if (in->hints.retriever >= 0 && in->hints.retriever < SLO_RETRIEVERS)
        f.retriever = in->hints.retriever;
    if (in->hints.tier >= 0 && in->hints.tier < SLO_TIERS) {
        if (degraded && in->hints.tier != SLO_TIER_EXTRACTIVE)
            d.hint_dropped = true;
        else
            f.tier = in->hints.tier;
    }
    if (in->hints.k > 0)
        f.k = nearest_k(in->hints.k < f.lim.max_k || f.lim.max_k <= 0 ? in->hints.k : f.lim.max_k, f.lim.max_k);
    if (in->hints.pin > 0 && in->hints.pin <= SLO_SPACE_SIZE) {
        struct slo_config pc;
        slo_space_config(in->hints.pin - 1, &pc);
        if (degraded && pc.tier != SLO_TIER_EXTRACTIVE) {
            d.hint_dropped = true;
        } else {
            f.pin = in->hints.pin - 1;
            f.retriever = f.tier = -1; /* the configuration says both */
            f.k = 0;
        }
    }

    struct cand cands[SLO_SPACE_SIZE];
    int n = collect(in, &f, cands);
    /* A forced tier or configuration that is unusable, or that the budget
     * cannot pay for, gives way: the request is still answered. */
    if ((f.tier >= 0 || f.pin >= 0) && (n == 0 || affordable(cands, n, hard) == 0)) {
        f.tier = f.pin = -1;
        d.hint_dropped = true;
        n = collect(in, &f, cands);
    }
    d.considered = n;
    /* Only reachable when the caller does not offer the extractive tier. */
    if (n == 0 || affordable(cands, n, hard) == 0) {
        snprintf(d.reason, sizeof d.reason, "no available configuration%s",
                 n ? " fits the budget left" : ": every generator tier is unusable");
        refuse(&d, &p, &o, in->min_confidence);
        *ret_plan = p;
        *ret_decision = d;
        return;
    }

    /* ---- choose, relaxing from the lowest priority up ---- */
    struct bounds b = {.qmin = o.quality_min,
                       .cap = degraded ? INFINITY : d.cost_cap,
                       .lat = o.latency_p95_ms,
                       .left = hard,
                       .prio = o.priorities};
    unsigned relaxed = 0;
    int best = -1, count;
    for (int step = 0; step <= SLO_OBJ__COUNT; step++) {
        if (step > 0) {
            enum slo_objective ob = o.priorities[SLO_OBJ__COUNT - step];
            relaxed |= 1u << ob;
            d.relaxed[d.nrelaxed++] = ob;
        }
        best = pick(cands, n, relaxed, &b, &count);
        if (step == 0)
            d.feasible = count;
        if (best >= 0)
            break;
    }
    const char *reason = degraded ? "budget spent: extractive answers only" : relaxed_reason(relaxed);

    /* ---- explore ---- */
    if (in->explore_rate > 0 &&
        unit(mix64(in->seed ^ mix64(in->counter))) < fmin(in->explore_rate, SLO_EXPLORE_RATE_MAX)) {
        const struct cand *w = &cands[best];
        double qb = fmin(b.qmin, w->q) - SLO_EXPLORE_QUALITY_SLACK;
        double cb = fmax(b.cap, w->c) * SLO_EXPLORE_SLACK;
        double lb = fmin(fmax(b.lat, w->l) * SLO_EXPLORE_SLACK, o.deadline_ms);
        uint64_t base = mix64(in->seed + 0x5bd1e995u) ^ mix64(~in->counter), low = UINT64_MAX;
        int alt = -1;
        for (int i = 0; i < n; i++) {
            const struct cand *x = &cands[i];
            if (i == best || x->c > hard || x->q < qb || x->c > cb || x->l > lb)
                continue;
            uint64_t h = mix64(base ^ (uint64_t)x->index);
            if (h < low)
                low = h, alt = i;
        }
        if (alt >= 0) {
            best = alt;
            d.exploring = true;
            reason = "exploring a near-feasible alternative";
        }
    }

    /* ---- the plan ---- */
    const struct cand *w = &cands[best];
    struct slo_config c;
    slo_space_config(w->index, &c);
    p = (struct slo_plan){.deadline_ms = o.deadline_ms, .min_confidence = in->min_confidence, .reason = reason};
    slo_space_apply(&c, f.lim.max_tokens, &p);
    if (in->hints.k > 0 && f.pin < 0)
        p.k = in->hints.k;
    if (f.lim.max_k > 0 && p.k > f.lim.max_k)
        p.k = f.lim.max_k;
    p.predicted_quality = w->q;
    p.predicted_cost = w->c;
    p.predicted_latency_ms = w->l;
    p.exploring = d.exploring;
    p.degraded = degraded;

    d.config = w->index;
    slo_space_key(w->index, d.key, sizeof d.key);
    d.predicted_quality = w->q;
    d.predicted_cost = w->c;
    d.predicted_latency_p95_ms = w->l;
    d.queue_ms = w->queue;
    d.degraded = degraded;
    int len = snprintf(d.reason, sizeof d.reason, "%s", reason);
    for (int i = 0; i < d.nrelaxed && len > 0 && (size_t)len < sizeof d.reason; i++) {
        enum slo_objective ob = d.relaxed[i];
        if (ob == SLO_OBJ_QUALITY)
            len += snprintf(d.reason + len, sizeof d.reason - len, "; quality_min %.2f", o.quality_min);
        else if (ob == SLO_OBJ_COST)
            len += snprintf(d.reason + len, sizeof d.reason - len, "; cost_max %.6g", d.cost_cap);
        else
            len += snprintf(d.reason + len, sizeof d.reason - len, "; latency_p95_ms %d", o.latency_p95_ms);
    }
    if (d.hint_dropped && len > 0 && (size_t)len < sizeof d.reason) {
        char what[SLO_KEY_MAX + 16] = "";
        if (in->hints.pin > 0 && in->hints.pin <= SLO_SPACE_SIZE)
            slo_space_key(in->hints.pin - 1, what, sizeof what);
        snprintf(d.reason + len, sizeof d.reason - len, "; requested %s %s unavailable or unaffordable",
                 what[0] ? "configuration" : "tier", what[0] ? what : slo_tier_name((enum slo_tier)in->hints.tier));
    }
    *ret_plan = p;
    *ret_decision = d;
}

json_t *slo_decision_to_json(const struct slo_decision *d) {
    /* field by field: on every answer, and json_pack parsed its format
     * string each time (common/jsonput.h) */
    json_t *o = json_object(), *pred = json_object(), *relaxed = json_array();
    int f = 0;
    for (int i = 0; relaxed && i < d->nrelaxed; i++)
        f |= json_array_append_new(relaxed, json_stringn_nocheck(slo_objective_name(d->relaxed[i]),
                                                                  strlen(slo_objective_name(d->relaxed[i]))));
    f |= jput_name(o, "config", d->config >= 0 ? d->key : NULL);
    f |= jput_real(pred, "quality", d->predicted_quality);
    f |= jput_real(pred, "cost", d->predicted_cost);
    f |= jput_real(pred, "latency_p95_ms", d->predicted_latency_p95_ms);
    f |= jput_real(pred, "queue_ms", d->queue_ms);
    f |= jput(o, "predicted", pred);
    f |= jput(o, "relaxed", relaxed);
    f |= jput_bool(o, "refused", d->refuse);
    f |= jput_int(o, "retry_after_s", d->retry_after_s);
    f |= jput_bool(o, "budget_spent", d->budget_spent);
    f |= jput_bool(o, "degraded", d->degraded);
    f |= jput_bool(o, "exploring", d->exploring);
    f |= jput_bool(o, "hint_dropped", d->hint_dropped);
    f |= jput_int(o, "considered", d->considered);
    f |= jput_int(o, "feasible", d->feasible);
    f |= jput_real(o, "cost_cap", d->cost_cap);
    f |= jput_real(o, "pace", d->pace);
    f |= jput_real(o, "budget_left", d->budget_left);
    f |= jput_str(o, "reason", d->reason);
    return jput_done(o, f);
}
