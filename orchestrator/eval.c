/* eval.c - answer-quality evaluation (see eval.h).
 *
 * Every paragraph becomes a document in a scratch collection; every
 * question runs through the real pipeline (classifier, planner, retrieval,
 * generator, fallbacks) exactly as a /v1/query would, and is scored against
 * its gold answers with SQuAD's rules: lower-case, drop punctuation and the
 * articles a/an/the, collapse white space; exact match and token-level F1,
 * the best over the gold answers.  Unanswerable questions (SQuAD 2.0) count
 * as correct when slorag abstains; abstention precision and recall are
 * reported.  Citation markers like [2] are removed from LLM answers before
 * scoring. */
#include "eval.h"
#include "eval_remote.h"
#include "backend.h"
#include "engine.h"
#include "squad.h"
#include "executor.h"
#include "plan.h"
#include "util.h"

#define SLO_INTENT__COUNT_MAX 16

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void eval_normalize(const char *s, char *out, size_t n) {
    /* drop citations "[n]" first, lower-case, punctuation to spaces */
    char tmp[4096];
    size_t j = 0;
    for (size_t i = 0; s[i] && j + 1 < sizeof tmp; i++) {
        if (s[i] == '[') {
            size_t k = i + 1;
            while (isdigit((unsigned char)s[k]))
                k++;
            if (k > i + 1 && s[k] == ']') {
                i = k;
                continue;
            }
        }
        unsigned char c = (unsigned char)s[i];
        tmp[j++] = c >= 0x80 ? (char)c : ispunct(c) ? ' ' : (char)tolower(c);
    }
    tmp[j] = '\0';
    /* drop articles, collapse spaces */
    size_t o = 0;
    char *save = NULL;
    for (char *w = strtok_r(tmp, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
        if (!strcmp(w, "a") || !strcmp(w, "an") || !strcmp(w, "the"))
            continue;
        size_t wl = strlen(w);
        if (o + wl + 2 > n)
            break;
        if (o)
            out[o++] = ' ';
        memcpy(out + o, w, wl);
        o += wl;
    }
    out[o] = '\0';
}

bool eval_exact(const char *prediction, const char *gold) {
    char a[4096], b[4096];
    eval_normalize(prediction, a, sizeof a);
    eval_normalize(gold, b, sizeof b);
    return strcmp(a, b) == 0;
}

double eval_f1(const char *prediction, const char *gold) {
    char a[4096], b[4096];
    eval_normalize(prediction, a, sizeof a);
    eval_normalize(gold, b, sizeof b);
    char *pt[512], *gt[512];
    int np = 0, ng = 0;
    char *save = NULL;
    for (char *w = strtok_r(a, " ", &save); w && np < 512; w = strtok_r(NULL, " ", &save))
        pt[np++] = w;
    save = NULL;
    for (char *w = strtok_r(b, " ", &save); w && ng < 512; w = strtok_r(NULL, " ", &save))
        gt[ng++] = w;
    if (np == 0 || ng == 0)
        return np == ng ? 1.0 : 0.0;
    bool used[512] = {false};
    int common = 0;
    for (int i = 0; i < np; i++)
        for (int k = 0; k < ng; k++)
            if (!used[k] && strcmp(pt[i], gt[k]) == 0) {
                used[k] = true;
                common++;
                break;
            }
    if (common == 0)
        return 0.0;
    double precision = (double)common / np, recall = (double)common / ng;
    return 2 * precision * recall / (precision + recall);
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    enum err e;
    json_t *body;
    char msg[256];
};

static void on_done(void *ud, enum err e, json_t *body, const char *errmsg) {
    struct waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->e = e;
    w->body = body;
    snprintf(w->msg, sizeof w->msg, "%s", errmsg ? errmsg : "");
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

struct bucket {
    int n, answerable, em, abstain_tp, abstain_fp, abstain_fn, unanswerable;
    double f1, cost;
    double signal; /* sum of the generator's own quality signal (confidence, 0 when abstaining) */
    double *lat;   /* ms, for percentiles */
};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double p) {
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)ceil(p * n) - 1;
    return v[i < 0 ? 0 : i];
}

static json_t *bucket_json(struct bucket *b) {
    int ans = b->answerable ? b->answerable : 1;
    double precision = b->abstain_tp + b->abstain_fp ? (double)b->abstain_tp / (b->abstain_tp + b->abstain_fp) : 0;
    double recall = b->unanswerable ? (double)b->abstain_tp / b->unanswerable : 0;
    return json_pack("{s:i, s:i, s:f, s:f, s:f, s:f, s:i, s:f, s:f, s:f, s:f, s:f}", "questions", b->n, "answerable",
                     b->answerable, "exact_match", (double)b->em / ans, "f1", b->f1 / ans, "abstain_precision",
                     precision, "abstain_recall", recall, "unanswerable", b->unanswerable, "cost_per_query",
                     b->n ? b->cost / b->n : 0, "latency_p50_ms", pct(b->lat, b->n, 0.5), "latency_p95_ms",
                     pct(b->lat, b->n, 0.95), "latency_p99_ms", pct(b->lat, b->n, 0.99), "signal",
                     b->n ? b->signal / b->n : 0);
}

int eval_run(const struct cfg *c, const struct eval_opts *o) {
    struct squad_scratch sq = {0};
    struct eval_remote rm = {0};
    json_t *remote_root = NULL, *articles = NULL;
    struct ret_engine *eng = NULL;
    size_t nparas = 0;
    struct agent_pool *pool = NULL;
    enum err e = ERR_OK;
    if (o->url) {
        /* a running slorag: the dataset goes through its public API */
        json_error_t jerr;
        remote_root = json_load_file(o->dataset, 0, &jerr);
        articles = json_object_get(remote_root, "data");
        if (!remote_root || !json_is_array(articles)) {
            fprintf(stderr, "slorag eval: %s: %s\n", o->dataset,
                    remote_root ? "not a SQuAD file: no \"data\" array" : jerr.text);
            json_decref(remote_root);
            return 2;
        }
        int status = eval_remote_open(o->url, o->api_key, articles, &rm, &nparas);
        if (status) {
            json_decref(remote_root);
            return status;
        }
    } else {
        int status = squad_scratch_open(c, "eval", o->dataset, &sq);
        if (status)
            return status;
        articles = sq.articles;
        eng = sq.engine;
        nparas = sq.paragraphs;
        e = agent_pool_new(c, &pool);
    }
    bool tty = isatty(STDERR_FILENO) == 1;
    size_t total = 0;
    for (size_t a = 0; a < json_array_size(articles); a++) {
        json_t *paras = json_object_get(json_array_get(articles, a), "paragraphs");
        for (size_t p = 0; p < json_array_size(paras); p++)
            total += json_array_size(json_object_get(json_array_get(paras, p), "qas"));
    }
    if (o->limit > 0 && total > (size_t)o->limit)
        total = (size_t)o->limit;
    struct bucket overall = {.lat = calloc(total + 1, sizeof(double))};
    struct bucket per[SLO_INTENT__COUNT_MAX];
    memset(per, 0, sizeof per);
    for (int i = 0; i < SLO_INTENT__COUNT_MAX; i++)
        per[i].lat = calloc(total + 1, sizeof(double));
    char intents[SLO_INTENT__COUNT_MAX][24];
    int nintents = 0;
    json_t *plan_seen = NULL; /* the plan of the first answer: what configuration ran */
    size_t done = 0;
    int errors = 0;
    for (size_t a = 0; !e && a < json_array_size(articles) && done < total; a++) {
        json_t *paras = json_object_get(json_array_get(articles, a), "paragraphs");
        for (size_t p = 0; !e && p < json_array_size(paras) && done < total; p++) {
            json_t *qas = json_object_get(json_array_get(paras, p), "qas");
            for (size_t q = 0; q < json_array_size(qas) && done < total; q++) {
                json_t *qa = json_array_get(qas, q);
                const char *question = json_string_value(json_object_get(qa, "question"));
                if (!question)
                    continue;
                json_t *golds = json_object_get(qa, "answers");
                bool impossible = json_is_true(json_object_get(qa, "is_impossible")) || json_array_size(golds) == 0;
                struct arena *ar = arena_new(0);
                struct waiter w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
                if (o->url) {
                    w.e = eval_remote_query(&rm, question, o->tier, o->mode, &w.body, w.msg, sizeof w.msg);
                } else {
                    char rid[33];
                    util_random_hex(rid, 16);
                    struct exec_query_req req = {.request_id = rid, .tenant = "eval", .question = question,
                                                 .collection = "eval", .arrived_us = clock_us(),
                                                 .mode = o->mode ? ret_mode_parse(o->mode) : -1,
                                                 .pin = o->pin,
                                                 .tier = o->tier ? slo_tier_parse(o->tier) : -1};
                    struct exec_env env = {.engine = eng, .pool = pool};
                    exec_query_start(&env, c, &req, ar, on_done, &w);
                    pthread_mutex_lock(&w.mu);
                    while (!w.done)
                        pthread_cond_wait(&w.cv, &w.mu);
                    pthread_mutex_unlock(&w.mu);
                }
                done++;
                if (w.e) {
                    if (errors++ == 0)
                        fprintf(stderr, "%sslorag eval: a question failed: %s\n", tty ? "\r\033[K" : "",
                                w.msg[0] ? w.msg : err_message(w.e));
                    arena_free(ar);
                    continue;
                }
                if (!plan_seen)
                    plan_seen = json_incref(json_object_get(json_object_get(w.body, "decision"), "plan"));
                const char *answer = json_string_value(json_object_get(w.body, "answer"));
                bool abstained = json_is_true(json_object_get(w.body, "abstained"));
                const char *intent = json_string_value(json_object_get(json_object_get(w.body, "decision"), "intent"));
                int ii = 0;
                while (ii < nintents && strcmp(intents[ii], intent ? intent : "?") != 0)
                    ii++;
                if (ii == nintents && nintents < SLO_INTENT__COUNT_MAX)
                    snprintf(intents[nintents++], sizeof intents[0], "%s", intent ? intent : "?");
                struct bucket *bs[2] = {&overall, ii < SLO_INTENT__COUNT_MAX ? &per[ii] : &overall};
                double lat = json_number_value(json_object_get(json_object_get(w.body, "timings"), "total_ms"));
                double cost = json_number_value(json_object_get(json_object_get(w.body, "usage"), "cost"));
                /* what the service itself would learn from this answer (executor.c, slo_finish) */
                double signal = abstained ? 0
                                          : json_number_value(json_object_get(
                                                json_object_get(json_object_get(w.body, "decision"), "actual"),
                                                "confidence"));
                for (int k = 0; k < 2; k++) {
                    struct bucket *b = bs[k];
                    if (k == 1 && b == &overall)
                        break;
                    b->lat[b->n++] = lat;
                    b->cost += cost;
                    b->signal += signal;
                    if (impossible) {
                        b->unanswerable++;
                        if (abstained)
                            b->abstain_tp++;
                        else
                            b->abstain_fn++;
                        continue;
                    }
                    b->answerable++;
                    if (abstained) {
                        b->abstain_fp++;
                        continue;
                    }
                    double best_f1 = 0;
                    bool em = false;
                    for (size_t g = 0; g < json_array_size(golds); g++) {
                        const char *gold = json_string_value(json_object_get(json_array_get(golds, g), "text"));
                        if (!gold)
                            continue;
                        em = em || eval_exact(answer ? answer : "", gold);
                        double f = eval_f1(answer ? answer : "", gold);
                        best_f1 = f > best_f1 ? f : best_f1;
                    }
                    b->em += em;
                    b->f1 += best_f1;
                }
                json_decref(w.body);
                arena_free(ar);
                if (tty && (done % 10 == 0 || done == total))
                    fprintf(stderr, "\r\033[Kanswering %zu/%zu", done, total);
            }
        }
    }
    if (tty)
        fputs("\r\033[K", stderr);
    int rc = 0;
    if (e) {
        fprintf(stderr, "slorag eval: %s\n", err_message(e));
        rc = 1;
    } else {
        json_t *intents_j = json_object();
        for (int i = 0; i < nintents; i++)
            json_object_set_new(intents_j, intents[i], bucket_json(&per[i]));
        json_t *report = json_pack("{s:s, s:s, s:I, s:i, s:o, s:o}", "dataset", o->dataset, "tier",
                                   o->tier ? o->tier : c->query.default_tier, "paragraphs", (json_int_t)nparas,
                                   "errors", errors, "overall", bucket_json(&overall), "intents", intents_j);
        if (plan_seen)
            json_object_set(report, "plan", plan_seen);
        json_t *ov = json_object_get(report, "overall");
        if (!o->quiet) {
            if (o->url)
                printf("## slorag eval: %s against %s (tier %s)\n\n", o->dataset, o->url,
                       o->tier ? o->tier : "as planned");
            else
                printf("## slorag eval: %s (tier %s)\n\n", o->dataset, o->tier ? o->tier : c->query.default_tier);
            printf("| scope | questions | EM | F1 | abstain P | abstain R | cost/query | p50 ms | p95 ms | p99 ms |\n");
            printf("|---|---|---|---|---|---|---|---|---|---|\n");
            const char *key;
            json_t *v;
            json_t *rows = json_object();
            json_object_set(rows, "overall", ov);
            json_object_foreach(intents_j, key, v) json_object_set(rows, key, v);
            json_object_foreach(rows, key, v) {
                printf("| %s | %lld | %.3f | %.3f | %.3f | %.3f | %.6f | %.1f | %.1f | %.1f |\n", key,
                       (long long)json_integer_value(json_object_get(v, "questions")),
                       json_real_value(json_object_get(v, "exact_match")), json_real_value(json_object_get(v, "f1")),
                       json_real_value(json_object_get(v, "abstain_precision")),
                       json_real_value(json_object_get(v, "abstain_recall")),
                       json_real_value(json_object_get(v, "cost_per_query")),
                       json_real_value(json_object_get(v, "latency_p50_ms")),
                       json_real_value(json_object_get(v, "latency_p95_ms")),
                       json_real_value(json_object_get(v, "latency_p99_ms")));
            }
            json_decref(rows);
            if (errors)
                printf("\n%d questions ended in an error and are not scored.\n", errors);
        }
        if (o->out_json && json_dump_file(report, o->out_json, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) != 0) {
            fprintf(stderr, "slorag eval: cannot write %s\n", o->out_json);
            rc = 1;
        }
        json_decref(report);
    }
    json_decref(plan_seen);
    free(overall.lat);
    for (int i = 0; i < SLO_INTENT__COUNT_MAX; i++)
        free(per[i].lat);
    if (o->url) {
        eval_remote_close(&rm);
        json_decref(remote_root);
    } else {
        agent_pool_free(pool);
        squad_scratch_close(&sq);
    }
    return rc;
}
