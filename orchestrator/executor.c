/* executor.c - the query pipeline (see executor.h).
 *
 * The planner's output is data; this file is the only place that turns it
 * into agent calls.  Stage timings and every skipped stage, with its reason,
 * go into the decision record returned to the client. */
#include "executor.h"
#include "agent.h"
#include "intent.h"
#include "plan.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static double ms_since(int64_t t0) {
    return (double)(clock_us() - t0) / 1000.0;
}

static json_t *plan_json(const struct slo_plan *p) {
    return json_pack("{s:s, s:i, s:b, s:s, s:i, s:s, s:i, s:i, s:f, s:s}", "retriever",
                     slo_retriever_name(p->retriever), "k", p->k, "rerank", p->rerank, "generator_tier",
                     slo_tier_name(p->tier), "replicas", p->replicas, "aggregation",
                     slo_aggregate_name(p->aggregate), "max_tokens", p->max_tokens, "deadline_ms",
                     p->deadline_ms, "min_confidence", p->min_confidence, "reason", p->reason);
}

static json_t *signals_json(const struct ret_signals *s) {
    return json_pack("{s:f, s:f, s:f, s:I, s:I, s:I}", "top_score", s->top_score, "score_margin", s->score_margin,
                     "overlap", s->overlap, "candidates", (json_int_t)s->candidates, "lexical_hits",
                     (json_int_t)s->lexical_hits, "dense_hits", (json_int_t)s->dense_hits);
}

static const struct agent_ops *retriever_for(enum slo_retriever r) {
    switch (r) {
    case SLO_RETRIEVER_LEXICAL: return &agent_lexical;
    case SLO_RETRIEVER_DENSE: return &agent_dense;
    case SLO_RETRIEVER_HYBRID: return &agent_hybrid;
    }
    return &agent_hybrid;
}

static enum err find_collection(struct ret_engine *eng, const struct exec_query_req *req, int64_t *ret_id,
                                char *errmsg, size_t errlen) {
    enum err e = ret_collection_find(ret_engine_store(eng), req->tenant, req->collection, ret_id);
    if (e == ERR_NOT_FOUND)
        snprintf(errmsg, errlen, "collection \"%s\" does not exist", req->collection);
    else if (e)
        snprintf(errmsg, errlen, "could not open collection \"%s\"", req->collection);
    return e;
}

static void limits_from(const struct cfg *cfg, struct slo_plan_limits *lim) {
    int m = ret_mode_parse(cfg->retrieval.default_mode);
    *lim = (struct slo_plan_limits){
        .default_retriever = m < 0 ? SLO_RETRIEVER_HYBRID : (enum slo_retriever)m,
        .default_k = cfg->query.default_k,
        .max_k = cfg->query.max_k,
        .deadline_ms = cfg->query.deadline_ms,
        .min_confidence = cfg->query.min_confidence,
    };
}

static json_t *citations_json(const struct agent_io *io) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < io->ncitations; i++) {
        const struct agent_citation *c = &io->citations[i];
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "document_id", c->hit->document_id,
                                             "title", c->hit->title, "chunk_id", (json_int_t)c->hit->chunk_id,
                                             "start", (json_int_t)c->start, "end", (json_int_t)c->end,
                                             "snippet", c->snippet));
    }
    return arr;
}

enum err exec_query(struct ret_engine *eng, const struct cfg *cfg, const struct exec_query_req *req,
                    struct arena *a, json_t **ret_body, char *errmsg, size_t errlen) {
    int64_t t_start = clock_us();
    double queued_ms = (double)(t_start - req->arrived_us) / 1000.0;

    /* classify */
    int64_t t0 = clock_us();
    struct slo_intent_result intent;
    slo_intent_classify(req->question, &intent);
    double classify_ms = ms_since(t0);

    /* plan */
    t0 = clock_us();
    struct slo_plan_limits lim;
    limits_from(cfg, &lim);
    struct slo_request_hints hints = {req->k, req->deadline_ms, req->mode};
    struct slo_plan plan;
    slo_plan_make(&lim, &intent, &hints, &plan);
    double plan_ms = ms_since(t0);
    int64_t deadline_us = req->arrived_us + (int64_t)plan.deadline_ms * 1000;

    int64_t collection_id;
    enum err e = find_collection(eng, req, &collection_id, errmsg, errlen);
    if (e)
        return e;

    struct agent_ctx ctx = {.arena = a, .engine = eng, .deadline_us = deadline_us};
    struct agent_io io = {
        .question = req->question,
        .collection_id = collection_id,
        .k = plan.k,
        .min_confidence = plan.min_confidence,
        .max_tokens = plan.max_tokens,
    };

    /* retrieve */
    t0 = clock_us();
    e = retriever_for(plan.retriever)->run(NULL, &ctx, &io);
    double retrieve_ms = ms_since(t0);
    if (e) {
        snprintf(errmsg, errlen, "retrieval failed: %s", err_message(e));
        return e;
    }
    if (clock_us() > deadline_us) {
        snprintf(errmsg, errlen, "deadline of %d ms passed after retrieval", plan.deadline_ms);
        return ERR_DEADLINE;
    }

    /* generate */
    t0 = clock_us();
    e = agent_extractive.run(NULL, &ctx, &io);
    double generate_ms = ms_since(t0);
    if (e) {
        snprintf(errmsg, errlen, "generation failed: %s", err_message(e));
        return e;
    }
    double total_ms = (double)(clock_us() - req->arrived_us) / 1000.0;

    json_t *skipped = json_array();
    json_array_append_new(skipped, json_pack("{s:s, s:s}", "stage", "rerank", "reason",
                                             "no reranker is configured for this plan"));
    if (io.abstained)
        json_array_append_new(skipped, json_pack("{s:s, s:s}", "stage", "answer", "reason", io.abstain_reason));

    json_t *body = json_pack(
        "{s:s, s:o, s:b, s:o, s:{s:i, s:i, s:f}, s:{s:f, s:f, s:f, s:f, s:f, s:f}, "
        "s:{s:s, s:f, s:s, s:s, s:o, s:o, s:{s:f}, s:o, s:[], s:{s:b}}}",
        "request_id", req->request_id,
        "answer", io.abstained ? json_null() : json_string(io.answer),
        "abstained", io.abstained,
        "citations", citations_json(&io),
        "usage", "input_tokens", io.input_tokens, "output_tokens", io.output_tokens, "cost", 0.0,
        "timings", "queued_ms", queued_ms, "classify_ms", classify_ms, "plan_ms", plan_ms, "retrieve_ms",
        retrieve_ms, "generate_ms", generate_ms, "total_ms", total_ms,
        "decision", "intent", slo_intent_name(intent.intent), "intent_confidence", intent.confidence,
        "intent_cue", intent.cue, "collection", req->collection, "plan", plan_json(&plan), "signals",
        signals_json(&io.signals),
        "actual", "confidence", io.confidence, "skipped", skipped, "expanded",
        "slo_met", "deadline", total_ms <= plan.deadline_ms);
    if (!body) {
        snprintf(errmsg, errlen, "could not build the response");
        return ERR_NOMEM;
    }
    *ret_body = body;
    return ERR_OK;
}

enum err exec_retrieve(struct ret_engine *eng, const struct cfg *cfg, const struct exec_query_req *req,
                       struct arena *a, json_t **ret_body, char *errmsg, size_t errlen) {
    int64_t t0 = clock_us();
    int64_t collection_id;
    enum err e = find_collection(eng, req, &collection_id, errmsg, errlen);
    if (e)
        return e;
    int mode = req->mode >= 0 ? req->mode : ret_mode_parse(cfg->retrieval.default_mode);
    int k = req->k > 0 ? req->k : cfg->query.default_k;
    struct ret_scored *res = NULL;
    size_t n = 0;
    struct ret_signals sig;
    e = ret_engine_search(eng, collection_id, req->question, k, (enum ret_mode)mode, a, &res, &n, &sig);
    if (e) {
        snprintf(errmsg, errlen, "retrieval failed: %s", err_message(e));
        return e;
    }
    json_t *results = json_array();
    for (size_t i = 0; results && i < n; i++) {
        const struct ret_scored *r = &res[i];
        json_t *scores = json_object();
        if (r->lexical_rank)
            json_object_set_new(scores, "lexical", json_pack("{s:f, s:i}", "score", r->lexical_score, "rank", r->lexical_rank));
        if (r->dense_rank)
            json_object_set_new(scores, "dense", json_pack("{s:f, s:i}", "score", r->dense_score, "rank", r->dense_rank));
        json_array_append_new(results, json_pack("{s:i, s:s, s:s, s:I, s:I, s:I, s:s, s:f, s:o}", "rank", (int)i + 1,
                                                 "document_id", r->hit.document_id, "title", r->hit.title, "chunk_id",
                                                 (json_int_t)r->hit.chunk_id, "start", (json_int_t)r->hit.start, "end",
                                                 (json_int_t)r->hit.end, "text", r->hit.text, "score", r->fused_score,
                                                 "scores", scores));
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:f}", "request_id", req->request_id, "collection",
                             req->collection, "mode", ret_mode_name((enum ret_mode)mode), "k", k, "results", results,
                             "signals", signals_json(&sig), "took_ms", (double)(clock_us() - t0) / 1000.0);
    if (!body) {
        snprintf(errmsg, errlen, "could not build the response");
        return ERR_NOMEM;
    }
    *ret_body = body;
    return ERR_OK;
}
