/* fuzz-http.c - the HTTP layer fed whole requests.
 *
 * The first call starts the real server in-process, wired as `slorag serve`
 * wires it (orchestrator/main.c): a temporary data directory, the worker
 * pool, the LLM pool with no backend (so every answer is extractive), the
 * ledger, the SLO engine and the intent cache.  The server runs with an
 * admin key and one tenant, "fuzz", whose collection "default" holds three
 * short documents.  A tenant key is random, so an input says
 * "$TENANT_KEY" where it means it and the harness substitutes the real key
 * before sending; the admin and dashboard keys are fixed (below).  Before
 * each input the baseline is restored when an earlier input changed it
 * (another tenant made; the tenant deleted, given limits, a profile,
 * intent examples or another key; a collection made or dropped; a
 * document stored or deleted), and what the server learns from answering
 * (the SLO model, the planner's exploration count, the tenant's cached
 * intents) starts afresh, so an input means the same thing, and reaches
 * the same code, whenever it runs.  (The /v1/stats window and the text
 * cache's counters still carry over from one input to the next.)
 *
 * Each input is the byte stream of one client connection: one end of a
 * socketpair is handed to libmicrohttpd (http_add_connection, as if
 * accepted from 127.0.0.1), the input is written to the other end, and the
 * harness reads until the server closes the connection or has nothing more
 * to say: every byte written has been read by the server, nothing arrived
 * for QUIET_MS, and every request in flight is waiting for its body from
 * the client (and, when the last reply is one the server ends by closing
 * the connection, until it does).  Then it half-closes its side and waits
 * for the server to let go of the connection and of every request.
 *
 * Invariants (abort() when one breaks):
 *   - nothing hangs: the server finishes what it started within HANG_MS,
 *     closes the connection within HANG_MS of the client leaving, and
 *     frees every request (http_in_flight back to 0);
 *   - what comes back is a sequence of well-framed HTTP/1.x responses
 *     (status line, headers, a body by Content-Length, chunked, or up to
 *     the close), however many requests the input pipelined;
 *   - a response from slorag (it carries X-Request-Id) that is an error
 *     (>= 400) is application/json holding {"error": {"code", "message",
 *     "request_id"}}: the code one of err.h's names whose status is the
 *     response's, a non-empty message, the request id the header's; the
 *     OpenAI-compatible routes answer {"error": {"message", "type",
 *     "code"}} instead, held to the same code rule; a JSON success body
 *     parses;
 *   - a response without X-Request-Id is one of libmicrohttpd's own early
 *     rejections, which never reach slorag's handler: 400 (a malformed
 *     request line, header, chunk or Content-Length), 413 (a Content-Length
 *     too large to represent), 414 (the request line does not fit the
 *     connection's memory), 431 (the headers do not fit it:
 *     server.max_header_bytes plus 4 KiB; a head over the limit that
 *     fits gets slorag's JSON 431), 500 (no memory left for a reply), 501 (an
 *     unsupported Transfer-Encoding), 505 (not HTTP/1.0 or 1.1), each with
 *     Connection: close; or the interim 100 Continue.  Anything after such
 *     a closing rejection is ignored: libmicrohttpd 0.9.75 sends the header
 *     block of some of them twice.
 *
 * libmicrohttpd 0.9.75 has two more ways of not answering, both found by
 * this target and neither slorag's doing: a request head that leaves no
 * room in the connection's memory (server.max_header_bytes plus 4 KiB)
 * for the response's headers gets the connection closed without a reply (logged
 * "failed to create response header"); and some request heads that
 * overflow that memory are neither answered with 431 nor read further, the
 * connection held until server.connection_timeout_s (1 s here, so that the
 * harness sees it end).
 *
 * A response to HEAD carries Content-Length but no body; the harness only
 * knows which response answered HEAD by looking, so when the input holds
 * "HEAD" a response whose body would start with another status line is
 * read as bodiless.
 *
 * The admin reload route signals the process with SIGHUP, ignored here. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "backend.h"
#include "config.h"
#include "engine.h"
#include "executor.h"
#include "http.h"
#include "intents.h"
#include "ledger.h"
#include "log.h"
#include "model.h"
#include "pool.h"
#include "tenants.h"

#define QUIET_MS 5           /* no byte for this long, and nothing pending: the exchange is over */
                             /* (FUZZ_HTTP_QUIET_MS overrides it: campaigns run at 1 ms for speed) */
#define STALL_MS 100         /* libmicrohttpd reading nothing for this long, slorag owing nothing: over too */
#define HANG_MS 10000        /* longer than any answer takes here: a hang */
#define OUT_MAX (32u << 20)  /* more reply than this to one small input is a bug too */
#define TENANT "fuzz"
#define KEY_MARKER "$TENANT_KEY"
#define ADMIN_KEY "fuzz-admin-key-0123456789"
#define DASHBOARD_KEY "fuzz-dashboard-key-0123456789"

static const struct {
    const char *id, *title, *text;
} docs[] = {
    {"lighthouse.txt", "The lighthouse",
     "The lighthouse on the north cape is forty-two metres tall. It was built in 1871, and its light can be "
     "seen twenty nautical miles out to sea."},
    {"market.txt", "The fish market",
     "The fish market takes place every Tuesday and Friday on the harbour square, from six in the morning "
     "until noon."},
    {"ferry.md", "Ferry",
     "# Ferry\n\nThe ferry to the island leaves every hour from pier two. A return ticket costs twelve euros; "
     "children travel free."},
};

/* The server and what it runs on; set up once, torn down at exit. */
static struct {
    char dir[64];
    struct cfg_slot slot;
    struct ret_store *store;
    struct cfg_tenants *tenants;
    struct ret_engine *engine;
    struct exec_pool *pool;
    struct agent_pool *llm;
    struct ledger *ledger;
    struct exec_slo *slo;
    struct intents_cache *intents;
    struct http_server *srv;
    char key[CFG_KEY_LEN + 1]; /* the tenant's API key */
    bool verbose;              /* FUZZ_HTTP_VERBOSE: print each response's head */
    int quiet_ms;              /* QUIET_MS, or FUZZ_HTTP_QUIET_MS */
    struct slo_model *pristine; /* a new model, copied over the server's before each input */
    int64_t baseline_cid, baseline_gen; /* the collection put_docs made, and its generation then */
} S;

/* The harness's own waiting (polls, clocks, how the bytes arrive) goes
 * one way or another with timing, not with the input: left out of the
 * coverage instrumentation, so that a campaign neither keeps inputs for
 * it nor counts it (tests/fuzz/plateau.py).  check_replies, which reads
 * libmicrohttpd's framing, stays instrumented: it is the fuzzer's only
 * view of how the uninstrumented library answered.  Not inlined, so that
 * neither side takes on the other's instrumentation. */
#if defined(__clang__)
#define UNTRACED __attribute__((noinline, no_sanitize("coverage")))
#define TRACED __attribute__((noinline))
#else
#define UNTRACED
#define TRACED
#endif

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz-http: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

UNTRACED static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

UNTRACED static void pause_ms(int ms) {
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the server ---- */

static void put_docs(void) {
    int64_t cid;
    if (ret_collection_ensure(S.store, TENANT, "default", &cid) != ERR_OK)
        die("cannot create the collection");
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        struct ret_doc_in d = {.ext_id = docs[i].id, .title = docs[i].title, .text = docs[i].text,
                               .text_len = strlen(docs[i].text)};
        struct ret_change ch;
        if (ret_engine_put(S.engine, cid, &d, &ch) != ERR_OK)
            die("cannot store %s", docs[i].id);
        ret_change_done(&ch);
    }
    if (ret_collection_generation(S.store, cid, &S.baseline_gen) != ERR_OK)
        die("cannot read the collection's generation");
    S.baseline_cid = cid;
}

static void make_tenant(void) {
    char key_id[CFG_KEY_ID_LEN + 1];
    if (cfg_tenant_create(S.tenants, TENANT, S.key, key_id) != ERR_OK)
        die("cannot create the tenant");
}

/* Whether the stores still hold exactly the baseline: one tenant, "fuzz",
 * with one key (the harness's), no profile, limits or intent examples, and
 * one collection, "default", as put_docs left it (its generation moves
 * with every document stored or deleted). */
static bool baseline_intact(void) {
    if (cfg_tenants_count(S.tenants) != 1)
        return false;
    struct cfg_tenant tn;
    if (cfg_tenant_get(S.tenants, TENANT, &tn) != ERR_OK)
        return false;
    bool ok = !tn.profile && tn.rate_rps == 0 && tn.tokens_per_min == 0 && tn.keys == 1;
    cfg_tenant_done(&tn);
    char tenant[CFG_TENANT_ID_MAX + 1];
    if (!ok || cfg_key_authenticate(S.tenants, S.key, tenant, NULL, NULL) != ERR_OK)
        return false;
    struct cfg_intent_example *ex = NULL;
    size_t nex = 0;
    if (cfg_tenant_get_intents(S.tenants, TENANT, &ex, &nex) != ERR_OK)
        return false;
    cfg_intent_examples_free(ex, nex);
    if (nex)
        return false;
    struct arena *a = arena_new(1 << 16);
    struct ret_collection_info *list = NULL;
    size_t n = 0;
    int64_t gen = -1;
    ok = a && ret_collection_list(S.store, TENANT, a, &list, &n) == ERR_OK && n == 1 &&
         list[0].id == S.baseline_cid && ret_collection_generation(S.store, S.baseline_cid, &gen) == ERR_OK &&
         gen == S.baseline_gen;
    arena_free(a);
    return ok;
}

/* Undoes what earlier inputs changed, so that an input means the same
 * thing, and reaches the same code, whenever it runs: every tenant an
 * input made, and the baseline's tenant when anything about it changed,
 * goes with its collections and is made afresh. */
static void restore_baseline(void) {
    if (!baseline_intact()) {
        char **ids = NULL;
        size_t n = 0;
        if (cfg_tenant_list(S.tenants, &ids, &n) != ERR_OK)
            die("cannot list the tenants");
        for (size_t i = 0; i < n; i++) {
            struct arena *a = arena_new(1 << 16);
            struct ret_collection_info *list = NULL;
            size_t nc = 0;
            if (!a || ret_collection_list(S.store, ids[i], a, &list, &nc) != ERR_OK)
                die("cannot list the collections of %s", ids[i]);
            for (size_t j = 0; j < nc; j++)
                if (ret_engine_drop_collection(S.engine, ids[i], list[j].name) != ERR_OK)
                    die("cannot drop %s/%s", ids[i], list[j].name);
            arena_free(a);
            if (cfg_tenant_delete(S.tenants, ids[i]) != ERR_OK)
                die("cannot delete the tenant %s", ids[i]);
            intents_cache_invalidate(S.intents, ids[i]);
        }
        cfg_tenant_list_free(ids, n);
        make_tenant();
        put_docs();
    }
    /* No request is in flight here (the last input's all ended), so
     * nothing holds the model.  A model is one flat block: copying a new
     * one over it costs a fraction of building one (which was a sixth of
     * the harness's time an input). */
    if (!S.pristine && slo_model_new(&S.pristine) != ERR_OK)
        die("no memory for a fresh SLO model");
    pthread_rwlock_wrlock(&S.slo->lock);
    memcpy(S.slo->model, S.pristine, sizeof *S.pristine);
    atomic_store(&S.slo->counter, 0);
    pthread_rwlock_unlock(&S.slo->lock);
    intents_cache_invalidate(S.intents, TENANT);
}

static void server_stop(void) {
    if (!S.srv)
        return;
    /* the order of `slorag serve`'s shutdown: every job and backend call
     * resumes its connection before the HTTP daemon stops */
    exec_pool_free(S.pool);
    agent_pool_free(S.llm);
    ledger_free(S.ledger);
    S.srv = http_stop(S.srv);
    intents_cache_free(S.intents);
    exec_slo_free(S.slo);
    S.pristine = slo_model_free(S.pristine);
    ret_engine_free(S.engine);
    cfg_tenants_free(S.tenants);
    ret_store_free(S.store);
    cfg_slot_done(&S.slot);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", S.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz-http: could not remove %s\n", S.dir);
    curl_global_cleanup();
}

static void server_start(void) {
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN); /* POST /v1/admin/reload */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    S.verbose = getenv("FUZZ_HTTP_VERBOSE") != NULL;
    S.quiet_ms = QUIET_MS;
    const char *q = getenv("FUZZ_HTTP_QUIET_MS");
    if (q) {
        char *end;
        long v = strtol(q, &end, 10);
        if (*q == '\0' || *end != '\0' || v < 1 || v > 1000)
            die("FUZZ_HTTP_QUIET_MS must be 1 to 1000 (ms), not \"%s\"", q);
        S.quiet_ms = (int)v;
    }
    /* In memory where there is a tmpfs: the stores sync every commit
     * (synchronous=FULL), and restoring the baseline commits a few. */
    snprintf(S.dir, sizeof S.dir, "%s/slorag-fuzz-http-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(S.dir))
        die("mkdtemp: %s", strerror(errno));
    /* Small limits, so that inputs reach them. */
    char text[1024], msg[256];
    snprintf(text, sizeof text,
             "{\"listen\": \"127.0.0.1:0\", \"data_dir\": \"%s\", \"log_level\": \"%s\","
             " \"admin_key\": \"" ADMIN_KEY "\", \"dashboard_key\": \"" DASHBOARD_KEY "\","
             " \"server\": {\"workers\": 2, \"queue_max\": 64, \"max_body_bytes\": 8192, \"max_header_bytes\": 4096,"
             "  \"max_upload_bytes\": 65536, \"max_connections\": 64, \"connection_timeout_s\": 1},"
             " \"query\": {\"default_tier\": \"extractive\", \"deadline_ms\": 5000, \"max_question_bytes\": 512,"
             "  \"max_k\": 20},"
             " \"retrieval\": {\"max_document_bytes\": 16384, \"max_batch_documents\": 4, \"chunk_tokens\": 32,"
             "  \"chunk_overlap_tokens\": 4, \"index_save_interval_ms\": 60000}}",
             S.dir, S.verbose ? "info" : "error");
    struct cfg *c = NULL;
    if (cfg_load_text(text, strlen(text), msg, sizeof msg, &c) != ERR_OK)
        die("config: %s", msg);
    log_set_level(c->log_level);
    char db[128], index[128];
    snprintf(db, sizeof db, "%s/slorag.db", S.dir);
    snprintf(index, sizeof index, "%s/index", S.dir);
    struct ret_engine_opts eo = {
        .index_dir = index,
        .index_factory = c->retrieval.index_factory,
        .dim = c->retrieval.embedding_dim,
        .save_interval_ms = c->retrieval.index_save_interval_ms,
        .chunk = {c->retrieval.chunk_tokens, c->retrieval.chunk_overlap_tokens},
    };
    struct ret_startup_report rep;
    char ledger_db[160];
    snprintf(ledger_db, sizeof ledger_db, "%s/ledger.db", S.dir);
    if (ret_store_open(db, c->server.workers, &S.store) != ERR_OK || cfg_tenants_open(db, &S.tenants) != ERR_OK ||
        ret_engine_open(S.store, &eo, &rep, &S.engine) != ERR_OK ||
        exec_pool_new(c->server.workers, (size_t)c->server.queue_max, &S.pool) != ERR_OK ||
        agent_pool_new(c, &S.llm) != ERR_OK || ledger_open(ledger_db, NULL, 256, &S.ledger) != ERR_OK ||
        exec_slo_new(c->query.explore_rate, 0x510ab5eedULL, &S.slo) != ERR_OK)
        die("cannot start the server's parts in %s", S.dir);
    S.intents = intents_cache_new(S.tenants);
    make_tenant();
    put_docs();
    cfg_slot_init(&S.slot, c);
    struct http_deps deps = {.cfg = &S.slot, .engine = S.engine, .pool = S.pool, .llm = S.llm,
                             .tenants = S.tenants, .ledger = S.ledger, .slo = S.slo, .intents = S.intents};
    if (http_start(c, &deps, msg, sizeof msg, &S.srv) != ERR_OK)
        die("http_start: %s", msg);
    atexit(server_stop);
}

/* ---- one connection ---- */

struct bytes {
    uint8_t *data;
    size_t len, cap;
};

UNTRACED static void bytes_add(struct bytes *b, const void *p, size_t n) {
    if (n == 0)
        return;
    if (b->len + n > OUT_MAX)
        die("more than %u bytes came back", OUT_MAX);
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d)
            die("out of memory");
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* The input with every KEY_MARKER replaced by the tenant's key. */
static void substitute(const uint8_t *in, size_t n, struct bytes *ret) {
    size_t ml = strlen(KEY_MARKER), i = 0;
    while (i < n) {
        const uint8_t *m = memmem(in + i, n - i, KEY_MARKER, ml);
        size_t upto = m ? (size_t)(m - in) : n;
        bytes_add(ret, in + i, upto - i);
        if (!m)
            break;
        bytes_add(ret, S.key, strlen(S.key));
        i = upto + ml;
    }
}

/* Bytes written that the server has not read yet. */
UNTRACED static int unread(int fd) {
    int n = 0;
    if (ioctl(fd, SIOCOUTQ, &n) != 0)
        die("ioctl(SIOCOUTQ): %s", strerror(errno));
    return n;
}

/* True when slorag owes nothing: each request it holds waits for its
 * body from the client. */
UNTRACED static bool slorag_waits(void) {
    return http_in_flight(S.srv) == http_reading(S.srv);
}

/* Sends in and collects the replies until the server closes the
 * connection (*ret_eof) or waits for the client. */
UNTRACED static void converse(int fd, const struct bytes *in, struct bytes *out, bool *ret_eof) {
    size_t sent = 0;
    int64_t start = now_ms(), last = start, unread_since = start;
    int last_unread = -1;
    *ret_eof = false;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < in->len ? POLLOUT : 0)};
        int r = poll(&p, 1, S.quiet_ms);
        if (r < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        if (r > 0 && (p.revents & POLLOUT)) {
            ssize_t w = send(fd, in->data + sent, in->len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                sent = in->len; /* the server closed: the rest is not read */
        }
        if (r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
            uint8_t buf[65536];
            ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (k > 0) {
                bytes_add(out, buf, (size_t)k);
                last = now_ms();
            } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
                *ret_eof = true;
                return;
            }
        }
        int64_t now = now_ms();
        int left = unread(fd);
        if (left != last_unread) {
            last_unread = left;
            unread_since = now;
        }
        /* Over when the server read everything, or libmicrohttpd stopped
         * reading (a request head it can neither hold nor reject: see the
         * header comment), and slorag owes nothing. */
        if (sent == in->len && now - last >= S.quiet_ms && slorag_waits() &&
            (left == 0 || now - unread_since >= STALL_MS))
            return;
        if (now - start > HANG_MS)
            die("no end to the exchange after %d ms: %ld requests in flight, %ld of them receiving their body",
                HANG_MS, http_in_flight(S.srv), http_reading(S.srv));
    }
}

/* The client leaves: the server must close its end, and free every
 * request, within HANG_MS. */
UNTRACED static void hang_up(int fd, bool eof) {
    int64_t start = now_ms();
    if (!eof) {
        shutdown(fd, SHUT_WR);
        for (;;) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            int left = (int)(HANG_MS - (now_ms() - start));
            if (left <= 0)
                die("the server kept the connection %d ms after the client left", HANG_MS);
            if (poll(&p, 1, left) <= 0)
                continue;
            uint8_t buf[4096];
            ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
                break; /* bytes after the end of the exchange are not checked */
        }
    }
    close(fd);
    while (http_in_flight(S.srv) > 0) {
        if (now_ms() - start > HANG_MS)
            die("%ld requests still in flight %d ms after their client left", http_in_flight(S.srv), HANG_MS);
        pause_ms(1);
    }
}

/* ---- checking the replies ---- */

struct response {
    int status;
    const uint8_t *head; /* the status line onwards */
    size_t head_len;     /* up to and including the blank line */
    const uint8_t *body; /* de-chunked copy or a slice of the reply */
    size_t body_len;
    char request_id[64]; /* "" = no X-Request-Id */
    char content_type[128];
    bool close, chunked, has_length, bodiless;
    unsigned long long length;
};

static void show(const char *what, const uint8_t *p, size_t n) {
    fprintf(stderr, "---- %s (%zu bytes) ----\n", what, n);
    fwrite(p, 1, n > 4096 ? 4096 : n, stderr);
    fputs(n > 4096 ? "\n[...]\n" : "\n", stderr);
}

static const uint8_t *find(const uint8_t *p, size_t n, const char *s) {
    return memmem(p, n, s, strlen(s));
}

/* A header's value (trimmed) into out; false when absent. */
static bool header(const struct response *r, const char *name, char *out, size_t outlen) {
    size_t nl = strlen(name);
    const uint8_t *p = r->head, *end = r->head + r->head_len;
    const uint8_t *line = find(p, r->head_len, "\r\n");
    for (p = line ? line + 2 : end; p < end;) {
        const uint8_t *eol = find(p, (size_t)(end - p), "\r\n");
        if (!eol || eol == p)
            break;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp((const char *)p, name, nl) == 0) {
            const uint8_t *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(eol - v);
            if (vl >= outlen)
                vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        p = eol + 2;
    }
    return false;
}

/* Decodes a chunked body at p into ret (which then owns a copy); returns
 * the bytes consumed, or 0 when the body is incomplete. */
static size_t dechunk(const uint8_t *p, size_t n, struct bytes *ret) {
    size_t i = 0;
    for (;;) {
        const uint8_t *eol = find(p + i, n - i, "\r\n");
        if (!eol)
            return 0;
        char *endp;
        char line[32] = "";
        size_t ll = (size_t)(eol - (p + i));
        memcpy(line, p + i, ll < sizeof line - 1 ? ll : sizeof line - 1);
        unsigned long size = strtoul(line, &endp, 16);
        if (endp == line)
            die("a chunk size line that is not hexadecimal: \"%s\"", line);
        i = (size_t)(eol - p) + 2;
        if (size == 0) {
            /* trailers, then the blank line */
            for (;;) {
                const uint8_t *t = find(p + i, n - i, "\r\n");
                if (!t)
                    return 0;
                bool blank = t == p + i;
                i = (size_t)(t - p) + 2;
                if (blank)
                    return i;
            }
        }
        if (n - i < size + 2)
            return 0;
        bytes_add(ret, p + i, size);
        if (memcmp(p + i + size, "\r\n", 2) != 0)
            die("a chunk of %lu bytes not followed by CR LF", size);
        i += size + 2;
    }
}

static bool err_code_fits(const char *code, int status) {
    for (int e = 1; e < ERR__COUNT; e++)
        if (strcmp(err_name((enum err)e), code) == 0)
            return err_http_status((enum err)e) == status;
    return false;
}

static const char *json_str(json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

/* slorag's own response. */
static void check_slorag(const struct response *r) {
    size_t idl = strlen(r->request_id);
    if (idl == 0 || idl > 32 || strspn(r->request_id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_") != idl)
        die("X-Request-Id \"%s\" is not 1-32 characters of [A-Za-z0-9_-]", r->request_id);
    if (r->status < 200 || r->status > 599)
        die("slorag answered with status %d", r->status);
    if (r->bodiless)
        return;
    bool is_json = strncasecmp(r->content_type, "application/json", 16) == 0;
    if (r->status < 400) {
        if (is_json) {
            json_error_t je;
            json_t *j = json_loadb((const char *)r->body, r->body_len, 0, &je);
            if (!j)
                die("a %d JSON body that does not parse: %s", r->status, je.text);
            json_decref(j);
        }
        return;
    }
    if (!is_json)
        die("a %d error with Content-Type \"%s\"", r->status, r->content_type);
    json_error_t je;
    json_t *j = json_loadb((const char *)r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        die("a %d error body that is not JSON: %s", r->status, je.text);
    json_t *e = json_object_get(j, "error");
    if (!json_is_object(j) || !json_is_object(e))
        die("a %d error body without an \"error\" object", r->status);
    const char *code = json_str(e, "code"), *message = json_str(e, "message"), *rid = json_str(e, "request_id");
    const char *type = json_str(e, "type");
    if (!code || !err_code_fits(code, r->status))
        die("a %d error whose code \"%s\" is not the one for that status", r->status, code ? code : "(none)");
    if (!message || !*message)
        die("a %d error without a message", r->status);
    bool slorag_shape = rid && strcmp(rid, r->request_id) == 0 && json_object_size(e) == 3;
    bool openai_shape = !rid && type && *type && json_object_size(e) == 3;
    if (!slorag_shape && !openai_shape)
        die("a %d error that is neither {code, message, request_id = X-Request-Id} nor the OpenAI shape", r->status);
    json_decref(j);
}

/* libmicrohttpd's own reply (no X-Request-Id). */
static void check_mhd(const struct response *r) {
    if (r->status == 100)
        return;
    static const int early[] = {400, 413, 414, 431, 500, 501, 505};
    bool known = false;
    for (size_t i = 0; i < sizeof early / sizeof early[0]; i++)
        known = known || early[i] == r->status;
    if (!known)
        die("a %d response without X-Request-Id: not slorag's, and not one of libmicrohttpd's early rejections",
            r->status);
    if (!r->close)
        die("libmicrohttpd's %d rejection without Connection: close", r->status);
}

/* Reads one response at p (n bytes left); returns the bytes it spans, or 0
 * when it is incomplete.  body_store keeps a de-chunked body alive. */
static size_t parse_response(const uint8_t *p, size_t n, bool head_possible, bool eof, struct response *r,
                             struct bytes *body_store) {
    memset(r, 0, sizeof(*r));
    if (n < 12 && memcmp(p, "HTTP/1.", n < 7 ? n : 7) == 0 && !eof)
        return 0;
    if (n < 13 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ' || p[9] < '1' ||
        p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' || p[12] != ' ')
        die("a reply that does not start with an HTTP/1.x status line");
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const uint8_t *end = find(p, n, "\r\n\r\n");
    if (!end)
        return 0;
    r->head = p;
    r->head_len = (size_t)(end - p) + 4;
    char v[256];
    header(r, "X-Request-Id", r->request_id, sizeof r->request_id);
    header(r, "Content-Type", r->content_type, sizeof r->content_type);
    r->close = header(r, "Connection", v, sizeof v) && strcasecmp(v, "close") == 0;
    r->chunked = header(r, "Transfer-Encoding", v, sizeof v) && strcasecmp(v, "chunked") == 0;
    if (header(r, "Content-Length", v, sizeof v)) {
        char *endp;
        r->has_length = true;
        r->length = strtoull(v, &endp, 10);
        if (endp == v || *endp)
            die("Content-Length \"%s\"", v);
    }
    const uint8_t *b = p + r->head_len;
    size_t left = n - r->head_len;
    if (r->status < 200 || r->status == 204 || r->status == 304)
        return r->head_len;
    if (head_possible && r->has_length && (left == 0 || (left >= 7 && memcmp(b, "HTTP/1.", 7) == 0))) {
        r->bodiless = true;
        return r->head_len;
    }
    if (r->chunked) {
        size_t used = dechunk(b, left, body_store);
        if (!used)
            return 0;
        r->body = body_store->data;
        r->body_len = body_store->len;
        return r->head_len + used;
    }
    if (r->has_length) {
        if (left < r->length)
            return 0;
        r->body = b;
        r->body_len = (size_t)r->length;
        return r->head_len + (size_t)r->length;
    }
    /* delimited by the close */
    if (!eof)
        return 0;
    r->body = b;
    r->body_len = left;
    return n;
}

/* Reads the replies.  With final false it only says whether the last one
 * is whole (a body delimited by the close is whole only at the close);
 * with final true it checks them all. */
TRACED static bool check_replies(const struct bytes *in, const struct bytes *out, bool eof, bool final) {
    bool head_possible = in->len && find(in->data, in->len, "HEAD") != NULL;
    size_t pos = 0;
    while (pos < out->len) {
        struct response r;
        struct bytes body = {0};
        size_t used = parse_response(out->data + pos, out->len - pos, head_possible, eof, &r, &body);
        if (used == 0) {
            free(body.data); /* the chunks of a body cut short */
            if (!final)
                return false;
            /* A slorag response stops half-way only when the exchange is
             * over; libmicrohttpd's may (see the header comment). */
            if (r.request_id[0] || !r.head)
                die("a reply cut short at byte %zu of %zu (%s)", pos, out->len,
                    eof ? "the server closed the connection" : "the server stopped sending");
            break;
        }
        if (!final) {
            free(body.data);
            pos += used;
            if (r.close)
                break;
            continue;
        }
        if (S.verbose)
            fprintf(stderr, "fuzz-http: %d %s %.*s\n", r.status, r.request_id[0] ? "slorag" : "libmicrohttpd",
                    r.body_len > 160 ? 160 : (int)r.body_len, r.body ? (const char *)r.body : "");
        if (r.request_id[0])
            check_slorag(&r);
        else
            check_mhd(&r);
        free(body.data);
        pos += used;
        if (r.close) {
            if (r.request_id[0] && pos < out->len)
                die("%zu bytes after a response that closed the connection", out->len - pos);
            break;
        }
    }
    return true;
}

/* The rest of a reply the server finishes by closing the connection
 * (HTTP/1.0, or Connection: close): it may close a moment after the
 * request counts as done. */
UNTRACED static void read_to_close(int fd, struct bytes *out, bool *ret_eof) {
    int64_t start = now_ms();
    while (!*ret_eof) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(HANG_MS - (now_ms() - start));
        if (left <= 0)
            die("a reply cut short: the server neither finished it nor closed the connection in %d ms", HANG_MS);
        if (poll(&p, 1, left) <= 0)
            continue;
        uint8_t buf[65536];
        ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (k > 0)
            bytes_add(out, buf, (size_t)k);
        else if (k == 0 || (errno != EAGAIN && errno != EINTR))
            *ret_eof = true;
    }
}

UNTRACED int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!S.srv)
        server_start();
    restore_baseline();
    struct bytes in = {0}, out = {0};
    substitute(data, size, &in);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair: %s", strerror(errno));
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (http_add_connection(S.srv, sv[1], (const struct sockaddr *)&peer, sizeof peer) != ERR_OK)
        die("http_add_connection failed");
    bool eof;
    converse(sv[0], &in, &out, &eof);
    if (!eof && !check_replies(&in, &out, eof, false))
        read_to_close(sv[0], &out, &eof);
    if (S.verbose && in.len)
        show("request", in.data, in.len);
    check_replies(&in, &out, eof, true);
    hang_up(sv[0], eof);
    free(in.data);
    free(out.data);
    return 0;
}
