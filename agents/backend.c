/* backend.c - LLM backend pool over libcurl's multi interface (see backend.h).
 *
 * One I/O thread owns the curl multi handle and every easy handle.  Other
 * threads only touch the `submitted` list (under mu) and wake the thread
 * with curl_multi_wakeup().  Backend state read by other threads (breaker,
 * counters, config) is also under mu; the I/O thread takes mu briefly to
 * publish it.
 *
 * A call's life: submitted -> queued on a backend (FIFO, capped by
 * max_concurrency) -> running (an easy handle in the multi) -> either done
 * (callback) or waiting for a retry (backoff timer) -> running again.  A
 * call whose deadline passes while queued or waiting is failed with
 * ERR_DEADLINE without touching the network.
 *
 * Retries only where safe: connection failures and drops, 429, 500, 502, 503 and 504,
 * and only when the remaining deadline covers the backoff.  Timeouts and
 * malformed replies are not retried: the deadline is spent or the backend
 * is broken, and the planner's fallback is the better move. */
#include "backend.h"
#include "sse.h"
#include "buf.h"
#include "util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_MAX (4u << 20)
#define BACKOFF_BASE_MS 50.0
#define POOL_MAX_CANCELS 256 /* pending cancel requests per poll cycle */

struct backend {
    struct cfg_backend conf; /* under pool mu */
    bool retired;
    enum agent_breaker breaker;
    int consecutive_failures;
    int64_t opened_us;       /* when the breaker opened */
    bool probe_in_flight;    /* half-open: one probe at a time */
    int in_flight, queued;
    uint64_t calls, failures, retries;
    double latency_ewma_ms;
    struct call *queue_head, *queue_tail; /* I/O thread only */
};

struct call {
    struct call *next;
    struct call *run_prev, *run_next; /* the pool's running list (I/O thread) */
    struct agent_pool *pool;
    struct backend *be;
    char tier[16];
    char *body;              /* request JSON, owned */
    bool stream;
    int64_t deadline_us;
    int64_t submit_us, start_us, first_byte_us, retry_at_us;
    double wait_ms;          /* submission to the first attempt's start: waiting for a slot */
    int attempts;
    bool probe;              /* this attempt is the half-open probe */
    bool deadline_bound;     /* curl's timeout for this attempt is the call's deadline */
    CURL *easy;
    struct curl_slist *headers;
    struct buf reply;        /* capped raw body */
    struct buf content;      /* streamed content, accumulated */
    struct sse_reader sse;   /* the stream read so far (agents/sse.c) */
    agent_llm_done done;
    void *ud;
    uint64_t key;            /* cancel key, 0 = none */
    void (*on_delta)(void *ud, const char *text, size_t len);
    bool delivered;          /* a delta reached the caller: no retry */
};

struct agent_pool {
    pthread_mutex_t mu;
    struct backend *backends[2 * CFG_MAX_BACKENDS]; /* active and retired */
    int nbackends;
    struct call *submitted;  /* under mu */
    struct call *waiting;    /* retry backoff; I/O thread only */
    struct call *running;    /* transfers in the multi; I/O thread only */
    bool stopping;
    uint64_t cancels[POOL_MAX_CANCELS]; /* keys to cancel; under mu */
    int ncancels;
    CURLM *multi;
    pthread_t thread;
    uint64_t rng;
};

const char *agent_breaker_name(enum agent_breaker b) {
    static const char *const n[] = {"closed", "open", "half_open"};
    return (unsigned)b < 3 ? n[b] : "unknown";
}

static double jitter(struct agent_pool *p) {
    /* xorshift64: only for backoff spread, not security */
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    return 0.5 + (double)(p->rng % 1000) / 1000.0;
}

/* ---- selection (under mu) ---- */

static bool usable(struct backend *b, int64_t now) {
    if (b->retired)
        return false;
    if (b->breaker == AGENT_BREAKER_OPEN && now - b->opened_us >= (int64_t)b->conf.breaker_cooldown_ms * 1000) {
        b->breaker = AGENT_BREAKER_HALF_OPEN;
        b->probe_in_flight = false;
    }
    if (b->breaker == AGENT_BREAKER_OPEN)
        return false;
    if (b->breaker == AGENT_BREAKER_HALF_OPEN)
        return !b->probe_in_flight;
    return true;
}

/* Least loaded usable backend of the tier. */
static struct backend *pick(struct agent_pool *p, const char *tier, int64_t now) {
    struct backend *best = NULL;
    double best_load = 0;
    for (int i = 0; i < p->nbackends; i++) {
        struct backend *b = p->backends[i];
        if (strcmp(b->conf.tier, tier) != 0 || !usable(b, now))
            continue;
        double load = (double)(b->in_flight + b->queued) / (double)b->conf.max_concurrency;
        if (!best || load < best_load) {
            best = b;
            best_load = load;
        }
    }
    return best;
}

static void record(struct backend *b, bool ok, bool was_probe, double ms, int64_t now) {
    b->calls++;
    if (ok) {
        b->consecutive_failures = 0;
        b->breaker = AGENT_BREAKER_CLOSED;
        b->latency_ewma_ms = b->latency_ewma_ms > 0 ? 0.8 * b->latency_ewma_ms + 0.2 * ms : ms;
    } else {
        b->failures++;
        b->consecutive_failures++;
        if (was_probe || b->consecutive_failures >= b->conf.breaker_failures) {
            b->breaker = AGENT_BREAKER_OPEN;
            b->opened_us = now;
        }
    }
    if (was_probe)
        b->probe_in_flight = false;
}

/* ---- completion ---- */

static void call_free(struct call *c) {
    if (c->easy)
        curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->headers);
    buf_done(&c->reply);
    buf_done(&c->content);
    free(c->body);
    free(c);
}

static int estimate_tokens(const char *s) {
    size_t words = 0;
    bool in = false;
    for (; s && *s; s++) {
        bool sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        words += !sp && !in;
        in = !sp;
    }
    return (int)((words * 4 + 2) / 3);
}

static void finish(struct call *c, struct agent_llm_result *res) {
    struct agent_pool *p = c->pool;
    res->attempts = c->attempts;
    char name[32] = "";
    if (c->be) {
        pthread_mutex_lock(&p->mu);
        memcpy(name, c->be->conf.name, sizeof name);
        if (res->err == ERR_OK) {
            const struct cfg_backend *bc = &c->be->conf;
            res->cost = (double)res->prompt_tokens / 1000.0 * bc->price_in_per_1k +
                        (double)res->completion_tokens / 1000.0 * bc->price_out_per_1k +
                        res->ms / 1000.0 * bc->price_per_second;
        }
        pthread_mutex_unlock(&p->mu);
    }
    res->backend = name;
    c->done(c->ud, res);
    call_free(c);
}

static void fail_call(struct call *c, enum err e, int status, const char *fmt, const char *detail) {
    struct agent_llm_result res = {.err = e, .http_status = status,
                                   .wait_ms = c->attempts ? c->wait_ms : (double)(clock_us() - c->submit_us) / 1000.0};
    snprintf(res.errmsg, sizeof res.errmsg, fmt, detail ? detail : "");
    finish(c, &res);
}

/* ---- reply parsing ---- */

static bool parse_usage(json_t *usage, int *in, int *out) {
    json_t *pt = json_object_get(usage, "prompt_tokens"), *ct = json_object_get(usage, "completion_tokens");
    if (!json_is_integer(pt) || !json_is_integer(ct))
        return false;
    *in = (int)json_integer_value(pt);
    *out = (int)json_integer_value(ct);
    return true;
}

/* Parses the complete non-streaming reply. */
static enum err parse_reply(struct call *c, struct agent_llm_result *res, char *msg, size_t msglen) {
    json_error_t jerr;
    json_t *root = c->reply.data ? json_loadb(c->reply.data, c->reply.len, 0, &jerr) : NULL;
    if (!root) {
        snprintf(msg, msglen, "reply is not valid JSON");
        return ERR_BACKEND;
    }
    json_t *content = json_object_get(json_object_get(json_array_get(json_object_get(root, "choices"), 0), "message"),
                                      "content");
    if (!json_is_string(content)) {
        json_decref(root);
        snprintf(msg, msglen, "reply has no choices[0].message.content string");
        return ERR_BACKEND;
    }
    buf_done(&c->content);
    buf_init(&c->content, REPLY_MAX);
    enum err e = buf_append(&c->content, json_string_value(content), json_string_length(content));
    if (!e && !parse_usage(json_object_get(root, "usage"), &res->prompt_tokens, &res->completion_tokens))
        res->usage_estimated = true;
    json_decref(root);
    return e;
}

/* Consumes complete SSE events from the reply buffer. */
/* A piece of streamed content: kept, and handed on as it comes. */
static void on_sse_content(void *ud, const char *text, size_t len) {
    struct call *c = ud;
    if (buf_append(&c->content, text, len) == ERR_OK && c->on_delta) {
        c->on_delta(c->ud, text, len);
        c->delivered = true;
    }
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud) {
    struct call *c = ud;
    size_t n = size * nmemb;
    if (!c->first_byte_us)
        c->first_byte_us = clock_us();
    if (buf_append(&c->reply, ptr, n) != ERR_OK)
        return 0; /* over the cap: abort the transfer */
    if (c->stream)
        sse_read(&c->sse, c->reply.data, c->reply.len);
    return n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    struct call *c = ud;
    if (c->first_byte_us)
        return 0;
    int64_t waited_ms = (clock_us() - c->start_us) / 1000;
    return waited_ms > c->be->conf.first_token_timeout_ms; /* non-zero aborts */
}

/* ---- the I/O thread ---- */

static void start(struct agent_pool *p, struct call *c) {
    int64_t now = clock_us();
    pthread_mutex_lock(&p->mu);
    struct cfg_backend conf = c->be->conf;
    c->be->in_flight++;
    c->probe = c->be->breaker == AGENT_BREAKER_HALF_OPEN;
    if (c->probe)
        c->be->probe_in_flight = true;
    pthread_mutex_unlock(&p->mu);

    if (c->attempts == 0)
        c->wait_ms = (double)(now - c->submit_us) / 1000.0;
    c->attempts++;
    c->start_us = now;
    c->first_byte_us = 0;
    c->sse = (struct sse_reader){.on_content = on_sse_content, .ud = c};
    buf_done(&c->reply);
    buf_init(&c->reply, REPLY_MAX);
    buf_done(&c->content);
    buf_init(&c->content, REPLY_MAX);
    if (c->easy)
        curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->headers);
    c->headers = NULL;

    char url[320];
    size_t ul = strlen(conf.url);
    snprintf(url, sizeof url, "%.*s/v1/chat/completions", (int)(ul && conf.url[ul - 1] == '/' ? ul - 1 : ul), conf.url);
    c->headers = curl_slist_append(c->headers, "Content-Type: application/json");
    c->headers = curl_slist_append(c->headers, "Expect:");
    const char *key = conf.api_key_env[0] ? getenv(conf.api_key_env) : NULL;
    if (key && *key) {
        char auth[600];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        c->headers = curl_slist_append(c->headers, auth);
    }
    long left_ms = (long)((c->deadline_us - now) / 1000);
    long total_ms = conf.timeout_ms < left_ms ? conf.timeout_ms : left_ms;
    c->deadline_bound = left_ms <= conf.timeout_ms;
    if (total_ms < 1)
        total_ms = 1;
    c->easy = curl_easy_init();
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)conf.connect_timeout_ms);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, total_ms);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c->easy, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(c->easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_multi_add_handle(p->multi, c->easy);
    c->run_prev = NULL;
    c->run_next = p->running;
    if (p->running)
        p->running->run_prev = c;
    p->running = c;
}

static void unlink_running(struct agent_pool *p, struct call *c) {
    if (c->run_prev)
        c->run_prev->run_next = c->run_next;
    else
        p->running = c->run_next;
    if (c->run_next)
        c->run_next->run_prev = c->run_prev;
    c->run_prev = c->run_next = NULL;
}

static bool retryable_status(long s) {
    return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

/* Handles a finished transfer: success, retry or failure. */
static void transfer_done(struct agent_pool *p, struct call *c, CURLcode rc) {
    int64_t now = clock_us();
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(p->multi, c->easy);
    unlink_running(p, c);
    double ms = (double)(now - c->start_us) / 1000.0;

    struct agent_llm_result res = {.http_status = (int)status, .ms = ms, .wait_ms = c->wait_ms};
    res.ttft_ms = c->first_byte_us ? (double)(c->first_byte_us - c->start_us) / 1000.0 : 0;
    enum err e = ERR_OK;
    bool retry = false;
    char msg[160] = "";
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        e = c->deadline_bound ? ERR_DEADLINE : ERR_BACKEND;
        snprintf(msg, sizeof msg, "timed out after %.0f ms", ms);
    } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
        e = ERR_BACKEND;
        snprintf(msg, sizeof msg, "no first byte within %d ms", c->be->conf.first_token_timeout_ms);
    } else if (rc == CURLE_WRITE_ERROR) {
        e = ERR_BACKEND;
        snprintf(msg, sizeof msg, "reply larger than %u bytes", REPLY_MAX);
    } else if (rc != CURLE_OK) {
        e = ERR_BACKEND;
        snprintf(msg, sizeof msg, "%s", curl_easy_strerror(rc));
        /* the connection failed or dropped: a chat completion has no side
         * effects, so asking again is safe */
        retry = rc == CURLE_COULDNT_CONNECT || rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR ||
                rc == CURLE_SEND_ERROR || rc == CURLE_PARTIAL_FILE;
    } else if (status != 200) {
        e = ERR_BACKEND;
        snprintf(msg, sizeof msg, "HTTP %ld", status);
        retry = retryable_status(status);
    } else if (c->stream) {
        if (!c->sse.done) {
            e = ERR_BACKEND;
            snprintf(msg, sizeof msg, "stream ended without [DONE]");
        } else if (c->sse.prompt_tokens || c->sse.completion_tokens) {
            res.prompt_tokens = c->sse.prompt_tokens;
            res.completion_tokens = c->sse.completion_tokens;
        } else {
            res.usage_estimated = true;
        }
    } else {
        e = parse_reply(c, &res, msg, sizeof msg);
    }

    pthread_mutex_lock(&p->mu);
    c->be->in_flight--;
    record(c->be, e == ERR_OK, c->probe, ms, now);
    int max_retries = c->be->conf.max_retries;
    pthread_mutex_unlock(&p->mu);

    if (e && retry && !c->delivered && c->attempts <= max_retries) {
        double backoff_ms = BACKOFF_BASE_MS * pow(2.0, c->attempts - 1) * jitter(p);
        int64_t at = now + (int64_t)(backoff_ms * 1000);
        if (at + 1000 < c->deadline_us) {
            pthread_mutex_lock(&p->mu);
            c->be->retries++;
            pthread_mutex_unlock(&p->mu);
            c->retry_at_us = at;
            c->next = p->waiting;
            p->waiting = c;
            return;
        }
    }
    res.err = e;
    if (e) {
        snprintf(res.errmsg, sizeof res.errmsg, "backend %s: %s", c->be->conf.name, msg);
    } else {
        res.content = c->content.data ? c->content.data : "";
        if (res.usage_estimated) {
            res.completion_tokens = estimate_tokens(res.content);
            res.prompt_tokens = estimate_tokens(c->body);
        }
    }
    finish(c, &res);
}

static void enqueue(struct backend *b, struct call *c) {
    c->next = NULL;
    if (b->queue_tail)
        b->queue_tail->next = c;
    else
        b->queue_head = c;
    b->queue_tail = c;
}

static void cancel_one(struct call *c) {
    fail_call(c, ERR_CANCELLED, 0, "cancelled: the client closed the connection%s", NULL);
}

/* Applies the cancel requests: running transfers are removed from the
 * multi handle (closing their connection), queued and waiting calls are
 * taken out of line.  Runs on the I/O thread, after new submissions have
 * been queued, so a call submitted just before its cancel is found. */
static void cancel_pending(struct agent_pool *p) {
    uint64_t keys[POOL_MAX_CANCELS];
    pthread_mutex_lock(&p->mu);
    int n = p->ncancels;
    memcpy(keys, p->cancels, (size_t)n * sizeof keys[0]);
    p->ncancels = 0;
    pthread_mutex_unlock(&p->mu);
    for (int k = 0; k < n; k++) {
        uint64_t key = keys[k];
        for (struct call *c = p->running, *next; c; c = next) {
            next = c->run_next;
            if (c->key != key)
                continue;
            curl_multi_remove_handle(p->multi, c->easy);
            unlink_running(p, c);
            pthread_mutex_lock(&p->mu);
            c->be->in_flight--;
            if (c->probe)
                c->be->probe_in_flight = false; /* the next call probes instead */
            pthread_mutex_unlock(&p->mu);
            cancel_one(c);
        }
        for (struct call **pp = &p->waiting; *pp;) {
            struct call *c = *pp;
            if (c->key == key) {
                *pp = c->next;
                cancel_one(c);
            } else {
                pp = &c->next;
            }
        }
        for (int i = 0; i < p->nbackends; i++) {
            struct backend *b = p->backends[i];
            struct call *prev = NULL;
            for (struct call *c = b->queue_head, *next; c; c = next) {
                next = c->next;
                if (c->key != key) {
                    prev = c;
                    continue;
                }
                if (prev)
                    prev->next = next;
                else
                    b->queue_head = next;
                if (b->queue_tail == c)
                    b->queue_tail = prev;
                pthread_mutex_lock(&p->mu);
                b->queued--;
                pthread_mutex_unlock(&p->mu);
                cancel_one(c);
            }
        }
    }
}

static void pump(struct agent_pool *p) {
    int64_t now = clock_us();
    /* new submissions onto their backends' queues */
    pthread_mutex_lock(&p->mu);
    struct call *sub = p->submitted;
    p->submitted = NULL;
    pthread_mutex_unlock(&p->mu);
    /* the list is LIFO; reverse to keep arrival order */
    struct call *rev = NULL;
    while (sub) {
        struct call *n = sub->next;
        sub->next = rev;
        rev = sub;
        sub = n;
    }
    for (struct call *c = rev, *n; c; c = n) {
        n = c->next;
        enqueue(c->be, c);
    }
    /* retries whose backoff is over go to the front of the line */
    struct call **pp = &p->waiting;
    while (*pp) {
        struct call *c = *pp;
        if (c->retry_at_us <= now) {
            *pp = c->next;
            pthread_mutex_lock(&p->mu);
            c->be->queued++;
            pthread_mutex_unlock(&p->mu);
            c->next = c->be->queue_head;
            c->be->queue_head = c;
            if (!c->be->queue_tail)
                c->be->queue_tail = c;
        } else {
            pp = &c->next;
        }
    }
    cancel_pending(p);
    /* start what fits; fail what has expired */
    for (int i = 0; i < p->nbackends; i++) {
        struct backend *b = p->backends[i];
        while (b->queue_head) {
            struct call *c = b->queue_head;
            pthread_mutex_lock(&p->mu);
            bool expired = c->deadline_us <= now;
            bool room = b->in_flight < b->conf.max_concurrency;
            if (expired || room) {
                b->queued--;
                b->queue_head = c->next;
                if (!b->queue_head)
                    b->queue_tail = NULL;
            }
            pthread_mutex_unlock(&p->mu);
            if (expired)
                fail_call(c, ERR_DEADLINE, 0, "deadline passed while queued for the backend%s", NULL);
            else if (room)
                start(p, c);
            else
                break;
        }
    }
}

static void *io_main(void *arg) {
    struct agent_pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool stop = p->stopping;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        pump(p);
        int running = 0;
        curl_multi_perform(p->multi, &running);
        CURLMsg *m;
        int left;
        bool freed = false;
        while ((m = curl_multi_info_read(p->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            struct call *c = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            transfer_done(p, c, m->data.result);
            freed = true;
        }
        /* A finished transfer freed a slot: start what waits for it now
         * (polling first left each slot idle for the poll's 20 ms). */
        if (!freed)
            curl_multi_poll(p->multi, NULL, 0, 20, NULL);
    }
    return NULL;
}

/* ---- public ---- */

static struct backend *backend_new(const struct cfg_backend *conf) {
    struct backend *b = calloc(1, sizeof(*b));
    if (b)
        b->conf = *conf;
    return b;
}

enum err agent_pool_new(const struct cfg *cfg, struct agent_pool **ret_pool) {
    struct agent_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return ERR_NOMEM;
    pthread_mutex_init(&p->mu, NULL);
    p->rng = (uint64_t)clock_us() | 1;
    for (int i = 0; i < cfg->nbackends; i++) {
        p->backends[i] = backend_new(&cfg->backends[i]);
        if (!p->backends[i]) {
            agent_pool_free(p);
            return ERR_NOMEM;
        }
        p->nbackends++;
    }
    p->multi = curl_multi_init();
    if (!p->multi || pthread_create(&p->thread, NULL, io_main, p) != 0) {
        if (p->multi)
            curl_multi_cleanup(p->multi);
        p->multi = NULL;
        agent_pool_free(p);
        return ERR_INTERNAL;
    }
    *ret_pool = p;
    return ERR_OK;
}

struct agent_pool *agent_pool_free(struct agent_pool *p) {
    if (!p)
        return NULL;
    if (p->multi) {
        pthread_mutex_lock(&p->mu);
        p->stopping = true;
        pthread_mutex_unlock(&p->mu);
        curl_multi_wakeup(p->multi);
        pthread_join(p->thread, NULL);
        /* fail everything still pending, in any state */
        struct call *lists[2] = {p->submitted, p->waiting};
        for (int l = 0; l < 2; l++)
            for (struct call *c = lists[l], *n; c; c = n) {
                n = c->next;
                fail_call(c, ERR_UNAVAILABLE, 0, "shutting down%s", NULL);
            }
        for (int i = 0; i < p->nbackends; i++)
            for (struct call *c = p->backends[i]->queue_head, *n; c; c = n) {
                n = c->next;
                fail_call(c, ERR_UNAVAILABLE, 0, "shutting down%s", NULL);
            }
        /* running transfers: remove and fail them */
        while (p->running) {
            struct call *c = p->running;
            curl_multi_remove_handle(p->multi, c->easy);
            unlink_running(p, c);
            fail_call(c, ERR_UNAVAILABLE, 0, "shutting down%s", NULL);
        }
        curl_multi_cleanup(p->multi);
    }
    for (int i = 0; i < p->nbackends; i++)
        free(p->backends[i]);
    pthread_mutex_destroy(&p->mu);
    free(p);
    return NULL;
}

void agent_pool_reconfigure(struct agent_pool *p, const struct cfg *cfg) {
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->nbackends; i++) {
        struct backend *b = p->backends[i];
        bool keep = false;
        for (int j = 0; j < cfg->nbackends && !keep; j++) {
            if (strcmp(cfg->backends[j].name, b->conf.name) == 0) {
                b->conf = cfg->backends[j];
                keep = true;
            }
        }
        b->retired = !keep;
    }
    for (int j = 0; j < cfg->nbackends; j++) {
        bool have = false;
        for (int i = 0; i < p->nbackends && !have; i++)
            have = strcmp(p->backends[i]->conf.name, cfg->backends[j].name) == 0;
        if (!have && p->nbackends < (int)(sizeof p->backends / sizeof p->backends[0])) {
            struct backend *b = backend_new(&cfg->backends[j]);
            if (b)
                p->backends[p->nbackends++] = b;
        }
    }
    pthread_mutex_unlock(&p->mu);
    curl_multi_wakeup(p->multi); /* new limits may let queued calls start */
}

enum err agent_pool_chat(struct agent_pool *p, const struct agent_llm_call *call, agent_llm_done done, void *ud) {
    json_t *msgs = json_array();
    if (call->system)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", call->system));
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", call->user));
    struct call *c = calloc(1, sizeof(*c));
    if (!c) {
        json_decref(msgs);
        return ERR_NOMEM;
    }
    c->pool = p;
    c->stream = call->stream;
    c->deadline_us = call->deadline_us;
    c->done = done;
    c->ud = ud;
    c->key = call->cancel_key;
    c->on_delta = call->stream ? call->on_delta : NULL;
    snprintf(c->tier, sizeof c->tier, "%s", call->tier);
    buf_init(&c->reply, REPLY_MAX);
    buf_init(&c->content, REPLY_MAX);

    pthread_mutex_lock(&p->mu);
    c->be = pick(p, call->tier, clock_us());
    json_t *req = c->be ? json_pack("{s:s, s:o, s:i, s:f, s:b}", "model", c->be->conf.model, "messages", msgs,
                                    "max_tokens", call->max_tokens, "temperature", 0.0, "stream", call->stream)
                        : NULL;
    if (req && call->stream)
        json_object_set_new(req, "stream_options", json_pack("{s:b}", "include_usage", 1));
    if (req && call->seed > 0)
        json_object_set_new(req, "seed", json_integer(call->seed));
    if (c->be && req) {
        c->body = json_dumps(req, JSON_COMPACT);
    }
    /* Decide under the lock: once c is on the submitted list the I/O thread
     * owns it and may finish and free it (a cancel, an expired deadline)
     * before this function returns, so c is not touched after the unlock. */
    enum err e = !c->be ? ERR_UNAVAILABLE : !c->body ? ERR_NOMEM : ERR_OK;
    if (!e) {
        c->submit_us = clock_us();
        c->be->queued++;
        c->next = p->submitted;
        p->submitted = c;
    }
    pthread_mutex_unlock(&p->mu);
    if (!req)
        json_decref(msgs);
    json_decref(req);
    if (e) {
        call_free(c);
        return e;
    }
    curl_multi_wakeup(p->multi);
    return ERR_OK;
}

void agent_pool_cancel(struct agent_pool *p, uint64_t key) {
    if (!p || key == 0)
        return;
    pthread_mutex_lock(&p->mu);
    bool queued = p->ncancels < POOL_MAX_CANCELS;
    if (queued)
        p->cancels[p->ncancels++] = key;
    pthread_mutex_unlock(&p->mu);
    /* when the list is full (hundreds of disconnects within one 20 ms poll
     * cycle) the call simply runs to its deadline */
    if (queued)
        curl_multi_wakeup(p->multi);
}

bool agent_pool_has_tier(struct agent_pool *p, const char *tier) {
    pthread_mutex_lock(&p->mu);
    bool have = pick(p, tier, clock_us()) != NULL;
    pthread_mutex_unlock(&p->mu);
    return have;
}

size_t agent_pool_health(struct agent_pool *p, struct agent_backend_health *out, size_t max) {
    pthread_mutex_lock(&p->mu);
    size_t n = 0;
    int64_t now = clock_us();
    for (int i = 0; i < p->nbackends && n < max; i++) {
        struct backend *b = p->backends[i];
        usable(b, now); /* advances open -> half-open when the cooldown is over */
        struct agent_backend_health *h = &out[n++];
        memset(h, 0, sizeof(*h));
        snprintf(h->name, sizeof h->name, "%s", b->conf.name);
        snprintf(h->tier, sizeof h->tier, "%s", b->conf.tier);
        h->breaker = b->breaker;
        h->in_flight = b->in_flight;
        h->queued = b->queued;
        h->max_concurrency = b->conf.max_concurrency;
        h->calls = b->calls;
        h->failures = b->failures;
        h->retries = b->retries;
        h->latency_ewma_ms = b->latency_ewma_ms;
        h->retired = b->retired;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}
