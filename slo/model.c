/* model.c - priors, online updates and (de)serialisation of the models.
 *
 * Two decisions worth knowing:
 * - Cost and latency are decayed sums with the prior as a decaying pseudo-
 *   observation: estimate = (prior * prior_weight + sum) / (prior_weight + w),
 *   and each observation multiplies every weight by SLO_MODEL_DECAY.  One
 *   formula covers "no data yet", "a little data" and "old data fading".
 * - Latency is split into a tier level and a per-cell shape.  A generator
 *   call is normalised by its cell's prior (call x nominal p95 / cell prior
 *   p95) before it enters the tier's EWMA, so short and long configurations
 *   measure the same level; the cell then records its end-to-end latency
 *   divided by that level (x nominal mean / live).  A slowdown, and a
 *   recovery, therefore move every configuration of the tier at once. */
#include "model.h"
#include "profile.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAT_FIRST_EDGE 5.0 /* upper edge of bucket 0, ms */
#define LAT_RATIO 1.5
#define MEAN_OF_P95 0.7 /* prior mean latency = 0.7 x prior p95 */
#define CANTELLI_95 4.358899 /* sqrt(19): P(X >= mean + k sd) <= 1 / (1 + k^2) = 5% */

/* ---- built-in priors (documented in docs/slo.md) ---- */

static const double tier_quality[SLO_TIERS] = {0.50, 0.66, 0.76, 0.85};
static const double tier_cost[SLO_TIERS] = {0, 0.0004, 0.0015, 0.006};
static const double tier_p95[SLO_TIERS] = {60, 1200, 2500, 5000}; /* generation only */

/* Per intent, in enum order: factoid explanation procedural comparison list
 * summary chitchat out_of_scope. */
static const double intent_dq_extractive[SLO_INTENT__COUNT] = {0.05, -0.12, -0.05, -0.20, -0.10, -0.25, -0.20, 0};
static const double intent_dq_llm[SLO_INTENT__COUNT] = {0.02, 0, 0, -0.03, 0, -0.02, 0.05, 0};
static const double intent_length[SLO_INTENT__COUNT] = {0.8, 1.1, 1.1, 1.2, 1.1, 1.3, 0.7, 0.7};
static const bool intent_long_answer[SLO_INTENT__COUNT] = {false, true, true, true, true, true, false, false};

static const double retriever_dq[SLO_RETRIEVERS] = {-0.03, -0.02, 0};
static const double retriever_ms[SLO_RETRIEVERS] = {15, 20, 30};

static double clamp(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

double slo_model_tier_nominal_p95_ms(enum slo_tier t) {
    return (unsigned)t < SLO_TIERS ? tier_p95[t] : 0;
}

void slo_model_prior(int config, enum slo_intent intent, double *ret_quality, double *ret_cost, double *ret_p95_ms) {
    struct slo_config c;
    if (!slo_space_config(config, &c) || (unsigned)intent >= SLO_INTENT__COUNT) {
        *ret_quality = 0, *ret_cost = 0, *ret_p95_ms = 0;
        return;
    }
    bool llm = c.tier != SLO_TIER_EXTRACTIVE;
    double q = tier_quality[c.tier] + (llm ? intent_dq_llm : intent_dq_extractive)[intent];
    q += retriever_dq[c.retriever];
    q += c.k == 3 ? (llm ? -0.03 : -0.02) : c.k == 8 ? (llm ? 0.02 : 0.01) : 0;
    if (c.rerank)
        q += 0.03;
    double ms = retriever_ms[c.retriever] + c.k + (c.rerank ? 5 : 0); /* the built-in reranker: ~0.1 ms a passage */
    double cost = 0;
    if (!llm) {
        ms += tier_p95[0] + 5 * c.k;
    } else {
        bool long_tokens = c.max_tokens > slo_space_token_levels[0];
        if (long_tokens && intent_long_answer[intent])
            q += 0.03;
        /* Replicas: the answer is better by a share of what is missing. */
        /* by aggregation: vote, confidence, judge */
        static const double gain[3][SLO_MAX_REPLICAS + 1] = {
            {0, 0, 0.10, 0.22}, {0, 0, 0.15, 0.20}, {0, 0, 0.18, 0.25}};
        if (c.replicas > 1)
            q += (1 - q) * gain[c.aggregate == SLO_AGG_JUDGE ? 2 : c.aggregate == SLO_AGG_CONFIDENCE][c.replicas];
        double len = intent_length[intent];
        double one = tier_cost[c.tier] * len * (0.7 + 0.06 * c.k) * (long_tokens ? 1.6 : 1.0);
        cost = one * c.replicas;
        ms += tier_p95[c.tier] * len * (0.9 + 0.02 * c.k) * (long_tokens ? 1.5 : 1.0) * (1 + 0.12 * (c.replicas - 1));
        if (c.aggregate == SLO_AGG_JUDGE) {
            /* one more call, on the same tier, reading the candidates and
             * answering with a number: a third of an answer's cost, and a
             * short generation after the replicas */
            cost += one * 0.35;
            ms += tier_p95[c.tier] * 0.35;
        }
    }
    *ret_quality = clamp(q, 0.01, 0.99);
    *ret_cost = cost;
    *ret_p95_ms = ms;
}

/* ---- latency histogram ---- */

static double bucket_lo(int b) { return b == 0 ? 0 : LAT_FIRST_EDGE * pow(LAT_RATIO, b - 1); }
static double bucket_hi(int b) { return LAT_FIRST_EDGE * pow(LAT_RATIO, b); }

static int bucket_of(double ms) {
    if (!(ms >= LAT_FIRST_EDGE))
        return 0;
    int b = 1 + (int)floor(log(ms / LAT_FIRST_EDGE) / log(LAT_RATIO));
    return b >= SLO_LAT_BUCKETS ? SLO_LAT_BUCKETS - 1 : b;
}

/* The 95th percentile, interpolated geometrically inside its bucket. */
static double hist_p95(const float *h, double total) {
    double target = 0.95 * total, cum = 0;
    for (int b = 0; b < SLO_LAT_BUCKETS; b++) {
        if (h[b] <= 0)
            continue;
        if (cum + h[b] >= target) {
            double f = clamp((target - cum) / h[b], 0, 1);
            if (b == 0)
                return bucket_hi(0) * f;
            return bucket_lo(b) * pow(LAT_RATIO, f);
        }
        cum += h[b];
    }
    /* rounding: the mass sits in the last non-empty bucket */
    for (int b = SLO_LAT_BUCKETS - 1; b >= 0; b--)
        if (h[b] > 0)
            return bucket_hi(b);
    return 0;
}

/* ---- cells ---- */

static double nominal_mean(enum slo_tier t) { return tier_p95[t] * MEAN_OF_P95; }

/* A tier level (ms, nominal units) as the factor predictions scale by. */
static double level_factor(enum slo_tier t, double level) {
    return clamp(level / nominal_mean(t), SLO_MODEL_TIER_FACTOR_MIN, SLO_MODEL_TIER_FACTOR_MAX);
}

static void cell_refresh(struct slo_cell *c) {
    c->quality = (float)clamp((c->prior_quality * c->prior_n + c->q_sum) / (c->prior_n + c->q_w), 0, 1);
    double pw = c->prior_weight, w = c->w, tw = pw + w;
    if (tw <= 0) { /* cannot happen with a positive prior weight; be safe */
        pw = 1, tw = 1 + w;
    }
    c->cost = (float)((c->prior_cost * pw + c->cost_sum) / tw);
    c->latency_mean_ms = (float)((c->prior_p95_ms * MEAN_OF_P95 * pw + c->lat_sum) / tw);
    double p95 = 0;
    if (w > 0) {
        double mean = c->lat_sum / w, var = c->lat_sq_sum / w - mean * mean;
        p95 = fmin(hist_p95(c->hist, w), mean + CANTELLI_95 * sqrt(var > 0 ? var : 0));
    }
    c->latency_p95_ms = (float)((c->prior_p95_ms * pw + p95 * w) / tw);
}

/* Back to the priors: observations and estimates cleared, then refreshed. */
static void cell_reset(struct slo_cell *c) {
    *c = (struct slo_cell){.prior_quality = c->prior_quality,
                           .prior_n = c->prior_n,
                           .prior_cost = c->prior_cost,
                           .prior_p95_ms = c->prior_p95_ms,
                           .prior_weight0 = c->prior_weight0,
                           .prior_weight = c->prior_weight0};
    cell_refresh(c);
}

static enum slo_tier tier_of(int config) {
    struct slo_config c;
    return slo_space_config(config, &c) ? c.tier : SLO_TIER_EXTRACTIVE;
}

/* Notes one call's time over the p95 predicted for it, and recomputes
 * the spread: the 95th percentile of the ratios within the staleness
 * window of now_s, at least 1 (slo_model_tier_spread). */
static void spread_note(struct slo_tier_level *tl, double ratio, int64_t now_s) {
    tl->ratio[tl->ratio_next % SLO_MODEL_SPREAD_CALLS] = (float)ratio;
    tl->ratio_s[tl->ratio_next % SLO_MODEL_SPREAD_CALLS] = now_s;
    tl->ratio_next++;
    float v[SLO_MODEL_SPREAD_CALLS];
    int n = 0;
    for (int i = 0; i < SLO_MODEL_SPREAD_CALLS && (uint32_t)i < tl->ratio_next; i++)
        if (now_s <= 0 || now_s - tl->ratio_s[i] <= (int64_t)SLO_MODEL_TIER_STALE_S)
            v[n++] = tl->ratio[i];
    if (n < SLO_MODEL_SPREAD_MIN) {
        tl->spread = 1;
        return;
    }
    int want = (int)ceil(0.95 * n) - 1; /* the nearest-rank 95th percentile */
    for (int i = 0; i <= want; i++)     /* a partial selection sort: n <= 32 */
        for (int j = i + 1; j < n; j++)
            if (v[j] < v[i]) {
                float x = v[i];
                v[i] = v[j];
                v[j] = x;
            }
    tl->spread = (float)fmax(1.0, v[want]);
}

static struct slo_tier_level tier_initial(enum slo_tier t) {
    float nominal = (float)nominal_mean(t);
    return (struct slo_tier_level){.live_ms = nominal, .base_ms = nominal};
}

static void model_init(struct slo_model *m) {
    for (int t = 0; t < SLO_TIERS; t++)
        m->tiers[t] = tier_initial((enum slo_tier)t);
    for (int i = 0; i < SLO_SPACE_SIZE; i++) {
        for (int in = 0; in < SLO_INTENT__COUNT; in++) {
            struct slo_cell *c = &m->cells[i][in];
            double q, cost, p95;
            slo_model_prior(i, (enum slo_intent)in, &q, &cost, &p95);
            *c = (struct slo_cell){.prior_quality = (float)q, .prior_n = SLO_MODEL_PRIOR_N, .prior_cost = (float)cost,
                                   .prior_p95_ms = (float)p95, .prior_weight0 = SLO_MODEL_PRIOR_WEIGHT,
                                   .prior_weight = SLO_MODEL_PRIOR_WEIGHT, .signal_base = -1};
            cell_refresh(c);
        }
    }
}

enum err slo_model_new(struct slo_model **ret) {
    struct slo_model *m = calloc(1, sizeof *m);
    if (!m)
        return ERR_NOMEM;
    model_init(m);
    *ret = m;
    return ERR_OK;
}

struct slo_model *slo_model_free(struct slo_model *m) {
    free(m);
    return NULL;
}

static bool valid_cell(int config, enum slo_intent intent) {
    return config >= 0 && config < SLO_SPACE_SIZE && (unsigned)intent < SLO_INTENT__COUNT;
}

double slo_model_tier_freshness(const struct slo_model *m, enum slo_tier t, int64_t now_s) {
    if ((unsigned)t >= SLO_TIERS || now_s <= 0 || m->tiers[t].last_s <= 0 || now_s <= m->tiers[t].last_s)
        return 1;
    return exp2(-(double)(now_s - m->tiers[t].last_s) / SLO_MODEL_TIER_STALE_S);
}

/* The tier's level as the planner uses it at now_s: the live level slid
 * toward the baseline by its age. */
static double tier_level(const struct slo_model *m, enum slo_tier t, int64_t now_s) {
    const struct slo_tier_level *tl = &m->tiers[t];
    return tl->base_ms + (tl->live_ms - tl->base_ms) * slo_model_tier_freshness(m, t, now_s);
}

void slo_model_observe(struct slo_model *m, int config, enum slo_intent intent, const struct slo_observation *o) {
    if (!valid_cell(config, intent) || !(o->cost >= 0) || !(o->latency_ms >= 0) || !isfinite(o->cost) ||
        !isfinite(o->latency_ms))
        return;
    enum slo_tier t = tier_of(config);
    struct slo_cell *c = &m->cells[config][intent];
    double lat = o->latency_ms;
    if (t != SLO_TIER_EXTRACTIVE) {
        struct slo_tier_level *tl = &m->tiers[t];
        if (o->call_ms >= 0 && isfinite(o->call_ms) && c->prior_p95_ms > 0) {
            double norm = o->call_ms * tier_p95[t] / c->prior_p95_ms;
            /* start from the level the planner was using */
            double level = tier_level(m, t, o->now_s);
            /* the call against the p95 predicted for it before the spread */
            double pred = c->latency_p95_ms * level_factor(t, level);
            if (pred > 0)
                spread_note(tl, o->call_ms / pred, o->now_s);
            tl->live_ms = (float)((1 - SLO_MODEL_TIER_ALPHA) * level + SLO_MODEL_TIER_ALPHA * norm);
            tl->base_ms = (float)((1 - SLO_MODEL_TIER_BASE_ALPHA) * tl->base_ms + SLO_MODEL_TIER_BASE_ALPHA * norm);
            tl->n++;
            if (o->now_s > tl->last_s)
                tl->last_s = o->now_s;
        }
        /* the latency this configuration would have had at the nominal level */
        lat *= clamp(nominal_mean(t) / tl->live_ms, 1 / SLO_MODEL_TIER_FACTOR_MAX, 1 / SLO_MODEL_TIER_FACTOR_MIN);
    }
    const float d = (float)SLO_MODEL_DECAY;
    c->prior_weight *= d;
    c->w = c->w * d + 1;
    c->cost_sum = c->cost_sum * d + (float)o->cost;
    c->lat_sum = c->lat_sum * d + (float)lat;
    c->lat_sq_sum = c->lat_sq_sum * d + (float)(lat * lat);
    for (int b = 0; b < SLO_LAT_BUCKETS; b++)
        c->hist[b] *= d;
    c->hist[bucket_of(lat)] += 1;
    c->n++;
    cell_refresh(c);
}

void slo_model_observe_quality(struct slo_model *m, int config, enum slo_intent intent, double value, double weight) {
    if (!valid_cell(config, intent) || !(value >= 0 && value <= 1) || !(weight > 0) || !isfinite(weight))
        return;
    struct slo_cell *c = &m->cells[config][intent];
    c->q_sum += (float)(value * weight);
    c->q_w += (float)weight;
    double total = c->prior_n + c->q_w;
    if (total > SLO_MODEL_QUALITY_WEIGHT_MAX && c->q_w > 0) {
        /* Keep the prior's share and scale the data down: old ratings fade. */
        double keep = (SLO_MODEL_QUALITY_WEIGHT_MAX - c->prior_n) / c->q_w;
        if (keep < 0)
            keep = 0;
        c->q_sum *= (float)keep;
        c->q_w *= (float)keep;
    }
    c->nq++;
    cell_refresh(c);
}

double slo_model_observe_signal(struct slo_model *m, int config, enum slo_intent intent, double signal,
                                double weight) {
    if (!valid_cell(config, intent) || !(signal >= 0 && signal <= 1))
        return -1;
    const struct slo_cell *c = &m->cells[config][intent];
    double v = c->signal_base >= 0 ? clamp(c->prior_quality + (signal - c->signal_base), 0, 1) : signal;
    slo_model_observe_quality(m, config, intent, v, weight);
    return v;
}

double slo_model_tier_factor(const struct slo_model *m, enum slo_tier t, int64_t now_s) {
    if (t == SLO_TIER_EXTRACTIVE || (unsigned)t >= SLO_TIERS)
        return 1;
    return level_factor(t, tier_level(m, t, now_s));
}

double slo_model_tier_spread(const struct slo_model *m, enum slo_tier t, int64_t now_s) {
    if (t == SLO_TIER_EXTRACTIVE || (unsigned)t >= SLO_TIERS)
        return 1;
    double s = m->tiers[t].spread > 1 ? m->tiers[t].spread : 1;
    return 1 + (s - 1) * slo_model_tier_freshness(m, t, now_s);
}

double slo_model_tier_live_ms(const struct slo_model *m, enum slo_tier t) {
    return (unsigned)t < SLO_TIERS ? m->tiers[t].live_ms : 0;
}

void slo_model_estimate(const struct slo_model *m, int config, enum slo_intent intent, int64_t now_s,
                        struct slo_estimate *ret) {
    if (!valid_cell(config, intent)) {
        *ret = (struct slo_estimate){.tier_factor = 1, .spread = 1};
        return;
    }
    const struct slo_cell *c = &m->cells[config][intent];
    double f = slo_model_tier_factor(m, tier_of(config), now_s);
    double sp = slo_model_tier_spread(m, tier_of(config), now_s);
    *ret = (struct slo_estimate){
        .quality = c->quality,
        .cost = c->cost,
        .latency_mean_ms = c->latency_mean_ms * f,
        .latency_p95_ms = c->latency_p95_ms * f * sp,
        .tier_factor = f,
        .spread = sp,
        .n = c->n,
        .nq = c->nq,
    };
}

/* ---- JSON ---- */

static enum err fail(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum err fail(char *errbuf, size_t errlen, const char *fmt, ...) {
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return ERR_INVALID_FIELD;
}

/* A finite number >= lo (and <= hi when hi >= lo). */
static bool num_in(const json_t *v, double lo, double hi, double *ret) {
    if (!json_is_number(v))
        return false;
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || (hi >= lo && d > hi))
        return false;
    *ret = d;
    return true;
}

/* Raw decayed sums, not means: floats printed with 17 digits read back
 * bit-exact, so a saved model predicts exactly as the live one did. */
static json_t *cell_json(const struct slo_cell *c) {
    json_t *j = json_object();
    if (!j)
        return NULL;
    int bad = 0;
    if (c->n > 0) {
        json_t *h = json_array();
        for (int b = 0; h && b < SLO_LAT_BUCKETS; b++)
            bad |= json_array_append_new(h, json_real(c->hist[b]));
        bad |= json_object_set_new(j, "n", json_integer(c->n));
        bad |= json_object_set_new(j, "weight", json_real(c->w));
        bad |= json_object_set_new(j, "prior_weight", json_real(c->prior_weight));
        bad |= json_object_set_new(j, "cost_sum", json_real(c->cost_sum));
        bad |= json_object_set_new(j, "latency_sum", json_real(c->lat_sum));
        bad |= json_object_set_new(j, "latency_sq_sum", json_real(c->lat_sq_sum));
        bad |= json_object_set_new(j, "latency_hist", h);
    }
    if (c->nq > 0) {
        bad |= json_object_set_new(j, "quality_n", json_integer(c->nq));
        bad |= json_object_set_new(j, "quality_weight", json_real(c->q_w));
        bad |= json_object_set_new(j, "quality_sum", json_real(c->q_sum));
    }
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_t *slo_model_to_json(const struct slo_model *m) {
    json_t *tiers = json_object(), *cells = json_object();
    int bad = !tiers || !cells;
    for (int t = 1; t < SLO_TIERS && !bad; t++)
        bad |= json_object_set_new(tiers, slo_tier_name((enum slo_tier)t),
                                   json_pack("{s:f, s:f, s:I, s:I}", "live_ms", (double)m->tiers[t].live_ms,
                                             "base_ms", (double)m->tiers[t].base_ms, "n", (json_int_t)m->tiers[t].n,
                                             "last_s", (json_int_t)m->tiers[t].last_s));
    for (int i = 0; i < SLO_SPACE_SIZE && !bad; i++) {
        json_t *per = NULL;
        for (int in = 0; in < SLO_INTENT__COUNT && !bad; in++) {
            const struct slo_cell *c = &m->cells[i][in];
            if (c->n == 0 && c->nq == 0)
                continue;
            if (!per && !(per = json_object())) {
                bad = 1;
                break;
            }
            bad |= json_object_set_new(per, slo_intent_name((enum slo_intent)in), cell_json(c));
        }
        if (per) {
            char key[SLO_KEY_MAX];
            slo_space_key(i, key, sizeof key);
            bad |= json_object_set_new(cells, key, per);
        }
    }
    json_t *j = bad ? NULL
                    : json_pack("{s:i, s:o, s:o}", "version", SLO_MODEL_STATE_VERSION, "tiers", tiers, "cells", cells);
    if (bad) {
        json_decref(tiers);
        json_decref(cells);
    }
    return j;
}

/* Validates (apply = false) or applies one cell's state. */
/* Validates (apply = false) or applies one cell's state. */
static enum err load_cell(struct slo_cell *c, const json_t *j, const char *path, bool apply, char *errbuf,
                          size_t errlen) {
    if (!json_is_object(j))
        return fail(errbuf, errlen, "%s: must be an object", path);
    struct slo_cell v = *c;
    cell_reset(&v);
    const char *key;
    const json_t *x;
    double n = 0, w = -1, pw = -1, cost = -1, lat = -1, sq = -1, qn = 0, qw = -1, q = -1;
    bool hist = false;
    json_object_foreach((json_t *)j, key, x) {
        bool ok;
        if (strcmp(key, "n") == 0)
            ok = num_in(x, 1, 4e9, &n) && n == floor(n);
        else if (strcmp(key, "weight") == 0)
            ok = num_in(x, 0, 1e6, &w);
        else if (strcmp(key, "prior_weight") == 0)
            ok = num_in(x, 0, 1e6, &pw);
        else if (strcmp(key, "cost_sum") == 0)
            ok = num_in(x, 0, 1e12, &cost);
        else if (strcmp(key, "latency_sum") == 0)
            ok = num_in(x, 0, 1e12, &lat);
        else if (strcmp(key, "latency_sq_sum") == 0)
            ok = num_in(x, 0, 1e30, &sq);
        else if (strcmp(key, "quality_n") == 0)
            ok = num_in(x, 1, 4e9, &qn) && qn == floor(qn);
        else if (strcmp(key, "quality_weight") == 0)
            ok = num_in(x, 0, 1e9, &qw);
        else if (strcmp(key, "quality_sum") == 0)
            ok = num_in(x, 0, 1e9, &q);
        else if (strcmp(key, "latency_hist") == 0) {
            ok = json_is_array(x) && json_array_size(x) == SLO_LAT_BUCKETS;
            for (int b = 0; ok && b < SLO_LAT_BUCKETS; b++) {
                double hb;
                ok = num_in(json_array_get(x, b), 0, 1e6, &hb);
                v.hist[b] = (float)hb;
            }
            if (!ok)
                return fail(errbuf, errlen, "%s.latency_hist: must be an array of %d numbers >= 0", path,
                            SLO_LAT_BUCKETS);
            hist = true;
        } else
            return fail(errbuf, errlen, "%s.%s: unknown key", path, key);
        if (!ok)
            return fail(errbuf, errlen, "%s.%s: out of range", path, key);
    }
    bool has_lat = n > 0, has_q = qn > 0;
    if (has_lat && (w <= 0 || pw < 0 || cost < 0 || lat < 0 || sq < 0 || !hist))
        return fail(errbuf, errlen,
                    "%s: n needs weight > 0, prior_weight, cost_sum, latency_sum, latency_sq_sum and latency_hist",
                    path);
    if (has_q && (qw <= 0 || q < 0 || q > qw * (1 + 1e-6)))
        return fail(errbuf, errlen, "%s: quality_n needs quality_weight > 0 and quality_sum <= quality_weight", path);
    if (!apply)
        return ERR_OK;
    if (has_lat) {
        v.n = (uint32_t)n;
        v.w = (float)w;
        v.prior_weight = (float)pw;
        v.cost_sum = (float)cost;
        v.lat_sum = (float)lat;
        v.lat_sq_sum = (float)sq;
    } else {
        memset(v.hist, 0, sizeof v.hist);
    }
    if (has_q) {
        v.nq = (uint32_t)qn;
        v.q_w = (float)qw;
        v.q_sum = (float)q;
    }
    cell_refresh(&v);
    *c = v;
    return ERR_OK;
}

static enum err load_state(struct slo_model *m, const json_t *j, bool apply, char *errbuf, size_t errlen) {
    if (!json_is_object(j))
        return fail(errbuf, errlen, "model: must be an object");
    const char *key, *ikey;
    const json_t *v, *iv;
    json_object_foreach((json_t *)j, key, v) {
        if (strcmp(key, "version") && strcmp(key, "tiers") && strcmp(key, "cells"))
            return fail(errbuf, errlen, "%s: unknown key", key);
    }
    const json_t *ver = json_object_get(j, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) != SLO_MODEL_STATE_VERSION)
        return fail(errbuf, errlen, "version: must be %d", SLO_MODEL_STATE_VERSION);
    const json_t *tiers = json_object_get(j, "tiers"), *cells = json_object_get(j, "cells");
    if (tiers && !json_is_object(tiers))
        return fail(errbuf, errlen, "tiers: must be an object");
    if (cells && !json_is_object(cells))
        return fail(errbuf, errlen, "cells: must be an object");
    if (apply) {
        for (int t = 0; t < SLO_TIERS; t++)
            m->tiers[t] = tier_initial((enum slo_tier)t);
        for (int i = 0; i < SLO_SPACE_SIZE; i++)
            for (int in = 0; in < SLO_INTENT__COUNT; in++)
                cell_reset(&m->cells[i][in]);
    }
    json_object_foreach((json_t *)tiers, key, v) {
        int t = slo_tier_parse(key);
        if (t <= 0)
            continue; /* unknown or extractive: nothing to restore */
        double live, base, n = 0, last = 0;
        const json_t *lv = json_object_get(v, "live_ms"), *bv = json_object_get(v, "base_ms"),
                     *nv = json_object_get(v, "n"), *sv = json_object_get(v, "last_s");
        if (!json_is_object(v) || json_object_size(v) != 2u + !!nv + !!sv || !num_in(lv, 0, 1e9, &live) ||
            live <= 0 || !num_in(bv, 0, 1e9, &base) || base <= 0 || (nv && !num_in(nv, 0, 4e9, &n)) ||
            (sv && !num_in(sv, 0, 1e13, &last)))
            return fail(errbuf, errlen,
                        "tiers.%s: must be {\"live_ms\": > 0, \"base_ms\": > 0, \"n\": >= 0, \"last_s\": >= 0}",
                        key);
        if (apply)
            m->tiers[t] = (struct slo_tier_level){
                .live_ms = (float)live, .base_ms = (float)base, .n = (uint32_t)n, .last_s = (int64_t)last};
    }
    json_object_foreach((json_t *)cells, key, v) {
        int config = slo_space_find(key);
        if (config < 0)
            continue;
        if (!json_is_object(v))
            return fail(errbuf, errlen, "cells.%s: must be an object", key);
        json_object_foreach((json_t *)v, ikey, iv) {
            int in = slo_intent_parse(ikey);
            if (in < 0)
                continue;
            char path[SLO_KEY_MAX + 48];
            snprintf(path, sizeof path, "cells.%s.%s", key, ikey);
            enum err e = load_cell(&m->cells[config][in], iv, path, apply, errbuf, errlen);
            if (e != ERR_OK)
                return e;
        }
    }
    return ERR_OK;
}

enum err slo_model_load_json(struct slo_model *m, const json_t *j, char *errbuf, size_t errlen) {
    enum err e = load_state(m, j, false, errbuf, errlen);
    if (e != ERR_OK)
        return e;
    return load_state(m, j, true, errbuf, errlen);
}

/* ---- calibration ---- */

struct prior_patch {
    double quality, cost, p95, n, signal; /* < 0: keep */
};

static enum err parse_patch(const json_t *j, const char *path, char *errbuf, size_t errlen, struct prior_patch *ret) {
    if (!json_is_object(j))
        return fail(errbuf, errlen, "%s: must be an object", path);
    struct prior_patch p = {-1, -1, -1, -1, -1};
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)j, key, v) {
        if (strcmp(key, "quality") == 0) {
            if (!num_in(v, 0, 1, &p.quality))
                return fail(errbuf, errlen, "%s.quality: must be a number in 0..1", path);
        } else if (strcmp(key, "cost") == 0) {
            if (!num_in(v, 0, 1e6, &p.cost))
                return fail(errbuf, errlen, "%s.cost: must be a number >= 0", path);
        } else if (strcmp(key, "latency_p95_ms") == 0) {
            if (!num_in(v, 0, SLO_MS_MAX, &p.p95) || p.p95 <= 0)
                return fail(errbuf, errlen, "%s.latency_p95_ms: must be a number in (0, %d]", path,
                            SLO_MS_MAX);
        } else if (strcmp(key, "signal") == 0) {
            if (!num_in(v, 0, 1, &p.signal))
                return fail(errbuf, errlen, "%s.signal: must be a number in 0..1", path);
        } else if (strcmp(key, "n") == 0) {
            if (!num_in(v, 0, SLO_MODEL_QUALITY_WEIGHT_MAX, &p.n) || p.n <= 0)
                return fail(errbuf, errlen, "%s.n: must be a number in (0, %g]", path, SLO_MODEL_QUALITY_WEIGHT_MAX);
        } else {
            return fail(errbuf, errlen, "%s.%s: unknown key", path, key);
        }
    }
    *ret = p;
    return ERR_OK;
}

static void apply_patch(struct slo_cell *c, const struct prior_patch *p) {
    if (p->quality >= 0)
        c->prior_quality = (float)p->quality;
    if (p->cost >= 0)
        c->prior_cost = (float)p->cost;
    if (p->p95 > 0)
        c->prior_p95_ms = (float)p->p95;
    if (p->signal >= 0)
        c->signal_base = (float)p->signal;
    if (p->n > 0) {
        c->prior_n = (float)p->n;
        c->prior_weight0 = (float)(p->n < 10 ? p->n : 10);
        if (c->n == 0)
            c->prior_weight = c->prior_weight0;
    }
    cell_refresh(c);
}

static enum err calibrate(struct slo_model *m, const json_t *j, bool apply, char *errbuf, size_t errlen) {
    if (!json_is_object(j))
        return fail(errbuf, errlen, "calibration: must be an object");
    const char *key, *ikey;
    const json_t *v, *iv;
    json_object_foreach((json_t *)j, key, v) {
        /* "configs" is read; the others are what `slorag eval --calibrate`
         * records about the run, for people */
        if (strcmp(key, "configs") && strcmp(key, "version") && strcmp(key, "dataset") && strcmp(key, "created") &&
            strcmp(key, "measured"))
            return fail(errbuf, errlen, "%s: unknown key", key);
    }
    const json_t *configs = json_object_get(j, "configs");
    if (configs && !json_is_object(configs))
        return fail(errbuf, errlen, "configs: must be an object");
    json_object_foreach((json_t *)configs, key, v) {
        int config = slo_space_find(key);
        if (config < 0)
            return fail(errbuf, errlen, "configs.%s: unknown configuration", key);
        if (!json_is_object(v))
            return fail(errbuf, errlen, "configs.%s: must be an object", key);
        /* "*" first, so that a named intent wins whatever the key order. */
        for (int pass = 0; pass < 2; pass++) {
            json_object_foreach((json_t *)v, ikey, iv) {
                bool star = strcmp(ikey, "*") == 0;
                if (star != (pass == 0))
                    continue;
                int in = star ? -1 : slo_intent_parse(ikey);
                if (!star && in < 0)
                    return fail(errbuf, errlen, "configs.%s.%s: unknown intent", key, ikey);
                char path[SLO_KEY_MAX + 48];
                snprintf(path, sizeof path, "configs.%s.%s", key, ikey);
                struct prior_patch p = {-1, -1, -1, -1, -1};
                enum err e = parse_patch(iv, path, errbuf, errlen, &p);
                if (e != ERR_OK)
                    return e;
                if (!apply)
                    continue;
                for (int x = 0; x < SLO_INTENT__COUNT; x++)
                    if (star || x == in)
                        apply_patch(&m->cells[config][x], &p);
            }
        }
    }
    return ERR_OK;
}

enum err slo_model_calibrate(struct slo_model *m, const json_t *j, char *errbuf, size_t errlen) {
    enum err e = calibrate(m, j, false, errbuf, errlen);
    if (e != ERR_OK)
        return e;
    return calibrate(m, j, true, errbuf, errlen);
}
