/* bench-intent.c - the built-in intent classifier on the held-out set.
 *
 * Trains on the built-in examples (slo/data/intents-train.tsv), classifies
 * the held-out set (slo/data/intents-heldout.tsv) and prints the overall
 * accuracy, per-intent precision and recall, the confusion matrix, how the
 * confidence threshold splits right from wrong answers, the accuracy of the
 * former cue table on the same set, 5-fold cross-validation on the training
 * set (how the temperature was chosen), the training time (built-in set,
 * and with a tenant's maximum of 500 extra examples) and the median time
 * of one classification.
 *
 *   bench-intent [--iterations 200]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "intent.h"

extern const struct slo_intent_example slo_intent_heldout[];
extern const size_t slo_intent_heldout_len;

#define N SLO_INTENT__COUNT

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double median_us(int64_t *v, size_t n) {
    qsort(v, n, sizeof(*v), cmp_i64);
    return (double)v[n / 2] / 1000.0;
}

struct tally {
    int confusion[N][N]; /* [truth][predicted] */
    int total, right;
    int confident, confident_right; /* confidence >= SLO_INTENT_MIN_CONFIDENCE */
    double log_loss;
};

static void evaluate(const struct slo_intent_model *m, bool cues, const struct slo_intent_example *ex, size_t n,
                     struct tally *t) {
    for (size_t i = 0; i < n; i++) {
        struct slo_intent_result r;
        if (cues)
            slo_intent_classify_cues(ex[i].question, &r);
        else
            slo_intent_classify_with(m, ex[i].question, &r);
        bool ok = r.intent == ex[i].intent;
        t->confusion[ex[i].intent][r.intent]++;
        t->total++;
        t->right += ok;
        if (!r.low_confidence) {
            t->confident++;
            t->confident_right += ok;
        }
        /* the probability given to the truth is unknown when wrong; the
         * rest of the mass spread evenly is the model's best statement */
        double p = ok ? r.confidence : (1 - r.confidence) / (N - 1);
        t->log_loss -= log(p > 1e-9 ? p : 1e-9);
    }
}

static void report(const char *title, const struct tally *t, bool matrix) {
    printf("%s: accuracy %.3f (%d/%d)", title, (double)t->right / t->total, t->right, t->total);
    if (t->confident < t->total || t->confident > 0)
        printf("; confidence >= %.2f on %d (%.0f%%), accuracy there %.3f; below: %d, accuracy %.3f",
               SLO_INTENT_MIN_CONFIDENCE, t->confident, 100.0 * t->confident / t->total,
               t->confident ? (double)t->confident_right / t->confident : 0, t->total - t->confident,
               t->total > t->confident ? (double)(t->right - t->confident_right) / (t->total - t->confident) : 0);
    printf("\n");
    if (!matrix)
        return;
    printf("\n%-13s %9s %7s\n", "intent", "precision", "recall");
    for (int c = 0; c < N; c++) {
        int tp = t->confusion[c][c], predicted = 0, actual = 0;
        for (int k = 0; k < N; k++) {
            predicted += t->confusion[k][c];
            actual += t->confusion[c][k];
        }
        printf("%-13s %9.3f %7.3f\n", slo_intent_name((enum slo_intent)c), predicted ? (double)tp / predicted : 0,
               actual ? (double)tp / actual : 0);
    }
    printf("\nconfusion matrix (rows: truth, columns: predicted)\n%-13s", "");
    for (int c = 0; c < N; c++)
        printf(" %5.5s", slo_intent_name((enum slo_intent)c));
    printf("\n");
    for (int r = 0; r < N; r++) {
        printf("%-13s", slo_intent_name((enum slo_intent)r));
        for (int c = 0; c < N; c++)
            printf(" %5d", t->confusion[r][c]);
        printf("\n");
    }
    printf("\n");
}

/* 5-fold cross-validation on the training set: fold f holds out every
 * example whose index is f mod 5. */
static void cross_validate(void) {
    size_t n = slo_intent_train_len;
    struct slo_intent_example *train = malloc(n * sizeof(*train)), *test = malloc(n * sizeof(*test));
    struct tally t = {0};
    for (size_t f = 0; train && test && f < 5; f++) {
        size_t ntrain = 0, ntest = 0;
        for (size_t i = 0; i < n; i++) {
            if (i % 5 == f)
                test[ntest++] = slo_intent_train[i];
            else
                train[ntrain++] = slo_intent_train[i];
        }
        struct slo_intent_model *m;
        if (slo_intent_model_train(train, ntrain, NULL, 0, &m) != ERR_OK)
            break;
        evaluate(m, false, test, ntest, &t);
        slo_intent_model_unref(m);
    }
    if (t.total) {
        report("5-fold cross-validation on the training set", &t, false);
        printf("cross-validation log loss %.3f per question\n", t.log_loss / t.total);
    }
    free(train);
    free(test);
}

int main(int argc, char **argv) {
    int iterations = 200;
    for (int i = 1; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--iterations"))
            iterations = atoi(argv[i + 1]);
    if (iterations < 1) {
        fprintf(stderr, "usage: bench-intent [--iterations N]\n");
        return 2;
    }
    printf("training examples: %zu, held-out examples: %zu\n\n", slo_intent_train_len, slo_intent_heldout_len);

    /* training time: the built-in set, and with 500 tenant examples */
    int64_t *times = malloc((size_t)iterations * sizeof(*times));
    struct slo_intent_example *extra = malloc(SLO_INTENT_EXAMPLES_MAX * sizeof(*extra));
    if (!times || !extra)
        return 1;
    for (size_t i = 0; i < SLO_INTENT_EXAMPLES_MAX; i++)
        extra[i] = slo_intent_train[(i * 7) % slo_intent_train_len];
    struct slo_intent_model *m = NULL;
    for (int it = 0; it < iterations; it++) {
        m = slo_intent_model_unref(m);
        int64_t t0 = now_ns();
        if (slo_intent_model_train(slo_intent_train, slo_intent_train_len, NULL, 0, &m) != ERR_OK)
            return 1;
        times[it] = now_ns() - t0;
    }
    double train_us = median_us(times, (size_t)iterations);
    for (int it = 0; it < iterations; it++) {
        struct slo_intent_model *big;
        int64_t t0 = now_ns();
        if (slo_intent_model_train(slo_intent_train, slo_intent_train_len, extra, SLO_INTENT_EXAMPLES_MAX, &big) !=
            ERR_OK)
            return 1;
        times[it] = now_ns() - t0;
        slo_intent_model_unref(big);
    }
    double train_big_us = median_us(times, (size_t)iterations);

    struct tally model = {0}, cues = {0};
    evaluate(m, false, slo_intent_heldout, slo_intent_heldout_len, &model);
    evaluate(NULL, true, slo_intent_heldout, slo_intent_heldout_len, &cues);
    report("trained model, held-out set", &model, true);
    printf("held-out log loss %.3f per question\n", model.log_loss / model.total);
    report("cue table (baseline), held-out set", &cues, false);
    cross_validate();

    /* one classification, timed one call at a time */
    size_t calls = (size_t)iterations * slo_intent_heldout_len;
    int64_t *ct = malloc(calls * sizeof(*ct));
    if (!ct)
        return 1;
    volatile int sink = 0;
    for (size_t i = 0; i < calls; i++) {
        struct slo_intent_result r;
        int64_t t0 = now_ns();
        slo_intent_classify_with(m, slo_intent_heldout[i % slo_intent_heldout_len].question, &r);
        ct[i] = now_ns() - t0;
        sink += r.intent;
    }
    (void)sink;
    printf("\ntraining: %.0f us median (%zu examples), %.0f us with %d tenant examples added (%d runs)\n", train_us,
           slo_intent_model_examples(m), train_big_us, SLO_INTENT_EXAMPLES_MAX, iterations);
    printf("classification: %.2f us median over %zu calls\n", median_us(ct, calls), calls);
    slo_intent_model_unref(m);
    free(ct);
    free(times);
    free(extra);
    return 0;
}
