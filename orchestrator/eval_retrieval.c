/* eval_retrieval.c - `slorag eval-retrieval`: retrieval quality on a
 * SQuAD-format dataset.
 *
 * Every paragraph becomes one document (id "a<article>.p<paragraph>") in a
 * scratch collection inside a temporary data directory, so a user's own
 * store is never touched.  Each answerable question is then searched in
 * every mode, and the rank of the first chunk from the gold paragraph gives
 * recall@1/5/10 and the mean reciprocal rank (over the top 10).  A fourth
 * row, hybrid+rerank, takes hybrid's top 20 through the built-in reranker
 * and scores the 10 it keeps: what the planner's rerank stage buys. */
#include "eval_retrieval.h"
#include "agent.h"
#include "engine.h"
#include "squad.h"
#include "log.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVAL_K 10
#define EVAL_MODES 4 /* lexical, dense, hybrid, hybrid+rerank */

struct mode_score {
    size_t at1, at5, at10;
    double rr;
    double ms;
};

static const char *mode_label(int m) {
    return m < 3 ? ret_mode_name((enum ret_mode)m) : "hybrid+rerank";
}

/* Hybrid's top 2k, reranked down to k; res/n are replaced by the kept list. */
static enum err search_reranked(struct ret_engine *eng, int64_t cid, const char *question, struct arena *arena,
                                struct ret_scored **res, size_t *n) {
    enum err e = ret_engine_search(eng, cid, question, 2 * EVAL_K, RET_MODE_HYBRID, arena, res, n, NULL);
    if (e)
        return e;
    struct ret_hit *hits = arena_calloc(arena, *n + 1, sizeof(*hits));
    if (!hits)
        return ERR_NOMEM;
    for (size_t i = 0; i < *n; i++)
        hits[i] = (*res)[i].hit;
    struct agent_ctx ctx = {.arena = arena, .engine = eng};
    struct agent_io io = {.question = question, .k = EVAL_K, .hits = hits, .nhits = *n, .scored = *res};
    e = agent_rerank.run(NULL, &ctx, &io);
    if (!e) {
        *res = io.scored;
        *n = io.nhits;
    }
    return e;
}

static void progress(bool tty, const char *what, size_t done, size_t total) {
    if (tty && (done % 25 == 0 || done == total))
        fprintf(stderr, "\r\033[K%s %zu/%zu", what, done, total);
}

int eval_retrieval_run(const struct cfg *c, const char *dataset, bool json_out) {
    struct squad_scratch sq;
    int rc = squad_scratch_open(c, "eval-retrieval", dataset, &sq);
    if (rc)
        return rc;
    json_t *articles = sq.articles;
    struct ret_engine *eng = sq.engine;
    int64_t cid = sq.collection_id;
    size_t nparas = sq.paragraphs, nquestions = 0, nimpossible = 0;
    double ingest_ms = sq.ingest_ms;
    bool tty = isatty(STDERR_FILENO) == 1;
    enum err e = ERR_OK;

    /* search */
    struct mode_score score[EVAL_MODES] = {{0}};
    struct arena *arena = arena_new(0);
    for (size_t a = 0; !e && a < json_array_size(articles); a++) {
        json_t *paras = json_object_get(json_array_get(articles, a), "paragraphs");
        for (size_t p = 0; !e && p < json_array_size(paras); p++) {
            json_t *qas = json_object_get(json_array_get(paras, p), "qas");
            char gold[48];
            squad_paragraph_id(a, p, gold, sizeof gold);
            for (size_t q = 0; !e && q < json_array_size(qas); q++) {
                json_t *qa = json_array_get(qas, q);
                const char *question = json_string_value(json_object_get(qa, "question"));
                if (!question || !*question)
                    continue;
                if (json_is_true(json_object_get(qa, "is_impossible")) ||
                    json_array_size(json_object_get(qa, "answers")) == 0) {
                    nimpossible++;
                    continue;
                }
                nquestions++;
                for (int m = 0; !e && m < EVAL_MODES; m++) {
                    struct ret_scored *res;
                    size_t n;
                    double q0 = clock_ms();
                    e = m < 3 ? ret_engine_search(eng, cid, question, EVAL_K, (enum ret_mode)m, arena, &res, &n, NULL)
                              : search_reranked(eng, cid, question, arena, &res, &n);
                    score[m].ms += clock_ms() - q0;
                    size_t rank = 0;
                    for (size_t i = 0; !e && i < n && !rank; i++)
                        if (strcmp(res[i].hit.document_id, gold) == 0)
                            rank = i + 1;
                    if (rank) {
                        score[m].at1 += rank <= 1;
                        score[m].at5 += rank <= 5;
                        score[m].at10 += rank <= 10;
                        score[m].rr += 1.0 / (double)rank;
                    }
                }
                progress(tty, "searching questions", nquestions, nquestions);
                /* a fresh arena per question keeps memory flat on large sets */
                arena_free(arena);
                arena = arena_new(0);
            }
        }
    }
    if (tty)
        fputs("\r\033[K", stderr);
    arena_free(arena);
    squad_scratch_close(&sq);
    if (e) {
        fprintf(stderr, "slorag eval-retrieval: %s\n", err_message(e));
        return 1;
    }
    if (nquestions == 0) {
        fprintf(stderr, "slorag eval-retrieval: %s has no answerable questions\n", dataset);
        return 2;
    }
    double nq = (double)nquestions;
    if (json_out) {
        json_t *out = json_pack("{s:s, s:I, s:I, s:I, s:f, s:o}", "dataset", dataset, "paragraphs", (json_int_t)nparas,
                                "questions", (json_int_t)nquestions, "unanswerable_skipped", (json_int_t)nimpossible,
                                "ingest_ms", ingest_ms, "modes", json_object());
        for (int m = 0; m < EVAL_MODES; m++)
            json_object_set_new(json_object_get(out, "modes"), mode_label(m),
                                json_pack("{s:f, s:f, s:f, s:f, s:f}", "recall@1", (double)score[m].at1 / nq, "recall@5",
                                          (double)score[m].at5 / nq, "recall@10", (double)score[m].at10 / nq, "mrr",
                                          score[m].rr / nq, "ms_per_query", score[m].ms / nq));
        char *s = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(4));
        puts(s ? s : "{}");
        free(s);
        json_decref(out);
        return 0;
    }
    printf("dataset %s: %zu paragraphs, %zu questions (%zu unanswerable skipped), ingest %.0f ms\n", dataset, nparas,
           nquestions, nimpossible, ingest_ms);
    printf("%-13s %9s %9s %10s %7s %10s\n", "mode", "recall@1", "recall@5", "recall@10", "MRR", "ms/query");
    for (int m = 0; m < EVAL_MODES; m++)
        printf("%-13s %9.3f %9.3f %10.3f %7.3f %10.3f\n", mode_label(m), (double)score[m].at1 / nq,
               (double)score[m].at5 / nq, (double)score[m].at10 / nq, score[m].rr / nq, score[m].ms / nq);
    return 0;
}
