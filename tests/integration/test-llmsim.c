/* Integration tests for slorag-llmsim: the real simulator binary on an
 * ephemeral loopback port, a temporary config with fast tiers and one
 * model per fault, libcurl as the client.  Timing assertions are one-sided
 * (at least so long) so a busy machine slows the tests but cannot fail
 * them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

struct sim {
    pid_t pid;
    int port;
    char dir[64];
    char log_path[128];
};

static struct sim S;

/* %s: the answer key's path (key_json, written beside the config) */
static const char config_json[] =
    "{\"seed\": 7, \"embedding_dim\": 64, \"hang_ms\": 1000, \"max_body_bytes\": 65536,\n"
    " \"answer_key\": \"%s\",\n"
    " \"models\": [\n"
    "  {\"name\": \"fast\", \"ttft_ms\": 5, \"ms_per_token\": 1, \"max_concurrency\": 64},\n"
    "  {\"name\": \"paced\", \"ttft_ms\": 30, \"ms_per_token\": 20, \"max_concurrency\": 8},\n"
    "  {\"name\": \"serial\", \"ttft_ms\": 50, \"ms_per_token\": 0, \"max_concurrency\": 1},\n"
    "  {\"name\": \"load\", \"ttft_ms\": 1500, \"ms_per_token\": 0, \"max_concurrency\": 2000},\n"
    "  {\"name\": \"weak\", \"ttft_ms\": 1, \"ms_per_token\": 0, \"jitter\": 0.5,\n"
    "   \"wrong_rate\": 0.4, \"abstain_rate\": 0.3},\n"
    "  {\"name\": \"f500\", \"ttft_ms\": 2, \"faults\": {\"http500\": 1.0}},\n"
    "  {\"name\": \"ferror\", \"ttft_ms\": 2, \"error_rate\": 1.0},\n"
    "  {\"name\": \"f429\", \"faults\": {\"http429\": 1.0}},\n"
    "  {\"name\": \"ftimeout\", \"ttft_ms\": 2, \"faults\": {\"timeout\": 1.0}},\n"
    "  {\"name\": \"fmalformed\", \"ttft_ms\": 2, \"faults\": {\"malformed\": 1.0}},\n"
    "  {\"name\": \"fstall\", \"ttft_ms\": 2, \"ms_per_token\": 1, \"faults\": {\"stall\": 1.0}},\n"
    "  {\"name\": \"fdrop\", \"ttft_ms\": 2, \"ms_per_token\": 1, \"faults\": {\"drop\": 1.0}},\n"
    "  {\"name\": \"spans\", \"ttft_ms\": 1, \"ms_per_token\": 0, \"spans\": 1}\n"
    " ]}\n";

#define NMODELS 13

/* The answer key (SQuAD v2.0): questions none of the other tests ask. */
static const char key_json[] =
    "{\"version\": \"v2.0\", \"data\": [{\"title\": \"Harbour\", \"paragraphs\": [{\"context\": \"...\", \"qas\": [\n"
    " {\"id\": \"k1\", \"question\": \"Where is the fish market held?\",\n"
    "  \"answers\": [{\"text\": \"the old quay\", \"answer_start\": 0}]},\n"
    " {\"id\": \"k2\", \"question\": \"Who keeps the lighthouse?\",\n"
    "  \"answers\": [{\"text\": \"Mara Lind\", \"answer_start\": 0}]},\n"
    " {\"id\": \"k3\", \"question\": \"What colour is the lighthouse?\", \"is_impossible\": true,\n"
    "  \"answers\": []}]}]}]}\n";

/* The crafted prompt: passages in the user message, a Question: line. */
#define DOCS                                                                                                 \
    "[1] The harbour office opens at seven in the morning. It closes at noon on Saturdays.\\n"               \
    "[2] The lighthouse is forty-two metres tall. Its beam reaches thirty kilometres out to sea.\\n"         \
    "[3] The fish market is held every Tuesday and Friday on the old quay.\\n"
#define LIGHTHOUSE_ANSWER "The lighthouse is forty-two metres tall. [2]"
#define ABSTAIN "I cannot answer from the documents."

static char *chat_body(const char *model, const char *question, const char *extra) {
    char *b = NULL;
    if (asprintf(&b,
                 "{\"model\": \"%s\", \"messages\": ["
                 "{\"role\": \"system\", \"content\": \"Answer from the documents; cite them as [n].\"},"
                 "{\"role\": \"user\", \"content\": \"" DOCS "Question: %s\"}]%s%s}",
                 model, question, extra ? ", " : "", extra ? extra : "") < 0)
        abort();
    return b;
}

/* ---- the simulator process ---- */

static const char *sim_bin(void) {
    const char *b = getenv("SLORAG_LLMSIM_BIN");
    if (!b) {
        fprintf(stderr, "SLORAG_LLMSIM_BIN is not set\n");
        abort();
    }
    return b;
}

static void dump_log(void) {
    FILE *f = fopen(S.log_path, "r");
    if (!f)
        return;
    char line[1024];
    fprintf(stderr, "---- llmsim log ----\n");
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

/* The simulator with the answer key, on 127.0.0.1:0, logging at debug. */
static bool start_sim(void) {
    snprintf(S.dir, sizeof S.dir, "/tmp/slorag-llmsim-XXXXXX");
    if (!mkdtemp(S.dir))
        return false;
    snprintf(S.log_path, sizeof S.log_path, "%s/llmsim.log", S.dir);
    char cfg[128];
    snprintf(cfg, sizeof cfg, "%s/llmsim.json", S.dir);
    char key[128];
    snprintf(key, sizeof key, "%s/key.json", S.dir);
    FILE *f = fopen(key, "w");
    if (!f)
        return false;
    fputs(key_json, f);
    fclose(f);
    if (!(f = fopen(cfg, "w")))
        return false;
    fprintf(f, config_json, key);
    fclose(f);
    char *argv[] = {(char *)sim_bin(), "--config", cfg, "--listen", "127.0.0.1:0", "--log-level", "debug", NULL};
    return proc_start_ready(argv, S.log_path, &S.pid, &S.port);
}

/* Sends sig (0: none) and waits; the exit status, or -1 on timeout or death by signal. */
static int stop_sim(int sig, int timeout_ms) {
    int st = proc_stop(S.pid, sig, timeout_ms);
    S.pid = 0;
    return st;
}

static int setup(void **state) {
    (void)state;
    if (!start_sim()) {
        dump_log();
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    int st = S.pid > 0 ? stop_sim(SIGTERM, 10000) : 0;
    if (st != 0)
        dump_log();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", S.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", S.dir);
    return st == 0 ? 0 : -1; /* a crash or (under ASan) a leak at exit fails the group */
}

/* ---- HTTP ---- */

struct resp {
    CURLcode rc;
    long status;
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
    char headers[4096];
    double first_ms, total_ms; /* first body bytes, end; from the start of the request */
    struct timespec t0;
};

static double since_ms(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    struct resp *r = ud;
    size_t add = size * n;
    if (r->len == 0)
        r->first_ms = since_ms(&r->t0);
    char *b = realloc(r->body, r->len + add + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, p, add);
    r->len += add;
    b[r->len] = '\0';
    r->body = b;
    return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    struct resp *r = ud;
    size_t add = size * n, have = strlen(r->headers);
    if (have + add < sizeof r->headers) {
        memcpy(r->headers + have, p, add);
        r->headers[have + add] = '\0';
    }
    return add;
}

static struct curl_slist *json_headers(void) {
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    return curl_slist_append(h, "Expect:");
}

static CURL *make_easy(const char *method, const char *path, const char *body, long timeout_ms, struct resp *r,
                       struct curl_slist *h) {
    memset(r, 0, sizeof *r);
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", S.port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_PRIVATE, r);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    return c;
}

static void finish(CURL *c, struct resp *r) {
    r->total_ms = since_ms(&r->t0);
    if (r->rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->body)
        r->body = calloc(1, 1);
}

static void request(const char *method, const char *path, const char *body, long timeout_ms, struct resp *r) {
    struct curl_slist *h = json_headers();
    CURL *c = make_easy(method, path, body, timeout_ms, r, h);
    r->rc = curl_easy_perform(c);
    finish(c, r);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void post(const char *path, const char *body, struct resp *r) {
    request("POST", path, body, 10000, r);
}

static void resp_done(struct resp *r) {
    free(r->body);
    r->body = NULL;
}

static json_t *parse(const struct resp *r) {
    json_error_t e;
    json_t *j = json_loads(r->body, 0, &e);
    if (!j)
        fail_msg("response is not JSON (%s): %s", e.text, r->body);
    return j;
}

static const char *jstr(json_t *obj, const char *path) {
    /* path: dot-separated keys, "#n" for an array index */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = obj;
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
        cur = tok[0] == '#' ? json_array_get(cur, (size_t)atoi(tok + 1)) : json_object_get(cur, tok);
    return json_string_value(cur);
}

static json_int_t jint(json_t *obj, const char *a, const char *b) {
    return json_integer_value(json_object_get(json_object_get(obj, a), b));
}

/* Asserts an OpenAI-style error body with the given status, type and code. */
static void expect_error(const struct resp *r, long status, const char *type, const char *code) {
    if (r->status != status)
        fail_msg("status %ld, want %ld; body: %s", r->status, status, r->body);
    json_t *j = parse(r);
    json_t *err = json_object_get(j, "error");
    assert_true(json_is_object(err));
    assert_string_equal(json_string_value(json_object_get(err, "type")), type);
    if (code)
        assert_string_equal(json_string_value(json_object_get(err, "code")), code);
    const char *msg = json_string_value(json_object_get(err, "message"));
    assert_non_null(msg);
    assert_true(strlen(msg) > 0);
    json_decref(j);
    assert_non_null(strstr(r->headers, "Content-Type: application/json"));
}

/* The answer text of a non-streamed completion (caller frees). */
static char *completion_content(const struct resp *r) {
    if (r->status != 200)
        fail_msg("status %ld: %s", r->status, r->body);
    json_t *j = parse(r);
    char *s = strdup(jstr(j, "choices.#0.message.content"));
    json_decref(j);
    return s;
}

/* Splits an SSE body into its data payloads, asserting the framing:
 * every event is exactly "data: PAYLOAD\n\n".  Returns the count. */
static size_t sse_split(const char *body, char **out, size_t max) {
    size_t n = 0;
    const char *p = body;
    while (*p) {
        if (strncmp(p, "data: ", 6) != 0)
            fail_msg("event %zu does not start with \"data: \": %.80s", n, p);
        const char *end = strstr(p, "\n\n");
        if (!end)
            fail_msg("event %zu is not terminated by a blank line: %.80s", n, p);
        if (memchr(p, '\n', (size_t)(end - p)))
            fail_msg("event %zu spans lines", n);
        if (n == max)
            fail_msg("more than %zu events", max);
        out[n++] = strndup(p + 6, (size_t)(end - p - 6));
        p = end + 2;
    }
    return n;
}

/* ---- tests ---- */

static void test_models(void **state) {
    (void)state;
    struct resp r;
    request("GET", "/v1/models", NULL, 5000, &r);
    assert_int_equal(r.status, 200);
    json_t *j = parse(&r);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
    json_t *data = json_object_get(j, "data");
    assert_int_equal(json_array_size(data), NMODELS);
    assert_string_equal(jstr(j, "data.#0.id"), "fast");
    assert_string_equal(jstr(j, "data.#0.object"), "model");
    assert_string_equal(jstr(j, "data.#11.id"), "fdrop");
    json_decref(j);
    resp_done(&r);

    request("GET", "/v1/models/paced", NULL, 5000, &r);
    assert_int_equal(r.status, 200);
    j = parse(&r);
    assert_string_equal(jstr(j, "id"), "paced");
    json_decref(j);
    resp_done(&r);

    request("GET", "/v1/models/nope", NULL, 5000, &r);
    expect_error(&r, 404, "invalid_request_error", "model_not_found");
    resp_done(&r);
}

static void test_chat_answer(void **state) {
    (void)state;
    struct resp r;
    char *body = chat_body("fast", "How tall is the lighthouse?", NULL);
    post("/v1/chat/completions", body, &r);
    free(body);
    assert_int_equal(r.status, 200);
    json_t *j = parse(&r);
    assert_string_equal(jstr(j, "object"), "chat.completion");
    assert_string_equal(jstr(j, "model"), "fast");
    assert_memory_equal(jstr(j, "id"), "chatcmpl-", 9);
    assert_string_equal(jstr(j, "choices.#0.message.role"), "assistant");
    assert_string_equal(jstr(j, "choices.#0.message.content"), LIGHTHOUSE_ANSWER);
    assert_string_equal(jstr(j, "choices.#0.finish_reason"), "stop");
    json_int_t pt = jint(j, "usage", "prompt_tokens"), ct = jint(j, "usage", "completion_tokens");
    assert_true(pt > 30);
    assert_int_equal(ct, 7); /* "The lighthouse is forty-two metres tall. [2]" */
    assert_int_equal(jint(j, "usage", "total_tokens"), pt + ct);
    assert_non_null(strstr(r.headers, "X-Llmsim-Outcome: correct"));
    json_decref(j);
    resp_done(&r);

    /* another passage, stop words and plural folding ("opens" ~ "open") */
    body = chat_body("fast", "When does the harbour office open?", NULL);
    post("/v1/chat/completions", body, &r);
    free(body);
    char *c = completion_content(&r);
    assert_string_equal(c, "The harbour office opens at seven in the morning. [1]");
    free(c);
    resp_done(&r);

    /* nothing in the documents covers the question */
    body = chat_body("fast", "Who painted the mural in the town hall?", NULL);
    post("/v1/chat/completions", body, &r);
    free(body);
    c = completion_content(&r);
    assert_string_equal(c, ABSTAIN);
    free(c);
    resp_done(&r);

    /* passages in the system message, the question alone in the user message */
    post("/v1/chat/completions",
         "{\"model\": \"fast\", \"messages\": [{\"role\": \"system\", \"content\": \"Use these:\\n" DOCS "\"},"
         "{\"role\": \"user\", \"content\": \"On which days is the fish market held?\"}]}",
         &r);
    c = completion_content(&r);
    assert_string_equal(c, "The fish market is held every Tuesday and Friday on the old quay. [3]");
    free(c);
    resp_done(&r);

    /* a model with "spans": 1 answers with the span the question asks for
     * (the extractive tier's picker, agents/span.c), still citing */
    body = chat_body("spans", "When does the harbour office open?", NULL);
    post("/v1/chat/completions", body, &r);
    free(body);
    c = completion_content(&r);
    assert_string_equal(c, "seven in the morning [1]");
    free(c);
    resp_done(&r);
    body = chat_body("spans", "Why is the sky blue?", NULL); /* no span kind: the sentence (or abstention) */
    post("/v1/chat/completions", body, &r);
    free(body);
    c = completion_content(&r);
    assert_null(strstr(c, "seven in the morning [1]"));
    free(c);
    resp_done(&r);

    /* content as an array of parts; max_tokens cuts the answer */
    post("/v1/chat/completions",
         "{\"model\": \"fast\", \"max_tokens\": 3, \"temperature\": 0.2, \"messages\": [{\"role\": \"user\", "
         "\"content\": [{\"type\": \"text\", \"text\": \"" DOCS "\"}, {\"type\": \"text\", \"text\": "
         "\"Question: How tall is the lighthouse?\"}]}]}",
         &r);
    assert_int_equal(r.status, 200);
    j = parse(&r);
    assert_string_equal(jstr(j, "choices.#0.message.content"), "The lighthouse is");
    assert_string_equal(jstr(j, "choices.#0.finish_reason"), "length");
    assert_int_equal(jint(j, "usage", "completion_tokens"), 3);
    json_decref(j);
    resp_done(&r);
}

/* With an answer key a tier reads perfectly and errs at its rates: the
 * gold answer when a passage holds it, an abstention when none does or the
 * question is unanswerable; questions outside the key go to the reader. */
static void test_answer_key(void **state) {
    (void)state;
    static const struct {
        const char *model, *question, *want;
    } cases[] = {
        {"fast", "Where is the fish market held?", "the old quay [3]"},
        {"fast", "where IS  the fish market held?", "the old quay [3]"}, /* case and spacing folded */
        {"fast", "Who keeps the lighthouse?", ABSTAIN},      /* the gold answer is in no passage */
        {"fast", "What colour is the lighthouse?", ABSTAIN}, /* unanswerable */
        {"fast", "How tall is the lighthouse?", LIGHTHOUSE_ANSWER}, /* not in the key: the reader */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct resp r;
        char *body = chat_body(cases[i].model, cases[i].question, NULL);
        post("/v1/chat/completions", body, &r);
        free(body);
        char *c = completion_content(&r);
        if (strcmp(c, cases[i].want) != 0)
            fail_msg("%s: \"%s\", want \"%s\"", cases[i].question, c, cases[i].want);
        free(c);
        resp_done(&r);
    }
    /* the weak tier (wrong 0.4, abstain 0.3): the gold answer exactly when
     * the outcome is correct, at about its rate */
    int gold = 0, n = 120;
    for (int v = 0; v < n; v++) {
        char extra[64];
        snprintf(extra, sizeof extra, "\"user\": \"k%d\"", v);
        char *body = chat_body("weak", "Where is the fish market held?", extra);
        struct resp r;
        post("/v1/chat/completions", body, &r);
        free(body);
        char *c = completion_content(&r);
        bool correct = strstr(r.headers, "X-Llmsim-Outcome: correct") != NULL;
        if (correct != (strcmp(c, "the old quay [3]") == 0))
            fail_msg("outcome %s with \"%s\"", correct ? "correct" : "not correct", c);
        gold += correct;
        free(c);
        resp_done(&r);
    }
    if (gold < n * 15 / 100 || gold > n * 45 / 100) /* 0.3 expected; 120 draws: sd 0.042 */
        fail_msg("%d of %d answers correct, want about 30%%", gold, n);
}

/* Streams body and checks the framing; returns the reassembled content and
 * sets *ret_usage to the usage object (a new reference) when present. */
static char *stream_content(const struct resp *r, bool want_usage, json_t **ret_usage) {
    if (r->rc != CURLE_OK || r->status != 200)
        fail_msg("rc %d status %ld: %s", r->rc, r->status, r->body);
    assert_non_null(strstr(r->headers, "Content-Type: text/event-stream"));
    char *ev[256];
    size_t n = sse_split(r->body, ev, 256);
    assert_true(n >= 4);
    assert_string_equal(ev[n - 1], "[DONE]");
    char content[1024] = "";
    bool finished = false;
    json_t *usage = NULL;
    for (size_t i = 0; i + 1 < n; i++) {
        json_error_t e;
        json_t *j = json_loads(ev[i], 0, &e);
        if (!j)
            fail_msg("event %zu is not JSON: %s", i, ev[i]);
        assert_string_equal(jstr(j, "object"), "chat.completion.chunk");
        assert_memory_equal(jstr(j, "id"), "chatcmpl-", 9);
        json_t *choices = json_object_get(j, "choices");
        json_t *u = json_object_get(j, "usage");
        if (json_array_size(choices) == 0) {
            /* the usage chunk: last before [DONE], after the finish */
            assert_true(want_usage);
            assert_true(finished);
            assert_int_equal(i, n - 2);
            assert_true(json_is_object(u));
            usage = json_incref(u);
        } else {
            if (want_usage)
                assert_true(json_is_null(u));
            else
                assert_null(u);
            assert_false(finished);
            if (i == 0)
                assert_string_equal(jstr(j, "choices.#0.delta.role"), "assistant");
            const char *piece = jstr(j, "choices.#0.delta.content");
            if (piece)
                strncat(content, piece, sizeof content - strlen(content) - 1);
            const char *fr = jstr(j, "choices.#0.finish_reason");
            if (fr) {
                assert_string_equal(fr, "stop");
                finished = true;
            }
        }
        json_decref(j);
    }
    assert_true(finished);
    if (want_usage)
        assert_non_null(usage);
    for (size_t i = 0; i < n; i++)
        free(ev[i]);
    *ret_usage = usage;
    return strdup(content);
}

static void test_chat_stream(void **state) {
    (void)state;
    struct resp whole, r;
    char *body = chat_body("fast", "How tall is the lighthouse?", NULL);
    post("/v1/chat/completions", body, &whole);
    free(body);
    json_t *wj = parse(&whole);

    body = chat_body("fast", "How tall is the lighthouse?",
                     "\"stream\": true, \"stream_options\": {\"include_usage\": true}");
    post("/v1/chat/completions", body, &r);
    free(body);
    json_t *usage = NULL;
    char *content = stream_content(&r, true, &usage);
    assert_string_equal(content, jstr(wj, "choices.#0.message.content"));
    assert_true(json_equal(usage, json_object_get(wj, "usage")));
    /* the same request content: the same completion id */
    assert_non_null(strstr(r.body, jstr(wj, "id")));
    free(content);
    json_decref(usage);
    resp_done(&r);

    body = chat_body("fast", "How tall is the lighthouse?", "\"stream\": true");
    post("/v1/chat/completions", body, &r);
    free(body);
    content = stream_content(&r, false, &usage);
    assert_string_equal(content, LIGHTHOUSE_ANSWER);
    assert_null(usage);
    free(content);
    resp_done(&r);

    /* stream_options without stream is refused, as upstream does */
    body = chat_body("fast", "How tall is the lighthouse?", "\"stream_options\": {\"include_usage\": true}");
    post("/v1/chat/completions", body, &r);
    free(body);
    expect_error(&r, 400, "invalid_request_error", "invalid_value");
    resp_done(&r);
    json_decref(wj);
    resp_done(&whole);
}

/* Tokens are paced: 7 tokens 20 ms apart arrive over >= 120 ms after the first. */
static void test_stream_paced(void **state) {
    (void)state;
    struct resp r;
    char *body = chat_body("paced", "How tall is the lighthouse?", "\"stream\": true");
    post("/v1/chat/completions", body, &r);
    free(body);
    json_t *usage;
    char *content = stream_content(&r, false, &usage);
    assert_string_equal(content, LIGHTHOUSE_ANSWER);
    free(content);
    if (r.first_ms < 30 || r.total_ms - r.first_ms < 6 * 20 * 0.95)
        fail_msg("first bytes at %.1f ms, done at %.1f ms: not paced", r.first_ms, r.total_ms);
    resp_done(&r);

    /* the whole answer takes ttft + 6 gaps */
    body = chat_body("paced", "How tall is the lighthouse?", NULL);
    post("/v1/chat/completions", body, &r);
    free(body);
    assert_int_equal(r.status, 200);
    assert_true(r.total_ms >= 30 + 6 * 20 * 0.95);
    resp_done(&r);
}

static float *embeddings(const char *input_json, const char *extra, size_t want, size_t dim, bool base64) {
    char body[4096];
    snprintf(body, sizeof body, "{\"model\": \"fast\", \"input\": %s, \"encoding_format\": \"%s\"%s%s}", input_json,
             base64 ? "base64" : "float", extra ? ", " : "", extra ? extra : "");
    struct resp r;
    post("/v1/embeddings", body, &r);
    if (r.status != 200)
        fail_msg("status %ld: %s", r.status, r.body);
    json_t *j = parse(&r);
    assert_string_equal(jstr(j, "object"), "list");
    assert_string_equal(jstr(j, "model"), "fast");
    assert_true(jint(j, "usage", "prompt_tokens") > 0);
    json_t *data = json_object_get(j, "data");
    assert_int_equal(json_array_size(data), want);
    float *v = calloc(want * dim, sizeof *v);
    for (size_t i = 0; i < want; i++) {
        json_t *item = json_array_get(data, i);
        assert_string_equal(json_string_value(json_object_get(item, "object")), "embedding");
        assert_int_equal(json_integer_value(json_object_get(item, "index")), i);
        json_t *e = json_object_get(item, "embedding");
        if (base64) {
            const char *s = json_string_value(e);
            assert_non_null(s);
            assert_int_equal(strlen(s), (dim * 4 + 2) / 3 * 4);
            unsigned char bytes[4096 * 4 + 4];
            size_t nb = 0;
            unsigned acc = 0;
            int bits = 0;
            for (const char *p = s; *p && *p != '='; p++) {
                const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                const char *at = strchr(alpha, *p);
                assert_non_null(at);
                acc = (acc << 6) | (unsigned)(at - alpha);
                bits += 6;
                if (bits >= 8) {
                    assert_true(nb < sizeof bytes);
                    bits -= 8;
                    bytes[nb++] = (unsigned char)(acc >> bits);
                    acc &= (1u << bits) - 1;
                }
            }
            assert_int_equal(nb, dim * 4);
            for (size_t k = 0; k < dim; k++) {
                uint32_t u = (uint32_t)bytes[4 * k] | (uint32_t)bytes[4 * k + 1] << 8 |
                             (uint32_t)bytes[4 * k + 2] << 16 | (uint32_t)bytes[4 * k + 3] << 24;
                memcpy(&v[i * dim + k], &u, 4);
            }
        } else {
            assert_int_equal(json_array_size(e), dim);
            for (size_t k = 0; k < dim; k++)
                v[i * dim + k] = (float)json_number_value(json_array_get(e, k));
        }
    }
    json_decref(j);
    resp_done(&r);
    return v;
}

static double dot(const float *a, const float *b, size_t dim) {
    double s = 0;
    for (size_t i = 0; i < dim; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

static void test_embeddings(void **state) {
    (void)state;
    const char *inputs = "[\"The lighthouse is forty-two metres tall.\", \"How tall is the lighthouse?\","
                         " \"The fish market is held every Tuesday.\"]";
    float *f = embeddings(inputs, NULL, 3, 64, false);
    float *b = embeddings(inputs, NULL, 3, 64, true);
    assert_memory_equal(f, b, 3 * 64 * sizeof(float)); /* bit for bit */
    for (size_t i = 0; i < 3; i++)
        assert_true(fabs(dot(f + i * 64, f + i * 64, 64) - 1.0) < 1e-5);
    double similar = dot(f, f + 64, 64), unrelated = dot(f, f + 128, 64);
    if (!(similar > unrelated + 0.2))
        fail_msg("similar %.3f, unrelated %.3f", similar, unrelated);

    /* a single string gives the same vector as in a batch */
    float *one = embeddings("\"The lighthouse is forty-two metres tall.\"", NULL, 1, 64, false);
    assert_memory_equal(one, f, 64 * sizeof(float));
    free(one);
    float *small = embeddings("\"The lighthouse is forty-two metres tall.\"", "\"dimensions\": 16", 1, 16, true);
    assert_true(fabs(dot(small, small, 16) - 1.0) < 1e-5);
    free(small);
    free(f);
    free(b);

    struct resp r;
    post("/v1/embeddings", "{\"model\": \"fast\", \"input\": [1, 2, 3]}", &r);
    expect_error(&r, 400, "invalid_request_error", "invalid_type");
    resp_done(&r);
    post("/v1/embeddings", "{\"model\": \"fast\", \"input\": \"x\", \"dimensions\": 65}", &r);
    expect_error(&r, 400, "invalid_request_error", "invalid_value");
    resp_done(&r);
}

static void test_request_errors(void **state) {
    (void)state;
    struct resp r;
    char *body = chat_body("no-such-model", "How tall is the lighthouse?", NULL);
    post("/v1/chat/completions", body, &r);
    free(body);
    expect_error(&r, 404, "invalid_request_error", "model_not_found");
    resp_done(&r);
    post("/v1/embeddings", "{\"model\": \"no-such-model\", \"input\": \"x\"}", &r);
    expect_error(&r, 404, "invalid_request_error", "model_not_found");
    resp_done(&r);

    post("/v1/chat/completions", "{\"model\": \"fast\", \"messages\": [", &r);
    expect_error(&r, 400, "invalid_request_error", "invalid_json");
    resp_done(&r);
    post("/v1/chat/completions", "[1, 2]", &r);
    expect_error(&r, 400, "invalid_request_error", "invalid_json");
    resp_done(&r);
    post("/v1/chat/completions", "", &r);
    expect_error(&r, 400, "invalid_request_error", "invalid_json");
    resp_done(&r);
    post("/v1/chat/completions", "{\"model\": \"fast\", \"messages\": \"hi\"}", &r);
    expect_error(&r, 400, "invalid_request_error", "invalid_type");
    resp_done(&r);
    post("/v1/chat/completions", "{\"model\": \"fast\", \"messages\": [{\"role\": \"user\", \"content\": 5}]}", &r);
    expect_error(&r, 400, "invalid_request_error", "invalid_type");
    assert_non_null(strstr(r.body, "\"param\":\"messages[0].content\""));
    resp_done(&r);
    post("/v1/chat/completions", "{\"model\": \"fast\", \"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}",
         &r);
    expect_error(&r, 400, "invalid_request_error", "invalid_value");
    resp_done(&r);
    post("/v1/chat/completions",
         "{\"model\": \"fast\", \"max_tokens\": \"ten\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", &r);
    expect_error(&r, 400, "invalid_request_error", "invalid_type");
    resp_done(&r);
    post("/v1/chat/completions",
         "{\"model\": \"fast\", \"temperature\": 3, \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", &r);
    expect_error(&r, 400, "invalid_request_error", "invalid_value");
    resp_done(&r);
    post("/v1/chat/completions", "{\"model\": \"fast\", \"mesages\": []}", &r);
    expect_error(&r, 400, "invalid_request_error", "unknown_parameter");
    resp_done(&r);
    post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", &r);
    expect_error(&r, 400, "invalid_request_error", "missing_required_parameter");
    resp_done(&r);

    /* body cap (64 KiB in the test config), with Content-Length */
    size_t big = 70000;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    memcpy(huge, "{\"model\": \"fast\", \"input\": \"", 28);
    memcpy(huge + big - 2, "\"}", 2);
    huge[big] = '\0';
    post("/v1/embeddings", huge, &r);
    free(huge);
    expect_error(&r, 413, "invalid_request_error", "request_too_large");
    resp_done(&r);

    request("GET", "/v1/nothing", NULL, 5000, &r);
    expect_error(&r, 404, "invalid_request_error", "unknown_url");
    resp_done(&r);
    request("GET", "/v1/chat/completions", NULL, 5000, &r);
    expect_error(&r, 405, "invalid_request_error", "method_not_allowed");
    resp_done(&r);
}

static void test_fault_errors(void **state) {
    (void)state;
    struct resp r;
    const char *models[] = {"f500", "ferror"};
    for (size_t i = 0; i < 2; i++) {
        char *body = chat_body(models[i], "How tall is the lighthouse?", NULL);
        post("/v1/chat/completions", body, &r);
        free(body);
        expect_error(&r, 500, "server_error", NULL);
        resp_done(&r);
    }
    char *body = chat_body("f500", "How tall is the lighthouse?", "\"stream\": true");
    post("/v1/chat/completions", body, &r);
    free(body);
    expect_error(&r, 500, "server_error", NULL); /* a JSON error, before any event */
    resp_done(&r);

    body = chat_body("f429", "How tall is the lighthouse?", NULL);
    post("/v1/chat/completions", body, &r);
    free(body);
    expect_error(&r, 429, "requests", "rate_limit_exceeded");
    assert_non_null(strstr(r.headers, "Retry-After: 1\r\n"));
    resp_done(&r);
    post("/v1/embeddings", "{\"model\": \"f429\", \"input\": \"x\"}", &r);
    expect_error(&r, 429, "requests", "rate_limit_exceeded");
    resp_done(&r);
}

static void test_fault_malformed(void **state) {
    (void)state;
    struct resp r;
    char *body = chat_body("fmalformed", "How tall is the lighthouse?", NULL);
    post("/v1/chat/completions", body, &r);
    free(body);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: application/json"));
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    assert_null(j);
    assert_true(r.len > 10);
    resp_done(&r);

    post("/v1/embeddings", "{\"model\": \"fmalformed\", \"input\": \"the lighthouse\"}", &r);
    assert_int_equal(r.status, 200);
    assert_null(json_loads(r.body, 0, &e));
    resp_done(&r);

    /* streamed: framed events whose payloads are not JSON */
    body = chat_body("fmalformed", "How tall is the lighthouse?", "\"stream\": true");
    post("/v1/chat/completions", body, &r);
    free(body);
    assert_int_equal(r.status, 200);
    char *ev[256];
    size_t n = sse_split(r.body, ev, 256);
    assert_true(n >= 3);
    assert_string_equal(ev[n - 1], "[DONE]");
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n)
            assert_null(json_loads(ev[i], 0, &e));
        free(ev[i]);
    }
    resp_done(&r);
}

static void test_fault_drop(void **state) {
    (void)state;
    struct resp r;
    char *body = chat_body("fdrop", "How tall is the lighthouse?", NULL);
    post("/v1/chat/completions", body, &r);
    free(body);
    if (r.rc == CURLE_OK)
        fail_msg("a dropped response completed: %s", r.body);
    assert_true(r.total_ms < 5000);
    resp_done(&r);

    body = chat_body("fdrop", "How tall is the lighthouse?", "\"stream\": true");
    post("/v1/chat/completions", body, &r);
    free(body);
    if (r.rc == CURLE_OK)
        fail_msg("a dropped stream completed: %s", r.body);
    assert_non_null(strstr(r.body, "data: ")); /* some events came first */
    assert_null(strstr(r.body, "[DONE]"));
    resp_done(&r);
}

/* After a client gives up, the server still answers everyone else. */
static void expect_healthy(void) {
    struct resp r;
    request("GET", "/v1/models", NULL, 5000, &r);
    assert_int_equal(r.status, 200);
    resp_done(&r);
    char *body = chat_body("fast", "How tall is the lighthouse?", NULL);
    post("/v1/chat/completions", body, &r);
    free(body);
    char *c = completion_content(&r);
    assert_string_equal(c, LIGHTHOUSE_ANSWER);
    free(c);
    resp_done(&r);
}

static void test_fault_timeout_and_stall(void **state) {
    (void)state;
    struct resp r;
    char *body = chat_body("ftimeout", "How tall is the lighthouse?", NULL);
    request("POST", "/v1/chat/completions", body, 300, &r);
    free(body);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(r.len, 0);
    assert_true(r.total_ms >= 290);
    resp_done(&r);
    expect_healthy();

    body = chat_body("fstall", "How tall is the lighthouse?", "\"stream\": true");
    request("POST", "/v1/chat/completions", body, 300, &r);
    free(body);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    assert_non_null(strstr(r.body, "data: ")); /* it started */
    assert_null(strstr(r.body, "[DONE]"));
    resp_done(&r);
    expect_healthy();

    body = chat_body("fstall", "How tall is the lighthouse?", NULL);
    request("POST", "/v1/chat/completions", body, 300, &r);
    free(body);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    assert_true(r.len > 0); /* half the body */
    resp_done(&r);
    expect_healthy();
}

/* A hung request is closed by the server at hang_ms (1 s here). */
static void test_hang_is_capped(void **state) {
    (void)state;
    const char *body = "{\"model\": \"ftimeout\", \"messages\": [{\"role\": \"user\", \"content\": \"hello\"}]}";
    int fd = tcp_connect_loopback(S.port, 10);
    assert_true(fd >= 0);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(write(fd, req, (size_t)n), n);
    char buf[256];
    ssize_t got = read(fd, buf, sizeof buf);
    double ms = since_ms(&t0);
    close(fd);
    assert_true(got <= 0); /* closed without a byte of response */
    if (ms < 900 || ms > 5000)
        fail_msg("closed after %.0f ms, want about 1000", ms);
}

/* max_concurrency 1, 50 ms each: four at once finish one after another. */
static void test_latency_grows_with_load(void **state) {
    (void)state;
    CURLM *m = curl_multi_init();
    struct curl_slist *h = json_headers();
    struct resp r[4];
    CURL *c[4];
    char *bodies[4];
    for (int i = 0; i < 4; i++) {
        char q[64];
        snprintf(q, sizeof q, "How tall is the lighthouse (%d)?", i);
        bodies[i] = chat_body("serial", q, NULL);
        c[i] = make_easy("POST", "/v1/chat/completions", bodies[i], 10000, &r[i], h);
        curl_multi_add_handle(m, c[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            struct resp *rr;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&rr);
            rr->rc = msg->data.result;
            finish(msg->easy_handle, rr);
        }
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double lo = 1e9, hi = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].rc, CURLE_OK);
        assert_int_equal(r[i].status, 200);
        lo = r[i].total_ms < lo ? r[i].total_ms : lo;
        hi = r[i].total_ms > hi ? r[i].total_ms : hi;
        curl_multi_remove_handle(m, c[i]);
        curl_easy_cleanup(c[i]);
        resp_done(&r[i]);
        free(bodies[i]);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    if (hi < 150 || hi - lo < 120)
        fail_msg("fastest %.1f ms, slowest %.1f ms: requests were not queued", lo, hi);
}

static void test_determinism(void **state) {
    (void)state;
    /* A weak tier errs and abstains at random, but the same request gets the
     * same answer, id and timing every time. */
    const char *questions[] = {"How tall is the lighthouse?", "When does the harbour office open?",
                               "On which days is the fish market held?", "How far does the beam reach?"};
    int outcomes[3] = {0};
    for (size_t q = 0; q < 4; q++) {
        for (int variant = 0; variant < 4; variant++) {
            char extra[64];
            snprintf(extra, sizeof extra, "\"user\": \"u%d\"", variant); /* different content, new draw */
            char *body = chat_body("weak", questions[q], extra);
            struct resp a, b;
            post("/v1/chat/completions", body, &a);
            post("/v1/chat/completions", body, &b);
            free(body);
            json_t *ja = parse(&a), *jb = parse(&b);
            assert_string_equal(jstr(ja, "id"), jstr(jb, "id"));
            assert_string_equal(jstr(ja, "choices.#0.message.content"), jstr(jb, "choices.#0.message.content"));
            const char *oc = strstr(a.headers, "X-Llmsim-Outcome: ");
            assert_non_null(oc);
            assert_non_null(strstr(b.headers, "X-Llmsim-Outcome: "));
            oc += strlen("X-Llmsim-Outcome: ");
            outcomes[oc[0] == 'c' ? 0 : oc[0] == 'w' ? 1 : 2]++;
            const char *content = jstr(ja, "choices.#0.message.content");
            if (oc[0] == 'a')
                assert_string_equal(content, ABSTAIN);
            if (oc[0] == 'w')
                assert_non_null(strstr(content, "["));
            json_decref(ja);
            json_decref(jb);
            resp_done(&a);
            resp_done(&b);
        }
    }
    /* 16 draws with rates 0.3/0.4/0.3: every outcome shows up */
    if (!outcomes[0] || !outcomes[1] || !outcomes[2])
        fail_msg("outcomes correct=%d wrong=%d abstain=%d", outcomes[0], outcomes[1], outcomes[2]);

    /* and identical requests in flight together agree */
    CURLM *m = curl_multi_init();
    struct curl_slist *h = json_headers();
    char *body = chat_body("weak", "How tall is the lighthouse?", "\"user\": \"together\"");
    struct resp r[8];
    CURL *c[8];
    for (int i = 0; i < 8; i++) {
        c[i] = make_easy("POST", "/v1/chat/completions", body, 10000, &r[i], h);
        curl_multi_add_handle(m, c[i]);
    }
    for (int running = 1; running;) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (int i = 0; i < 8; i++) {
        finish(c[i], &r[i]);
        assert_int_equal(r[i].status, 200);
        assert_string_equal(r[i].body, r[0].body);
    }
    for (int i = 0; i < 8; i++) {
        curl_multi_remove_handle(m, c[i]);
        curl_easy_cleanup(c[i]);
        resp_done(&r[i]);
    }
    free(body);
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
}

static long stat_value(const char *key) {
    struct resp r;
    request("GET", "/llmsim/stats", NULL, 5000, &r);
    if (r.status != 200)
        fail_msg("stats: %ld %s", r.status, r.body);
    json_t *j = parse(&r);
    long v = (long)json_integer_value(json_object_get(j, key));
    json_decref(j);
    resp_done(&r);
    return v;
}

/* 1000 requests in flight at once, on the same three threads. */
static void test_thousand_in_flight(void **state) {
    (void)state;
    enum { N = 1000 };
    long threads_before = stat_value("threads");
    assert_true(threads_before > 0 && threads_before <= 4);
    CURLM *m = curl_multi_init();
    struct curl_slist *h = json_headers();
    char *body = chat_body("load", "How tall is the lighthouse?", NULL);
    struct resp *r = calloc(N, sizeof *r);
    CURL **c = calloc(N, sizeof *c);
    for (int i = 0; i < N; i++) {
        c[i] = make_easy("POST", "/v1/chat/completions", body, 30000, &r[i], h);
        curl_multi_add_handle(m, c[i]);
    }
    long max_in_flight = 0, max_threads = 0;
    struct timespec t0, last_probe = {0, 0};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int running = 1; running;) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            struct resp *rr;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&rr);
            rr->rc = msg->data.result;
            finish(msg->easy_handle, rr);
        }
        if (running && max_in_flight < N && since_ms(&last_probe) > 100) {
            long inf = stat_value("in_flight"), th = stat_value("threads");
            max_in_flight = inf > max_in_flight ? inf : max_in_flight;
            max_threads = th > max_threads ? th : max_threads;
            clock_gettime(CLOCK_MONOTONIC, &last_probe);
        }
        if (running)
            curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    double total = since_ms(&t0);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        if (r[i].rc == CURLE_OK && r[i].status == 200 && strstr(r[i].body, LIGHTHOUSE_ANSWER))
            ok++;
        curl_multi_remove_handle(m, c[i]);
        curl_easy_cleanup(c[i]);
        resp_done(&r[i]);
    }
    free(r);
    free(c);
    free(body);
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    assert_int_equal(ok, N);
    if (max_in_flight < N)
        fail_msg("at most %ld requests were in flight together", max_in_flight);
    assert_int_equal(max_threads, threads_before);
    assert_int_equal(stat_value("threads"), threads_before);
    /* 1000 x 1.5 s served one by one would take 25 minutes */
    if (total > 20000)
        fail_msg("took %.0f ms", total);
}

/* SIGTERM with requests queued, hung, stalled and streaming: exit 0
 * promptly (under ASan: without leaks). */
static void test_sigterm_with_requests_in_flight(void **state) {
    (void)state;
    CURLM *m = curl_multi_init();
    struct curl_slist *h = json_headers();
    const char *models[] = {"ftimeout", "serial", "serial", "serial", "fstall", "load"};
    const char *extras[] = {NULL, NULL, "\"user\": \"b\"", "\"user\": \"c\"", "\"stream\": true", "\"stream\": true"};
    enum { K = 6 };
    struct resp r[K];
    CURL *c[K];
    char *bodies[K];
    for (int i = 0; i < K; i++) {
        bodies[i] = chat_body(models[i], "How tall is the lighthouse?", extras[i]);
        c[i] = make_easy("POST", "/v1/chat/completions", bodies[i], 20000, &r[i], h);
        curl_multi_add_handle(m, c[i]);
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int running = 1;
    while (running && since_ms(&t0) < 120) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 10, NULL);
    }
    kill(S.pid, SIGTERM);
    while (running && since_ms(&t0) < 10000) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    assert_int_equal(running, 0); /* every connection was closed or answered */
    int st = stop_sim(0, 10000);
    for (int i = 0; i < K; i++) {
        curl_multi_remove_handle(m, c[i]);
        curl_easy_cleanup(c[i]);
        resp_done(&r[i]);
        free(bodies[i]);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    if (st != 0) {
        dump_log();
        fail_msg("exit status %d", st);
    }
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_chat_answer),
        cmocka_unit_test(test_answer_key),
        cmocka_unit_test(test_chat_stream),
        cmocka_unit_test(test_stream_paced),
        cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_fault_errors),
        cmocka_unit_test(test_fault_malformed),
        cmocka_unit_test(test_fault_drop),
        cmocka_unit_test(test_fault_timeout_and_stall),
        cmocka_unit_test(test_hang_is_capped),
        cmocka_unit_test(test_latency_grows_with_load),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_thousand_in_flight),
        cmocka_unit_test(test_sigterm_with_requests_in_flight), /* last: stops the simulator */
    };
    int rc = cmocka_run_group_tests_name("llmsim", tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
