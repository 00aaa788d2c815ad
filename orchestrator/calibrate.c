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
 * The measured configuration gets the figures as measured (per intent when
 * the dataset has at least CAL_MIN_INTENT questions of that intent, and
 * "*" overall).  Every other configuration of the same (retriever, tier) —
 * other k, rerank, token levels, replicas — keeps the built-in prior's
 * shape, moved by what the measurement changed: quality shifted by the
 * difference, cost and latency scaled by the ratio, with the default prior
 * weight, so live traffic can still correct it quickly. */
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
#define CAL_MAX_N 200 /* the model's cap on a prior's count (slo_model_calibrate) */

struct measured {
    bool ok;
    int config;            /* space index of what ran */
    double q, cost, p95;   /* overall */
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
    int k = (int)json_integer_value(json_object_get(plan, "k"));
    /* the space's k level nearest to what ran */
    c.k = k <= 4 ? 3 : k <= 6 ? 5 : 8;
    if (c.tier != SLO_TIER_EXTRACTIVE) {
        int mt = (int)json_integer_value(json_object_get(plan, "max_tokens"));
        c.max_tokens = mt <= slo_space_token_levels[0] ? slo_space_token_levels[0] : slo_space_token_levels[1];
    }
    return slo_space_index(&c);
}

static json_t *cell(double q, double cost, double p95, int n) {
    return json_pack("{s:f, s:f, s:f, s:i}", "quality", clamp(q, 0.01, 0.99), "cost", cost < 0 ? 0 : cost,
                     "latency_p95_ms", p95 < 1 ? 1 : p95, "n", n < 1 ? 1 : n > CAL_MAX_N ? CAL_MAX_N : n);
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
            fprintf(stderr, "calibrating %s/%s ...\n", modes[r], eo.tier);
            if (eval_run(c, &eo) != 0) {
                rc = 1;
                break;
            }
            passes++;
            json_error_t je;
            json_t *rep = json_load_file(tmp, 0, &je);
            json_t *ov = json_object_get(rep, "overall");
            int cfg = config_of(json_object_get(rep, "plan"));
            if (!rep || !ov || cfg < 0) {
                fprintf(stderr, "slorag eval --calibrate: no usable report for %s/%s\n", modes[r], eo.tier);
                json_decref(rep);
                rc = 1;
                break;
            }
            struct measured *x = &m[t][r];
            *x = (struct measured){.ok = true, .config = cfg, .q = quality_of(ov),
                                   .cost = json_number_value(json_object_get(ov, "cost_per_query")),
                                   .p95 = json_number_value(json_object_get(ov, "latency_p95_ms")),
                                   .n = (int)json_integer_value(json_object_get(ov, "questions")),
                                   .intents = json_object_get(rep, "intents"), .report = rep};
        }
    }
    unlink(tmp);

    json_t *configs = json_object();
    json_t *summary = json_array();
    for (int t = 0; !rc && t < SLO_TIERS; t++)
        for (int r = 0; r < 3; r++) {
            struct measured *x = &m[t][r];
            if (!x->ok)
                continue;
            /* the built-in prior of what ran, averaged over intents as the
             * dataset's overall figure is */
            double bq = 0, bc = 0, bl = 0;
            for (int i = 0; i < SLO_INTENT__COUNT; i++) {
                double q, co, l;
                slo_model_prior(x->config, (enum slo_intent)i, &q, &co, &l);
                bq += q / SLO_INTENT__COUNT;
                bc += co / SLO_INTENT__COUNT;
                bl += l / SLO_INTENT__COUNT;
            }
            double dq = x->q - bq, rcost = bc > 0 ? x->cost / bc : 1, rlat = bl > 0 ? x->p95 / bl : 1;
            char key[SLO_KEY_MAX];
            slo_space_key(x->config, key, sizeof key);
            json_array_append_new(summary, json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:i}", "config", key, "quality",
                                                     x->q, "prior_quality", bq, "cost", x->cost, "latency_p95_ms",
                                                     x->p95, "prior_latency_p95_ms", bl, "questions", x->n));
            /* every configuration of this (retriever, tier) */
            for (int idx = 0; idx < SLO_SPACE_SIZE; idx++) {
                struct slo_config sc;
                slo_space_config(idx, &sc);
                if ((int)sc.tier != t || (int)sc.retriever != r)
                    continue;
                char k2[SLO_KEY_MAX];
                slo_space_key(idx, k2, sizeof k2);
                json_t *intents = json_object();
                if (idx == x->config) {
                    json_object_set_new(intents, "*", cell(x->q, x->cost, x->p95, x->n));
                    const char *in;
                    json_t *row;
                    json_object_foreach(x->intents, in, row) {
                        int qn = (int)json_integer_value(json_object_get(row, "questions"));
                        if (qn >= CAL_MIN_INTENT)
                            json_object_set_new(intents, in,
                                                cell(quality_of(row), json_number_value(json_object_get(row, "cost_per_query")),
                                                     json_number_value(json_object_get(row, "latency_p95_ms")), qn));
                    }
                } else {
                    double q, co, l, aq = 0, ac = 0, al = 0;
                    for (int i = 0; i < SLO_INTENT__COUNT; i++) {
                        slo_model_prior(idx, (enum slo_intent)i, &q, &co, &l);
                        aq += q / SLO_INTENT__COUNT;
                        ac += co / SLO_INTENT__COUNT;
                        al += l / SLO_INTENT__COUNT;
                    }
                    json_object_set_new(intents, "*", cell(aq + dq, ac * rcost, al * rlat, 5));
                }
                json_object_set_new(configs, k2, intents);
            }
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
            printf("| configuration | questions | quality | built-in prior | cost/query | p95 ms | built-in p95 ms |\n");
            printf("|---|---|---|---|---|---|---|\n");
            size_t i;
            json_t *row;
            json_array_foreach(summary, i, row)
                printf("| %s | %lld | %.3f | %.3f | %.6f | %.1f | %.1f |\n",
                       json_string_value(json_object_get(row, "config")),
                       (long long)json_integer_value(json_object_get(row, "questions")),
                       json_number_value(json_object_get(row, "quality")),
                       json_number_value(json_object_get(row, "prior_quality")),
                       json_number_value(json_object_get(row, "cost")),
                       json_number_value(json_object_get(row, "latency_p95_ms")),
                       json_number_value(json_object_get(row, "prior_latency_p95_ms")));
            printf("\n%d configurations written; start slorag with \"query\": {\"calibration\": \"%s\"}.\n",
                   (int)json_object_size(configs), out_path);
        }
        json_decref(doc);
    } else {
        json_decref(summary);
        json_decref(configs);
    }
    for (int t = 0; t < SLO_TIERS; t++)
        for (int r = 0; r < 3; r++)
            json_decref(m[t][r].report);
    return rc;
}
