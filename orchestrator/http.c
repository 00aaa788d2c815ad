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
#include "arena.h"
#include "buf.h"
#include "executor.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ_ARENA_MAX (64u << 20)

struct http_server {
    struct MHD_Daemon *daemon;
    struct http_deps deps;
    atomic_long in_flight;
    atomic_bool draining;
    int port;
};

struct req;
typedef void (*route_fn)(struct req *r);

struct route {
    const char *method;
    const char *path;
    route_fn handler;
    bool on_worker; /* false: answered on the HTTP thread */
};

enum req_state { REQ_READING, REQ_RUNNING, REQ_DONE };

struct req {
    struct http_server *srv;
    struct MHD_Connection *conn;
    struct cfg *cfg;          /* snapshot this request runs on; one reference */
    struct arena *arena;      /* everything the handler allocates */
    const struct route *route;
    const char *method, *url; /* owned by libmicrohttpd for the request's life */
    int64_t arrived_us;
    char request_id[33];
    struct buf body;          /* capped by server.max_body_bytes */
    bool body_too_large;
    enum req_state state;

    /* the response, set by the handler */
    int status;
    char *resp;               /* malloc'd JSON text */
    const char *allow;        /* Allow header for 405 */
    int retry_after;          /* seconds, 0 = none */
};

static void handle_healthz(struct req *r);
static void handle_readyz(struct req *r);
static void handle_query(struct req *r);

static const struct route routes[] = {
    {"GET", "/healthz", handle_healthz, false},
    {"GET", "/readyz", handle_readyz, false},
    {"POST", "/v1/query", handle_query, true},
};

/* ---- responses ---- */

static void set_json(struct req *r, int status, json_t *body) {
    free(r->resp);
    r->resp = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(6));
    r->status = r->resp ? status : 500;
    json_decref(body);
}

static void set_error(struct req *r, enum err e, const char *msg) {
    json_t *body = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", err_name(e), "message",
                             msg && *msg ? msg : err_message(e), "request_id", r->request_id);
    if (!body) /* a message that is not valid UTF-8 can't be packed */
        body = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", err_name(e), "message", err_message(e),
                         "request_id", r->request_id);
    set_json(r, err_http_status(e), body);
    if (e == ERR_OVERLOADED || e == ERR_UNAVAILABLE)
        r->retry_after = 1;
}

static enum MHD_Result queue(struct req *r) {
    static const char fallback[] = "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}";
    const char *text = r->resp ? r->resp : fallback;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    if (r->allow)
        MHD_add_response_header(resp, "Allow", r->allow);
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
    set_json(r, 200, json_pack("{s:s, s:b}", "status", "ready", "store", r->srv->deps.store != NULL));
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

/* Parses the body as a JSON object, mapping jansson's errors to ours. */
static json_t *parse_body(struct req *r) {
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
    if (!json_is_object(root)) {
        json_decref(root);
        set_error(r, ERR_INVALID_FIELD, "request body must be a JSON object");
        return NULL;
    }
    return root;
}

static void handle_query(struct req *r) {
    static const char *const known[] = {"question", "collection", "k", "deadline_ms"};
    char msg[256] = "";
    json_t *root = parse_body(r);
    if (!root)
        return;
    struct exec_query_req q = {
        .request_id = r->request_id,
        .tenant = "default",
        .collection = "default",
        .arrived_us = r->arrived_us,
    };
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        bool ok = false;
        for (size_t i = 0; i < ARRAY_SIZE(known); i++)
            ok = ok || strcmp(key, known[i]) == 0;
        if (!ok) {
            snprintf(msg, sizeof msg, "unknown field \"%.64s\"", key);
            goto invalid;
        }
    }
    json_t *question = json_object_get(root, "question");
    if (!json_is_string(question)) {
        snprintf(msg, sizeof msg, "question: required, must be a string");
        goto invalid;
    }
    size_t qlen = json_string_length(question);
    if (qlen == 0 || strspn(json_string_value(question), " \t\r\n") == qlen) {
        snprintf(msg, sizeof msg, "question: must not be empty");
        goto invalid;
    }
    if ((long)qlen > r->cfg->query.max_question_bytes) {
        snprintf(msg, sizeof msg, "question: longer than the limit of %ld bytes", r->cfg->query.max_question_bytes);
        json_decref(root);
        set_error(r, ERR_TOO_LARGE, msg);
        return;
    }
    q.question = arena_strdup(r->arena, json_string_value(question));
    json_t *coll = json_object_get(root, "collection");
    if (coll) {
        if (!json_is_string(coll) || !ret_name_valid(json_string_value(coll))) {
            snprintf(msg, sizeof msg, "collection: must be 1-64 characters of [A-Za-z0-9._-], not starting with '.'");
            goto invalid;
        }
        q.collection = arena_strdup(r->arena, json_string_value(coll));
    }
    if (!opt_int(root, "k", 1, r->cfg->query.max_k, &q.k, msg, sizeof msg) ||
        !opt_int(root, "deadline_ms", 1, 600000, &q.deadline_ms, msg, sizeof msg))
        goto invalid;
    json_decref(root);
    if (!q.question || !q.collection) {
        set_error(r, ERR_NOMEM, NULL);
        return;
    }

    json_t *body = NULL;
    enum err e = exec_query(r->srv->deps.store, r->cfg, &q, r->arena, &body, msg, sizeof msg);
    if (e) {
        set_error(r, e, msg);
        return;
    }
    set_json(r, 200, body);
    return;
invalid:
    json_decref(root);
    set_error(r, ERR_INVALID_FIELD, msg);
}

/* ---- plumbing ---- */

static void run_job(void *arg) {
    struct req *r = arg;
    r->route->handler(r);
    r->state = REQ_DONE;
    MHD_resume_connection(r->conn); /* r may be freed from here on */
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
        util_random_hex(r->request_id, 16);
    atomic_fetch_add(&srv->in_flight, 1);
    return r;
}

static void req_free(struct req *r) {
    atomic_fetch_sub(&r->srv->in_flight, 1);
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
    double ms = (double)(clock_us() - r->arrived_us) / 1000.0;
    log_msg(toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? LOG_INFO : LOG_WARN, "request", LOG_S("id", r->request_id),
            LOG_S("method", r->method), LOG_S("path", r->url), LOG_I("status", r->status), LOG_F("ms", ms),
            LOG_I("completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK), LOG_END);
    req_free(r);
    *con_cls = NULL;
}

/* Finds the route; sets *ret_allow for a path that exists with other methods. */
static const struct route *route_find(const char *method, const char *url, const char **ret_allow) {
    static const char *const allow_for[] = {"GET, HEAD", "GET, HEAD", "POST"};
    *ret_allow = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        if (strcmp(routes[i].path, url) != 0)
            continue;
        if (strcmp(routes[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0))
            return &routes[i];
        *ret_allow = allow_for[i];
    }
    return NULL;
}

static bool content_type_ok(struct MHD_Connection *conn) {
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct)
        return true; /* a bare body is read as JSON */
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* First call for a request: route, limits and early errors.  Returns true
 * when r already holds a response to send once the body (if any) is read. */
static bool admit(struct req *r) {
    char msg[160];
    if (atomic_load(&r->srv->draining)) {
        set_error(r, ERR_UNAVAILABLE, "server is shutting down");
        return true;
    }
    const char *allow;
    r->route = route_find(r->method, r->url, &allow);
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
    if (!r->route->on_worker)
        return false;
    if (!content_type_ok(r->conn)) {
        set_error(r, ERR_UNSUPPORTED_MEDIA, "Content-Type must be application/json");
        return true;
    }
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > (unsigned long long)r->cfg->server.max_body_bytes) {
        snprintf(msg, sizeof msg, "request body exceeds the limit of %ld bytes", r->cfg->server.max_body_bytes);
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
            r->state = REQ_DONE;
            return queue(r);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* Bodies of early-answered requests are read and dropped. */
        if (r->state == REQ_READING && !r->body_too_large &&
            buf_append(&r->body, upload_data, *upload_data_size) != ERR_OK)
            r->body_too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    switch (r->state) {
    case REQ_READING:
        if (r->body_too_large) {
            char msg[128];
            snprintf(msg, sizeof msg, "request body exceeds the limit of %ld bytes", r->cfg->server.max_body_bytes);
            set_error(r, ERR_TOO_LARGE, msg);
            return queue(r);
        }
        if (!r->route->on_worker) {
            r->route->handler(r);
            return queue(r);
        }
        r->state = REQ_RUNNING;
        MHD_suspend_connection(conn);
        enum err e = exec_pool_submit(srv->deps.pool, run_job, r);
        if (e) {
            set_error(r, e, e == ERR_OVERLOADED ? "all workers are busy and the queue is full; retry later" : NULL);
            r->state = REQ_DONE;
            MHD_resume_connection(conn);
        }
        return MHD_YES;
    case REQ_RUNNING:
        return MHD_YES; /* spurious call while suspended */
    case REQ_DONE:
        return queue(r);
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
    srv->deps = *deps;
    atomic_init(&srv->in_flight, 0);
    atomic_init(&srv->draining, false);
    srv->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
        srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->server.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->server.connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)cfg->server.max_header_bytes, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(errmsg, errlen, "cannot listen on %s:%d (address in use or not available)", cfg->listen_host,
                 cfg->listen_port);
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
        free(srv);
    }
    return NULL;
}
