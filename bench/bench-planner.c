/* bench-planner.c - how long one planning decision takes.
 *
 * slo_planner_choose over the whole configuration space, with the shipped
 * priors, for a mix of situations the service meets: each intent, the
 * default profile and three tenant-like profiles (quality first, cost
 * capped, latency critical), tiers idle or loaded, a budget being paced,
 * with and without the reranker and long answers.  Prints the median, p99
 * and max time of one decision, and the decisions per second of one core.
 *
 *   bench-planner [--decisions 200000]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model.h"
#include "planner.h"
#include "profile.h"
#include "space.h"

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Situation i of a fixed cycle: deterministic, varied. */
static void situation(int i, const struct slo_model *m, struct slo_planner_input *in) {
    struct slo_profile prof;
    slo_profile_defaults(&prof);
    *in = (struct slo_planner_input){
        .budget = prof.budget,
        .now_s = 1790000000 + i,
        .intent = (enum slo_intent)(i % SLO_INTENT__COUNT),
        .intent_confidence = 0.9,
        .model = m,
        .limits = slo_space_limits_all(),
        .hints = {.retriever = -1, .tier = -1},
        .min_confidence = 0.25,
        .seed = 7,
        .counter = (uint64_t)i,
        .explore_rate = 0.02,
    };
    slo_profile_resolve(&prof, in->intent, &in->objectives);
    switch ((i / SLO_INTENT__COUNT) % 4) {
    case 1: /* quality first, generous */
        in->objectives.quality_min = 0.9;
        in->objectives.cost_max = 0.05;
        in->objectives.latency_p95_ms = 20000;
        in->objectives.deadline_ms = 30000;
        break;
    case 2: /* cost capped */
        in->objectives.cost_max = 0.0003;
        break;
    case 3: /* latency critical */
        in->objectives.latency_p95_ms = 800;
        in->objectives.deadline_ms = 2000;
        break;
    }
    for (int t = SLO_TIER_SMALL; t < SLO_TIERS; t++) {
        bool loaded = (i / 32) % 3 == t - 1;
        in->tiers[t] = (struct slo_tier_live){.usable = true, .max_concurrency = 8, .in_flight = loaded ? 8 : 1,
                                              .queued = loaded ? 12 : 0};
    }
    if (i % 5 == 0) { /* a daily budget being spent too fast */
        in->budget.per_day = 1.0;
        in->spent_day = 0.6;
        in->spend_rate_per_hour = 0.2;
    }
    in->limits.reranker = i % 2 == 0;
    in->limits.max_tokens = i % 3 == 0 ? 1024 : 256;
}

int main(int argc, char **argv) {
    long n = 200000;
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "--decisions") == 0)
            n = atol(argv[i + 1]);
    if (n < 100) {
        fprintf(stderr, "usage: bench-planner [--decisions N >= 100]\n");
        return 2;
    }
    struct slo_model *m;
    if (slo_model_new(&m) != ERR_OK)
        return 1;
    int64_t *t = malloc(sizeof(*t) * (size_t)n);
    if (!t)
        return 1;
    long feasible_sum = 0, considered_sum = 0;
    unsigned checksum = 0;
    int64_t t_all = now_ns();
    for (long i = 0; i < n; i++) {
        struct slo_planner_input in;
        situation((int)(i % 9600), m, &in);
        struct slo_plan p;
        struct slo_decision d;
        int64_t t0 = now_ns();
        slo_planner_choose(&in, &p, &d);
        t[i] = now_ns() - t0;
        feasible_sum += d.feasible;
        considered_sum += d.considered;
        checksum = checksum * 31u + (unsigned)d.config;
        if (isatty(2) && i % 20000 == 0)
            fprintf(stderr, "\r%ld/%ld decisions", i, n);
    }
    double wall_s = (double)(now_ns() - t_all) / 1e9;
    if (isatty(2))
        fputs("\r\033[K", stderr);
    qsort(t, (size_t)n, sizeof(*t), cmp_i64);
    printf("configuration space: %d configurations x %d intents\n", SLO_SPACE_SIZE, SLO_INTENT__COUNT);
    printf("decisions: %ld (mixed situations), mean considered %.0f, mean feasible %.0f (checksum %08x)\n", n,
           (double)considered_sum / (double)n, (double)feasible_sum / (double)n, checksum);
    printf("time per decision: median %.2f us, p99 %.2f us, max %.2f us\n", (double)t[n / 2] / 1e3,
           (double)t[n * 99 / 100] / 1e3, (double)t[n - 1] / 1e3);
    printf("one core: %.0f decisions/s (including building the inputs)\n", (double)n / wall_s);
    free(t);
    slo_model_free(m);
    return 0;
}
