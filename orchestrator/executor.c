/* executor.c - the query pipeline (see executor.h).
 *
 * The planner's output is data; this file is the only place that turns it
 * into agent calls.  Stage timings and every skipped stage, with its reason,
 * go into the decision record returned to the client. */
#include "executor.h"
#include "jsonput.h"
#include "agent.h"
#include "aggregate.h"
#include "backend.h"
#include "llm.h"
#include "eval.h"
#include "model.h"
#include "planner.h"
#include "gate.h"
#include "space.h"
#include "intent.h"
#include "plan.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double ms_since(int64_t t0) {
    return (double)(clock_us() - t0) / 1000.0;
}

/* The slice of a deadline kept back from a backend (LLM or embedder) so
 * that when it fails or is slow, a fallback still answers in time. */
static int reserve_ms(int deadline_ms) {
    int r = deadline_ms / 20;
    return r < 20 ? 20 : r > 250 ? 250 : r;
}

/* The response's objects are filled field by field (common/jsonput.h:
 * json_pack parsed a format string for each). */
static json_t *plan_json(const struct slo_plan *p) {
    json_t *o = json_object();
    int f = jput_name(o, "retriever", slo_retriever_name(p->retriever));
    f |= jput_int(o, "k", p->k);
    f |= jput_bool(o, "rerank", p->rerank);
    f |= jput_name(o, "generator_tier", slo_tier_name(p->tier));
    f |= jput_int(o, "replicas", p->replicas);
    f |= jput_name(o, "aggregation", slo_aggregate_name(p->aggregate));
    f |= jput_int(o, "max_tokens", p->max_tokens);
    f |= jput_int(o, "deadline_ms", p->deadline_ms);
    f |= jput_real(o, "min_confidence", p->min_confidence);
    f |= jput_str(o, "reason", p->reason);
    return jput_done(o, f);
}

static json_t *signals_json(const struct ret_signals *s) {
    json_t *o = json_object();
    int f = jput_real(o, "top_score", s->top_score);
    f |= jput_real(o, "score_margin", s->score_margin);
    f |= jput_real(o, "overlap", s->overlap);
    f |= jput_int(o, "candidates", (json_int_t)s->candidates);
    f |= jput_int(o, "lexical_hits", (json_int_t)s->lexical_hits);
    f |= jput_int(o, "dense_hits", (json_int_t)s->dense_hits);
    return jput_done(o, f);
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
    int t = slo_tier_parse(cfg->query.default_tier); /* -1 for "auto" */
    *lim = (struct slo_plan_limits){
        .default_retriever = m < 0 ? SLO_RETRIEVER_HYBRID : (enum slo_retriever)m,
        .default_tier = t < 0 ? SLO_TIER_EXTRACTIVE : (enum slo_tier)t,
        .default_tier_forced = t >= 0,
        .max_tokens = cfg->query.max_tokens,
        .default_k = cfg->query.default_k,
        .max_k = cfg->query.max_k,
        .deadline_ms = cfg->query.deadline_ms,
        .min_confidence = cfg->query.min_confidence,
    };
}

enum err exec_slo_new(double explore_rate, uint64_t seed, struct exec_slo **ret) {
    struct exec_slo *s = calloc(1, sizeof(*s));
    if (!s)
        return ERR_NOMEM;
    enum err e = slo_model_new(&s->model);
    if (e) {
        free(s);
        return e;
    }
    pthread_rwlock_init(&s->lock, NULL);
    atomic_init(&s->counter, 0);
    s->seed = seed;
    s->explore_rate = explore_rate;
    *ret = s;
    return ERR_OK;
}

struct exec_slo *exec_slo_free(struct exec_slo *s) {
    if (s) {
        slo_model_free(s->model);
        pthread_rwlock_destroy(&s->lock);
        free(s);
    }
    return NULL;
}

json_t *exec_slo_save(struct exec_slo *s) {
    pthread_rwlock_rdlock(&s->lock);
    json_t *j = slo_model_to_json(s->model);
    pthread_rwlock_unlock(&s->lock);
    return j;
}

enum err exec_slo_load(struct exec_slo *s, const json_t *j, char *errbuf, size_t errlen) {
    pthread_rwlock_wrlock(&s->lock);
    enum err e = slo_model_load_json(s->model, j, errbuf, errlen);
    pthread_rwlock_unlock(&s->lock);
    return e;
}

enum err exec_slo_calibrate(struct exec_slo *s, const json_t *j, char *errbuf, size_t errlen) {
    pthread_rwlock_wrlock(&s->lock);
    enum err e = slo_model_calibrate(s->model, j, errbuf, errlen);
    pthread_rwlock_unlock(&s->lock);
    return e;
}

void exec_slo_feedback(struct exec_slo *s, int config, int intent, double rating) {
    if (config < 0 || intent < 0 || intent >= SLO_INTENT__COUNT || rating < 0 || rating > 1)
        return;
    pthread_rwlock_wrlock(&s->lock);
    slo_model_observe_quality(s->model, config, (enum slo_intent)intent, rating, 5.0); /* a person said so */
    pthread_rwlock_unlock(&s->lock);
}

/* Live state of each generator tier, from the backend pool's health. */
static void tiers_live(struct agent_pool *pool, struct slo_tier_live *out) {
    memset(out, 0, SLO_TIERS * sizeof(*out));
    if (!pool)
        return;
    struct agent_backend_health h[2 * CFG_MAX_BACKENDS];
    size_t n = agent_pool_health(pool, h, sizeof h / sizeof h[0]);
    int measured[SLO_TIERS] = {0}; /* slots of the backends with a latency measured */
    for (size_t i = 0; i < n; i++) {
        int t = slo_tier_parse(h[i].tier);
        if (t <= 0 || h[i].retired || h[i].breaker == AGENT_BREAKER_OPEN)
            continue;
        out[t].usable = true;
        out[t].in_flight += h[i].in_flight;
        out[t].queued += h[i].queued;
        out[t].max_concurrency += h[i].max_concurrency;
        if (h[i].latency_ewma_ms > 0) { /* the slots' mean call time, weighted by their count */
            out[t].service_ms += h[i].latency_ewma_ms * h[i].max_concurrency;
            measured[t] += h[i].max_concurrency;
        }
    }
    for (int t = 0; t < SLO_TIERS; t++)
        if (measured[t] > 0)
            out[t].service_ms /= measured[t];
}

static json_t *citations_json(const struct agent_io *io) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < io->ncitations; i++) {
        const struct agent_citation *c = &io->citations[i];
        json_t *o = json_object();
        int f = jput_str(o, "document_id", c->hit->document_id);
        f |= jput_str(o, "title", c->hit->title);
        f |= jput_int(o, "chunk_id", (json_int_t)c->hit->chunk_id);
        f |= jput_int(o, "start", (json_int_t)c->start);
        f |= jput_int(o, "end", (json_int_t)c->end);
        f |= jput_str(o, "snippet", c->snippet);
        json_array_append_new(arr, jput_done(o, f)); /* one that cannot be built is left out, as before */
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
    double queued_ms, classify_ms, plan_ms, retrieve_ms, rerank_ms, generate_ms;
    double cost;
    const char *backend; /* arena copy of the backend's name, or NULL */
    int attempts;
    bool usage_estimated;
    bool reranked;              /* the rerank stage ran; io.rerank says what it changed */
    bool streamed;              /* answer pieces already went to the client */
    json_t *skipped, *expanded; /* owned until the body takes them */

    /* SLO engine */
    bool slo;                   /* planned by the SLO engine */
    struct slo_objectives obj;  /* resolved and tightened */
    struct slo_decision decision;
    /* horizontal replicas: replies collected on the I/O thread */
    int replicas_out;           /* calls sent */
    int replicas_planned;       /* the plan's count (the first wave may be fewer) */
    atomic_int pending;         /* calls of this wave not back yet; the last one decides */
    struct replica {
        struct query_run *run;
        const char *content;    /* arena copy, NULL when the call failed */
        double cost, ms, wait_ms;
        int prompt_tokens, completion_tokens, attempts;
        bool estimated;
        const char *errmsg;
        enum err err;
    } *replies;
    double call_ms;             /* the slowest generator call, -1 = none */
    double wait_ms;             /* the longest wait for a backend slot, over every call */
    struct agent_llm_call call; /* the prepared call the replicas share */
    /* the LLM judge (aggregation "judge"): one more call picking a reply */
    struct replica judge;
    int agg_best, agg_n, agg_in, agg_out;
    double agg_agreement;
    bool agg_estimated;

    /* adaptive depth: one escalation pass when the answer is weak */
    struct slo_planner_input pin; /* what the plan came from (model re-read under the lock) */
    bool escalated;
    struct agent_io before;       /* the answer before escalating */
    double cost_before;
    int attempts_before, in_before, out_before;
};

static void run_fail(struct query_run *q, enum err e, const char *msg) {
    json_decref(q->skipped);
    json_decref(q->expanded);
    q->done(q->ud, e, NULL, msg);
}

static void note(json_t *list, const char *stage, const char *reason) {
    json_t *o = json_object();
    int f = jput_name(o, "stage", stage);
    f |= jput_str(o, "reason", reason);
    json_array_append_new(list, jput_done(o, f));
}

/* SLO bookkeeping for an answered query: judge each objective, add the
 * prediction and the objectives to the decision record, and teach the
 * model what this configuration really cost and took.  The generator's
 * grounding confidence is a weak quality signal (weight 1, read against
 * its calibrated mean: slo_model_observe_signal); user feedback counts more
 * (exec_slo_feedback). */
static void slo_finish(struct query_run *q, json_t *body, double total_ms) {
    json_t *d = json_object_get(body, "decision");
    double quality = q->io.abstained ? 0 : q->io.confidence;
    json_t *met = json_object();
    int f = jput_bool(met, "quality", quality >= q->obj.quality_min);
    f |= jput_bool(met, "cost", q->cost <= q->obj.cost_max + 1e-12);
    f |= jput_bool(met, "latency", total_ms <= q->obj.latency_p95_ms);
    f |= jput_bool(met, "deadline", total_ms <= q->obj.deadline_ms);
    json_object_set_new(d, "slo_met", jput_done(met, f));
    json_t *obj = json_object();
    f = jput_real(obj, "quality_min", q->obj.quality_min);
    f |= jput_real(obj, "cost_max", q->obj.cost_max);
    f |= jput_int(obj, "latency_p95_ms", q->obj.latency_p95_ms);
    f |= jput_int(obj, "deadline_ms", q->obj.deadline_ms);
    json_object_set_new(d, "objectives", jput_done(obj, f));
    json_t *pred = json_object();
    f = jput_real(pred, "quality", q->decision.predicted_quality);
    f |= jput_real(pred, "cost", q->decision.predicted_cost);
    f |= jput_real(pred, "latency_ms", q->decision.predicted_latency_p95_ms);
    json_object_set_new(d, "predicted", jput_done(pred, f));
    json_object_set_new(d, "planner", slo_decision_to_json(&q->decision));
    if (q->decision.config < 0)
        return;
    struct slo_observation ob = {.cost = q->cost, .latency_ms = total_ms, .call_ms = q->call_ms,
                                 .now_s = (int64_t)time(NULL)};
    pthread_rwlock_wrlock(&q->env.slo->lock);
    slo_model_observe(q->env.slo->model, q->decision.config, q->intent.intent, &ob);
    slo_model_observe_signal(q->env.slo->model, q->decision.config, q->intent.intent, quality, 1.0);
    pthread_rwlock_unlock(&q->env.slo->lock);
}

static void launch_llm(struct query_run *q, enum slo_tier tier, int replicas, int max_tokens);

/* How many candidates a reranking plan retrieves for k passages. */
static int rerank_candidates(int k) {
    int n = 2 * k > k + 5 ? 2 * k : k + 5;
    return n > 40 ? 40 : n;
}

/* The rerank stage.  Adaptive depth, "skip": when the dense and lexical
 * top lists already agree, the first-stage order stands and reranking is
 * skipped (slo_gate_skip_rerank).  Either way the list is cut to the
 * plan's k, and what the reranker changed goes into the decision record. */
static enum err run_rerank(struct query_run *q) {
    struct agent_io *io = &q->io;
    const char *why = NULL;
    if (!q->plan.rerank) {
        note(q->skipped, "rerank", "the plan does not rerank");
    } else if (io->nhits <= 1) {
        note(q->skipped, "rerank", io->nhits ? "one passage: nothing to reorder" : "no passage matched");
    } else if (q->plan.retriever == SLO_RETRIEVER_HYBRID && slo_gate_skip_rerank(io->signals.overlap, &why)) {
        note(q->skipped, "rerank", why);
    } else {
        int64_t t0 = clock_us();
        enum err e = agent_rerank.run(NULL, &q->ctx, io);
        q->rerank_ms = ms_since(t0);
        if (e)
            return e;
        q->reranked = true;
        return ERR_OK;
    }
    if (io->nhits > (size_t)io->k)
        io->nhits = (size_t)io->k; /* hits and scored share the order: both cut */
    return ERR_OK;
}

/* Adaptive depth, "expand": when the answer is weak and the request's cost
 * ceiling, budget and deadline still allow, one more generator call on a
 * stronger tier (or one more replica) — decided by slo_gate_escalate.  At
 * most once per request; a tier or configuration the client forced is
 * respected. */
static bool maybe_escalate(struct query_run *q) {
    if (!q->slo || q->escalated || q->decision.config < 0 || q->pin.hints.tier >= 0 || q->pin.hints.pin > 0 ||
        q->io.nhits == 0 || !q->env.pool)
        return false;
    double confidence = q->io.abstained ? 0 : q->io.confidence;
    if (confidence >= SLO_GATE_ESCALATE_CONFIDENCE)
        return false;
    if (q->streamed) {
        note(q->skipped, "escalate", "weak answer, but it was already streamed to the client");
        return false;
    }
    struct slo_escalation_input in = {
        .planner = &q->pin,
        .config = q->decision.config,
        .confidence = confidence,
        .spent = q->cost,
        .ms_left = (double)(q->deadline_us - clock_us()) / 1000.0 - reserve_ms(q->plan.deadline_ms),
    };
    struct slo_escalation esc;
    pthread_rwlock_rdlock(&q->env.slo->lock);
    q->pin.model = q->env.slo->model;
    slo_gate_escalate(&in, &esc);
    q->pin.model = NULL;
    pthread_rwlock_unlock(&q->env.slo->lock);
    if (esc.kind == SLO_ESCALATE_NONE)
        return false;
    q->escalated = true;
    note(q->expanded, "escalate", esc.reason);
    q->before = q->io;
    q->cost_before = q->cost;
    q->attempts_before = q->attempts;
    q->in_before = q->io.input_tokens;
    q->out_before = q->io.output_tokens;
    q->decision.config = esc.config; /* the models learn under what really ran */
    slo_space_key(esc.config, q->decision.key, sizeof q->decision.key);
    launch_llm(q, esc.tier, 1, esc.max_tokens > 0 ? esc.max_tokens : q->plan.max_tokens);
    return true;
}

static void run_respond(struct query_run *q) {
    if (maybe_escalate(q))
        return; /* the escalated call answers later */
    struct agent_io *io = &q->io;
    double total_ms = (double)(clock_us() - q->req->arrived_us) / 1000.0;
    if (io->abstained)
        note(q->skipped, "answer", io->abstain_reason ? io->abstain_reason : "abstained");
    json_t *body = json_object(), *usage = json_object(), *t = json_object(), *d = json_object();
    json_t *actual = json_object(), *met = json_object();
    int f = jput_name(body, "request_id", q->req->request_id);
    f |= jput(body, "answer", io->abstained || !io->answer ? json_null() : json_string(io->answer));
    f |= jput_bool(body, "abstained", io->abstained);
    f |= jput(body, "citations", citations_json(io));
    f |= jput_int(usage, "input_tokens", io->input_tokens);
    f |= jput_int(usage, "output_tokens", io->output_tokens);
    f |= jput_real(usage, "cost", q->cost);
    f |= jput_bool(usage, "estimated", q->usage_estimated);
    f |= jput(body, "usage", usage);
    f |= jput_real(t, "queued_ms", q->queued_ms);
    f |= jput_real(t, "classify_ms", q->classify_ms);
    f |= jput_real(t, "plan_ms", q->plan_ms);
    f |= jput_real(t, "retrieve_ms", q->retrieve_ms);
    f |= jput_real(t, "rerank_ms", q->rerank_ms);
    f |= jput_real(t, "generate_ms", q->generate_ms);
    f |= jput_real(t, "total_ms", total_ms);
    f |= jput(body, "timings", t);
    f |= jput_name(d, "intent", slo_intent_name(q->intent.intent));
    f |= jput_real(d, "intent_confidence", q->intent.confidence);
    f |= jput_str(d, "intent_cue", q->intent.cue);
    f |= jput_str(d, "collection", q->req->collection);
    f |= jput(d, "plan", plan_json(&q->plan));
    f |= jput(d, "signals", signals_json(&io->signals));
    f |= jput_real(actual, "confidence", io->confidence);
    f |= jput_str(actual, "backend", q->backend);
    f |= jput_int(actual, "attempts", q->attempts);
    f |= jput_real(actual, "backend_wait_ms", q->wait_ms);
    f |= jput(d, "actual", actual);
    f |= jput(d, "skipped", q->skipped); /* taken, whatever happens */
    f |= jput(d, "expanded", q->expanded);
    f |= jput_bool(met, "deadline", total_ms <= q->plan.deadline_ms);
    f |= jput(d, "slo_met", met);
    f |= jput(body, "decision", d);
    q->skipped = q->expanded = NULL; /* the body owns them now, or they were freed with it */
    body = jput_done(body, f);
    if (body && q->reranked) {
        json_t *rr = json_object();
        f = jput_int(rr, "candidates", io->rerank.candidates);
        f |= jput_int(rr, "kept", io->rerank.kept);
        f |= jput_int(rr, "moved", io->rerank.moved);
        f |= jput_bool(rr, "top_changed", io->rerank.top_changed);
        f |= jput_real(rr, "displacement", io->rerank.displacement);
        json_object_set_new(d, "rerank", jput_done(rr, f));
    }
    if (!body) {
        q->done(q->ud, ERR_NOMEM, NULL, "could not build the response");
        return;
    }
    if (q->slo)
        slo_finish(q, body, total_ms);
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

/* Picks the final answer among the replicas' replies: the most common
 * normalised answer (vote) or the most confident one; ties go to
 * confidence.  Returns the index, or -1 when every reply failed;
 * *ret_agreeing is the size of the largest group of agreeing answers. */
/* Agreement between two replies: token F1 of their SQuAD-normalised text
 * (citation markers dropped), so "In 1642." and "in 1642 [1]" agree. */
static double reply_similarity(const char *a, const char *b) {
    char na[512], nb[512];
    eval_normalize(a, na, sizeof na);
    eval_normalize(b, nb, sizeof nb);
    return strcmp(na, nb) == 0 ? 1.0 : eval_f1(na, nb);
}

static int aggregate(struct query_run *q, int n, double *ret_agreement, int *ret_agreeing) {
    const char *answers[SLO_MAX_REPLICAS] = {NULL};
    double conf[SLO_MAX_REPLICAS] = {0};
    if (n > SLO_MAX_REPLICAS)
        n = SLO_MAX_REPLICAS;
    for (int i = 0; i < n; i++) {
        answers[i] = q->replies[i].content;
        if (!answers[i])
            continue;
        struct agent_io io = q->io;
        if (agent_llm_read_answer(answers[i], &io, q->arena) == ERR_OK)
            conf[i] = io.abstained ? 0 : io.confidence;
    }
    struct agent_agg_result r;
    agent_aggregate(answers, conf, n, q->plan.aggregate == SLO_AGG_VOTE, SLO_GATE_AGREE_SIMILARITY, reply_similarity,
                    &r);
    if (ret_agreeing)
        *ret_agreeing = r.agreeing;
    *ret_agreement = r.agreement;
    return r.best;
}

/* All replicas are back: aggregate, or fall back when none answered. */
static void conclude_llm(struct query_run *q);
static bool maybe_judge(struct query_run *q);

static void finish_llm(struct query_run *q) {
    int n = q->replicas_out;
    double cost = 0;
    int in = 0, out = 0, attempts = 0;
    bool estimated = false;
    const char *first_err = NULL;
    for (int i = 0; i < n; i++) {
        struct replica *r = &q->replies[i];
        cost += r->cost;
        in += r->prompt_tokens;
        out += r->completion_tokens;
        attempts += r->attempts;
        estimated = estimated || r->estimated;
        q->call_ms = r->ms > q->call_ms ? r->ms : q->call_ms;
        q->wait_ms = r->wait_ms > q->wait_ms ? r->wait_ms : q->wait_ms;
        if (!r->content && !first_err)
            first_err = r->errmsg;
    }
    q->generate_ms = q->call_ms > 0 ? q->call_ms : 0;
    q->attempts = q->attempts_before + attempts;
    q->cost = q->cost_before + cost; /* failed attempts that were billed still count */
    for (int i = 0; i < n; i++)
        if (q->replies[i].err == ERR_CANCELLED) {
            /* the client is gone: no fallback, no escalation, nobody to answer */
            run_fail(q, ERR_CANCELLED, "the client closed the connection; the generation was cancelled");
            return;
        }
    double agreement = 0;
    int best = aggregate(q, n, &agreement, NULL);
    if (best < 0 && q->escalated) {
        /* the escalation failed: keep the answer we had */
        note(q->expanded, "escalate", first_err ? first_err : "the escalated call failed; the first answer stands");
        q->io = q->before;
        run_respond(q);
        return;
    }
    if (best < 0) {
        char why[384];
        snprintf(why, sizeof why, "%s tier failed (%s): answered by the extractive tier", slo_tier_name(q->plan.tier),
                 first_err ? first_err : "no reply");
        note(q->expanded, "fallback", why);
        q->call_ms = -1;
        run_extractive(q); /* within the reserve kept back for it */
        return;
    }
    q->agg_best = best;
    q->agg_n = n;
    q->agg_agreement = agreement;
    q->agg_in = in;
    q->agg_out = out;
    q->agg_estimated = estimated;
    if (maybe_judge(q))
        return; /* on_judge_done concludes */
    conclude_llm(q);
}

/* The chosen reply becomes the answer (see finish_llm). */
static void conclude_llm(struct query_run *q) {
    int n = q->agg_n, best = q->agg_best, in = q->agg_in, out = q->agg_out;
    double agreement = q->agg_agreement;
    bool estimated = q->agg_estimated;
    if (n > 1) {
        char why[160];
        snprintf(why, sizeof why, "%d replicas, %.0f%% agreement, aggregated by %s", n, agreement * 100,
                 slo_aggregate_name(q->plan.aggregate != SLO_AGG_NONE ? q->plan.aggregate : SLO_AGG_CONFIDENCE));
        note(q->expanded, "replicas", why);
    }
    q->usage_estimated = q->usage_estimated || estimated;
    enum err e = agent_llm_read_answer(q->replies[best].content, &q->io, q->arena);
    q->io.input_tokens = q->in_before + in;
    q->io.output_tokens = q->out_before + out;
    if (e) {
        run_fail(q, e, "could not read the model's answer");
        return;
    }
    if (q->escalated) {
        /* keep whichever answer is better supported */
        double now_conf = q->io.abstained ? 0 : q->io.confidence;
        double before_conf = q->before.abstained ? 0 : q->before.confidence;
        if (now_conf < before_conf) {
            int in_all = q->io.input_tokens, out_all = q->io.output_tokens;
            q->io = q->before;
            q->io.input_tokens = in_all;
            q->io.output_tokens = out_all;
            note(q->expanded, "escalate", "the escalated answer was weaker; the first answer stands");
        }
    }
    run_respond(q);
}

/* Backend pool I/O thread: the judge's reply.  Its cost and tokens count
 * with the replicas'; a reply that names no candidate leaves the
 * confidence pick standing. */
static void on_judge_done(void *ud, const struct agent_llm_result *res) {
    struct query_run *q = ud;
    q->cost += res->cost;
    q->attempts += res->attempts;
    q->generate_ms += res->ms;
    q->call_ms += res->ms; /* the judge runs after the slowest replica */
    q->wait_ms += res->wait_ms;
    if (res->err == ERR_CANCELLED) {
        run_fail(q, ERR_CANCELLED, "the client closed the connection; the generation was cancelled");
        return;
    }
    char why[384];
    if (res->err) {
        snprintf(why, sizeof why, "judge call failed (%s): the most confident answer stands", res->errmsg);
    } else {
        q->agg_in += res->prompt_tokens;
        q->agg_out += res->completion_tokens;
        q->agg_estimated = q->agg_estimated || res->usage_estimated;
        int pick = agent_llm_judge_pick(res->content, (size_t)q->agg_n);
        if (pick >= 0 && q->replies[pick].content) {
            snprintf(why, sizeof why, "the judge picked answer %d of %d", pick + 1, q->agg_n);
            q->agg_best = pick;
        } else {
            snprintf(why, sizeof why, "the judge named no answer: the most confident answer stands");
        }
    }
    note(q->expanded, "judge", why);
    conclude_llm(q);
}

/* Aggregation "judge": when the replies disagree, one more call on the
 * plan's tier picks among them.  When they agree there is nothing to judge
 * and the call is skipped (and saved).  False when no judge call was sent. */
static bool maybe_judge(struct query_run *q) {
    if (q->plan.aggregate != SLO_AGG_JUDGE || q->escalated || q->agg_n < 2 || !q->env.pool)
        return false;
    const char *cands[SLO_MAX_REPLICAS];
    int ok = 0;
    for (int i = 0; i < q->agg_n && i < SLO_MAX_REPLICAS; i++) {
        cands[i] = q->replies[i].content ? q->replies[i].content : AGENT_LLM_ABSTAIN;
        ok += q->replies[i].content != NULL;
    }
    if (ok < 2) {
        note(q->skipped, "judge", "fewer than two answers: nothing to judge");
        return false;
    }
    if (q->agg_agreement >= 1.0) {
        note(q->skipped, "judge", "the answers agree: nothing to judge");
        return false;
    }
    const char *system = NULL, *user = NULL;
    if (agent_llm_judge_prompt(q->io.question, cands, (size_t)q->agg_n, q->arena, &system, &user) != ERR_OK)
        return false;
    struct agent_llm_call call = q->call;
    call.system = system;
    call.user = user;
    call.max_tokens = 8;
    call.stream = false;
    call.on_delta = NULL;
    call.seed = 0;
    if (clock_us() + 50 * 1000 > call.deadline_us) {
        note(q->skipped, "judge", "no time left for the judge: the most confident answer stands");
        return false;
    }
    if (agent_pool_chat(q->env.pool, &call, on_judge_done, q) != ERR_OK) {
        note(q->skipped, "judge", "no usable backend for the judge: the most confident answer stands");
        return false;
    }
    return true;
}

static enum err send_calls(struct query_run *q, int first, int count);

/* Backend pool I/O thread: one piece of a streamed answer. */
static void on_llm_delta(void *ud, const char *text, size_t len) {
    struct replica *rep = ud;
    struct query_run *q = rep->run;
    q->streamed = true;
    q->req->on_delta(q->req->stream_ud, text, len);
}

/* Every call of the current wave is back.  Adaptive depth, "stop
 * replicas": a plan of more than two replicas launches two first; when
 * they agree (slo_gate_stop_replicas), the rest are never sent and their
 * cost is saved.  Otherwise the rest go out now, if the deadline leaves
 * room for another call as slow as the slowest of the first wave. */
static void wave_done(struct query_run *q) {
    int sent = q->replicas_out, planned = q->replicas_planned;
    bool cancelled = false;
    for (int i = 0; i < sent; i++)
        cancelled = cancelled || q->replies[i].err == ERR_CANCELLED;
    if (sent >= planned || q->escalated || cancelled) {
        finish_llm(q);
        return;
    }
    int answered = 0;
    double slowest = 0, agreement;
    for (int i = 0; i < sent; i++) {
        answered += q->replies[i].content != NULL;
        slowest = q->replies[i].ms > slowest ? q->replies[i].ms : slowest;
    }
    int agreeing = 0;
    aggregate(q, sent, &agreement, &agreeing);
    const char *why = NULL;
    char msg[192];
    if (answered >= 2 && slo_gate_stop_replicas(planned, answered, agreeing, &why)) {
        snprintf(msg, sizeof msg, "%s (%d of %d replicas sent)", why, sent, planned);
        note(q->skipped, "replicas", msg);
        finish_llm(q);
        return;
    }
    double ms_left = (double)(q->deadline_us - clock_us()) / 1000.0;
    if (ms_left < slowest * 1.2) {
        snprintf(msg, sizeof msg, "answers disagree but %.0f ms left is too little for another wave (%d of %d sent)",
                 ms_left, sent, planned);
        note(q->skipped, "replicas", msg);
        finish_llm(q);
        return;
    }
    int rest = planned - sent;
    atomic_store(&q->pending, rest);
    q->replicas_out = planned;
    enum err e = send_calls(q, sent, rest);
    (void)e; /* a failed send marks its slots failed and finishes the wave */
}

/* Backend pool I/O thread: keep it short.  ud is one replica's slot. */
static void on_llm_done(void *ud, const struct agent_llm_result *res) {
    struct replica *rep = ud;
    struct query_run *q = rep->run;
    rep->ms = res->ms;
    rep->wait_ms = res->wait_ms;
    rep->attempts = res->attempts;
    if (!q->backend && res->backend && res->backend[0])
        q->backend = arena_strdup(q->arena, res->backend);
    if (res->err) {
        rep->err = res->err;
        rep->errmsg = arena_strdup(q->arena, res->errmsg);
    } else {
        rep->content = arena_strdup(q->arena, res->content);
        rep->cost = res->cost;
        rep->prompt_tokens = res->prompt_tokens;
        rep->completion_tokens = res->completion_tokens;
        rep->estimated = res->usage_estimated;
        if (!rep->content)
            rep->errmsg = "out of memory";
    }
    if (atomic_fetch_sub(&q->pending, 1) == 1)
        wave_done(q);
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
    slo_intent_classify_with(req->intent_model, req->question, &q->intent);
    q->classify_ms = ms_since(t0);

    t0 = clock_us();
    struct slo_plan_limits lim;
    limits_from(cfg, &lim);
    int forced_tier = req->tier >= 0 ? req->tier : (lim.default_tier_forced ? (int)lim.default_tier : -1);
    struct slo_request_hints hints = {req->k, req->deadline_ms, req->mode, forced_tier, req->pin};
    q->call_ms = -1;
    if (req->ret_config)
        *req->ret_config = -1;
    if (env->slo) {
        q->slo = true;
        struct slo_profile defaults;
        if (!req->profile)
            slo_profile_defaults(&defaults);
        /* an intent the classifier is unsure of does not pick the objectives */
        slo_profile_resolve(req->profile ? req->profile : &defaults,
                            q->intent.low_confidence ? SLO_INTENT__COUNT : q->intent.intent, &q->obj);
        if (q->intent.low_confidence)
            note(q->skipped, "intent", "low confidence: the default profile, no intent override");
        slo_objectives_tighten(&q->obj, &req->tighten);
        if (req->deadline_ms > 0 && req->deadline_ms < q->obj.deadline_ms)
            q->obj.deadline_ms = req->deadline_ms;
        if (q->obj.latency_p95_ms > q->obj.deadline_ms)
            q->obj.latency_p95_ms = q->obj.deadline_ms;
        struct slo_planner_input in = {
            .objectives = q->obj,
            .budget = req->profile ? req->profile->budget : defaults.budget,
            .spent_day = req->spent_day,
            .spent_month = req->spent_month,
            /* today's average spend rate, for pacing against the daily budget */
            .spend_rate_per_hour = req->spent_day > 0 && time(NULL) % 86400 > 0
                                       ? req->spent_day / ((double)(time(NULL) % 86400) / 3600.0)
                                       : 0,
            .now_s = (int64_t)time(NULL),
            .intent = q->intent.intent,
            .intent_confidence = q->intent.confidence,
            .hints = hints,
            .min_confidence = cfg->query.min_confidence,
            .seed = env->slo->seed,
            .counter = atomic_fetch_add(&env->slo->counter, 1),
            .explore_rate = env->slo->explore_rate,
        };
        tiers_live(env->pool, in.tiers);
        in.limits = slo_space_limits_all();
        in.limits.tiers = SLO_TIER_BIT(SLO_TIER_EXTRACTIVE);
        for (int t = 1; t < SLO_TIERS; t++)
            if (in.tiers[t].usable)
                in.limits.tiers |= SLO_TIER_BIT(t);
        in.limits.reranker = true; /* the built-in reranker (agents/rerank.c) */
        in.limits.max_tokens = cfg->query.max_tokens;
        in.limits.max_k = cfg->query.max_k;
        pthread_rwlock_rdlock(&env->slo->lock);
        in.model = env->slo->model;
        slo_planner_choose(&in, &q->plan, &q->decision);
        pthread_rwlock_unlock(&env->slo->lock);
        q->pin = in;
        q->pin.model = NULL; /* only valid under the lock */
        if (req->ret_config)
            *req->ret_config = q->decision.config;
        if (q->decision.refuse) {
            if (req->ret_retry_after)
                *req->ret_retry_after = q->decision.retry_after_s;
            run_fail(q, ERR_BUDGET, q->decision.reason);
            return;
        }
        if (q->decision.degraded)
            note(q->expanded, "degrade", q->decision.reason);
    } else {
        slo_plan_make(&lim, &q->intent, &hints, &q->plan);
    }
    q->plan_ms = ms_since(t0);
    q->deadline_us = req->arrived_us + (int64_t)q->plan.deadline_ms * 1000;

    char msg[768];
    int64_t collection_id;
    enum err e = find_collection(env->engine, req, &collection_id, msg, sizeof msg);
    if (e) {
        run_fail(q, e, msg);
        return;
    }
    if (req->on_plan) {
        json_t *ev = json_pack("{s:s, s:s, s:o}", "request_id", req->request_id, "intent",
                               slo_intent_name(q->intent.intent), "plan", plan_json(&q->plan));
        if (ev)
            req->on_plan(req->stream_ud, ev);
        json_decref(ev);
    }
    q->ctx = (struct agent_ctx){.arena = a, .engine = env->engine, .deadline_us = q->deadline_us};
    q->io = (struct agent_io){
        .question = req->question,
        .collection_id = collection_id,
        /* a plan that reranks retrieves a deeper candidate list to choose from */
        .k = q->plan.rerank ? rerank_candidates(q->plan.k) : q->plan.k,
        .min_confidence = q->plan.min_confidence,
        .max_tokens = q->plan.max_tokens,
    };

    t0 = clock_us();
    /* An HTTP embedder gives up in time for the lexical fallback below and
     * the answer: it gets the deadline less the reserve. */
    ret_set_deadline(q->deadline_us - (int64_t)reserve_ms(q->plan.deadline_ms) * 1000);
    e = retriever_for(q->plan.retriever)->run(NULL, &q->ctx, &q->io);
    ret_set_deadline(0);
    if ((e == ERR_BACKEND || e == ERR_CONFLICT || e == ERR_DEADLINE) && q->plan.retriever != SLO_RETRIEVER_LEXICAL &&
        req->mode < 0) {
        /* The embedder failed (its backend is down or too slow for the
         * deadline, or the collection's vectors have another dimension)
         * and the planner, not the client, chose dense retrieval: answer
         * from lexical search, and say so. */
        char why[384];
        snprintf(why, sizeof why, "%s: lexical search only", ret_error_detail(e));
        note(q->skipped, "dense", why);
        q->plan.retriever = SLO_RETRIEVER_LEXICAL;
        struct slo_config sc;
        if (q->decision.config >= 0 && slo_space_config(q->decision.config, &sc)) {
            sc.retriever = SLO_RETRIEVER_LEXICAL; /* the models learn under what really ran */
            int lex = slo_space_index(&sc);
            if (lex >= 0) {
                q->decision.config = lex;
                slo_space_key(lex, q->decision.key, sizeof q->decision.key);
            }
        }
        e = agent_lexical.run(NULL, &q->ctx, &q->io);
    }
    q->retrieve_ms = ms_since(t0);
    if (e) {
        snprintf(msg, sizeof msg, "retrieval failed: %s", ret_error_detail(e));
        run_fail(q, e, msg);
        return;
    }
    if (clock_us() > q->deadline_us) {
        snprintf(msg, sizeof msg, "deadline of %d ms passed after retrieval", q->plan.deadline_ms);
        run_fail(q, ERR_DEADLINE, msg);
        return;
    }
    q->io.k = q->plan.k;
    if ((e = run_rerank(q)) != ERR_OK) {
        snprintf(msg, sizeof msg, "rerank failed: %s", err_message(e));
        run_fail(q, e, msg);
        return;
    }

    if (q->plan.tier == SLO_TIER_EXTRACTIVE) {
        run_extractive(q);
        return;
    }
    if (q->io.nhits == 0) {
        note(q->skipped, "generate", "no passage matched: nothing to send to the model");
        run_extractive(q); /* abstains, for free */
        return;
    }
    launch_llm(q, q->plan.tier, q->plan.replicas > 1 ? q->plan.replicas : 1, q->plan.max_tokens);
}

/* Sends replicas [first, first+count) of the prepared call.  When the
 * first of them cannot be sent, returns the error and sends nothing (the
 * caller falls back); when a later one fails, the unsent slots count as
 * failed and whoever brings the wave's count to zero carries on. */
static enum err send_calls(struct query_run *q, int first, int count) {
    enum err e = q->env.pool ? ERR_OK : ERR_UNAVAILABLE;
    for (int i = first; !e && i < first + count; i++) {
        struct agent_llm_call call = q->call;
        call.seed = i + (q->escalated ? 7 : 0); /* replicas (and an escalation) differ in their sampling seed */
        e = agent_pool_chat(q->env.pool, &call, on_llm_done, &q->replies[i]);
        if (e && i > first) {
            for (int k = i; k < first + count; k++)
                q->replies[k].errmsg = "not sent: no usable backend";
            int unsent = first + count - i;
            if (atomic_fetch_sub(&q->pending, unsent) == unsent)
                wave_done(q);
            return ERR_OK;
        }
    }
    if (e && first > 0) {
        /* a second wave that could not go out at all: finish with the first */
        for (int k = first; k < first + count; k++)
            q->replies[k].errmsg = "not sent: no usable backend";
        q->replicas_out = first + count;
        finish_llm(q);
        return ERR_OK;
    }
    return e;
}

/* Sends the generator call(s) for q's passages to the backend pool; the
 * answer arrives in on_llm_done.  When nothing can be sent, the extractive
 * tier answers (or, for an escalation, the first answer stands). */
static void launch_llm(struct query_run *q, enum slo_tier tier, int replicas, int max_tokens) {
    const char *system = NULL, *user = NULL;
    enum err e = agent_llm_prompt(&q->io, q->arena, &system, &user);
    if (e) {
        run_fail(q, e, "could not build the prompt");
        return;
    }
    /* Keep a slice of the deadline back so that a failed or slow backend
     * still leaves time for the extractive fallback to answer in time. */
    struct agent_llm_call call = {
        .tier = slo_tier_name(tier),
        .system = system,
        .user = user,
        .max_tokens = max_tokens,
        .deadline_us = q->deadline_us - (int64_t)reserve_ms(q->plan.deadline_ms) * 1000,
        .cancel_key = q->req->cancel_key,
    };
    q->replies = arena_calloc(q->arena, (size_t)replicas, sizeof(*q->replies));
    if (!q->replies) {
        run_fail(q, ERR_NOMEM, "out of memory");
        return;
    }
    for (int i = 0; i < replicas; i++)
        q->replies[i].run = q;
    if (q->req->on_delta && replicas == 1 && !q->escalated) {
        /* one answer, no aggregation: its pieces can go out as they come */
        call.stream = true;
        call.on_delta = on_llm_delta;
    }
    q->call = call;
    q->replicas_planned = replicas;
    /* More than two replicas go out in two waves (see wave_done). */
    int first = replicas > 2 ? 2 : replicas;
    /* Count the wave out before the first reply can come back. */
    q->replicas_out = first;
    atomic_init(&q->pending, first);
    e = send_calls(q, 0, first);
    if (!e)
        return;
    if (q->escalated) {
        note(q->expanded, "escalate", "no usable backend for the escalation; the first answer stands");
        q->io = q->before;
        run_respond(q);
        return;
    }
    char why[160];
    snprintf(why, sizeof why,
             "no usable %s backend (none configured, or its circuit breaker is open): answered by the extractive tier",
             slo_tier_name(tier));
    note(q->expanded, "fallback", why);
    run_extractive(q);
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
    /* query.deadline_ms, or the request's own when it is shorter, binds an
     * HTTP embedder */
    int deadline_ms = req->deadline_ms > 0 && req->deadline_ms < cfg->query.deadline_ms ? req->deadline_ms
                                                                                          : cfg->query.deadline_ms;
    ret_set_deadline(req->arrived_us > 0 ? req->arrived_us + (int64_t)deadline_ms * 1000 : 0);
    e = ret_engine_search(eng, collection_id, req->question, k, (enum ret_mode)mode, a, &res, &n, &sig);
    ret_set_deadline(0);
    if (e) {
        snprintf(errmsg, errlen, "retrieval failed: %s", ret_error_detail(e));
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
