/* calibrate.c - `slorag eval --calibrate` (see eval.h).
 *
 * One evaluation pass per (generator tier, retriever): the extractive tier
 * always, an LLM tier when the config has a backend for it.  Each pass is a
 * plain `slorag eval` run (a scratch store; the user's data is untouched)
 * with the tier and retriever forced, so the configuration that ran is a
 * single call at the config's default k and token limit.
 *
 * Quality is what the evaluator measures against gold answers: mean F1 on
 * answerable questions (an abstention scores 0) and, on unanswerable ones,
 * 1 for abstaining; never anything the simulator knows about itself.
 *
 * For each LLM tier two more passes pin replicas with their aggregation
 * (hybrid/k5, x3 vote and x2 judge): what voting and judging add depends
 * on how independent the tier's errors are, which the built-in priors can
 * only guess.
 *
 * The measured configuration gets the figures as measured ("*" overall,
 * and per intent: its cost from any question of the intent, the rest when
 * the dataset has at least CAL_MIN_INTENT questions of it, its quality pulled toward the overall figure with the
 * weight of CAL_SHRINK_N questions: three right answers to `procedural` questions
 * made a single small call the planner's best prediction for them, 0.99,
 * where it scored 0.68 in the SLO experiment), with the mean of the generator's own quality signal
 * ("signal": what the service learns from at run time, read against this
 * mean).  Every other configuration of a measured tier keeps the built-in
 * prior's shape, moved by what the nearest measurement changed: quality
 * shifted by the difference, cost and latency scaled by the ratio, with
 * the default prior weight, so live traffic can still correct it quickly.
 * Nearest: its retriever's single call; with replicas, the aggregated pass
 * of the same replicas and aggregation, moved again by how its retriever
 * differed from hybrid in the single calls.  Cost and latency of such a
 * configuration are written per intent (the prior's shape, and the
 * neighbour's measured intents); its quality is one figure. */
#include "eval.h"
#include "model.h"
#include "plan.h"
#include "space.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CAL_MIN_INTENT 3
#define CAL_SHRINK_N 10 /* pseudo-questions of the overall figure in an intent's */
#define CAL_MAX_N 200 /* the model's cap on a prior's count (slo_model_calibrate) */

struct measured {
    bool ok;
    int config;            /* space index of what ran */
    double q, cost, p95;   /* overall */
    double signal;         /* the generator's own quality signal, mean (eval's "signal") */
    int n;
    json_t *intents;       /* the eval report's per-intent rows (borrowed from report) */
    json_t *report;
};

static double quality_of(json_t *row) {
    double n = (double)json_integer_value(json_object_get(row, "questions"));
    double ans = (double)json_integer_value(json_object_get(row, "answerable"));
    double una = (double)json_integer_value(json_object_get(row, "unanswerable"));
    if (n <= 0)
        return 0;
    double f1 = json_number_value(json_object_get(row, "f1"));
    double abst = json_number_value(json_object_get(row, "abstain_recall"));
    return (f1 * ans + abst * una) / n;
}

static double clamp(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The configuration that ran, from the report's plan. */
static int config_of(json_t *plan) {
    struct slo_config c = {.replicas = 1, .aggregate = SLO_AGG_NONE};
    const char *r = json_string_value(json_object_get(plan, "retriever"));
    const char *t = json_string_value(json_object_get(plan, "generator_tier"));
    int tier = t ? slo_tier_parse(t) : -1;
    if (!r || tier < 0)
        return -1;
    c.retriever = strcmp(r, "lexical") == 0 ? SLO_RETRIEVER_LEXICAL
                  : strcmp(r, "dense") == 0 ? SLO_RETRIEVER_DENSE
                                            : SLO_RETRIEVER_HYBRID;
    c.tier = (enum slo_tier)tier;
    const char *agg = json_string_value(json_object_get(plan, "aggregation"));
    int replicas = (int)json_integer_value(json_object_get(plan, "replicas"));
    if (c.tier != SLO_TIER_EXTRACTIVE && replicas > 1 && agg) {
        c.replicas = replicas;
        c.aggregate = strcmp(agg, "vote") == 0         ? SLO_AGG_VOTE
                      : strcmp(agg, "confidence") == 0 ? SLO_AGG_CONFIDENCE
                                                       : SLO_AGG_JUDGE;
    }
    int k = (int)json_integer_value(json_object_get(plan, "k"));
    /* the space's k level nearest to what ran */
    c.k = k <= 4 ? 3 : k <= 6 ? 5 : 8;
    if (c.tier != SLO_TIER_EXTRACTIVE) {
        int mt = (int)json_integer_value(json_object_get(plan, "max_tokens"));
        c.max_tokens = mt <= slo_space_token_levels[0] ? slo_space_token_levels[0] : slo_space_token_levels[1];
    }
    return slo_space_index(&c);
}

static json_t *cell(double q, double cost, double p95, int n, double signal) {
    return json_pack("{s:f, s:f, s:f, s:i, s:f}", "quality", clamp(q, 0.01, 0.99), "cost", cost < 0 ? 0 : cost,
                     "latency_p95_ms", p95 < 1 ? 1 : p95, "n", n < 1 ? 1 : n > CAL_MAX_N ? CAL_MAX_N : n,
                     "signal", clamp(signal, 0, 1));
}

/* The built-in prior of a configuration averaged over intents, as a
 * dataset's overall figure is. */
static void prior_mean(int config, double *ret_q, double *ret_cost, double *ret_p95) {
    double q, co, l;
    *ret_q = *ret_cost = *ret_p95 = 0;
    for (int i = 0; i < SLO_INTENT__COUNT; i++) {
        slo_model_prior(config, (enum slo_intent)i, &q, &co, &l);
        *ret_q += q / SLO_INTENT__COUNT;
        *ret_cost += co / SLO_INTENT__COUNT;
        *ret_p95 += l / SLO_INTENT__COUNT;
    }
}

/* What a measurement changed against the built-in prior of what ran. */
struct shift {
    double dq, rcost, rlat, signal;
};

static struct shift shift_of(const struct measured *x) {
    double bq, bc, bl;
    prior_mean(x->config, &bq, &bc, &bl);
    return (struct shift){x->q - bq, bc > 0 ? x->cost / bc : 1, bl > 0 ? x->p95 / bl : 1, x->signal};
}

/* How x's cost and latency for one intent, against the built-in prior
 * for it, differ from x's overall ratio to the prior: 1 when the intent
 * had no question (cost), or fewer than CAL_MIN_INTENT (latency: a p95). */
static void intent_ratio(const struct measured *x, enum slo_intent in, double *ret_cost, double *ret_lat) {
    *ret_cost = *ret_lat = 1;
    json_t *row = json_object_get(x->intents, slo_intent_name(in));
    json_int_t qn = row ? json_integer_value(json_object_get(row, "questions")) : 0;
    if (qn < 1)
        return;
    double pq, pc, pl;
    slo_model_prior(x->config, in, &pq, &pc, &pl);
    struct shift all = shift_of(x);
    double cost = json_number_value(json_object_get(row, "cost_per_query"));
    double lat = json_number_value(json_object_get(row, "latency_p95_ms"));
    if (pc > 0 && all.rcost > 0 && cost > 0)
        *ret_cost = cost / pc / all.rcost;
    if (qn >= CAL_MIN_INTENT && pl > 0 && all.rlat > 0 && lat > 0)
        *ret_lat = lat / pl / all.rlat;
}

/* The aggregated passes: replicas and aggregation, at the hybrid
 * retriever, the default k and the first token level. */
static const struct {
    int replicas;
    enum slo_aggregate aggregate;
} agg_passes[] = {{3, SLO_AGG_VOTE}, {2, SLO_AGG_JUDGE}};
#define NAGG (sizeof agg_passes / sizeof agg_passes[0])

/* Runs one pass and reads its report into *x; 0 or 1 (an error was printed). */
static int run_pass(const struct cfg *c, struct eval_opts *eo, const char *what, const char *tmp,
                    struct measured *x) {
    fprintf(stderr, "calibrating %s ...\n", what);
    if (eval_run(c, eo) != 0)
        return 1;
    json_error_t je;
    json_t *rep = json_load_file(tmp, 0, &je);
    json_t *ov = json_object_get(rep, "overall");
    int cfg = config_of(json_object_get(rep, "plan"));
    if (!rep || !ov || cfg < 0) {
        fprintf(stderr, "slorag eval --calibrate: no usable report for %s\n", what);
        json_decref(rep);
        return 1;
    }
    *x = (struct measured){.ok = true, .config = cfg, .q = quality_of(ov),
                           .cost = json_number_value(json_object_get(ov, "cost_per_query")),
                           .p95 = json_number_value(json_object_get(ov, "latency_p95_ms")),
                           .signal = json_number_value(json_object_get(ov, "signal")),
                           .n = (int)json_integer_value(json_object_get(ov, "questions")),
                           .intents = json_object_get(rep, "intents"), .report = rep};
    return 0;
}

int eval_calibrate(const struct cfg *c, const struct eval_opts *o, const char *out_path) {
    static const char *const modes[] = {"lexical", "dense", "hybrid"};
    struct measured m[SLO_TIERS][3];
    memset(m, 0, sizeof m);
    char tmp[] = "/tmp/slorag-calibrate-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "slorag eval --calibrate: cannot create a temporary file\n");
        return 1;
    }
    close(fd);
    struct measured ag[SLO_TIERS][NAGG];
    memset(ag, 0, sizeof ag);
    int rc = 0, passes = 0;
    for (int t = 0; t < SLO_TIERS && !rc; t++) {
        bool have = t == SLO_TIER_EXTRACTIVE;
        for (int b = 0; !have && b < c->nbackends; b++)
            have = strcmp(c->backends[b].tier, slo_tier_name((enum slo_tier)t)) == 0;
        if (!have)
            continue;
        for (int r = 0; r < 3 && !rc; r++) {
            struct eval_opts eo = *o;
            eo.tier = slo_tier_name((enum slo_tier)t);
            eo.mode = modes[r];
            eo.out_json = tmp;
            eo.quiet = true;
            char what[64];
            snprintf(what, sizeof what, "%s/%s", modes[r], eo.tier);
            rc = run_pass(c, &eo, what, tmp, &m[t][r]);
            passes += !rc;
        }
        /* replicas and their aggregation, pinned whole */
        for (size_t a = 0; t != SLO_TIER_EXTRACTIVE && a < NAGG && !rc; a++) {
            struct slo_config sc = {.retriever = SLO_RETRIEVER_HYBRID, .k = slo_space_k_levels[1],
                                    .tier = (enum slo_tier)t, .replicas = agg_passes[a].replicas,
                                    .aggregate = agg_passes[a].aggregate, .max_tokens = slo_space_token_levels[0]};
            int idx = slo_space_index(&sc);
            char what[SLO_KEY_MAX];
            slo_space_key(idx, what, sizeof what);
            struct eval_opts eo = *o;
            eo.tier = NULL;
            eo.mode = NULL;
            eo.pin = idx + 1;
            eo.out_json = tmp;
            eo.quiet = true;
            rc = run_pass(c, &eo, what, tmp, &ag[t][a]);
            passes += !rc;
        }
    }
    unlink(tmp);

    json_t *configs = json_object();
    json_t *summary = json_array();
    for (int t = 0; !rc && t < SLO_TIERS; t++) {
        struct measured *all[3 + NAGG];
        size_t nall = 0;
        for (int r = 0; r < 3; r++)
            all[nall++] = &m[t][r];
        for (size_t a = 0; a < NAGG; a++)
            all[nall++] = &ag[t][a];
        for (size_t i = 0; i < nall; i++) {
            struct measured *x = all[i];
            if (!x->ok)
                continue;
            double bq, bc, bl;
            prior_mean(x->config, &bq, &bc, &bl);
            char key[SLO_KEY_MAX];
            slo_space_key(x->config, key, sizeof key);
            json_array_append_new(summary, json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:i, s:f}", "config", key,
                                                     "quality", x->q, "prior_quality", bq, "cost", x->cost,
                                                     "latency_p95_ms", x->p95, "prior_latency_p95_ms", bl,
                                                     "questions", x->n, "signal", x->signal));
        }
    }
    /* Every configuration of a measured tier: the measurement itself, or
     * the built-in prior's shape moved by what was measured nearest to it
     * (its retriever's single call; with replicas, the aggregated pass of
     * the same replicas and aggregation, moved again by how its retriever
     * differed from hybrid in the single calls). */
    for (int idx = 0; !rc && idx < SLO_SPACE_SIZE; idx++) {
        struct slo_config sc;
        slo_space_config(idx, &sc);
        int t = (int)sc.tier, r = (int)sc.retriever;
        if (!m[t][r].ok)
            continue;
        const struct measured *x = &m[t][r];
        const struct measured *agx = NULL;
        for (size_t a = 0; a < NAGG && sc.replicas > 1; a++)
            if (ag[t][a].ok && agg_passes[a].replicas == sc.replicas && agg_passes[a].aggregate == sc.aggregate)
                agx = &ag[t][a];
        if (agx)
            x = agx;
        char k2[SLO_KEY_MAX];
        slo_space_key(idx, k2, sizeof k2);
        json_t *intents = json_object();
        if (idx == x->config) {
            json_object_set_new(intents, "*", cell(x->q, x->cost, x->p95, x->n, x->signal));
            const char *in;
            json_t *row;
            json_object_foreach(x->intents, in, row) {
                int qn = (int)json_integer_value(json_object_get(row, "questions"));
                double cost = json_number_value(json_object_get(row, "cost_per_query"));
                if (qn < 1)
                    continue;
                if (qn < CAL_MIN_INTENT) {
                    /* Too few for its quality or a p95, but an answer's cost
                     * follows its length, which differs by intent: the
                     * overall cell with the intent's cost.  (Explanation
                     * answers cost 40% more than the overall figure in the
                     * SLO experiment, on 1 or 2 calibration questions.) */
                    json_object_set_new(intents, in, cell(x->q, cost, x->p95, x->n, x->signal));
                    continue;
                }
                /* A few questions of one intent say little about how often
                 * it is answered right: quality (and the signal beside it)
                 * is pulled toward the configuration's overall figure as
                 * if CAL_SHRINK_N questions had measured that.  Cost and
                 * latency follow the answers' lengths, which differ by
                 * intent and vary little: as measured. */
                double w = (double)qn / (qn + CAL_SHRINK_N);
                double q = w * quality_of(row) + (1 - w) * x->q;
                double sg = w * json_number_value(json_object_get(row, "signal")) + (1 - w) * x->signal;
                json_object_set_new(intents, in,
                                    cell(q, cost, json_number_value(json_object_get(row, "latency_p95_ms")), qn, sg));
            }
        } else {
            struct shift d = shift_of(x);
            if (agx && m[t][SLO_RETRIEVER_HYBRID].ok && r != SLO_RETRIEVER_HYBRID) {
                struct shift here = shift_of(&m[t][r]), hyb = shift_of(&m[t][SLO_RETRIEVER_HYBRID]);
                d.dq += here.dq - hyb.dq;
                d.rcost *= hyb.rcost > 0 ? here.rcost / hyb.rcost : 1;
                d.rlat *= hyb.rlat > 0 ? here.rlat / hyb.rlat : 1;
                d.signal += here.signal - hyb.signal;
            }
            double aq, ac, al;
            prior_mean(idx, &aq, &ac, &al);
            json_object_set_new(intents, "*", cell(aq + d.dq, ac * d.rcost, al * d.rlat, 5, d.signal));
            /* Cost and latency per intent: the prior's own (an explanation
             * is longer than a factoid), moved by the same ratio, and by
             * how the neighbour's figure for that intent, where it was
             * measured, differed from its overall ratio.  One figure for
             * every intent under-predicted explanation answers' cost by
             * 40% in the SLO experiment.  Quality stays the overall one. */
            for (int in = 0; in < SLO_INTENT__COUNT; in++) {
                double pq, pc, pl, kc, kl;
                slo_model_prior(idx, (enum slo_intent)in, &pq, &pc, &pl);
                intent_ratio(x, (enum slo_intent)in, &kc, &kl);
                json_object_set_new(intents, slo_intent_name((enum slo_intent)in),
                                    cell(aq + d.dq, pc * d.rcost * kc, pl * d.rlat * kl, 5, d.signal));
            }
        }
        json_object_set_new(configs, k2, intents);
    }
    if (!rc && passes == 0) {
        fprintf(stderr, "slorag eval --calibrate: nothing was measured\n");
        rc = 1;
    }
    if (!rc) {
        json_t *doc = json_pack("{s:i, s:s, s:I, s:o, s:o}", "version", 1, "dataset", o->dataset, "created",
                                (json_int_t)time(NULL), "measured", summary, "configs", configs);
        /* validate against the model before writing: the file must load */
        struct slo_model *probe = NULL;
        char err[256] = "";
        if (!doc || slo_model_new(&probe) != ERR_OK || slo_model_calibrate(probe, doc, err, sizeof err) != ERR_OK) {
            fprintf(stderr, "slorag eval --calibrate: the document does not load: %s\n", err);
            rc = 1;
        }
        slo_model_free(probe);
        char part[1024];
        snprintf(part, sizeof part, "%s.part", out_path);
        if (!rc && (json_dump_file(doc, part, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) != 0 ||
                    rename(part, out_path) != 0)) {
            fprintf(stderr, "slorag eval --calibrate: cannot write %s\n", out_path);
            unlink(part);
            rc = 1;
        }
        if (!rc) {
            printf("## slorag eval --calibrate: %s -> %s\n\n", o->dataset, out_path);
            printf("| configuration | questions | quality | built-in prior | cost/query | p95 ms | built-in p95 ms | "
                   "signal |\n");
            printf("|---|---|---|---|---|---|---|---|\n");
            size_t i;
            json_t *row;
            json_array_foreach(summary, i, row)
                printf("| %s | %lld | %.3f | %.3f | %.6f | %.1f | %.1f | %.3f |\n",
                       json_string_value(json_object_get(row, "config")),
                       (long long)json_integer_value(json_object_get(row, "questions")),
                       json_number_value(json_object_get(row, "quality")),
                       json_number_value(json_object_get(row, "prior_quality")),
                       json_number_value(json_object_get(row, "cost")),
                       json_number_value(json_object_get(row, "latency_p95_ms")),
                       json_number_value(json_object_get(row, "prior_latency_p95_ms")),
                       json_number_value(json_object_get(row, "signal")));
            printf("\n%d configurations written; start slorag with \"query\": {\"calibration\": \"%s\"}.\n",
                   (int)json_object_size(configs), out_path);
        }
        json_decref(doc);
    } else {
        json_decref(summary);
        json_decref(configs);
    }
    for (int t = 0; t < SLO_TIERS; t++) {
        for (int r = 0; r < 3; r++)
            json_decref(m[t][r].report);
        for (size_t a = 0; a < NAGG; a++)
            json_decref(ag[t][a].report);
    }
    return rc;
}
