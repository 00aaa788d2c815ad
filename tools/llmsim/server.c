/* server.c - the simulator's HTTP front end on libmicrohttpd.
 *
 * Three threads in all, however many requests are in flight: libmicrohttpd's
 * internal epoll thread runs every handler, content reader and completion
 * callback; the timer thread (timer.c) resumes connections; main waits for
 * signals.  A request that must wait is a *suspended* connection:
 *
 *   - waiting for a model slot: it sits in the model's FIFO, and the request
 *     that frees the slot resumes the head of the queue;
 *   - waiting for its first token or its whole answer: the timer resumes it
 *     when due, and the access handler is called again;
 *   - streaming: the response is chunked, produced by a content reader.
 *     When the next token is not due yet the reader suspends its own
 *     connection through the timer and returns 0; after the resume
 *     libmicrohttpd calls the reader again.  microhttpd.h names the content
 *     reader as a place where suspending is allowed, and with 0.9.75 it
 *     works as documented: one extra reader call per token, no busy loop.
 *   - a hung request (timeout or stall fault): it wakes every second to
 *     check its client with a non-blocking MSG_PEEK and is closed when the
 *     client has gone or hang_ms has passed.
 *
 * Lock order: a model's mutex or the timer's mutex, then libmicrohttpd's
 * (we suspend while holding ours, so "stopping" and "suspended" change
 * together); resumes are made after unlocking.  Shutdown: end every queued
 * request, stop the timer (which resumes all it holds and accepts no more),
 * then stop the daemon, which closes whatever is left. */
#include "server.h"
#include "answer.h"
#include "arena.h"
#include "buf.h"
#include "log.h"
#include "openai.h"
#include "rng.h"
#include "timer.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define REQ_ARENA_MAX (64u << 20)
#define RESP_MAX (128u << 20)  /* the largest body we build (2048 embeddings of 4096 floats fit) */
#define EVENT_MAX (1u << 20)   /* one server-sent event */
#define PROBE_US 1000000       /* a hung request checks its client this often */
#define BLOCK_SIZE 4096

struct sim_req;

struct model_state {
    pthread_mutex_t mu;
    int busy;                    /* requests holding a slot */
    size_t queued;
    struct sim_req *head, *tail; /* suspended requests waiting for a slot, oldest first */
    bool stopping;
    uint64_t served;             /* requests that were given a slot */
};

struct sim_server {
    struct MHD_Daemon *daemon;
    const struct sim_cfg *cfg;   /* borrowed; outlives the server */
    struct sim_timer *timer;
    struct model_state *models;  /* parallel to cfg->models */
    atomic_long in_flight;
    atomic_bool stopping;
    long started;                /* Unix seconds: "created" of every model */
    int port;
};

typedef enum MHD_Result (*route_fn)(struct sim_req *r);

struct route {
    const char *method;
    const char *path;
    bool prefix; /* path is a prefix: the rest is an argument */
    route_fn handler;
};

enum phase {
    PH_READ,   /* receiving the body */
    PH_QUEUED, /* suspended in the model's FIFO */
    PH_DELAY,  /* holding a slot, suspended until due_us */
    PH_HANG,   /* timeout fault: never answered, closed at hang_until_us */
    PH_SENT,   /* a response is queued */
};

enum job { JOB_NONE, JOB_CHAT, JOB_EMBED };

struct sim_req {
    struct sim_server *srv;
    struct MHD_Connection *conn;
    struct arena *arena;         /* everything parsed from the request */
    const struct route *route;
    const char *method, *url;    /* owned by libmicrohttpd for the request's life */
    int64_t arrived_us;
    struct buf body;             /* capped at max_body_bytes */
    bool body_too_large;
    enum phase phase;
    int status;
    char request_id[48];
    int retry_after;             /* seconds; 0 = no header */

    /* the simulated work */
    enum job job;
    const struct sim_model *model;
    struct model_state *ms;
    struct sim_req *next;        /* in ms's FIFO */
    bool holds_slot, granted;    /* granted: a slot was handed over while queued */
    enum sim_fault fault;
    int64_t ttft_us, tpot_us;    /* jittered */
    int64_t ready_us;            /* parsed; asked for a slot */
    int64_t started_us;          /* got a slot */
    int64_t due_us, hang_until_us;
    bool hanging;

    struct oai_completion comp;  /* JOB_CHAT; strings in arena */
    enum sim_outcome outcome;
    bool stream, include_usage;
    struct oai_embed_req emb;    /* JOB_EMBED; strings in arena */

    /* a non-streamed body sent by a content reader (drop and stall) */
    char *out;                   /* malloc'd */
    size_t out_len, cut;
    /* streaming */
    size_t next_event;
    struct buf ev;               /* the event being sent */
    size_t ev_off;
    bool stream_done;
};

static enum MHD_Result handle_health(struct sim_req *r);
static enum MHD_Result handle_models(struct sim_req *r);
static enum MHD_Result handle_model(struct sim_req *r);
static enum MHD_Result handle_stats(struct sim_req *r);
static enum MHD_Result handle_chat(struct sim_req *r);
static enum MHD_Result handle_embeddings(struct sim_req *r);

static const struct route routes[] = {
    {"GET", "/healthz", false, handle_health},
    {"GET", "/v1/models", false, handle_models},
    {"GET", "/v1/models/", true, handle_model},
    {"GET", "/llmsim/stats", false, handle_stats},
    {"POST", "/v1/chat/completions", false, handle_chat},
    {"POST", "/v1/embeddings", false, handle_embeddings},
};

static const char *const outcome_names[] = {"correct", "wrong", "abstain"};

/* ---- responses ---- */

static void add_headers(struct sim_req *r, struct MHD_Response *resp, const char *ctype) {
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    char v[32];
    if (r->retry_after > 0) {
        snprintf(v, sizeof v, "%d", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", v);
    }
    if (r->job == JOB_NONE)
        return;
    if (r->fault != SIM_FAULT_NONE)
        MHD_add_response_header(resp, "X-Llmsim-Fault", sim_fault_name(r->fault));
    if (r->job == JOB_CHAT)
        MHD_add_response_header(resp, "X-Llmsim-Outcome", outcome_names[r->outcome]);
    if (r->started_us) {
        snprintf(v, sizeof v, "%.1f", (double)(r->started_us - r->ready_us) / 1000.0);
        MHD_add_response_header(resp, "X-Llmsim-Queue-Ms", v);
    }
}

static enum MHD_Result queue_response(struct sim_req *r, int status, struct MHD_Response *resp, const char *ctype) {
    if (!resp)
        return MHD_NO;
    add_headers(r, resp, ctype);
    r->status = status;
    r->phase = PH_SENT;
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_oom(struct sim_req *r) {
    static const char body[] =
        "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}";
    return queue_response(r, 500,
                          MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT),
                          "application/json");
}

/* Sends body (taking its data) with status. */
static enum MHD_Result send_body(struct sim_req *r, int status, struct buf *body, const char *ctype) {
    size_t len = body->len;
    char *data = buf_steal(body);
    if (!data)
        return send_oom(r);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, data, free);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    return queue_response(r, status, resp, ctype);
}

static enum MHD_Result send_error(struct sim_req *r, const struct oai_error *e) {
    struct buf b;
    buf_init(&b, 4096);
    if (oai_write_error(e, &b) != ERR_OK)
        return send_oom(r);
    return send_body(r, e->status, &b, "application/json");
}

static enum MHD_Result send_internal(struct sim_req *r, enum err e) {
    struct oai_error oe;
    oai_error_set(&oe, 500, "server_error", NULL, NULL, "simulator could not build the response: %s",
                  err_message(e));
    return send_error(r, &oe);
}

static bool peer_gone(struct sim_req *r) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    char c;
    ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* ---- model slots ---- */

enum slot { SLOT_GRANTED, SLOT_QUEUED, SLOT_STOPPING };

static enum slot slot_acquire(struct sim_req *r) {
    struct model_state *ms = r->ms;
    enum slot s;
    pthread_mutex_lock(&ms->mu);
    if (ms->stopping) {
        s = SLOT_STOPPING;
    } else if (ms->busy < r->model->max_concurrency) {
        ms->busy++;
        ms->served++;
        r->holds_slot = true;
        s = SLOT_GRANTED;
    } else {
        MHD_suspend_connection(r->conn);
        r->phase = PH_QUEUED;
        r->next = NULL;
        if (ms->tail)
            ms->tail->next = r;
        else
            ms->head = r;
        ms->tail = r;
        ms->queued++;
        s = SLOT_QUEUED;
    }
    pthread_mutex_unlock(&ms->mu);
    return s;
}

/* Gives r's slot to the oldest waiter, if any, and resumes it. */
static void slot_release(struct sim_req *r) {
    struct model_state *ms = r->ms;
    struct sim_req *next = NULL;
    pthread_mutex_lock(&ms->mu);
    ms->busy--;
    r->holds_slot = false;
    if (!ms->stopping && ms->head) {
        next = ms->head;
        ms->head = next->next;
        if (!ms->head)
            ms->tail = NULL;
        ms->queued--;
        ms->busy++;
        ms->served++;
        next->holds_slot = true;
        next->granted = true;
    }
    pthread_mutex_unlock(&ms->mu);
    if (next)
        MHD_resume_connection(next->conn);
}

/* Ends every queued request (each is resumed without a slot and closes). */
static void slots_stop(struct sim_server *srv) {
    for (size_t i = 0; i < srv->cfg->nmodels; i++) {
        struct model_state *ms = &srv->models[i];
        pthread_mutex_lock(&ms->mu);
        ms->stopping = true;
        struct sim_req *w = ms->head;
        ms->head = ms->tail = NULL;
        ms->queued = 0;
        pthread_mutex_unlock(&ms->mu);
        while (w) {
            struct sim_req *next = w->next; /* w may be freed once resumed */
            MHD_resume_connection(w->conn);
            w = next;
        }
    }
}

/* ---- serving a job ---- */

static int64_t service_us(const struct sim_req *r) {
    if (r->job == JOB_EMBED || r->comp.npieces == 0)
        return r->ttft_us;
    return r->ttft_us + (int64_t)(r->comp.npieces - 1) * r->tpot_us;
}

static bool suspend_until(struct sim_req *r, int64_t due_us) {
    return !atomic_load(&r->srv->stopping) && sim_timer_suspend(r->srv->timer, r->conn, due_us);
}

/* Hung request: close when the client has gone, the cap has passed or the
 * server stops; otherwise sleep until the next probe.  Returns false to
 * close. */
static bool hang_wait(struct sim_req *r) {
    int64_t now = clock_us();
    if (now >= r->hang_until_us || peer_gone(r))
        return false;
    int64_t next = now + PROBE_US < r->hang_until_us ? now + PROBE_US : r->hang_until_us;
    return suspend_until(r, next);
}

static void start_hang(struct sim_req *r) {
    r->hanging = true;
    r->hang_until_us = clock_us() + (int64_t)r->srv->cfg->hang_ms * 1000;
}

static ssize_t partial_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    struct sim_req *r = cls;
    if (pos < r->cut) {
        size_t n = r->cut - (size_t)pos < max ? r->cut - (size_t)pos : max;
        memcpy(buf, r->out + pos, n);
        return (ssize_t)n;
    }
    if (r->fault == SIM_FAULT_DROP)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (!r->hanging)
        start_hang(r);
    return hang_wait(r) ? 0 : MHD_CONTENT_READER_END_WITH_ERROR;
}

/* The SSE event at index k: role, one per piece, finish, usage (when
 * asked for), [DONE].  False past the end. */
static bool event_at(const struct sim_req *r, size_t k, enum oai_event *ret_ev, size_t *ret_piece) {
    size_t np = r->comp.npieces;
    *ret_piece = 0;
    if (k == 0)
        *ret_ev = OAI_EV_ROLE;
    else if (k <= np)
        *ret_ev = OAI_EV_PIECE, *ret_piece = k - 1;
    else if (k == np + 1)
        *ret_ev = OAI_EV_FINISH;
    else if (k == np + 2 && r->include_usage)
        *ret_ev = OAI_EV_USAGE;
    else if (k == np + 2 + (r->include_usage ? 1 : 0))
        *ret_ev = OAI_EV_DONE;
    else
        return false;
    return true;
}

/* Token i is due ttft + i * tpot after the slot was granted; the role
 * chunk comes with the first token and the closing events with the last. */
static int64_t event_due(const struct sim_req *r, size_t k) {
    size_t np = r->comp.npieces;
    size_t i = k == 0 ? 0 : (k <= np ? k - 1 : (np ? np - 1 : 0));
    return r->started_us + r->ttft_us + (int64_t)i * r->tpot_us;
}

/* Malformed fault: keep "data: " and the first half of the JSON. */
static void mangle_event(struct buf *ev) {
    if (ev->len < 10)
        return;
    size_t json = ev->len - 8; /* "data: " ... "\n\n" */
    ev->len = 6 + json / 2;
    buf_append(ev, "\n\n", 2);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    struct sim_req *r = cls;
    for (;;) {
        if (r->ev_off < r->ev.len) {
            size_t n = r->ev.len - r->ev_off < max ? r->ev.len - r->ev_off : max;
            memcpy(buf, r->ev.data + r->ev_off, n);
            r->ev_off += n;
            return (ssize_t)n;
        }
        if (r->stream_done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (r->hanging)
            return hang_wait(r) ? 0 : MHD_CONTENT_READER_END_WITH_ERROR;
        size_t k = r->next_event;
        if ((r->fault == SIM_FAULT_STALL || r->fault == SIM_FAULT_DROP) && k == 1 + r->comp.npieces / 2) {
            if (r->fault == SIM_FAULT_DROP)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            start_hang(r);
            continue;
        }
        int64_t due = event_due(r, k);
        if (due > clock_us())
            return suspend_until(r, due) ? 0 : MHD_CONTENT_READER_END_WITH_ERROR;
        enum oai_event ev;
        size_t piece;
        if (!event_at(r, k, &ev, &piece)) {
            r->stream_done = true;
            continue;
        }
        r->ev.len = 0;
        r->ev_off = 0;
        if (oai_write_event(&r->comp, ev, piece, r->include_usage, &r->ev) != ERR_OK)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (r->fault == SIM_FAULT_MALFORMED && ev != OAI_EV_DONE)
            mangle_event(&r->ev);
        r->next_event++;
        r->stream_done = ev == OAI_EV_DONE;
    }
}

static enum MHD_Result send_stream(struct sim_req *r) {
    buf_init(&r->ev, EVENT_MAX);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, BLOCK_SIZE, stream_reader, r, NULL);
    return queue_response(r, 200, resp, "text/event-stream");
}

/* The response of a job whose time has come. */
static enum MHD_Result respond(struct sim_req *r) {
    if (r->fault == SIM_FAULT_ERROR || r->fault == SIM_FAULT_HTTP500) {
        struct oai_error e;
        oai_error_set(&e, 500, "server_error", NULL, NULL,
                      "The server had an error while processing your request. Sorry about that! (simulated %s)",
                      sim_fault_name(r->fault));
        return send_error(r, &e);
    }
    struct buf body;
    buf_init(&body, RESP_MAX);
    enum err e = r->job == JOB_CHAT ? oai_write_completion(&r->comp, &body)
                                    : oai_write_embeddings(&r->emb, &body);
    if (e)
        return send_internal(r, e);
    if (r->fault == SIM_FAULT_MALFORMED) {
        body.len = body.len * 2 / 3; /* a prefix of valid JSON is not JSON */
        body.data[body.len] = '\0';
    }
    if (r->fault != SIM_FAULT_STALL && r->fault != SIM_FAULT_DROP)
        return send_body(r, 200, &body, "application/json");
    /* Content-Length promises the whole body; half of it arrives. */
    r->out_len = body.len;
    r->cut = body.len / 2;
    r->out = buf_steal(&body);
    struct MHD_Response *resp = MHD_create_response_from_callback(r->out_len, BLOCK_SIZE, partial_reader, r, NULL);
    return queue_response(r, 200, resp, "application/json");
}

static enum MHD_Result delay(struct sim_req *r) {
    if (clock_us() >= r->due_us)
        return respond(r);
    return suspend_until(r, r->due_us) ? MHD_YES : MHD_NO;
}

/* r holds a slot from here on. */
static enum MHD_Result serve(struct sim_req *r) {
    r->started_us = clock_us();
    switch (r->fault) {
    case SIM_FAULT_TIMEOUT:
        r->phase = PH_HANG;
        start_hang(r);
        return hang_wait(r) ? MHD_YES : MHD_NO;
    case SIM_FAULT_ERROR:
    case SIM_FAULT_HTTP500:
        r->due_us = r->started_us + r->ttft_us;
        break;
    default:
        if (r->job == JOB_CHAT && r->stream)
            return send_stream(r);
        r->due_us = r->started_us + service_us(r);
    }
    r->phase = PH_DELAY;
    return delay(r);
}

/* A parsed, valid job: rate-limit fault first (no slot needed), then a
 * slot now or a place in the queue. */
static enum MHD_Result admit_job(struct sim_req *r) {
    r->ready_us = clock_us();
    if (r->fault == SIM_FAULT_HTTP429) {
        struct oai_error e;
        oai_error_set(&e, 429, "requests", "rate_limit_exceeded", NULL,
                      "Rate limit reached for %s (simulated). Please try again in 1s.", r->model->name);
        r->retry_after = 1;
        return send_error(r, &e);
    }
    switch (slot_acquire(r)) {
    case SLOT_GRANTED: return serve(r);
    case SLOT_QUEUED: return MHD_YES;
    case SLOT_STOPPING: return MHD_NO;
    }
    return MHD_NO;
}

/* The request's random stream: the configured seed mixed with a hash of
 * the path and of the body's canonical JSON (keys sorted, no white space,
 * "stream" and "stream_options" left out, so streamed and whole answers
 * agree).  Arrival order and concurrency never enter it. */
static void request_rng(const struct sim_req *r, json_t *root, struct sim_rng *ret_rng) {
    uint64_t h = sim_hash64(r->url, strlen(r->url), SIM_HASH_INIT);
    json_t *copy = json_copy(root);
    char *canon = NULL;
    if (copy) {
        json_object_del(copy, "stream");
        json_object_del(copy, "stream_options");
        canon = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(copy);
    }
    if (canon)
        h = sim_hash64(canon, strlen(canon), h);
    else
        h = sim_hash64(r->body.data, r->body.len, h);
    free(canon);
    uint64_t s = r->srv->cfg->seed;
    sim_rng_init(ret_rng, sim_splitmix64(&s) ^ h);
}

/* Draws in a fixed order, whatever the outcome, so changing one rate never
 * shifts the others' draws. */
struct draws {
    double fault, outcome, pick, ttft, tpot;
    uint64_t id[2];
};

static void take_draws(struct sim_rng *rng, struct draws *d) {
    d->fault = sim_rng_unit(rng);
    d->outcome = sim_rng_unit(rng);
    d->pick = sim_rng_unit(rng);
    d->ttft = sim_rng_unit(rng);
    d->tpot = sim_rng_unit(rng);
    d->id[0] = sim_rng_next(rng);
    d->id[1] = sim_rng_next(rng);
}

static void begin_job(struct sim_req *r, enum job job, const struct sim_model *m, const struct draws *d) {
    r->job = job;
    r->model = m;
    r->ms = &r->srv->models[m - r->srv->cfg->models];
    r->fault = sim_fault_draw(m, d->fault);
    double f_ttft = 1 + m->jitter * (2 * d->ttft - 1), f_tpot = 1 + m->jitter * (2 * d->tpot - 1);
    r->ttft_us = (int64_t)(m->ttft_ms * 1000 * f_ttft);
    r->tpot_us = (int64_t)(m->ms_per_token * 1000 * f_tpot);
}

static json_t *parse_body(struct sim_req *r, struct oai_error *err) {
    json_error_t jerr;
    json_t *root = r->body.len ? json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!root) {
        if (r->body.len)
            oai_error_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                          "We could not parse the JSON body of your request: %s (line %d, column %d)", jerr.text,
                          jerr.line, jerr.column);
        else
            oai_error_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                          "We could not parse the JSON body of your request: the body is empty");
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        oai_error_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                      "We could not parse the JSON body of your request: expected a JSON object");
        return NULL;
    }
    return root;
}

static enum MHD_Result handle_chat(struct sim_req *r) {
    const struct sim_cfg *cfg = r->srv->cfg;
    struct oai_error err;
    json_t *root = parse_body(r, &err);
    if (!root)
        return send_error(r, &err);
    struct oai_chat_req q;
    if (!oai_parse_chat(root, cfg, r->arena, &q, &err)) {
        json_decref(root);
        return send_error(r, &err);
    }
    struct sim_rng rng;
    request_rng(r, root, &rng);
    json_decref(root);
    struct draws d;
    take_draws(&rng, &d);
    begin_job(r, JOB_CHAT, q.model, &d);

    struct sim_answer_params p = {
        .min_overlap = cfg->min_overlap,
        .abstain_rate = q.model->abstain_rate,
        .wrong_rate = q.model->wrong_rate,
        .spans = q.model->spans != 0,
        .u_outcome = d.outcome,
        .u_pick = d.pick,
        .key = cfg->key,
    };
    struct sim_answer ans;
    enum err e = sim_answer_compose(q.msgs, q.nmsgs, &p, r->arena, &ans);
    if (!e)
        e = oai_completion_init(&r->comp, ans.text, ans.len, q.max_tokens, r->arena);
    if (e)
        return send_internal(r, e);
    r->outcome = ans.outcome;
    snprintf(r->comp.id, sizeof r->comp.id, "chatcmpl-%016llx%08llx", (unsigned long long)d.id[0],
             (unsigned long long)(d.id[1] >> 32));
    snprintf(r->request_id, sizeof r->request_id, "%s", r->comp.id);
    r->comp.created = (long)time(NULL);
    r->comp.model = q.model->name;
    r->comp.prompt_tokens = q.prompt_tokens;
    r->stream = q.stream;
    r->include_usage = q.include_usage;
    return admit_job(r);
}

static enum MHD_Result handle_embeddings(struct sim_req *r) {
    struct oai_error err;
    json_t *root = parse_body(r, &err);
    if (!root)
        return send_error(r, &err);
    if (!oai_parse_embeddings(root, r->srv->cfg, r->arena, &r->emb, &err)) {
        json_decref(root);
        return send_error(r, &err);
    }
    struct sim_rng rng;
    request_rng(r, root, &rng);
    json_decref(root);
    struct draws d;
    take_draws(&rng, &d);
    begin_job(r, JOB_EMBED, r->emb.model, &d);
    snprintf(r->request_id, sizeof r->request_id, "emb-%016llx", (unsigned long long)d.id[0]);
    return admit_job(r);
}

static enum MHD_Result send_built(struct sim_req *r, struct buf *b, enum err e) {
    if (e)
        return send_internal(r, e);
    return send_body(r, 200, b, "application/json");
}

static enum MHD_Result handle_health(struct sim_req *r) {
    struct buf b;
    buf_init(&b, 256);
    return send_built(r, &b, buf_puts(&b, "{\"status\":\"ok\"}"));
}

static enum MHD_Result handle_models(struct sim_req *r) {
    struct buf b;
    buf_init(&b, 1 << 20);
    return send_built(r, &b, oai_write_models(r->srv->cfg, r->srv->started, &b));
}

static enum MHD_Result handle_model(struct sim_req *r) {
    const char *name = r->url + strlen("/v1/models/");
    const struct sim_model *m = sim_cfg_model(r->srv->cfg, name);
    if (!m) {
        struct oai_error e;
        oai_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                      "The model `%.64s` does not exist or you do not have access to it.", name);
        return send_error(r, &e);
    }
    struct buf b;
    buf_init(&b, 4096);
    return send_built(r, &b, oai_write_model(m, r->srv->started, &b));
}

static long thread_count(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long n = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0)
            n = strtol(line + 8, NULL, 10);
    fclose(f);
    return n;
}

static enum MHD_Result handle_stats(struct sim_req *r) {
    struct sim_server *srv = r->srv;
    struct buf b;
    buf_init(&b, 1 << 20);
    enum err e = buf_printf(&b, "{\"in_flight\":%ld,\"timer_pending\":%zu,\"threads\":%ld,\"models\":[",
                            atomic_load(&srv->in_flight), sim_timer_pending(srv->timer), thread_count());
    for (size_t i = 0; i < srv->cfg->nmodels && !e; i++) {
        struct model_state *ms = &srv->models[i];
        pthread_mutex_lock(&ms->mu);
        int busy = ms->busy;
        size_t queued = ms->queued;
        unsigned long long served = ms->served;
        pthread_mutex_unlock(&ms->mu);
        e = buf_printf(&b, "%s{\"name\":", i ? "," : "");
        if (!e)
            e = buf_json_str(&b, srv->cfg->models[i].name, strlen(srv->cfg->models[i].name));
        if (!e)
            e = buf_printf(&b, ",\"busy\":%d,\"queued\":%zu,\"served\":%llu}", busy, queued, served);
    }
    if (!e)
        e = buf_puts(&b, "]}");
    return send_built(r, &b, e);
}

/* ---- plumbing ---- */

static struct sim_req *req_new(struct sim_server *srv, struct MHD_Connection *conn, const char *method,
                               const char *url) {
    struct sim_req *r = calloc(1, sizeof *r);
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
    buf_init(&r->body, (size_t)srv->cfg->max_body_bytes);
    util_random_hex(r->request_id, 12);
    atomic_fetch_add(&srv->in_flight, 1);
    return r;
}

static void req_free(struct sim_req *r) {
    atomic_fetch_sub(&r->srv->in_flight, 1);
    buf_done(&r->body);
    buf_done(&r->ev);
    free(r->out);
    arena_free(r->arena);
    free(r);
}

/* A queued request that ends without being resumed (only possible while
 * the daemon is being torn down) must leave the FIFO. */
static void slot_forget(struct sim_req *r) {
    struct model_state *ms = r->ms;
    pthread_mutex_lock(&ms->mu);
    for (struct sim_req **p = &ms->head, *prev = NULL; *p; prev = *p, p = &(*p)->next) {
        if (*p != r)
            continue;
        *p = r->next;
        if (ms->tail == r)
            ms->tail = prev;
        ms->queued--;
        break;
    }
    pthread_mutex_unlock(&ms->mu);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)conn;
    struct sim_req *r = *con_cls;
    if (!r)
        return;
    if (log_enabled(LOG_DEBUG))
        log_msg(LOG_DEBUG, "request", LOG_S("id", r->request_id), LOG_S("method", r->method), LOG_S("path", r->url),
                LOG_S("model", r->model ? r->model->name : NULL), LOG_I("status", r->status),
                LOG_S("fault", sim_fault_name(r->fault)),
                LOG_S("outcome", r->job == JOB_CHAT && r->status == 200 ? outcome_names[r->outcome] : NULL),
                LOG_F("ms", (double)(clock_us() - r->arrived_us) / 1000.0),
                LOG_I("completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK), LOG_END);
    if (r->holds_slot)
        slot_release(r);
    else if (r->phase == PH_QUEUED && r->ms)
        slot_forget(r);
    req_free(r);
    *con_cls = NULL;
}

static const struct route *route_find(const char *method, const char *url, bool *ret_path_known) {
    *ret_path_known = false;
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        const struct route *rt = &routes[i];
        bool match = rt->prefix ? strncmp(url, rt->path, strlen(rt->path)) == 0 && url[strlen(rt->path)]
                                : strcmp(url, rt->path) == 0;
        if (!match)
            continue;
        if (strcmp(rt->method, method) == 0 || (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0))
            return rt;
        *ret_path_known = true;
    }
    return NULL;
}

/* First call for a request: route and the Content-Length cap.  Returns
 * true with err set when the request is answered before its body. */
static bool admit(struct sim_req *r, struct oai_error *err) {
    bool path_known;
    r->route = route_find(r->method, r->url, &path_known);
    if (!r->route) {
        if (path_known)
            oai_error_set(err, 405, "invalid_request_error", "method_not_allowed", NULL,
                          "Method %.16s is not allowed on %.128s", r->method, r->url);
        else
            oai_error_set(err, 404, "invalid_request_error", "unknown_url", NULL, "Invalid URL (%.16s %.128s)",
                          r->method, r->url);
        return true;
    }
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > (unsigned long long)r->srv->cfg->max_body_bytes) {
        oai_error_set(err, 413, "invalid_request_error", "request_too_large", NULL,
                      "Request body exceeds the limit of %ld bytes", r->srv->cfg->max_body_bytes);
        return true;
    }
    return false;
}

/* Every later call for a request with its body read: the first one runs
 * the route; each one after a resume continues where the request waited. */
static enum MHD_Result step(struct sim_req *r) {
    switch (r->phase) {
    case PH_READ:
        if (r->body_too_large) {
            struct oai_error e;
            oai_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
                          "Request body exceeds the limit of %ld bytes", r->srv->cfg->max_body_bytes);
            return send_error(r, &e);
        }
        return r->route->handler(r);
    case PH_QUEUED:
        if (!r->granted || peer_gone(r))
            return MHD_NO; /* server stopping, or the client gave up while waiting */
        return serve(r);
    case PH_DELAY:
        if (atomic_load(&r->srv->stopping) || peer_gone(r))
            return MHD_NO;
        return delay(r);
    case PH_HANG:
        return hang_wait(r) ? MHD_YES : MHD_NO;
    case PH_SENT:
        return MHD_YES;
    }
    return MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    struct sim_server *srv = cls;
    struct sim_req *r = *con_cls;
    if (!r) {
        r = req_new(srv, conn, method, url);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        struct oai_error err;
        if (admit(r, &err))
            return send_error(r, &err);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (r->phase == PH_READ && !r->body_too_large &&
            buf_append(&r->body, upload_data, *upload_data_size) != ERR_OK)
            r->body_too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    return step(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    /* Closing a connection mid-response is what the drop, stall and timeout
     * faults are for, and clients that time out leave mid-stream; both are
     * expected here, so libmicrohttpd's notes about them are debug noise. */
    bool expected = strstr(line, "pplication") || strstr(line, "no longer available") ||
                    strstr(line, "by remote peer");
    log_msg(expected ? LOG_DEBUG : LOG_WARN, "http", LOG_S("detail", line), LOG_END);
}

enum err sim_server_start(const struct sim_cfg *cfg, char *errbuf, size_t errlen, struct sim_server **ret_srv) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->listen_port)};
    const char *host = strcmp(cfg->listen_host, "localhost") == 0 ? "127.0.0.1" : cfg->listen_host;
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(errbuf, errlen, "listen: \"%s\" is not an IPv4 address", cfg->listen_host);
        return ERR_CONFIG;
    }
    struct sim_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return ERR_NOMEM;
    srv->cfg = cfg;
    srv->started = (long)time(NULL);
    atomic_init(&srv->in_flight, 0);
    atomic_init(&srv->stopping, false);
    srv->models = calloc(cfg->nmodels, sizeof *srv->models);
    if (!srv->models || sim_timer_new((size_t)cfg->max_connections, &srv->timer) != ERR_OK) {
        free(srv->models);
        free(srv);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < cfg->nmodels; i++)
        pthread_mutex_init(&srv->models[i].mu, NULL);
    srv->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(errbuf, errlen, "cannot listen on %s:%d (address in use or not available)", cfg->listen_host,
                 cfg->listen_port);
        sim_timer_free(srv->timer);
        for (size_t i = 0; i < cfg->nmodels; i++)
            pthread_mutex_destroy(&srv->models[i].mu);
        free(srv->models);
        free(srv);
        return ERR_IO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : cfg->listen_port;
    *ret_srv = srv;
    return ERR_OK;
}

int sim_server_port(const struct sim_server *srv) {
    return srv->port;
}

struct sim_server *sim_server_stop(struct sim_server *srv) {
    if (!srv)
        return NULL;
    atomic_store(&srv->stopping, true);
    slots_stop(srv);
    sim_timer_stop(srv->timer);
    /* Nothing is suspended by us any more; libmicrohttpd takes the resumed
     * connections off its suspended list and closes everything. */
    MHD_stop_daemon(srv->daemon);
    sim_timer_free(srv->timer);
    for (size_t i = 0; i < srv->cfg->nmodels; i++)
        pthread_mutex_destroy(&srv->models[i].mu);
    free(srv->models);
    free(srv);
    return NULL;
}
