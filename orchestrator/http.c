/* http.c - libmicrohttpd front end: routing, limits, suspend/resume.
 *
 * libmicrohttpd runs one internal epoll thread.  Cheap routes (health) are
 * answered on it directly.  A route with real work collects its body under
 * a byte cap, then the connection is *suspended* and the request handed to
 * the worker pool; the worker stores the response and resumes the
 * connection, and the next access-handler call queues it.  No thread ever
 * blocks per in-flight request.
 *
 * Ordering rule for suspend/resume: suspend first, then submit, so a worker
 * can never resume a connection that is not yet suspended; a failed submit
 * resumes the connection itself with a 503 already stored. */
#include "http.h"
#include "jsonw.h"
#include "hangup.h"
#include "arena.h"
#include "buf.h"
#include "executor.h"
#include "intents.h"
#include "plan.h"
#include "profile.h"
#include "space.h"
#include "admission.h"
#include "backend.h"
#include "metrics.h"
#include "openai.h"
#include "dashboard_assets.h"
#include "ledger.h"
#include "stats.h"
#include "ratelimit.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <jansson.h>
#include <microhttpd.h>
#include <signal.h>
#include <sodium.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ_ARENA_MAX (64u << 20)
/* libmicrohttpd keeps a connection's request head and its response's
 * headers in one memory pool.  Sized to server.max_header_bytes alone, a
 * head a few hundred bytes under the limit left no room for the reply,
 * and the connection was closed unanswered.  The pool is this much
 * larger, and admit() holds heads to the limit itself (431, JSON). */
#define HTTP_HEAD_ROOM 4096

struct http_server {
    struct MHD_Daemon *daemon;
    struct http_deps deps;
    atomic_long in_flight;
    atomic_long reading;       /* of in_flight, requests still receiving their body */
    atomic_bool draining;
    int port;
    struct rl_table *rl; /* per-tenant rate limits */
    struct metrics *metrics;
    struct stats *stats;
    int64_t started_us;
    _Atomic double service_ms; /* EWMA of the time a request holds a worker */
    atomic_int running;        /* requests on a worker right now */
    struct hangup *hangup;     /* cancels the LLM work of clients that left */
    atomic_ullong next_key;    /* cancel keys, one per answering request */
};

struct req;
typedef void (*route_fn)(struct req *r);

enum route_flags {
    ROUTE_WORKER = 1 << 0, /* runs on the worker pool (else on the HTTP thread) */
    ROUTE_BODY = 1 << 1,   /* takes a JSON body */
    ROUTE_TEXT = 1 << 2,   /* also takes text/plain and text/markdown */
    ROUTE_UPLOAD = 1 << 3, /* body cap is server.max_upload_bytes */
    ROUTE_PUBLIC = 1 << 4, /* no credentials needed */
    ROUTE_ADMIN = 1 << 5,  /* the admin key, not a tenant key */
    ROUTE_OPS = 1 << 6,    /* operators: open in open mode, else the admin key */
    ROUTE_VIEW = 1 << 7,   /* read-only views: admin or dashboard key (all tenants),
                              or a tenant key (that tenant only) */
    ROUTE_ANSWER = 1 << 8, /* answers a question: subject to admission control */
};

/* Pattern segments: "*" matches one path segment, a trailing "**" the rest
 * of the path (document ids may contain '/'). */
struct route {
    const char *method;
    const char *pattern;
    route_fn handler;
    unsigned flags;
};

#define ROUTE_MAX_PARAMS 2

enum req_state { REQ_READING, REQ_RUNNING, REQ_DONE, REQ_STREAMING, REQ_STREAM_QUEUED };

struct req {
    struct http_server *srv;
    struct MHD_Connection *conn;
    struct cfg *cfg;          /* snapshot this request runs on; one reference */
    struct arena *arena;      /* everything the handler allocates */
    const struct route *route;
    const char *method, *url; /* owned by libmicrohttpd for the request's life */
    const char *params[ROUTE_MAX_PARAMS]; /* pattern captures, arena-owned */
    bool is_text;             /* body is text/plain or text/markdown */
    char tenant[CFG_TENANT_ID_MAX + 1]; /* who is asking (tenant routes) */
    double tpm;               /* the tenant's LLM tokens per minute, 0 = unlimited */
    int64_t arrived_us;
    bool reading;             /* counted in srv->reading: the request is not yet complete */
    char request_id[33];
    struct buf body;          /* capped by server.max_body_bytes */
    bool body_too_large;
    enum req_state state;
    atomic_int parties;       /* who must finish before the response goes: the
                                 worker, plus an async completion if deferred */

    /* the response, set by the handler */
    int status;
    char *resp;               /* malloc'd JSON text */
    const char *allow;        /* Allow header for 405 */
    int retry_after;          /* seconds, 0 = none */
    bool www_authenticate;    /* add WWW-Authenticate: Bearer (401) */
    bool open_tenant;         /* authorized in open mode: no tenant exists, so none has a profile */
    const char *content_type; /* NULL = application/json */
    const char *csp;          /* Content-Security-Policy, or NULL */
    bool openai;              /* OpenAI-style error bodies */
    bool degrade;             /* admission control: answer with the free tier */
    const char *oa_model;     /* arena-owned */
    bool oa_stream, oa_usage;
    uint64_t cancel_key;      /* watched for a hang-up while answering; 0 = not */

    /* A live stream: an SSE answer sent while it is generated.  The first
     * event resumes the connection early (REQ_STREAMING) and a callback
     * response is queued; stream_read hands out what the producers (a
     * worker, the backend I/O thread) appended, and suspends the
     * connection while there is nothing to send.  smu guards these fields
     * and the hand-over of the request's lifetime (see req_finish and
     * on_completed). */
    pthread_mutex_t smu;
    struct buf sbuf;          /* events not yet handed to libmicrohttpd */
    size_t ssent;             /* of sbuf, already handed over */
    bool live;                /* the stream response is queued or about to be */
    bool s_end;               /* every event is in sbuf: end once it drains */
    bool reader_waiting;      /* stream_read suspended the connection */
    bool mhd_gone;            /* libmicrohttpd finished with the request first */
    bool deltas_sent;         /* answer pieces went out as they were generated */
    long created;             /* OpenAI chunks' timestamp */
};

static void handle_healthz(struct req *r);
static void handle_readyz(struct req *r);
static void handle_query(struct req *r);
static void handle_retrieve(struct req *r);
static void handle_collections_list(struct req *r);
static void handle_collection_delete(struct req *r);
static void handle_documents_post(struct req *r);
static void handle_document_get(struct req *r);
static void handle_document_delete(struct req *r);
static void handle_admin_tenant_create(struct req *r);
static void handle_admin_tenant_list(struct req *r);
static void handle_admin_tenant_get(struct req *r);
static void handle_admin_tenant_delete(struct req *r);
static void handle_admin_key_issue(struct req *r);
static void handle_admin_key_revoke(struct req *r);
static void handle_admin_profile_put(struct req *r);
static void handle_admin_limits_put(struct req *r);
static void handle_admin_intents_put(struct req *r);
static void handle_admin_intents_get(struct req *r);
static void handle_metrics(struct req *r);
static void record_query(struct req *r, json_t *body);
static void ledger_record(struct req *r, json_t *body);
static void handle_chat_completions(struct req *r);
static void handle_models(struct req *r);
static void handle_stats(struct req *r);
static void handle_admin_reload(struct req *r);
static void handle_openapi(struct req *r);
static void handle_dashboard(struct req *r);
static void handle_feedback(struct req *r);

static const struct route routes[] = {
    {"GET", "/healthz", handle_healthz, ROUTE_PUBLIC},
    {"GET", "/readyz", handle_readyz, ROUTE_PUBLIC},
    {"GET", "/openapi.json", handle_openapi, ROUTE_PUBLIC},
    {"GET", "/dashboard", handle_dashboard, ROUTE_PUBLIC},
    {"GET", "/metrics", handle_metrics, ROUTE_OPS | ROUTE_WORKER},
    {"GET", "/v1/stats", handle_stats, ROUTE_VIEW | ROUTE_WORKER},
    {"POST", "/v1/admin/tenants", handle_admin_tenant_create, ROUTE_ADMIN | ROUTE_WORKER | ROUTE_BODY},
    {"GET", "/v1/admin/tenants", handle_admin_tenant_list, ROUTE_ADMIN | ROUTE_WORKER},
    {"GET", "/v1/admin/tenants/*", handle_admin_tenant_get, ROUTE_ADMIN | ROUTE_WORKER},
    {"DELETE", "/v1/admin/tenants/*", handle_admin_tenant_delete, ROUTE_ADMIN | ROUTE_WORKER},
    {"POST", "/v1/admin/tenants/*/keys", handle_admin_key_issue, ROUTE_ADMIN | ROUTE_WORKER},
    {"DELETE", "/v1/admin/tenants/*/keys/*", handle_admin_key_revoke, ROUTE_ADMIN | ROUTE_WORKER},
    {"PUT", "/v1/admin/tenants/*/profile", handle_admin_profile_put, ROUTE_ADMIN | ROUTE_WORKER | ROUTE_BODY},
    {"PUT", "/v1/admin/tenants/*/limits", handle_admin_limits_put, ROUTE_ADMIN | ROUTE_WORKER | ROUTE_BODY},
    {"PUT", "/v1/admin/tenants/*/intents", handle_admin_intents_put, ROUTE_ADMIN | ROUTE_WORKER | ROUTE_BODY},
    {"GET", "/v1/admin/tenants/*/intents", handle_admin_intents_get, ROUTE_ADMIN | ROUTE_WORKER},
    {"POST", "/v1/admin/reload", handle_admin_reload, ROUTE_ADMIN | ROUTE_WORKER},
    {"POST", "/v1/query", handle_query, ROUTE_WORKER | ROUTE_BODY | ROUTE_ANSWER},
    {"POST", "/v1/chat/completions", handle_chat_completions, ROUTE_WORKER | ROUTE_BODY | ROUTE_ANSWER},
    {"GET", "/v1/models", handle_models, ROUTE_WORKER},
    {"POST", "/v1/retrieve", handle_retrieve, ROUTE_WORKER | ROUTE_BODY},
    {"POST", "/v1/feedback", handle_feedback, ROUTE_WORKER | ROUTE_BODY},
    {"GET", "/v1/collections", handle_collections_list, ROUTE_WORKER},
    {"DELETE", "/v1/collections/*", handle_collection_delete, ROUTE_WORKER},
    {"POST", "/v1/collections/*/documents", handle_documents_post, ROUTE_WORKER | ROUTE_BODY | ROUTE_TEXT | ROUTE_UPLOAD},
    {"GET", "/v1/collections/*/documents/**", handle_document_get, ROUTE_WORKER},
    {"DELETE", "/v1/collections/*/documents/**", handle_document_delete, ROUTE_WORKER},
};

/* Matches url against pattern, capturing "*" and "**" segments. */
static bool route_match(const char *pattern, const char *url, struct arena *a, const char **params) {
    int np = 0;
    const char *p = pattern, *u = url;
    while (*p) {
        if (p[0] == '*' && p[1] == '*') {
            if (!*u || np >= ROUTE_MAX_PARAMS)
                return false;
            if (params)
                params[np] = arena_strdup(a, u);
            np++;
            return true;
        }
        if (*p == '*') {
            const char *end = strchr(u, '/');
            size_t n = end ? (size_t)(end - u) : strlen(u);
            if (n == 0 || np >= ROUTE_MAX_PARAMS)
                return false;
            if (params)
                params[np] = arena_strndup(a, u, n);
            np++;
            u += n;
            p++;
            continue;
        }
        if (*p != *u)
            return false;
        p++;
        u++;
    }
    return *u == '\0';
}

/* ---- responses ---- */

static void set_json(struct req *r, int status, json_t *body) {
    free(r->resp);
    r->resp = jsonw_dumps(body, 6); /* json_dumps' bytes (JSON_COMPACT, JSON_REAL_PRECISION(6)), faster */
    r->status = r->resp ? status : 500;
    json_decref(body);
}

static void set_error(struct req *r, enum err e, const char *msg) {
    if (r->openai) {
        set_json(r, err_http_status(e), oa_error(e, msg));
        if (e == ERR_OVERLOADED || e == ERR_UNAVAILABLE || e == ERR_RATE_LIMITED)
            r->retry_after = 1;
        return;
    }
    json_t *body = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", err_name(e), "message",
                             msg && *msg ? msg : err_message(e), "request_id", r->request_id);
    if (!body) /* a message that is not valid UTF-8 can't be packed */
        body = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", err_name(e), "message", err_message(e),
                         "request_id", r->request_id);
    set_json(r, err_http_status(e), body);
    if (e == ERR_OVERLOADED || e == ERR_UNAVAILABLE || e == ERR_RATE_LIMITED)
        r->retry_after = 1;
}

static enum MHD_Result queue(struct req *r) {
    static const char fallback[] = "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}";
    const char *text = r->resp ? r->resp : fallback;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r->content_type && r->status == 200 ? r->content_type : "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    if (r->allow)
        MHD_add_response_header(resp, "Allow", r->allow);
    if (r->csp && r->status == 200)
        MHD_add_response_header(resp, "Content-Security-Policy", r->csp);
    if (r->www_authenticate)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"slorag\"");
    if (r->retry_after > 0) {
        char s[16];
        snprintf(s, sizeof s, "%d", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", s);
    }
    if (atomic_load(&r->srv->draining))
        MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)(r->resp ? r->status : 500), resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- handlers ---- */

static void handle_healthz(struct req *r) {
    set_json(r, 200, json_pack("{s:s, s:s}", "status", "ok", "version", SLORAG_VERSION));
}

static void handle_readyz(struct req *r) {
    if (atomic_load(&r->srv->draining)) {
        set_error(r, ERR_UNAVAILABLE, "shutting down");
        return;
    }
    set_json(r, 200, json_pack("{s:s, s:b, s:I}", "status", "ready", "store", r->srv->deps.engine != NULL, "vectors",
                               (json_int_t)ret_engine_vectors(r->srv->deps.engine)));
}

/* Reads an optional integer field; false (with a message) when present but
 * not an integer in [lo, hi]. */
static bool opt_int(json_t *obj, const char *key, long lo, long hi, int *out, char *msg, size_t msglen) {
    json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(msg, msglen, "%s: must be an integer in %ld..%ld", key, lo, hi);
        return false;
    }
    *out = (int)json_integer_value(v);
    return true;
}

/* Parses the body as JSON (an object unless any_type), mapping jansson's
 * errors to ours; on failure the error response is already set. */
static json_t *parse_json(struct req *r, bool any_type) {
    char msg[256];
    if (r->body.len == 0) {
        set_error(r, ERR_BAD_JSON, "request body is empty; expected a JSON object");
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_invalid_utf8) {
            set_error(r, ERR_INVALID_UTF8, "request body is not valid UTF-8");
        } else {
            snprintf(msg, sizeof msg, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
            set_error(r, ERR_BAD_JSON, msg);
        }
        return NULL;
    }
    if (!any_type && !json_is_object(root)) {
        json_decref(root);
        set_error(r, ERR_INVALID_FIELD, "request body must be a JSON object");
        return NULL;
    }
    return root;
}

static json_t *parse_body(struct req *r) {
    return parse_json(r, false);
}

/* Checks that every key of obj is in known[]; sets msg for the first that is not. */
static bool only_known(json_t *obj, const char *const *known, size_t nknown, const char *prefix, char *msg, size_t msglen) {
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        bool ok = false;
        for (size_t i = 0; i < nknown; i++)
            ok = ok || strcmp(key, known[i]) == 0;
        if (!ok) {
            snprintf(msg, msglen, "%sunknown field \"%.64s\"", prefix, key);
            return false;
        }
    }
    return true;
}

/* Parses the shared body of /v1/query and /v1/retrieve into q.  Returns
 * ERR_OK, or an error with msg set. */
static enum err parse_question(struct req *r, json_t *root, struct exec_query_req *q, char *msg, size_t msglen) {
    static const char *const known[] = {"question", "collection", "k",   "deadline_ms", "mode",
                                        "tier",     "config",     "stream", "slo"};
    *q = (struct exec_query_req){
        .request_id = r->request_id,
        .tenant = r->tenant,
        .collection = "default",
        .arrived_us = r->arrived_us,
        .mode = -1,
        .tier = -1,
        .tighten = SLO_TIGHTENING_NONE,
    };
    if (!only_known(root, known, ARRAY_SIZE(known), "", msg, msglen))
        return ERR_INVALID_FIELD;
    json_t *question = json_object_get(root, "question");
    if (!json_is_string(question)) {
        snprintf(msg, msglen, "question: required, must be a string");
        return ERR_INVALID_FIELD;
    }
    size_t qlen = json_string_length(question);
    if (qlen == 0 || strspn(json_string_value(question), " \t\r\n") == qlen) {
        snprintf(msg, msglen, "question: must not be empty");
        return ERR_INVALID_FIELD;
    }
    if ((long)qlen > r->cfg->query.max_question_bytes) {
        snprintf(msg, msglen, "question: longer than the limit of %ld bytes", r->cfg->query.max_question_bytes);
        return ERR_TOO_LARGE;
    }
    q->question = arena_strdup(r->arena, json_string_value(question));
    json_t *coll = json_object_get(root, "collection");
    if (coll) {
        if (!json_is_string(coll) || !ret_name_valid(json_string_value(coll))) {
            snprintf(msg, msglen, "collection: must be 1-64 characters of [A-Za-z0-9._-], not starting with '.'");
            return ERR_INVALID_FIELD;
        }
        q->collection = arena_strdup(r->arena, json_string_value(coll));
    }
    json_t *mode = json_object_get(root, "mode");
    if (mode) {
        q->mode = json_is_string(mode) ? ret_mode_parse(json_string_value(mode)) : -1;
        if (q->mode < 0) {
            snprintf(msg, msglen, "mode: must be one of lexical, dense, hybrid");
            return ERR_INVALID_FIELD;
        }
    }
    json_t *slo = json_object_get(root, "slo");
    if (slo && slo_tightening_parse(slo, msg, msglen, &q->tighten) != ERR_OK)
        return ERR_INVALID_FIELD;
    json_t *stream = json_object_get(root, "stream");
    if (stream && !json_is_boolean(stream)) {
        snprintf(msg, msglen, "stream: must be a boolean");
        return ERR_INVALID_FIELD;
    }
    r->oa_stream = json_is_true(stream);
    json_t *tier = json_object_get(root, "tier");
    if (tier) {
        q->tier = json_is_string(tier) ? slo_tier_parse(json_string_value(tier)) : -1;
        if (q->tier < 0) {
            snprintf(msg, msglen, "tier: must be one of extractive, small, medium, large");
            return ERR_INVALID_FIELD;
        }
    }
    if (!opt_int(root, "k", 1, r->cfg->query.max_k, &q->k, msg, msglen) ||
        !opt_int(root, "deadline_ms", 1, 600000, &q->deadline_ms, msg, msglen))
        return ERR_INVALID_FIELD;
    json_t *config = json_object_get(root, "config");
    if (config) {
        int index = json_is_string(config) ? slo_space_find(json_string_value(config)) : -1;
        if (index < 0) {
            snprintf(msg, msglen,
                     "config: must be a configuration key such as \"hybrid/k5/medium/t256\" (docs/slo.md, The "
                     "configuration space)");
            return ERR_INVALID_FIELD;
        }
        const char *other = tier ? "tier" : mode ? "mode" : q->k ? "k" : NULL;
        if (other) {
            snprintf(msg, msglen, "config: cannot be combined with %s (the configuration fixes it)", other);
            return ERR_INVALID_FIELD;
        }
        q->pin = index + 1;
    }
    if (!q->question || !q->collection)
        return ERR_NOMEM;
    return ERR_OK;
}

static void req_finish(struct req *r);
static void req_free(struct req *r);
static void stream_push(struct req *r, char *text, bool open);
static bool stream_live(struct req *r);
static void answered(struct req *r, json_t *body);

/* Common start of /v1/query and /v1/chat/completions once the request is
 * parsed: the tenant's token budget, then the pipeline.  The answer may
 * come later, from the LLM pool's thread, so one more party must finish
 * before the response is queued. */
static void start_query(struct req *r, struct exec_query_req *q, exec_done_fn done) {
    int retry = 1;
    if (!rl_tokens_available(r->srv->rl, r->tenant, r->tpm, clock_us(), &retry)) {
        char msg[128];
        snprintf(msg, sizeof msg, "over this tenant's limit of %g LLM tokens per minute", r->tpm);
        set_error(r, ERR_RATE_LIMITED, msg);
        r->retry_after = retry;
        return;
    }
    if (r->srv->deps.slo) {
        /* the tenant's SLO profile (defaults when it has none) and spend */
        struct cfg_tenant tn;
        if (!r->open_tenant && cfg_tenant_get(r->srv->deps.tenants, r->tenant, &tn) == ERR_OK) {
            struct slo_profile *prof = tn.profile ? arena_alloc(r->arena, sizeof(*prof)) : NULL;
            char perr[160];
            if (prof && slo_profile_parse_text(tn.profile, perr, sizeof perr, prof) == ERR_OK)
                q->profile = prof;
            cfg_tenant_done(&tn);
        }
        if (r->srv->deps.ledger)
            ledger_spent(r->srv->deps.ledger, r->tenant, (int64_t)time(NULL), &q->spent_day, &q->spent_month);
        q->ret_retry_after = &r->retry_after;
    }
    if (r->degrade) /* admission control under load: the free tier, whatever was asked */
        q->tier = SLO_TIER_EXTRACTIVE;
    atomic_fetch_add(&r->parties, 1);
    /* While the answer is generated the connection is suspended; the
     * hang-up watcher sees the client leave and cancels the LLM calls. */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    uint64_t key = atomic_fetch_add(&r->srv->next_key, 1) + 1;
    if (ci && r->srv->deps.llm && hangup_watch(r->srv->hangup, ci->connect_fd, key))
        r->cancel_key = q->cancel_key = key;
    struct exec_env env = {.engine = r->srv->deps.engine, .pool = r->srv->deps.llm, .slo = r->srv->deps.slo};
    struct slo_intent_model *intents = intents_cache_get(r->srv->deps.intents, r->tenant);
    q->intent_model = intents;
    exec_query_start(&env, r->cfg, q, r->arena, done, r);
    slo_intent_model_unref(intents); /* classification is over when exec_query_start returns */
}

/* Every answering route's completion starts here: from now on the
 * connection is the HTTP thread's again.  True when the client had left. */
static bool answer_unwatch(struct req *r) {
    pthread_mutex_lock(&r->smu);
    uint64_t key = r->cancel_key;
    r->cancel_key = 0;
    pthread_mutex_unlock(&r->smu);
    return hangup_unwatch(r->srv->hangup, key);
}

/* ---- live streams: the executor's stream callbacks ---- */

static void query_on_plan(void *ud, json_t *ev) {
    stream_push(ud, slorag_stream_plan(ev), true);
}

static void query_on_delta(void *ud, const char *text, size_t len) {
    struct req *r = ud;
    pthread_mutex_lock(&r->smu);
    r->deltas_sent = true;
    pthread_mutex_unlock(&r->smu);
    stream_push(r, slorag_stream_delta(text, len), false);
}

static void chat_on_plan(void *ud, json_t *ev) {
    (void)ev;
    struct req *r = ud;
    stream_push(r, oa_stream_open(r->request_id, r->oa_model, r->created), true);
}

static void chat_on_delta(void *ud, const char *text, size_t len) {
    struct req *r = ud;
    pthread_mutex_lock(&r->smu);
    r->deltas_sent = true;
    pthread_mutex_unlock(&r->smu);
    stream_push(r, oa_stream_delta(r->request_id, r->oa_model, r->created, text, len), false);
}

/* A live stream's last events: the error, or the rest of the answer. */
static void stream_finish(struct req *r, enum err e, json_t *body, const char *errmsg) {
    pthread_mutex_lock(&r->smu);
    bool deltas = r->deltas_sent;
    pthread_mutex_unlock(&r->smu);
    if (e) {
        set_error(r, e, errmsg); /* for the log and metrics: the wire already said 200 */
        if (r->openai) {
            stream_push(r, oa_stream_error(e, errmsg && *errmsg ? errmsg : err_message(e)), false);
        } else {
            json_t *eb = json_loads(r->resp ? r->resp : "{}", 0, NULL);
            stream_push(r, eb ? slorag_stream_error(eb) : NULL, false);
            json_decref(eb);
        }
        return;
    }
    answered(r, body);
    r->status = 200;
    stream_push(r, r->openai ? oa_stream_close(body, r->oa_model, r->created, r->oa_usage, deltas)
                             : slorag_stream_close(body, deltas),
                false);
}

/* Bookkeeping for every answer, whatever its wire format: the tenant's
 * LLM-token budget, metrics and stats, and the ledger row the response
 * waits for. */
static void answered(struct req *r, json_t *body) {
    json_t *usage = json_object_get(body, "usage");
    double cost = json_number_value(json_object_get(usage, "cost"));
    if (cost > 0 || json_is_true(json_object_get(usage, "estimated"))) /* LLM tokens, not extractive words */
        rl_spend_tokens(r->srv->rl, r->tenant, r->tpm,
                        (double)(json_integer_value(json_object_get(usage, "input_tokens")) +
                                 json_integer_value(json_object_get(usage, "output_tokens"))),
                        clock_us());
    record_query(r, body);
    ledger_record(r, body);
}

/* Takes an SSE body (malloc'd, or NULL when it could not be built). */
static void set_sse(struct req *r, char *text) {
    if (!text) {
        set_error(r, ERR_NOMEM, NULL);
        return;
    }
    free(r->resp);
    r->resp = text;
    r->status = 200;
    r->content_type = "text/event-stream";
}

static void on_query_done(void *ud, enum err e, json_t *body, const char *errmsg) {
    struct req *r = ud;
    answer_unwatch(r);
    if (stream_live(r)) {
        stream_finish(r, e, body, errmsg);
        json_decref(body);
        req_finish(r);
        return;
    }
    if (e) {
        set_error(r, e, errmsg);
    } else {
        answered(r, body);
        if (r->oa_stream) {
            set_sse(r, slorag_query_stream(body));
            json_decref(body);
        } else {
            set_json(r, 200, body);
        }
    }
    req_finish(r);
}

static void handle_query(struct req *r) {
    char msg[256] = "";
    json_t *root = parse_body(r);
    if (!root)
        return;
    struct exec_query_req *q = arena_alloc(r->arena, sizeof(*q));
    enum err e = q ? parse_question(r, root, q, msg, sizeof msg) : ERR_NOMEM;
    json_decref(root);
    if (e) {
        set_error(r, e, msg);
        return;
    }
    if (r->oa_stream) {
        q->on_plan = query_on_plan;
        q->on_delta = query_on_delta;
        q->stream_ud = r;
    }
    start_query(r, q, on_query_done);
}

static void on_chat_done(void *ud, enum err e, json_t *body, const char *errmsg) {
    struct req *r = ud;
    answer_unwatch(r);
    if (stream_live(r)) {
        stream_finish(r, e, body, errmsg);
        json_decref(body);
        req_finish(r);
        return;
    }
    if (e) {
        set_error(r, e, errmsg);
    } else {
        answered(r, body);
        long created = (long)time(NULL);
        if (r->oa_stream) {
            set_sse(r, oa_chat_stream(body, r->oa_model, created, r->oa_usage));
        } else {
            json_t *out = oa_chat_completion(body, r->oa_model, created);
            if (out)
                set_json(r, 200, out);
            else
                set_error(r, ERR_NOMEM, NULL);
        }
        json_decref(body);
    }
    req_finish(r);
}

/* OpenAI-compatible chat completions: see openai.h for the model naming. */
static void handle_chat_completions(struct req *r) {
    char msg[256] = "";
    r->openai = true;
    json_t *root = parse_body(r);
    if (!root)
        return;
    struct oa_chat_request oc;
    enum err e = oa_parse_chat(root, &oc, msg, sizeof msg);
    struct exec_query_req *q = e ? NULL : arena_calloc(r->arena, 1, sizeof(*q));
    if (!e && !q)
        e = ERR_NOMEM;
    if (!e && !ret_name_valid(oc.collection)) {
        snprintf(msg, sizeof msg, "model: \"%s\" is not a valid collection name", oc.collection);
        e = ERR_INVALID_FIELD;
    }
    size_t qlen = e ? 0 : strlen(oc.question);
    if (!e && (qlen == 0 || strspn(oc.question, " \t\r\n") == qlen)) {
        snprintf(msg, sizeof msg, "messages: the last user message is empty");
        e = ERR_INVALID_FIELD;
    }
    if (!e && (long)qlen > r->cfg->query.max_question_bytes) {
        snprintf(msg, sizeof msg, "messages: the last user message is longer than %ld bytes",
                 r->cfg->query.max_question_bytes);
        e = ERR_TOO_LARGE;
    }
    if (!e) {
        *q = (struct exec_query_req){
            .request_id = r->request_id,
            .tenant = r->tenant,
            .question = arena_strdup(r->arena, oc.question),
            .collection = arena_strdup(r->arena, oc.collection),
            .arrived_us = r->arrived_us,
            .mode = -1,
            .tier = oc.tier,
            .tighten = SLO_TIGHTENING_NONE,
        };
        r->oa_model = arena_strdup(r->arena, json_string_value(json_object_get(root, "model")));
        r->oa_stream = oc.stream;
        r->oa_usage = oc.include_usage;
        if (!q->question || !q->collection || !r->oa_model)
            e = ERR_NOMEM;
    }
    json_decref(root);
    if (e) {
        set_error(r, e, msg);
        return;
    }
    if (r->oa_stream) {
        r->created = (long)time(NULL);
        q->on_plan = chat_on_plan;
        q->on_delta = chat_on_delta;
        q->stream_ud = r;
    }
    start_query(r, q, on_chat_done);
}

static void handle_models(struct req *r) {
    r->openai = true;
    struct ret_collection_info *list = NULL;
    size_t n = 0;
    enum err e = ret_collection_list(ret_engine_store(r->srv->deps.engine), r->tenant, r->arena, &list, &n);
    if (e) {
        set_error(r, e, NULL);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s}", "id", list[i].name, "object", "model", "created",
                                              (json_int_t)list[i].created_at, "owned_by", "slorag"));
    set_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

static void handle_retrieve(struct req *r) {
    char msg[768] = "";
    json_t *root = parse_body(r);
    if (!root)
        return;
    struct exec_query_req q;
    enum err e = parse_question(r, root, &q, msg, sizeof msg);
    json_decref(root);
    json_t *body = NULL;
    if (!e)
        e = exec_retrieve(r->srv->deps.engine, r->cfg, &q, r->arena, &body, msg, sizeof msg);
    if (e) {
        set_error(r, e, msg);
        return;
    }
    set_json(r, 200, body);
}


static bool collection_param(struct req *r, int64_t *ret_id) {
    char msg[160];
    const char *name = r->params[0];
    if (!name || !ret_name_valid(name)) {
        set_error(r, ERR_INVALID_FIELD, "collection name must be 1-64 characters of [A-Za-z0-9._-], not starting with '.'");
        return false;
    }
    enum err e = ret_collection_find(ret_engine_store(r->srv->deps.engine), r->tenant, name, ret_id);
    if (e) {
        snprintf(msg, sizeof msg, "collection \"%s\" does not exist", name);
        set_error(r, e, e == ERR_NOT_FOUND ? msg : NULL);
        return false;
    }
    return true;
}

static void handle_collections_list(struct req *r) {
    struct ret_collection_info *list = NULL;
    size_t n = 0;
    enum err e = ret_collection_list(ret_engine_store(r->srv->deps.engine), r->tenant, r->arena, &list, &n);
    if (e) {
        set_error(r, e, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        struct ret_index_info ix;
        ret_engine_index_info(r->srv->deps.engine, list[i].id, &ix);
        json_t *index = json_pack("{s:s, s:I, s:b, s:I}", "kind", ix.approximate ? "approximate" : "exact", "vectors",
                                  (json_int_t)ix.vectors, "building", ix.building, "quantized_bytes",
                                  (json_int_t)ix.quantized_bytes);
        if (ix.nlist)
            json_object_update_new(index, json_pack("{s:i, s:i}", "nlist", ix.nlist, "nprobe", ix.nprobe));
        json_t *lexical = json_pack("{s:b, s:I, s:I}", "ready", ix.lexical_ready, "chunks",
                                    (json_int_t)ix.lexical_chunks, "bytes", (json_int_t)ix.lexical_bytes);
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:o}", "name", list[i].name,
                                             "documents", (json_int_t)list[i].documents, "chunks",
                                             (json_int_t)list[i].chunks, "bytes", (json_int_t)list[i].bytes,
                                             "created_at", (json_int_t)list[i].created_at, "index", index,
                                             "lexical", lexical));
    }
    set_json(r, 200, json_pack("{s:o}", "collections", arr));
}

static void handle_collection_delete(struct req *r) {
    int64_t id;
    if (!collection_param(r, &id))
        return;
    enum err e = ret_engine_drop_collection(r->srv->deps.engine, r->tenant, r->params[0]);
    if (e) {
        set_error(r, e, NULL);
        return;
    }
    set_json(r, 200, json_pack("{s:s, s:b}", "collection", r->params[0], "deleted", 1));
}

static void handle_document_get(struct req *r) {
    int64_t id;
    if (!collection_param(r, &id))
        return;
    struct ret_doc_out d;
    enum err e = ret_document_get(ret_engine_store(r->srv->deps.engine), id, r->params[1], r->arena, &d);
    if (e) {
        set_error(r, e, e == ERR_NOT_FOUND ? "no such document in this collection" : NULL);
        return;
    }
    json_t *meta = d.metadata ? json_loads(d.metadata, 0, NULL) : json_null();
    set_json(r, 200, json_pack("{s:s, s:s, s:s, s:s?, s:o, s:I, s:I, s:I, s:s}", "collection", r->params[0], "id",
                               d.document_id, "title", d.title ? d.title : d.document_id, "source", d.source,
                               "metadata", meta ? meta : json_null(), "bytes", (json_int_t)d.bytes, "chunks",
                               (json_int_t)d.chunks, "created_at", (json_int_t)d.created_at, "text", d.text));
}

static void handle_document_delete(struct req *r) {
    int64_t id;
    if (!collection_param(r, &id))
        return;
    enum err e = ret_engine_delete(r->srv->deps.engine, id, r->params[1]);
    if (e) {
        set_error(r, e, e == ERR_NOT_FOUND ? "no such document in this collection" : NULL);
        return;
    }
    set_json(r, 200, json_pack("{s:s, s:s, s:b}", "collection", r->params[0], "id", r->params[1], "deleted", 1));
}

/* Validates one document of an upload batch into d; msg names the field. */
static enum err parse_document(struct req *r, json_t *obj, size_t i, struct ret_doc_in *d, char *msg, size_t msglen) {
    static const char *const known[] = {"id", "title", "text", "metadata", "source"};
    char prefix[48];
    snprintf(prefix, sizeof prefix, "documents[%zu]: ", i);
    if (!json_is_object(obj)) {
        snprintf(msg, msglen, "documents[%zu]: must be an object", i);
        return ERR_INVALID_FIELD;
    }
    if (!only_known(obj, known, ARRAY_SIZE(known), prefix, msg, msglen))
        return ERR_INVALID_FIELD;
    json_t *id = json_object_get(obj, "id"), *text = json_object_get(obj, "text");
    json_t *title = json_object_get(obj, "title"), *meta = json_object_get(obj, "metadata");
    json_t *source = json_object_get(obj, "source");
    if (!json_is_string(id) || json_string_length(id) == 0 || json_string_length(id) > 256) {
        snprintf(msg, msglen, "documents[%zu].id: required, a string of 1-256 bytes", i);
        return ERR_INVALID_FIELD;
    }
    if (!json_is_string(text) || json_string_length(text) == 0) {
        snprintf(msg, msglen, "documents[%zu].text: required, a non-empty string", i);
        return ERR_INVALID_FIELD;
    }
    if ((long)json_string_length(text) > r->cfg->retrieval.max_document_bytes) {
        snprintf(msg, msglen, "documents[%zu].text: longer than retrieval.max_document_bytes (%ld)", i,
                 r->cfg->retrieval.max_document_bytes);
        return ERR_TOO_LARGE;
    }
    if ((title && !json_is_string(title)) || (source && !json_is_string(source))) {
        snprintf(msg, msglen, "documents[%zu].%s: must be a string", i, title && !json_is_string(title) ? "title" : "source");
        return ERR_INVALID_FIELD;
    }
    if (meta && !json_is_object(meta)) {
        snprintf(msg, msglen, "documents[%zu].metadata: must be an object", i);
        return ERR_INVALID_FIELD;
    }
    char *meta_text = NULL;
    if (meta) {
        char *m = json_dumps(meta, JSON_COMPACT);
        meta_text = m ? arena_strdup(r->arena, m) : NULL;
        free(m);
        if (!meta_text)
            return ERR_NOMEM;
    }
    *d = (struct ret_doc_in){
        .ext_id = json_string_value(id),
        .title = title ? json_string_value(title) : NULL,
        .source = source ? json_string_value(source) : NULL,
        .metadata = meta_text,
        .text = json_string_value(text),
        .text_len = json_string_length(text),
    };
    return ERR_OK;
}

static void handle_documents_post(struct req *r) {
    char msg[768] = "";
    const char *name = r->params[0];
    if (!name || !ret_name_valid(name)) {
        set_error(r, ERR_INVALID_FIELD, "collection name must be 1-64 characters of [A-Za-z0-9._-], not starting with '.'");
        return;
    }
    struct ret_doc_in *docs = NULL;
    size_t ndocs = 0;
    json_t *root = NULL;
    enum err e = ERR_OK;
    if (r->is_text) {
        const char *id = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "id");
        const char *title = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "title");
        if (!id || !*id || strlen(id) > 256 || !util_utf8_valid(id, strlen(id))) {
            set_error(r, ERR_INVALID_FIELD, "id: a text upload needs ?id= with 1-256 bytes of UTF-8");
            return;
        }
        if (title && !util_utf8_valid(title, strlen(title))) {
            set_error(r, ERR_INVALID_UTF8, "title: not valid UTF-8");
            return;
        }
        if (r->body.len == 0) {
            set_error(r, ERR_INVALID_FIELD, "the document body is empty");
            return;
        }
        if (memchr(r->body.data, '\0', r->body.len) || !util_utf8_valid(r->body.data, r->body.len)) {
            set_error(r, ERR_INVALID_UTF8, "the document is not valid UTF-8 text");
            return;
        }
        if ((long)r->body.len > r->cfg->retrieval.max_document_bytes) {
            snprintf(msg, sizeof msg, "the document is longer than retrieval.max_document_bytes (%ld)",
                     r->cfg->retrieval.max_document_bytes);
            set_error(r, ERR_TOO_LARGE, msg);
            return;
        }
        docs = arena_calloc(r->arena, 1, sizeof(*docs));
        if (!docs) {
            set_error(r, ERR_NOMEM, NULL);
            return;
        }
        docs[0] = (struct ret_doc_in){.ext_id = arena_strdup(r->arena, id),
                                      .title = title ? arena_strdup(r->arena, title) : NULL,
                                      .text = r->body.data,
                                      .text_len = r->body.len};
        ndocs = 1;
    } else {
        root = parse_json(r, true);
        if (!root)
            return;
        if (!json_is_array(root)) {
            json_decref(root);
            set_error(r, ERR_INVALID_FIELD, "body must be a JSON array of documents");
            return;
        }
        ndocs = json_array_size(root);
        if (ndocs == 0 || (long)ndocs > r->cfg->retrieval.max_batch_documents) {
            snprintf(msg, sizeof msg, "a batch holds 1 to %d documents, got %zu", r->cfg->retrieval.max_batch_documents, ndocs);
            json_decref(root);
            set_error(r, ndocs ? ERR_TOO_LARGE : ERR_INVALID_FIELD, msg);
            return;
        }
        docs = arena_calloc(r->arena, ndocs, sizeof(*docs));
        if (!docs)
            e = ERR_NOMEM;
        for (size_t i = 0; !e && i < ndocs; i++) {
            e = parse_document(r, json_array_get(root, i), i, &docs[i], msg, sizeof msg);
            for (size_t j = 0; !e && j < i; j++) {
                if (strcmp(docs[j].ext_id, docs[i].ext_id) == 0) {
                    snprintf(msg, sizeof msg, "documents[%zu].id: duplicates documents[%zu].id", i, j);
                    e = ERR_CONFLICT;
                }
            }
        }
        if (e) {
            json_decref(root);
            set_error(r, e == ERR_CONFLICT ? ERR_INVALID_FIELD : e, msg);
            return;
        }
    }
    /* Everything validated: nothing is stored unless the whole batch is valid. */
    int64_t cid;
    e = ret_collection_ensure(ret_engine_store(r->srv->deps.engine), r->tenant, name, &cid);
    json_t *out = json_array();
    size_t stored = 0;
    for (size_t i = 0; !e && i < ndocs; i++) {
        struct ret_change ch;
        e = ret_engine_put(r->srv->deps.engine, cid, &docs[i], &ch);
        if (!e) {
            json_array_append_new(out, json_pack("{s:s, s:I, s:b}", "id", docs[i].ext_id, "chunks",
                                                 (json_int_t)ch.nchunks, "replaced", ch.replaced));
            ret_change_done(&ch);
            stored++;
        }
    }
    if (e) {
        snprintf(msg, sizeof msg, "stored %zu of %zu documents, then: %s", stored, ndocs, ret_error_detail(e));
        json_decref(out);
        json_decref(root);
        set_error(r, e, msg);
        return;
    }
    json_t *body = json_pack("{s:s, s:I, s:o}", "collection", name, "stored", (json_int_t)stored, "documents", out);
    json_decref(root); /* after packing: docs[] point into it */
    set_json(r, 201, body);
}

/* ---- metrics ---- */

static void record_query(struct req *r, json_t *body) {
    struct metrics *m = r->srv->metrics;
    json_t *d = json_object_get(body, "decision");
    json_t *usage = json_object_get(body, "usage");
    json_t *t = json_object_get(body, "timings");
    const char *intent = json_string_value(json_object_get(d, "intent"));
    bool fallback = false;
    json_t *ev;
    size_t i;
    json_array_foreach(json_object_get(d, "expanded"), i, ev) {
        const char *stage = json_string_value(json_object_get(ev, "stage"));
        fallback = fallback || (stage && strcmp(stage, "fallback") == 0);
        metrics_add(m, M_STAGE_DECISIONS, 1, stage, "expanded", NULL);
    }
    json_array_foreach(json_object_get(d, "skipped"), i, ev)
        metrics_add(m, M_STAGE_DECISIONS, 1, json_string_value(json_object_get(ev, "stage")), "skipped", NULL);
    const char *outcome = json_is_true(json_object_get(body, "abstained")) ? "abstained"
                          : fallback                                       ? "fallback"
                                                                           : "answered";
    metrics_add(m, M_QUERIES, 1, r->tenant, intent, outcome);
    json_t *plan = json_object_get(d, "plan");
    metrics_add(m, M_PLANS, 1, json_string_value(json_object_get(plan, "generator_tier")),
                json_string_value(json_object_get(plan, "retriever")), NULL);
    static const char *const stages[][2] = {{"queued", "queued_ms"},     {"classify", "classify_ms"},
                                            {"plan", "plan_ms"},         {"retrieve", "retrieve_ms"},
                                            {"rerank", "rerank_ms"},     {"generate", "generate_ms"}};
    for (size_t k = 0; k < ARRAY_SIZE(stages); k++)
        metrics_observe(m, M_STAGE_SECONDS, json_number_value(json_object_get(t, stages[k][1])) / 1000.0, stages[k][0],
                        NULL, NULL);
    metrics_observe(m, M_QUERY_SECONDS, json_number_value(json_object_get(t, "total_ms")) / 1000.0, r->tenant, NULL,
                    NULL);
    metrics_add(m, M_COST, json_number_value(json_object_get(usage, "cost")), r->tenant, NULL, NULL);
    if (json_number_value(json_object_get(usage, "cost")) > 0 || json_is_true(json_object_get(usage, "estimated"))) {
        metrics_add(m, M_TOKENS, (double)json_integer_value(json_object_get(usage, "input_tokens")), r->tenant, "input",
                    NULL);
        metrics_add(m, M_TOKENS, (double)json_integer_value(json_object_get(usage, "output_tokens")), r->tenant,
                    "output", NULL);
    }
    const char *key;
    json_t *met;
    struct stats_query sq = {
        .tenant = r->tenant,
        .intent = intent,
        .outcome = outcome,
        .latency_ms = json_number_value(json_object_get(t, "total_ms")),
        .cost = json_number_value(json_object_get(usage, "cost")),
    };
    json_object_foreach(json_object_get(d, "slo_met"), key, met) {
        metrics_add(m, M_SLO, 1, r->tenant, key, json_is_true(met) ? "met" : "missed");
        if (sq.nslo < 4) {
            sq.slo_name[sq.nslo] = key;
            sq.slo_met[sq.nslo++] = json_is_true(met);
        }
    }
    char plan_key[48];
    snprintf(plan_key, sizeof plan_key, "%s/%s", json_string_value(json_object_get(plan, "generator_tier")),
             json_string_value(json_object_get(plan, "retriever")));
    sq.plan = plan_key;
    char dec[8][48];
    static const char *const kinds[] = {"skipped", "expanded"};
    for (int kk = 0; kk < 2; kk++)
        json_array_foreach(json_object_get(d, kinds[kk]), i, ev) {
            if (sq.ndecisions >= 8)
                break;
            snprintf(dec[sq.ndecisions], sizeof dec[0], "%s/%s", json_string_value(json_object_get(ev, "stage")), kinds[kk]);
            sq.decision[sq.ndecisions] = dec[sq.ndecisions];
            sq.ndecisions++;
        }
    stats_record(r->srv->stats, &sq, (int64_t)time(NULL));
}

/* The ledger thread, after the commit holding this query's entry. */
static void on_ledger_done(void *ud, enum err e) {
    struct req *r = ud;
    if (e) /* the spend is not durable: do not acknowledge the answer */
        set_error(r, ERR_STORAGE, "could not record the query's usage; nothing was charged");
    req_finish(r);
}

/* Queues the query's ledger entry; the response waits for its commit. */
static void ledger_record(struct req *r, json_t *body) {
    if (!r->srv->deps.ledger)
        return;
    json_t *d = json_object_get(body, "decision");
    json_t *plan = json_object_get(d, "plan");
    json_t *usage = json_object_get(body, "usage");
    struct ledger_entry le = {0};
    snprintf(le.tenant, sizeof le.tenant, "%s", r->tenant);
    snprintf(le.request_id, sizeof le.request_id, "%s", r->request_id);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    le.ts_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    snprintf(le.intent, sizeof le.intent, "%s", json_string_value(json_object_get(d, "intent")));
    const char *plan_key = json_string_value(json_object_get(json_object_get(d, "planner"), "config"));
    if (plan_key)
        snprintf(le.plan, sizeof le.plan, "%s", plan_key);
    else
        snprintf(le.plan, sizeof le.plan, "%s/%s/k%lld", json_string_value(json_object_get(plan, "generator_tier")),
                 json_string_value(json_object_get(plan, "retriever")),
                 (long long)json_integer_value(json_object_get(plan, "k")));
    le.cost = json_number_value(json_object_get(usage, "cost"));
    le.latency_ms = json_number_value(json_object_get(json_object_get(body, "timings"), "total_ms"));
    le.quality = json_number_value(json_object_get(json_object_get(d, "actual"), "confidence"));
    json_t *predicted = json_object_get(d, "predicted");
    le.predicted_cost = json_number_value(json_object_get(predicted, "cost"));
    le.predicted_latency_ms = json_number_value(json_object_get(predicted, "latency_ms"));
    le.predicted_quality = json_number_value(json_object_get(predicted, "quality"));
    json_t *slo = json_object_get(d, "slo_met");
    const char *key;
    json_t *v;
    json_object_foreach(slo, key, v) {
        le.slo_total++;
        le.slo_met += json_is_true(v);
    }
    char *sj = json_dumps(slo, JSON_COMPACT);
    snprintf(le.slo_json, sizeof le.slo_json, "%s", sj ? sj : "{}");
    free(sj);
    atomic_fetch_add(&r->parties, 1);
    if (ledger_append(r->srv->deps.ledger, &le, on_ledger_done, r) != ERR_OK)
        on_ledger_done(r, ERR_UNAVAILABLE);
}

static void handle_stats(struct req *r) {
    struct http_server *srv = r->srv;
    int64_t now = (int64_t)time(NULL);
    json_t *backends = json_array();
    struct agent_backend_health h[2 * CFG_MAX_BACKENDS];
    size_t nh = srv->deps.llm ? agent_pool_health(srv->deps.llm, h, ARRAY_SIZE(h)) : 0;
    for (size_t k = 0; k < nh; k++)
        json_array_append_new(backends, json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:f, s:b}", "name",
                                                  h[k].name, "tier", h[k].tier, "breaker",
                                                  agent_breaker_name(h[k].breaker), "in_flight", h[k].in_flight,
                                                  "queued", h[k].queued, "max_concurrency", h[k].max_concurrency,
                                                  "calls", (json_int_t)h[k].calls, "failures",
                                                  (json_int_t)h[k].failures, "retries", (json_int_t)h[k].retries,
                                                  "latency_ewma_ms", h[k].latency_ewma_ms, "retired", h[k].retired));
    json_t *tenants = stats_tenants_json(srv->stats, r->tenant[0] ? r->tenant : NULL, now);
    /* budget burn: the profile's budget, the ledger's spend, and when the
     * day's budget runs out at today's average rate */
    size_t ti;
    json_t *t;
    json_array_foreach(tenants, ti, t) {
        const char *id = json_string_value(json_object_get(t, "tenant"));
        struct cfg_tenant tn;
        struct slo_profile prof;
        slo_profile_defaults(&prof);
        char perr[128];
        if (id && cfg_tenant_get(srv->deps.tenants, id, &tn) == ERR_OK) {
            if (tn.profile)
                slo_profile_parse_text(tn.profile, perr, sizeof perr, &prof);
            cfg_tenant_done(&tn);
        }
        double day = 0, month = 0;
        if (id && srv->deps.ledger)
            ledger_spent(srv->deps.ledger, id, now, &day, &month);
        json_t *exhaust = json_null();
        double since_midnight = (double)(now % 86400);
        if (prof.budget.per_day > 0 && day > 0 && since_midnight > 0) {
            double rate = day / since_midnight; /* per second */
            exhaust = json_integer((json_int_t)(now + (prof.budget.per_day - day) / rate));
        }
        json_object_set_new(t, "budget",
                            json_pack("{s:f, s:f, s:f, s:f, s:o}", "per_day", prof.budget.per_day, "spent_today", day,
                                      "per_month", prof.budget.per_month, "spent_month", month,
                                      "projected_exhaustion", exhaust));
    }
    set_json(r, 200, json_pack("{s:I, s:f, s:i, s:s, s:o, s:o}", "generated_at", (json_int_t)now, "uptime_s",
                               (double)(clock_us() - srv->started_us) / 1e6, "window_minutes", STATS_WINDOW_MIN,
                               "scope", r->tenant[0] ? r->tenant : "all", "tenants", tenants, "backends",
                               r->tenant[0] ? json_array() : backends));
    if (r->tenant[0])
        json_decref(backends);
}

static void handle_metrics(struct req *r) {
    struct buf b;
    buf_init(&b, 8u << 20);
    enum err e = metrics_render(r->srv->metrics, &b);
    struct http_server *srv = r->srv;
    if (!e)
        e = metrics_gauge_header(&b, "slorag_build_info", "Build information");
    if (!e)
        e = metrics_gauge(&b, "slorag_build_info", "version=\"" SLORAG_VERSION "\"", 1);
    if (!e)
        e = metrics_gauge_header(&b, "slorag_uptime_seconds", "Seconds since the server started");
    if (!e)
        e = metrics_gauge(&b, "slorag_uptime_seconds", NULL, (double)(clock_us() - srv->started_us) / 1e6);
    if (!e)
        e = metrics_gauge_header(&b, "slorag_http_in_flight", "Requests being served");
    if (!e)
        e = metrics_gauge(&b, "slorag_http_in_flight", NULL, (double)atomic_load(&srv->in_flight));
    if (!e)
        e = metrics_gauge_header(&b, "slorag_http_reading", "Requests in flight still receiving their body");
    if (!e)
        e = metrics_gauge(&b, "slorag_http_reading", NULL, (double)atomic_load(&srv->reading));
    if (!e)
        e = metrics_gauge_header(&b, "slorag_client_hangups",
                                 "Answers whose backend calls were cancelled because the client left (monotonic)");
    if (!e)
        e = metrics_gauge(&b, "slorag_client_hangups", NULL, (double)hangup_cancelled(srv->hangup));
    if (!e)
        e = metrics_gauge_header(&b, "slorag_worker_queue_depth", "Requests waiting for a worker thread");
    if (!e)
        e = metrics_gauge(&b, "slorag_worker_queue_depth", NULL, (double)exec_pool_queued(srv->deps.pool));
    if (!e)
        e = metrics_gauge_header(&b, "slorag_index_vectors", "Vectors in the dense indexes");
    if (!e)
        e = metrics_gauge(&b, "slorag_index_vectors", NULL, (double)ret_engine_vectors(srv->deps.engine));
    struct ret_store_stats st;
    if (!e && ret_store_stats(ret_engine_store(srv->deps.engine), &st) == ERR_OK) {
        e = metrics_gauge_header(&b, "slorag_store_documents", "Documents stored");
        if (!e)
            e = metrics_gauge(&b, "slorag_store_documents", NULL, (double)st.documents);
        if (!e)
            e = metrics_gauge_header(&b, "slorag_store_chunks", "Chunks stored");
        if (!e)
            e = metrics_gauge(&b, "slorag_store_chunks", NULL, (double)st.chunks);
    }
    struct ret_textcache_stats tc;
    ret_store_text_cache_stats(ret_engine_store(srv->deps.engine), &tc);
    static const struct {
        const char *name, *help;
    } tg[] = {
        {"slorag_text_cache_hits", "Returned chunks whose text came from memory (monotonic)"},
        {"slorag_text_cache_misses", "Returned chunks whose text was read from SQLite, while the cache is on (monotonic)"},
        {"slorag_text_cache_bytes", "Memory held by the text cache"},
        {"slorag_sqlite_memory_bytes", "Memory SQLite holds: page caches, statements, schemas of every connection"},
    };
    const double tv[] = {(double)tc.hits, (double)tc.misses, (double)tc.bytes, (double)sqlite3_memory_used()};
    for (size_t g = 0; !e && g < ARRAY_SIZE(tg); g++) {
        e = metrics_gauge_header(&b, tg[g].name, tg[g].help);
        if (!e)
            e = metrics_gauge(&b, tg[g].name, NULL, tv[g]);
    }
    struct agent_backend_health h[2 * CFG_MAX_BACKENDS];
    size_t nh = srv->deps.llm ? agent_pool_health(srv->deps.llm, h, ARRAY_SIZE(h)) : 0;
    static const struct {
        const char *name, *help;
    } bg[] = {
        {"slorag_backend_in_flight", "Backend calls in flight"},
        {"slorag_backend_queued", "Backend calls waiting for a slot"},
        {"slorag_backend_calls", "Backend call attempts finished (monotonic)"},
        {"slorag_backend_failures", "Backend call attempts that failed (monotonic)"},
        {"slorag_backend_retries", "Backend retries (monotonic)"},
        {"slorag_backend_latency_ewma_seconds", "Moving average latency of successful backend calls"},
        {"slorag_backend_breaker_state", "Circuit breaker: 0 closed, 1 open, 2 half-open"},
    };
    for (size_t g = 0; !e && g < ARRAY_SIZE(bg); g++) {
        e = metrics_gauge_header(&b, bg[g].name, bg[g].help);
        for (size_t k = 0; !e && k < nh; k++) {
            char name[80], lab[200];
            metrics_escape(h[k].name, name, sizeof name);
            snprintf(lab, sizeof lab, "backend=\"%s\",tier=\"%s\"", name, h[k].tier);
            double v = g == 0 ? h[k].in_flight : g == 1 ? h[k].queued : g == 2 ? (double)h[k].calls
                     : g == 3 ? (double)h[k].failures : g == 4 ? (double)h[k].retries
                     : g == 5 ? h[k].latency_ewma_ms / 1000.0 : (double)h[k].breaker;
            e = metrics_gauge(&b, bg[g].name, lab, v);
        }
    }
    if (e) {
        buf_done(&b);
        set_error(r, e, "could not render the metrics");
        return;
    }
    free(r->resp);
    r->resp = buf_steal(&b);
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* ---- admin API ---- */

static json_t *tenant_json(struct req *r, const char *id) {
    struct cfg_tenant tn;
    if (cfg_tenant_get(r->srv->deps.tenants, id, &tn) != ERR_OK)
        return NULL;
    struct cfg_key_info *keys = NULL;
    size_t nkeys = 0;
    json_t *karr = json_array();
    if (cfg_key_list(r->srv->deps.tenants, id, &keys, &nkeys) == ERR_OK) {
        for (size_t i = 0; i < nkeys; i++)
            json_array_append_new(karr, json_pack("{s:s, s:I, s:b}", "key_id", keys[i].key_id, "created_at",
                                                  (json_int_t)keys[i].created_at, "revoked", keys[i].revoked_at != 0));
        free(keys);
    }
    json_t *profile = tn.profile ? json_loads(tn.profile, 0, NULL) : NULL;
    json_t *j = json_pack("{s:s, s:I, s:o, s:o, s:{s:f, s:f}}", "id", tn.id, "created_at", (json_int_t)tn.created_at,
                          "keys", karr, "profile", profile ? profile : json_null(), "limits", "requests_per_second",
                          tn.rate_rps, "tokens_per_minute", tn.tokens_per_min);
    cfg_tenant_done(&tn);
    return j;
}

static bool tenant_param(struct req *r) {
    if (!r->params[0] || !cfg_tenant_id_valid(r->params[0])) {
        set_error(r, ERR_INVALID_FIELD, "tenant id must be 1-64 characters of [a-z0-9_-], starting with a letter or digit");
        return false;
    }
    return true;
}

static void handle_admin_tenant_create(struct req *r) {
    static const char *const known[] = {"id"};
    char msg[160];
    json_t *root = parse_body(r);
    if (!root)
        return;
    if (!only_known(root, known, ARRAY_SIZE(known), "", msg, sizeof msg)) {
        json_decref(root);
        set_error(r, ERR_INVALID_FIELD, msg);
        return;
    }
    json_t *id = json_object_get(root, "id");
    if (!json_is_string(id) || !cfg_tenant_id_valid(json_string_value(id))) {
        json_decref(root);
        set_error(r, ERR_INVALID_FIELD, "id: required, 1-64 characters of [a-z0-9_-], starting with a letter or digit");
        return;
    }
    char key[CFG_KEY_LEN + 1], key_id[CFG_KEY_ID_LEN + 1];
    const char *tid = arena_strdup(r->arena, json_string_value(id));
    json_decref(root);
    if (!tid) {
        set_error(r, ERR_NOMEM, NULL);
        return;
    }
    enum err e = cfg_tenant_create(r->srv->deps.tenants, tid, key, key_id);
    if (e) {
        snprintf(msg, sizeof msg, "tenant \"%s\" already exists", tid);
        set_error(r, e, e == ERR_CONFLICT ? msg : NULL);
        return;
    }
    log_msg(LOG_INFO, "tenant_created", LOG_S("tenant", tid), LOG_S("key_id", key_id), LOG_END);
    set_json(r, 201, json_pack("{s:o, s:s, s:s}", "tenant", tenant_json(r, tid), "api_key", key, "key_id", key_id));
    sodium_memzero(key, sizeof key);
}

static void handle_admin_tenant_list(struct req *r) {
    char **ids = NULL;
    size_t n = 0;
    enum err e = cfg_tenant_list(r->srv->deps.tenants, &ids, &n);
    if (e) {
        set_error(r, e, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, tenant_json(r, ids[i]));
    cfg_tenant_list_free(ids, n);
    set_json(r, 200, json_pack("{s:o}", "tenants", arr));
}

static void handle_admin_tenant_get(struct req *r) {
    if (!tenant_param(r))
        return;
    json_t *j = tenant_json(r, r->params[0]);
    if (!j) {
        set_error(r, ERR_NOT_FOUND, "no such tenant");
        return;
    }
    set_json(r, 200, j);
}

static void handle_admin_tenant_delete(struct req *r) {
    if (!tenant_param(r))
        return;
    enum err e = cfg_tenant_delete(r->srv->deps.tenants, r->params[0]);
    if (e) {
        set_error(r, e, e == ERR_NOT_FOUND ? "no such tenant" : NULL);
        return;
    }
    intents_cache_invalidate(r->srv->deps.intents, r->params[0]); /* its examples went with it */
    /* its keys went with it; now its data */
    struct ret_collection_info *list = NULL;
    size_t n = 0;
    size_t dropped = 0;
    if (ret_collection_list(ret_engine_store(r->srv->deps.engine), r->params[0], r->arena, &list, &n) == ERR_OK)
        for (size_t i = 0; i < n; i++)
            dropped += ret_engine_drop_collection(r->srv->deps.engine, r->params[0], list[i].name) == ERR_OK;
    log_msg(LOG_INFO, "tenant_deleted", LOG_S("tenant", r->params[0]), LOG_I("collections", dropped), LOG_END);
    set_json(r, 200, json_pack("{s:s, s:b, s:I}", "id", r->params[0], "deleted", 1, "collections_deleted",
                               (json_int_t)dropped));
}

static void handle_admin_key_issue(struct req *r) {
    if (!tenant_param(r))
        return;
    char key[CFG_KEY_LEN + 1], key_id[CFG_KEY_ID_LEN + 1];
    enum err e = cfg_key_issue(r->srv->deps.tenants, r->params[0], key, key_id);
    if (e) {
        set_error(r, e, e == ERR_NOT_FOUND ? "no such tenant" : NULL);
        return;
    }
    log_msg(LOG_INFO, "key_issued", LOG_S("tenant", r->params[0]), LOG_S("key_id", key_id), LOG_END);
    set_json(r, 201, json_pack("{s:s, s:s, s:s}", "tenant", r->params[0], "api_key", key, "key_id", key_id));
    sodium_memzero(key, sizeof key);
}

static void handle_admin_key_revoke(struct req *r) {
    if (!tenant_param(r))
        return;
    enum err e = cfg_key_revoke(r->srv->deps.tenants, r->params[0], r->params[1]);
    if (e) {
        set_error(r, e, e == ERR_NOT_FOUND ? "no such active key for this tenant" : NULL);
        return;
    }
    log_msg(LOG_INFO, "key_revoked", LOG_S("tenant", r->params[0]), LOG_S("key_id", r->params[1]), LOG_END);
    set_json(r, 200, json_pack("{s:s, s:s, s:b}", "tenant", r->params[0], "key_id", r->params[1], "revoked", 1));
}

static void handle_admin_profile_put(struct req *r) {
    if (!tenant_param(r))
        return;
    json_t *root = parse_body(r);
    if (!root)
        return;
    struct slo_profile prof;
    char perr[256];
    if (slo_profile_parse(root, perr, sizeof perr, &prof) != ERR_OK) {
        json_decref(root);
        set_error(r, ERR_INVALID_FIELD, perr);
        return;
    }
    /* store the normalised form: every key explicit */
    json_decref(root);
    root = slo_profile_to_json(&prof);
    char *text = root ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    enum err e = text ? cfg_tenant_set_profile(r->srv->deps.tenants, r->params[0], text) : ERR_NOMEM;
    free(text);
    if (e) {
        set_error(r, e, e == ERR_NOT_FOUND ? "no such tenant" : NULL);
        return;
    }
    set_json(r, 200, tenant_json(r, r->params[0]));
}

static void handle_admin_limits_put(struct req *r) {
    static const char *const known[] = {"requests_per_second", "tokens_per_minute"};
    char msg[160];
    if (!tenant_param(r))
        return;
    json_t *root = parse_body(r);
    if (!root)
        return;
    double rps = 0, tpm = 0;
    json_t *a = json_object_get(root, "requests_per_second"), *b = json_object_get(root, "tokens_per_minute");
    enum err e = ERR_OK;
    if (!only_known(root, known, ARRAY_SIZE(known), "", msg, sizeof msg))
        e = ERR_INVALID_FIELD;
    else if ((a && (!json_is_number(a) || json_number_value(a) < 0 || json_number_value(a) > 1e6)) ||
             (b && (!json_is_number(b) || json_number_value(b) < 0 || json_number_value(b) > 1e9))) {
        snprintf(msg, sizeof msg, "requests_per_second (0..1e6) and tokens_per_minute (0..1e9) must be numbers; 0 = unlimited");
        e = ERR_INVALID_FIELD;
    } else {
        rps = a ? json_number_value(a) : 0;
        tpm = b ? json_number_value(b) : 0;
    }
    json_decref(root);
    if (!e)
        e = cfg_tenant_set_limits(r->srv->deps.tenants, r->params[0], rps, tpm);
    if (e) {
        set_error(r, e, e == ERR_NOT_FOUND ? "no such tenant" : msg);
        return;
    }
    set_json(r, 200, tenant_json(r, r->params[0]));
}

/* The work is in intents.c; these only map it to a response. */
static void handle_admin_intents_put(struct req *r) {
    if (!tenant_param(r))
        return;
    json_t *root = parse_body(r), *body = NULL;
    if (!root)
        return;
    char msg[256];
    enum err e = intents_admin_put(r->srv->deps.intents, r->srv->deps.tenants, r->params[0], root, &body, msg,
                                   sizeof msg);
    json_decref(root);
    if (e)
        set_error(r, e, msg);
    else
        set_json(r, 200, body);
}

static void handle_admin_intents_get(struct req *r) {
    if (!tenant_param(r))
        return;
    json_t *body = NULL;
    char msg[256];
    enum err e = intents_admin_get(r->srv->deps.tenants, r->params[0], &body, msg, sizeof msg);
    if (e)
        set_error(r, e, msg);
    else
        set_json(r, 200, body);
}

extern const char openapi_json[];
extern const unsigned long openapi_json_len;

static void handle_openapi(struct req *r) {
    free(r->resp);
    r->resp = strndup(openapi_json, openapi_json_len);
    r->status = r->resp ? 200 : 500;
}

/* A rating of an answer the tenant received: it teaches the planner how
 * good that configuration is for that intent. */
static void handle_feedback(struct req *r) {
    static const char *const known[] = {"request_id", "rating", "comment"};
    char msg[160];
    json_t *root = parse_body(r);
    if (!root)
        return;
    json_t *rid = json_object_get(root, "request_id"), *rating = json_object_get(root, "rating");
    enum err e = ERR_OK;
    if (!only_known(root, known, ARRAY_SIZE(known), "", msg, sizeof msg)) {
        e = ERR_INVALID_FIELD;
    } else if (!json_is_string(rid) || json_string_length(rid) == 0 || json_string_length(rid) > 32) {
        snprintf(msg, sizeof msg, "request_id: required, the request_id of an answer");
        e = ERR_INVALID_FIELD;
    } else if (!json_is_number(rating) || json_number_value(rating) < 0 || json_number_value(rating) > 1) {
        snprintf(msg, sizeof msg, "rating: required, a number from 0 (wrong) to 1 (right)");
        e = ERR_INVALID_FIELD;
    }
    char plan[64] = "", intent[24] = "";
    if (!e) {
        e = r->srv->deps.ledger ? ledger_find(r->srv->deps.ledger, r->tenant, json_string_value(rid), plan, sizeof plan,
                                              intent, sizeof intent)
                                : ERR_NOT_FOUND;
        if (e == ERR_NOT_FOUND)
            snprintf(msg, sizeof msg, "no answered request with that id for this tenant");
    }
    if (e) {
        json_decref(root);
        set_error(r, e, e == ERR_STORAGE ? NULL : msg);
        return;
    }
    int config = slo_space_find(plan);
    bool learned = r->srv->deps.slo && config >= 0 && slo_intent_parse(intent) >= 0;
    if (learned)
        exec_slo_feedback(r->srv->deps.slo, config, slo_intent_parse(intent), json_number_value(rating));
    set_json(r, 200, json_pack("{s:s, s:f, s:b}", "request_id", json_string_value(rid), "rating",
                               json_number_value(rating), "learned", learned));
    json_decref(root);
}

/* The page holds no data (it fetches /v1/stats with the viewer's key), so it
 * is public; its CSP admits only its own inline script and style. */
static void handle_dashboard(struct req *r) {
    free(r->resp);
    r->resp = strndup(dashboard_html, dashboard_html_len);
    r->status = r->resp ? 200 : 500;
    r->content_type = "text/html; charset=utf-8";
    r->csp = dashboard_csp;
}

/* Asks the main thread to reload, exactly as SIGHUP does (it waits for the
 * signal in sigwait); the outcome is in the log and in the next
 * snapshot's values. */
static void handle_admin_reload(struct req *r) {
    if (kill(getpid(), SIGHUP) != 0) {
        set_error(r, ERR_INTERNAL, "could not signal the reload");
        return;
    }
    set_json(r, 202, json_pack("{s:s}", "reload", "requested"));
}

/* ---- plumbing ---- */

/* The last party to finish hands the response to the HTTP thread. */
static void req_finish(struct req *r) {
    pthread_mutex_lock(&r->smu);
    if (atomic_fetch_sub(&r->parties, 1) != 1) {
        pthread_mutex_unlock(&r->smu);
        return;
    }
    if (r->live) {
        /* the stream carries the answer: let it end */
        r->s_end = true;
        bool gone = r->mhd_gone;
        if (r->reader_waiting && !gone) {
            r->reader_waiting = false;
            MHD_resume_connection(r->conn);
        }
        pthread_mutex_unlock(&r->smu);
        if (gone)
            req_free(r); /* libmicrohttpd is done with it, and so are we */
        return;
    }
    pthread_mutex_unlock(&r->smu);
    r->state = REQ_DONE;
    MHD_resume_connection(r->conn); /* r may be freed from here on */
}

/* Appends a malloc'd piece of a live stream (NULL: nothing, e.g. out of
 * memory) and wakes the reader; with open, the first piece also resumes
 * the suspended connection so that the stream response gets queued. */
static void stream_push(struct req *r, char *text, bool open) {
    pthread_mutex_lock(&r->smu);
    if (text && !r->mhd_gone && buf_append(&r->sbuf, text, strlen(text)) != ERR_OK)
        log_msg(LOG_WARN, "stream", LOG_S("id", r->request_id), LOG_S("detail", "stream buffer full: event dropped"),
                LOG_END);
    free(text);
    if (!r->mhd_gone) {
        if (open && !r->live) {
            r->live = true;
            r->state = REQ_STREAMING;
            MHD_resume_connection(r->conn);
        } else if (r->reader_waiting) {
            r->reader_waiting = false;
            MHD_resume_connection(r->conn);
        }
    }
    pthread_mutex_unlock(&r->smu);
}

static bool stream_live(struct req *r) {
    pthread_mutex_lock(&r->smu);
    bool live = r->live;
    pthread_mutex_unlock(&r->smu);
    return live;
}

/* libmicrohttpd's content reader for a live stream (HTTP thread). */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max) {
    (void)pos;
    struct req *r = cls;
    pthread_mutex_lock(&r->smu);
    size_t avail = r->sbuf.len - r->ssent;
    if (avail > 0) {
        size_t n = avail < max ? avail : max;
        memcpy(out, r->sbuf.data + r->ssent, n);
        r->ssent += n;
        if (r->ssent == r->sbuf.len)
            r->sbuf.len = r->ssent = 0; /* drained: reuse the buffer */
        pthread_mutex_unlock(&r->smu);
        return (ssize_t)n;
    }
    if (r->s_end) {
        pthread_mutex_unlock(&r->smu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    /* nothing yet: sleep until a producer has more (stream_push) */
    r->reader_waiting = true;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&r->smu);
    return 0;
}

static enum MHD_Result queue_stream(struct req *r) {
    r->state = REQ_STREAM_QUEUED;
    r->status = 200;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, r, NULL);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void run_job(void *arg) {
    struct req *r = arg;
    struct http_server *srv = r->srv;
    int64_t t0 = clock_us();
    atomic_fetch_add(&srv->running, 1);
    r->route->handler(r);
    atomic_fetch_sub(&srv->running, 1);
    double ms = (double)(clock_us() - t0) / 1000.0, old = atomic_load(&srv->service_ms);
    atomic_store(&srv->service_ms, old > 0 ? 0.9 * old + 0.1 * ms : ms); /* a lost update only skews the average */
    req_finish(r); /* r may be freed from here on */
}

/* Admission control for answering routes, before the request queues for a
 * worker: shed (503 + Retry-After) when the predicted wait would eat the
 * deadline, degrade to the free tier when only an extractive answer still
 * fits.  Returns false when the request was refused. */
static bool admit_answer(struct req *r) {
    if (!(r->route->flags & ROUTE_ANSWER))
        return true;
    struct slo_admission_input in = {
        .queue_depth = (int)exec_pool_queued(r->srv->deps.pool),
        .in_flight = atomic_load(&r->srv->running),
        .capacity = r->cfg->server.workers,
        .queue_max = r->cfg->server.queue_max,
        .service_ms = atomic_load(&r->srv->service_ms),
        .degraded_service_ms = 0,
        .deadline_ms = r->cfg->query.deadline_ms,
        .priority = SLO_PRIORITY_NORMAL,
    };
    struct slo_admission a;
    slo_admission_decide(&in, &a);
    if (a.action == SLO_ADMIT_SHED) {
        char msg[192];
        snprintf(msg, sizeof msg, "overloaded: %s (predicted wait %.0f ms)", a.reason, a.wait_ms);
        set_error(r, ERR_OVERLOADED, msg);
        r->retry_after = a.retry_after_s > 0 ? a.retry_after_s : 1;
        return false;
    }
    r->degrade = a.action == SLO_ADMIT_DEGRADE;
    return true;
}

static struct req *req_new(struct http_server *srv, struct MHD_Connection *conn, const char *method,
                           const char *url) {
    struct req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->arena = arena_new(REQ_ARENA_MAX);
    if (!r->arena) {
        free(r);
        return NULL;
    }
    r->srv = srv;
    r->conn = conn;
    r->method = method;
    r->url = url;
    r->arrived_us = clock_us();
    r->cfg = cfg_slot_get(srv->deps.cfg);
    buf_init(&r->body, (size_t)r->cfg->server.max_body_bytes);
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t ridlen = rid ? strlen(rid) : 0;
    bool rid_ok = ridlen > 0 && ridlen < sizeof r->request_id;
    for (size_t i = 0; rid_ok && i < ridlen; i++)
        rid_ok = (rid[i] >= '0' && rid[i] <= '9') || (rid[i] >= 'a' && rid[i] <= 'z') ||
                 (rid[i] >= 'A' && rid[i] <= 'Z') || rid[i] == '-' || rid[i] == '_';
    if (rid_ok)
        memcpy(r->request_id, rid, ridlen + 1);
    else
        util_request_id(r->request_id);
    pthread_mutex_init(&r->smu, NULL);
    buf_init(&r->sbuf, 16u << 20);
    atomic_fetch_add(&srv->in_flight, 1);
    r->reading = true;
    atomic_fetch_add(&srv->reading, 1);
    return r;
}

/* The request is complete (or answered before its body): from now on the
 * server, not the client, owes the next step. */
static void req_received(struct req *r) {
    if (r->reading) {
        r->reading = false;
        atomic_fetch_sub(&r->srv->reading, 1);
    }
}

static void req_free(struct req *r) {
    req_received(r);
    atomic_fetch_sub(&r->srv->in_flight, 1);
    pthread_mutex_destroy(&r->smu);
    buf_done(&r->sbuf);
    buf_done(&r->body);
    free(r->resp);
    arena_free(r->arena);
    cfg_unref(r->cfg);
    free(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)conn;
    struct req *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    struct http_server *srv = r->srv;
    char rid[sizeof r->request_id];
    memcpy(rid, r->request_id, sizeof rid);
    const char *method = r->method, *url = r->url; /* libmicrohttpd's, valid during this call */
    const char *pattern = r->route ? r->route->pattern : "unmatched";
    pthread_mutex_lock(&r->smu);
    bool keep = r->live && atomic_load(&r->parties) > 0;
    uint64_t key = r->cancel_key;
    if (keep) {
        /* the client left a live stream while the answer is still being
         * generated: stop that work; the last party frees r (from the
         * unlock on, r may be gone: only the copies above are used) */
        r->mhd_gone = true;
        r->cancel_key = 0;
    }
    pthread_mutex_unlock(&r->smu);
    if (keep) {
        hangup_unwatch(srv->hangup, key);
        agent_pool_cancel(srv->deps.llm, key);
        metrics_add(srv->metrics, M_HTTP_REQUESTS, 1, pattern, "499", NULL);
        log_msg(LOG_WARN, "request", LOG_S("id", rid), LOG_S("method", method), LOG_S("path", url),
                LOG_I("status", 499), LOG_S("detail", "the client left the stream; generation cancelled"), LOG_END);
        return;
    }
    double ms = (double)(clock_us() - r->arrived_us) / 1000.0;
    char code[8];
    snprintf(code, sizeof code, "%d", r->status);
    metrics_add(r->srv->metrics, M_HTTP_REQUESTS, 1, r->route ? r->route->pattern : "unmatched", code, NULL);
    log_msg(toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? LOG_INFO : LOG_WARN, "request", LOG_S("id", r->request_id),
            LOG_S("method", r->method), LOG_S("path", r->url), LOG_I("status", r->status), LOG_F("ms", ms),
            LOG_I("completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK), LOG_END);
    req_free(r);
}

/* Finds the route for method+url, capturing parameters into r.  When the
 * path exists only with other methods, *ret_allow lists them. */
static const struct route *route_find(struct req *r, const char **ret_allow) {
    char allow[64] = "";
    *ret_allow = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        if (!route_match(routes[i].pattern, r->url, r->arena, NULL))
            continue;
        bool same = strcmp(routes[i].method, r->method) == 0 ||
                    (strcmp(r->method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0);
        if (same) {
            route_match(routes[i].pattern, r->url, r->arena, r->params);
            return &routes[i];
        }
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof allow - used, "%s%s%s", used ? ", " : "", routes[i].method,
                 strcmp(routes[i].method, "GET") == 0 ? ", HEAD" : "");
    }
    if (allow[0])
        *ret_allow = arena_strdup(r->arena, allow);
    return NULL;
}

static bool media_is(const char *ct, const char *type) {
    size_t n = strlen(type);
    return strncasecmp(ct, type, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* JSON always (a bare body is read as JSON); text only where the route
 * takes it. */
static bool content_type_ok(struct req *r) {
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || media_is(ct, "application/json"))
        return true;
    if ((r->route->flags & ROUTE_TEXT) && (media_is(ct, "text/plain") || media_is(ct, "text/markdown"))) {
        r->is_text = true;
        return true;
    }
    return false;
}

/* The presented Bearer token, or NULL. */
static const char *bearer(struct req *r) {
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

/* Open mode: no admin key and no tenant -> one implicit "default" tenant,
 * no credentials (the listener is loopback-only then, see main.c). */
static bool open_mode(struct req *r) {
    return !r->cfg->admin_key[0] && cfg_tenants_count(r->srv->deps.tenants) == 0;
}

/* Sets r->tenant, or an error response (false).  A tenant can only ever
 * name its own collections: every store lookup is keyed by r->tenant. */
static bool authorize(struct req *r) {
    if (r->route->flags & ROUTE_PUBLIC)
        return true;
    const char *tok = bearer(r);
    bool is_admin = tok && r->cfg->admin_key[0] && cfg_secret_equal(tok, r->cfg->admin_key);
    if ((r->route->flags & ROUTE_OPS) && (is_admin || open_mode(r)))
        return true;
    if (r->route->flags & ROUTE_VIEW) {
        bool is_viewer = tok && r->cfg->dashboard_key[0] && cfg_secret_equal(tok, r->cfg->dashboard_key);
        if (is_admin || is_viewer || open_mode(r)) {
            r->tenant[0] = '\0'; /* every tenant */
            return true;
        }
        if (tok && cfg_key_authenticate(r->srv->deps.tenants, tok, r->tenant, NULL, NULL) == ERR_OK)
            return true;
        set_error(r, ERR_UNAUTHORIZED, "send Authorization: Bearer with the admin key, the dashboard key or a tenant key");
        r->www_authenticate = true;
        return false;
    }
    if (r->route->flags & (ROUTE_ADMIN | ROUTE_OPS)) {
        if (!r->cfg->admin_key[0]) {
            set_error(r, ERR_FORBIDDEN, "the admin API is disabled: set admin_key in the config or SLORAG_ADMIN_KEY");
            return false;
        }
        if (is_admin)
            return true;
        if (tok && cfg_key_authenticate(r->srv->deps.tenants, tok, r->tenant, NULL, NULL) == ERR_OK) {
            set_error(r, ERR_FORBIDDEN, "a tenant key cannot use the admin API");
            return false;
        }
        set_error(r, ERR_UNAUTHORIZED, "the admin API needs Authorization: Bearer <admin key>");
        r->www_authenticate = true;
        return false;
    }
    if (open_mode(r)) {
        snprintf(r->tenant, sizeof r->tenant, "default");
        r->open_tenant = true;
        return true;
    }
    if (is_admin) {
        set_error(r, ERR_FORBIDDEN, "the admin key cannot be used for tenant requests; use a tenant's API key");
        return false;
    }
    double rps = 0;
    enum err e = tok ? cfg_key_authenticate(r->srv->deps.tenants, tok, r->tenant, &rps, &r->tpm) : ERR_UNAUTHORIZED;
    if (e) {
        set_error(r, e, e == ERR_UNAUTHORIZED ? (tok ? "invalid or revoked API key"
                                                     : "missing credentials: send Authorization: Bearer <API key>")
                                              : NULL);
        r->www_authenticate = e == ERR_UNAUTHORIZED;
        return false;
    }
    int retry = 1;
    if (!rl_take_request(r->srv->rl, r->tenant, rps, clock_us(), &retry)) {
        char msg[128];
        snprintf(msg, sizeof msg, "over this tenant's limit of %g requests per second", rps);
        set_error(r, ERR_RATE_LIMITED, msg);
        r->retry_after = retry;
        return false;
    }
    return true;
}

/* What an encoded NUL (%00) in the path or the query decodes to: the
 * overlong, never valid, UTF-8 form of NUL.  libmicrohttpd's own decoder
 * writes a NUL byte there, which ends the string its callers see:
 * ".../documents/a.txt%00.html" read as "a.txt", "?id=ab%00cd" as "ab".
 * Decoded to this instead, it reaches admit(), which refuses it. */
#define NUL_MARK "\xC0\x80"

static int hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* libmicrohttpd's unescape callback, for the path and each query key and
 * value: "%HH" (either case) becomes its byte, any other '%' stays, as
 * its default decoder does, but "%00" becomes NUL_MARK (two bytes for
 * three: the result never outgrows the input). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s) {
    (void)cls, (void)c;
    char *w = s;
    for (const char *p = s; *p;) {
        int hi, lo;
        if (p[0] == '%' && (hi = hex_digit(p[1])) >= 0 && (lo = hex_digit(p[2])) >= 0) {
            if (hi == 0 && lo == 0) {
                memcpy(w, NUL_MARK, 2);
                w += 2;
            } else {
                *w++ = (char)(hi << 4 | lo);
            }
            p += 3;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static enum MHD_Result find_nul_mark(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    bool *found = cls;
    *found = strstr(key, NUL_MARK) || (value && strstr(value, NUL_MARK));
    return *found ? MHD_NO : MHD_YES;
}

/* First call for a request: route, limits and early errors.  Returns true
 * when r already holds a response to send once the body (if any) is read. */
static bool admit(struct req *r) {
    char msg[160];
    if (atomic_load(&r->srv->draining)) {
        set_error(r, ERR_UNAVAILABLE, "server is shutting down");
        return true;
    }
    const union MHD_ConnectionInfo *head = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (head && head->header_size > (size_t)r->cfg->server.max_header_bytes) {
        snprintf(msg, sizeof msg, "the request line and headers take %zu bytes, over the limit of %ld",
                 head->header_size, r->cfg->server.max_header_bytes);
        set_error(r, ERR_HEADER_TOO_LARGE, msg);
        return true;
    }
    bool nul = strstr(r->url, NUL_MARK) != NULL;
    if (!nul)
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, find_nul_mark, &nul);
    if (nul) {
        set_error(r, ERR_BAD_REQUEST, "the path or query holds an encoded NUL byte (%00, or %C0%80)");
        return true;
    }
    const char *allow;
    r->route = route_find(r, &allow);
    if (!r->route) {
        if (allow) {
            snprintf(msg, sizeof msg, "%s is not allowed on %s; allowed: %s", r->method, r->url, allow);
            set_error(r, ERR_METHOD_NOT_ALLOWED, msg);
            r->allow = allow;
        } else {
            set_error(r, ERR_NOT_FOUND, "no such route");
        }
        return true;
    }
    if (!authorize(r))
        return true;
    if (!(r->route->flags & ROUTE_BODY))
        return false;
    if (!content_type_ok(r)) {
        set_error(r, ERR_UNSUPPORTED_MEDIA, (r->route->flags & ROUTE_TEXT)
                                                ? "Content-Type must be application/json, text/plain or text/markdown"
                                                : "Content-Type must be application/json");
        return true;
    }
    long cap = (r->route->flags & ROUTE_UPLOAD) ? r->cfg->server.max_upload_bytes : r->cfg->server.max_body_bytes;
    buf_init(&r->body, (size_t)cap);
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > (unsigned long long)cap) {
        snprintf(msg, sizeof msg, "request body exceeds the limit of %ld bytes", cap);
        set_error(r, ERR_TOO_LARGE, msg);
        return true;
    }
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    struct http_server *srv = cls;
    struct req *r = *con_cls;
    if (!r) {
        r = req_new(srv, conn, method, url);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        if (admit(r)) {
            /* Answer before reading any body: libmicrohttpd then skips the
             * body (no 100-continue) and closes the connection after. */
            req_received(r);
            r->state = REQ_DONE;
            return queue(r);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* Bodies of early-answered requests, and of routes that take none,
         * are read and dropped. */
        if (r->state == REQ_READING && r->route && (r->route->flags & ROUTE_BODY) && !r->body_too_large &&
            buf_append(&r->body, upload_data, *upload_data_size) != ERR_OK)
            r->body_too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    switch (r->state) {
    case REQ_READING:
        req_received(r);
        if (r->body_too_large) {
            char msg[128];
            snprintf(msg, sizeof msg, "request body exceeds the limit of %zu bytes", r->body.max);
            set_error(r, ERR_TOO_LARGE, msg);
            return queue(r);
        }
        if (!(r->route->flags & ROUTE_WORKER)) {
            r->route->handler(r);
            return queue(r);
        }
        if (!admit_answer(r))
            return queue(r);
        r->state = REQ_RUNNING;
        atomic_store(&r->parties, 1);
        MHD_suspend_connection(conn);
        enum err e = exec_pool_submit(srv->deps.pool, run_job, r);
        if (e) {
            set_error(r, e, e == ERR_OVERLOADED ? "all workers are busy and the queue is full; retry later" : NULL);
            r->state = REQ_DONE;
            MHD_resume_connection(conn);
        }
        return MHD_YES;
    case REQ_RUNNING:
    case REQ_STREAM_QUEUED:
        return MHD_YES; /* spurious call while suspended */
    case REQ_DONE:
        return queue(r);
    case REQ_STREAMING:
        return queue_stream(r);
    }
    return MHD_NO;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    log_msg(LOG_WARN, "http", LOG_S("detail", line), LOG_END);
}

static void cancel_llm(void *ud, uint64_t key) {
    agent_pool_cancel(ud, key);
}

enum err http_start(const struct cfg *cfg, const struct http_deps *deps, char *errmsg, size_t errlen,
                    struct http_server **ret_srv) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->listen_port)};
    const char *host = strcmp(cfg->listen_host, "localhost") == 0 ? "127.0.0.1" : cfg->listen_host;
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(errmsg, errlen, "listen: \"%s\" is not an IPv4 address", cfg->listen_host);
        return ERR_CONFIG;
    }
    struct http_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return ERR_NOMEM;
    srv->rl = rl_new();
    srv->metrics = metrics_new();
    srv->stats = stats_new();
    srv->started_us = clock_us();
    if (!srv->rl || !srv->metrics || !srv->stats) {
        rl_free(srv->rl);
        metrics_free(srv->metrics);
        stats_free(srv->stats);
        free(srv);
        return ERR_NOMEM;
    }
    srv->deps = *deps;
    srv->hangup = hangup_new(cancel_llm, srv->deps.llm);
    if (!srv->hangup) {
        rl_free(srv->rl);
        metrics_free(srv->metrics);
        stats_free(srv->stats);
        free(srv);
        return ERR_NOMEM;
    }
    atomic_init(&srv->next_key, 0);
    atomic_init(&srv->in_flight, 0);
    atomic_init(&srv->reading, 0);
    atomic_init(&srv->draining, false);
    srv->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
        srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->server.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->server.connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)cfg->server.max_header_bytes + HTTP_HEAD_ROOM, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(errmsg, errlen, "cannot listen on %s:%d (address in use or not available)", cfg->listen_host,
                 cfg->listen_port);
        hangup_free(srv->hangup);
        rl_free(srv->rl);
        metrics_free(srv->metrics);
        stats_free(srv->stats);
        free(srv);
        return ERR_IO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : cfg->listen_port;
    *ret_srv = srv;
    return ERR_OK;
}

int http_port(const struct http_server *srv) { return srv->port; }
long http_in_flight(const struct http_server *srv) { return atomic_load(&srv->in_flight); }
long http_reading(const struct http_server *srv) { return atomic_load(&srv->reading); }

enum err http_add_connection(struct http_server *srv, int fd, const struct sockaddr *addr, socklen_t addrlen) {
    if (atomic_load(&srv->draining)) {
        close(fd);
        return ERR_UNAVAILABLE;
    }
    return MHD_add_connection(srv->daemon, fd, addr, addrlen) == MHD_YES ? ERR_OK : ERR_IO;
}

void http_quiesce(struct http_server *srv) {
    atomic_store(&srv->draining, true);
    MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

bool http_wait_idle(struct http_server *srv, int timeout_ms) {
    int64_t until = clock_us() + (int64_t)timeout_ms * 1000;
    while (atomic_load(&srv->in_flight) > 0) {
        if (clock_us() >= until)
            return false;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

struct http_server *http_stop(struct http_server *srv) {
    if (srv) {
        MHD_stop_daemon(srv->daemon);
        hangup_free(srv->hangup);
        rl_free(srv->rl);
        metrics_free(srv->metrics);
        stats_free(srv->stats);
        free(srv);
    }
    return NULL;
}
