/* executor.c - the query pipeline (see executor.h).
 *
 * The planner's output is data; this file is the only place that turns it
 * into agent calls.  Stage timings and every skipped stage, with its reason,
 * go into the decision record returned to the client. */
#include "executor.h"
#include "agent.h"
#include "backend.h"
#include "llm.h"
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
    int t = slo_tier_parse(cfg->query.default_tier);
    *lim = (struct slo_plan_limits){
        .default_retriever = m < 0 ? SLO_RETRIEVER_HYBRID : (enum slo_retriever)m,
        .default_tier = t < 0 ? SLO_TIER_EXTRACTIVE : (enum slo_tier)t,
        .max_tokens = cfg->query.max_tokens,
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

/* One query in flight.  Lives in the request's arena. */
struct query_run {
    struct exec_env env;
    const struct cfg *cfg;
    const struct exec_query_req *req;
    struct arena *arena;
    exec_done_fn done;
    void *ud;

    struct slo_intent_result intent;
    struct slo_plan plan;
    struct agent_io io;
    struct agent_ctx ctx;
    int64_t deadline_us;
    double queued_ms, classify_ms, plan_ms, retrieve_ms, generate_ms;
    double cost;
    const char *backend; /* arena copy of the backend's name, or NULL */
    int attempts;
    bool usage_estimated;
    json_t *skipped, *expanded; /* owned until the body takes them */
};

static void run_fail(struct query_run *q, enum err e, const char *msg) {
    json_decref(q->skipped);
    json_decref(q->expanded);
    q->done(q->ud, e, NULL, msg);
}

static void note(json_t *list, const char *stage, const char *reason) {
    json_array_append_new(list, json_pack("{s:s, s:s}", "stage", stage, "reason", reason));
}

static void run_respond(struct query_run *q) {
    struct agent_io *io = &q->io;
    double total_ms = (double)(clock_us() - q->req->arrived_us) / 1000.0;
    if (io->abstained)
        note(q->skipped, "answer", io->abstain_reason ? io->abstain_reason : "abstained");
    json_t *body = json_pack(
        "{s:s, s:o, s:b, s:o, s:{s:i, s:i, s:f, s:b}, s:{s:f, s:f, s:f, s:f, s:f, s:f}, "
        "s:{s:s, s:f, s:s, s:s, s:o, s:o, s:{s:f, s:s?, s:i}, s:o, s:o, s:{s:b}}}",
        "request_id", q->req->request_id,
        "answer", io->abstained || !io->answer ? json_null() : json_string(io->answer),
        "abstained", io->abstained,
        "citations", citations_json(io),
        "usage", "input_tokens", io->input_tokens, "output_tokens", io->output_tokens, "cost", q->cost,
        "estimated", q->usage_estimated,
        "timings", "queued_ms", q->queued_ms, "classify_ms", q->classify_ms, "plan_ms", q->plan_ms, "retrieve_ms",
        q->retrieve_ms, "generate_ms", q->generate_ms, "total_ms", total_ms,
        "decision", "intent", slo_intent_name(q->intent.intent), "intent_confidence", q->intent.confidence,
        "intent_cue", q->intent.cue, "collection", q->req->collection, "plan", plan_json(&q->plan), "signals",
        signals_json(&io->signals),
        "actual", "confidence", io->confidence, "backend", q->backend, "attempts", q->attempts,
        "skipped", q->skipped, "expanded", q->expanded,
        "slo_met", "deadline", total_ms <= q->plan.deadline_ms);
    q->skipped = q->expanded = NULL; /* the body owns them now, or they were freed with it */
    if (!body) {
        q->done(q->ud, ERR_NOMEM, NULL, "could not build the response");
        return;
    }
    q->done(q->ud, ERR_OK, body, NULL);
}

/* The free tier: also the fallback when an LLM tier cannot answer. */
static void run_extractive(struct query_run *q) {
    int64_t t0 = clock_us();
    enum err e = agent_extractive.run(NULL, &q->ctx, &q->io);
    q->generate_ms += ms_since(t0);
    if (e) {
        char msg[128];
        snprintf(msg, sizeof msg, "generation failed: %s", err_message(e));
        run_fail(q, e, msg);
        return;
    }
    run_respond(q);
}

/* Backend pool I/O thread: keep it short. */
static void on_llm_done(void *ud, const struct agent_llm_result *res) {
    struct query_run *q = ud;
    q->generate_ms = res->ms;
    q->attempts = res->attempts;
    q->backend = res->backend[0] ? arena_strdup(q->arena, res->backend) : NULL;
    if (res->err) {
        char why[384];
        snprintf(why, sizeof why, "%s tier failed (%s): answered by the extractive tier", slo_tier_name(q->plan.tier),
                 res->errmsg);
        note(q->expanded, "fallback", why);
        run_extractive(q); /* within the reserve kept back for it */
        return;
    }
    q->cost = res->cost;
    q->usage_estimated = res->usage_estimated;
    enum err e = agent_llm_read_answer(res->content, &q->io, q->arena);
    q->io.input_tokens = res->prompt_tokens;
    q->io.output_tokens = res->completion_tokens;
    if (e) {
        run_fail(q, e, "could not read the model's answer");
        return;
    }
    run_respond(q);
}

void exec_query_start(const struct exec_env *env, const struct cfg *cfg, const struct exec_query_req *req,
                      struct arena *a, exec_done_fn done, void *ud) {
    struct query_run *q = arena_calloc(a, 1, sizeof(*q));
    if (!q) {
        done(ud, ERR_NOMEM, NULL, "out of memory");
        return;
    }
    *q = (struct query_run){.env = *env, .cfg = cfg, .req = req, .arena = a, .done = done, .ud = ud};
    q->skipped = json_array();
    q->expanded = json_array();
    int64_t t_start = clock_us();
    q->queued_ms = (double)(t_start - req->arrived_us) / 1000.0;

    int64_t t0 = clock_us();
    slo_intent_classify(req->question, &q->intent);
    q->classify_ms = ms_since(t0);

    t0 = clock_us();
    struct slo_plan_limits lim;
    limits_from(cfg, &lim);
    struct slo_request_hints hints = {req->k, req->deadline_ms, req->mode, req->tier};
    slo_plan_make(&lim, &q->intent, &hints, &q->plan);
    q->plan_ms = ms_since(t0);
    q->deadline_us = req->arrived_us + (int64_t)q->plan.deadline_ms * 1000;

    char msg[192];
    int64_t collection_id;
    enum err e = find_collection(env->engine, req, &collection_id, msg, sizeof msg);
    if (e) {
        run_fail(q, e, msg);
        return;
    }
    q->ctx = (struct agent_ctx){.arena = a, .engine = env->engine, .deadline_us = q->deadline_us};
    q->io = (struct agent_io){
        .question = req->question,
        .collection_id = collection_id,
        .k = q->plan.k,
        .min_confidence = q->plan.min_confidence,
        .max_tokens = q->plan.max_tokens,
    };

    t0 = clock_us();
    e = retriever_for(q->plan.retriever)->run(NULL, &q->ctx, &q->io);
    q->retrieve_ms = ms_since(t0);
    if (e) {
        snprintf(msg, sizeof msg, "retrieval failed: %s", err_message(e));
        run_fail(q, e, msg);
        return;
    }
    if (clock_us() > q->deadline_us) {
        snprintf(msg, sizeof msg, "deadline of %d ms passed after retrieval", q->plan.deadline_ms);
        run_fail(q, ERR_DEADLINE, msg);
        return;
    }
    note(q->skipped, "rerank", "no reranker is configured for this plan");

    if (q->plan.tier == SLO_TIER_EXTRACTIVE) {
        run_extractive(q);
        return;
    }
    if (q->io.nhits == 0) {
        note(q->skipped, "generate", "no passage matched: nothing to send to the model");
        run_extractive(q); /* abstains, for free */
        return;
    }
    const char *system = NULL, *user = NULL;
    e = agent_llm_prompt(&q->io, a, &system, &user);
    if (e) {
        run_fail(q, e, "could not build the prompt");
        return;
    }
    /* Keep a slice of the deadline back so that a failed or slow backend
     * still leaves time for the extractive fallback to answer in time. */
    int reserve_ms = q->plan.deadline_ms / 20;
    reserve_ms = reserve_ms < 20 ? 20 : reserve_ms > 250 ? 250 : reserve_ms;
    struct agent_llm_call call = {
        .tier = slo_tier_name(q->plan.tier),
        .system = system,
        .user = user,
        .max_tokens = q->plan.max_tokens,
        .deadline_us = q->deadline_us - (int64_t)reserve_ms * 1000,
    };
    e = env->pool ? agent_pool_chat(env->pool, &call, on_llm_done, q) : ERR_UNAVAILABLE;
    if (e) {
        char why[160];
        snprintf(why, sizeof why, "no usable %s backend (none configured, or its circuit breaker is open): "
                 "answered by the extractive tier", slo_tier_name(q->plan.tier));
        note(q->expanded, "fallback", why);
        run_extractive(q);
    }
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
