/* model.h - learned quality, cost and latency per (configuration, intent).
 *
 * Every cell starts from a prior (built in, or from a calibration file) and
 * learns from what the executor observes:
 *   quality  a weighted mean in 0..1 whose prior counts as prior_n samples;
 *   cost     an exponentially decayed mean of per-query cost;
 *   latency  an exponentially decayed mean and a p95 read from a decayed
 *            log-bucket histogram, capped by Cantelli's bound
 *            mean + 4.36 sd (no distribution has more than 5% above it),
 *            which removes the buckets' coarseness for steady latencies.
 * The priors' weight decays with each observation, so data takes over.
 *
 * Tier level.  Each LLM tier keeps a live level: a fast EWMA of its
 * generator call times, each normalised to the tier's nominal configuration
 * (k5, 256 tokens, one replica), so the mix of configurations does not
 * matter.  Cells store latency *at the nominal level* (observed x nominal /
 * live level at that moment) and the prediction is cell x level / nominal.
 * So when a backend slows down, every configuration on its tier, tried or
 * not, looks slower after one call; and when it recovers, every one looks
 * faster again.  The live level's evidence goes stale: as the tier's last
 * call ages, the level used for predictions slides back to the tier's
 * long-run baseline (half-life SLO_MODEL_TIER_STALE_S), so a tier the
 * planner left is probed again now and then, like a half-open breaker.
 *
 * Memory is fixed: SLO_SPACE_SIZE x SLO_INTENT__COUNT cells of 184 bytes
 * (about 0.8 MB per model).  A model is plain data and not thread-safe:
 * guard it with a rwlock (planning and serialising read, observing writes). */
#ifndef SLORAG_SLO_MODEL_H
#define SLORAG_SLO_MODEL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "intent.h"
#include "space.h"

#define SLO_LAT_BUCKETS 28            /* [0,5) ms, then x1.5 per bucket; the last is open (>= 189 s) */
#define SLO_MODEL_DECAY 0.9           /* cost/latency weight kept per observation (half-life ~6.6) */
#define SLO_MODEL_TIER_ALPHA 0.3      /* tier live level: weight of the newest call */
#define SLO_MODEL_TIER_BASE_ALPHA 0.005 /* tier baseline: weight of the newest call */
#define SLO_MODEL_TIER_STALE_S 30.0   /* half-life of a tier's live evidence, seconds */
#define SLO_MODEL_TIER_FACTOR_MIN 0.2 /* level / nominal is clamped to this range */
#define SLO_MODEL_TIER_FACTOR_MAX 20.0
#define SLO_MODEL_QUALITY_WEIGHT_MAX 200.0 /* quality keeps adapting: weight is capped */
#define SLO_MODEL_PRIOR_N 5.0         /* built-in quality prior count */
#define SLO_MODEL_PRIOR_WEIGHT 2.0    /* built-in cost/latency prior weight */
#define SLO_MODEL_STATE_VERSION 2 /* 1: a pre-release cell format, rejected */

struct slo_cell {
    /* priors, built in or from calibration */
    float prior_quality; /* 0..1 */
    float prior_n;       /* quality pseudo-count */
    float prior_cost;
    float prior_p95_ms;  /* at the nominal tier level; prior mean is 0.7 x this */
    float prior_weight0; /* the cost/latency priors' weight before any observation */
    float prior_weight;  /* what is left of it: x SLO_MODEL_DECAY per observation */
    float signal_base;   /* the generator's own quality signal, mean, where prior_quality was
                          * measured (calibration "signal"); < 0: not measured */
    /* observations; latencies at the nominal tier level */
    float q_sum, q_w;            /* quality: weighted sum, total weight */
    float w;                     /* decayed cost/latency observation weight */
    float cost_sum, lat_sum;     /* decayed sums */
    float lat_sq_sum;            /* decayed sum of squared latencies */
    float hist[SLO_LAT_BUCKETS]; /* decayed latency histogram, total = w */
    uint32_t n, nq;              /* observations seen (latency/cost, quality) */
    /* estimates, refreshed after every change; latencies at the nominal level */
    float quality, cost, latency_mean_ms, latency_p95_ms;
};

#define SLO_MODEL_SPREAD_CALLS 32 /* recent calls whose spread around the level is watched */
#define SLO_MODEL_SPREAD_MIN 10   /* ... at least this many within SLO_MODEL_TIER_STALE_S to count */

struct slo_tier_level {
    float live_ms;  /* fast EWMA of normalised call times; starts at the nominal mean */
    float base_ms;  /* slow EWMA of the same: where a stale live level returns to */
    uint32_t n;     /* calls observed */
    int64_t last_s; /* wall clock of the last call observed, 0 = never */
    /* Not saved: each recent call over the p95 predicted for it, a ring,
     * and the spread factor they give (slo_model_tier_spread). */
    float ratio[SLO_MODEL_SPREAD_CALLS];
    int64_t ratio_s[SLO_MODEL_SPREAD_CALLS];
    uint32_t ratio_next;
    float spread;   /* >= 1; 0 = not computed yet (1) */
};

struct slo_model {
    struct slo_tier_level tiers[SLO_TIERS]; /* extractive's is unused */
    struct slo_cell cells[SLO_SPACE_SIZE][SLO_INTENT__COUNT];
};

/* One finished request, for the configuration that actually ran. */
struct slo_observation {
    double cost;       /* >= 0, currency units */
    double latency_ms; /* >= 0, end to end */
    double call_ms;    /* the slowest generator call (the one the request waited
                        * for), < 0 when there was none: extractive or failed */
    int64_t now_s;     /* wall clock, UTC seconds (0 = unknown: never stale) */
};

struct slo_estimate {
    double quality, cost, latency_mean_ms, latency_p95_ms; /* at the current tier level */
    double tier_factor; /* level / nominal applied to the latencies (1 for extractive) */
    double spread;      /* slo_model_tier_spread, applied to the p95 as well */
    unsigned n, nq;
};

/* A model with the built-in priors (docs/slo.md lists them). */
enum err slo_model_new(struct slo_model **ret);
struct slo_model *slo_model_free(struct slo_model *m); /* NULL-safe, returns NULL */

/* The built-in prior of one cell, and the nominal call p95 of a tier (k5,
 * 256 tokens, one replica, an intent of average length). */
void slo_model_prior(int config, enum slo_intent intent, double *ret_quality, double *ret_cost, double *ret_p95_ms);
double slo_model_tier_nominal_p95_ms(enum slo_tier t);

/* Replaces priors from a calibration document:
 *   {"configs": {"<key>": {"<intent>" | "*": {"quality": 0..1, "cost": >= 0,
 *                                             "latency_p95_ms": > 0, "n": > 0}}}}
 * (top-level "version", "dataset", "created" and "measured" are accepted
 * and ignored: `slorag eval --calibrate` records its run there).
 * Every field is optional ("*" = every intent, a named intent wins); n is
 * the quality prior count (default 5) and, capped at 10, the cost/latency
 * prior weight.  Unknown keys fail with a path; *m is untouched on failure.
 * Call it before slo_model_load_json. */
enum err slo_model_calibrate(struct slo_model *m, const json_t *j, char *errbuf, size_t errlen);

void slo_model_observe(struct slo_model *m, int config, enum slo_intent intent, const struct slo_observation *o);
/* One quality signal in 0..1 with a weight > 0: a user rating, replica
 * agreement, generator confidence, a judge score... */
void slo_model_observe_quality(struct slo_model *m, int config, enum slo_intent intent, double value, double weight);
/* The generator's own signal (its grounding confidence, 0 for an
 * abstention): a weak, biased measure of quality.  Where calibration
 * measured the signal's mean beside the gold quality (signal_base), what is
 * learned is the calibrated quality moved by the signal's departure from
 * that mean: a backend that starts answering worse lowers it, a signal
 * that merely runs high does not raise it.  Elsewhere the signal counts as
 * quality itself.  Returns the value observed. */
double slo_model_observe_signal(struct slo_model *m, int config, enum slo_intent intent, double signal,
                                double weight);

/* Estimates at now_s (0 = ignore staleness). */
void slo_model_estimate(const struct slo_model *m, int config, enum slo_intent intent, int64_t now_s,
                        struct slo_estimate *ret);
/* The tier's level at now_s over its nominal level, clamped to
 * SLO_MODEL_TIER_FACTOR_MIN..MAX; 1 for extractive.  The level is the live
 * EWMA, slid toward the baseline as the last call ages (now_s 0 = no
 * ageing). */
double slo_model_tier_factor(const struct slo_model *m, enum slo_tier t, int64_t now_s);
/* How much further than predicted a tier's calls reach now, applied to
 * p95 predictions on top of slo_model_tier_factor (which follows the
 * mean): the 95th percentile of its recent calls over the p95 predicted
 * for each (its cell's p95 at the tier's level then; the last
 * SLO_MODEL_SPREAD_CALLS, at least SLO_MODEL_SPREAD_MIN within
 * SLO_MODEL_TIER_STALE_S), never below 1, and aged like the level.  A
 * slowed backend under load spreads its calls as well as lengthening them:
 * in the SLO experiment calls of the slowed small tier took 250 ms to
 * 2.4 s, beyond p95 predictions scaled by the mean alone.  A spread the
 * cells have learned gives ratios near 1 again: no double count. */
double slo_model_tier_spread(const struct slo_model *m, enum slo_tier t, int64_t now_s);
/* How much of a tier's live evidence still counts at now_s: 1 when fresh
 * (or when time is unknown), halving every SLO_MODEL_TIER_STALE_S. */
double slo_model_tier_freshness(const struct slo_model *m, enum slo_tier t, int64_t now_s);
/* A tier's live call time in ms at the nominal configuration: its mean
 * service time, used for queueing estimates. */
double slo_model_tier_live_ms(const struct slo_model *m, enum slo_tier t);

/* Learned state (not priors): tier levels and every cell with observations.
 *   {"version": 2,
 *    "tiers": {"medium": {"live_ms": .., "base_ms": .., "n": .., "last_s": ..}},
 *    "cells": {"<key>": {"<intent>": {"n", "weight", "prior_weight", "cost_sum",
 *              "latency_sum", "latency_sq_sum", "latency_hist": [28],
 *              "quality_n", "quality_weight", "quality_sum"}}}}
 * Sums are the raw decayed sums (mean = sum / weight; latencies at the
 * nominal tier level), so loading restores the model bit for bit.
 * NULL on allocation failure. */
json_t *slo_model_to_json(const struct slo_model *m);
/* Replaces the learned state with j's (cells absent from j go back to their
 * priors).  Keys of configurations or intents this build does not know are
 * skipped, so state survives a change of the space; malformed values fail
 * with a path and leave *m untouched. */
enum err slo_model_load_json(struct slo_model *m, const json_t *j, char *errbuf, size_t errlen);

#endif
