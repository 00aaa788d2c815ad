/* Integration tests for the LLM backend pool against the real simulator
 * (slorag-llmsim) on loopback: streaming and not, every fault kind, retries,
 * the circuit breaker, deadlines, queueing under a concurrency limit, runtime
 * reconfiguration with calls in flight, and shutdown with calls pending. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "daemon.h"
#include "util.h"

static pid_t sim_pid;
static int sim_port;
static char dir[64];

static const char sim_config[] =
    "{\"seed\": 7, \"hang_ms\": 5000, \"models\": ["
    "{\"name\": \"good\", \"ttft_ms\": 5, \"ms_per_token\": 1, \"jitter\": 0, \"max_concurrency\": 64,"
    " \"wrong_rate\": 0, \"abstain_rate\": 0},"
    "{\"name\": \"e500\", \"ttft_ms\": 1, \"ms_per_token\": 0, \"max_concurrency\": 64, \"faults\": {\"http500\": 1.0}},"
    "{\"name\": \"r429\", \"ttft_ms\": 1, \"ms_per_token\": 0, \"max_concurrency\": 64, \"faults\": {\"http429\": 1.0}},"
    "{\"name\": \"junk\", \"ttft_ms\": 1, \"ms_per_token\": 0, \"max_concurrency\": 64, \"faults\": {\"malformed\": 1.0}},"
    "{\"name\": \"drop\", \"ttft_ms\": 1, \"ms_per_token\": 0, \"max_concurrency\": 64, \"faults\": {\"drop\": 1.0}},"
    "{\"name\": \"hang\", \"ttft_ms\": 1, \"ms_per_token\": 0, \"max_concurrency\": 64, \"faults\": {\"timeout\": 1.0}},"
    "{\"name\": \"stall\", \"ttft_ms\": 1, \"ms_per_token\": 1, \"max_concurrency\": 64, \"faults\": {\"stall\": 1.0}},"
    "{\"name\": \"slow\", \"ttft_ms\": 200, \"ms_per_token\": 0, \"jitter\": 0, \"max_concurrency\": 64}"
    "]}";

static int start_sim(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/slorag-be-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    if (!sim_start(dir, sim_config, NULL, &sim_pid, &sim_port))
        return -1;
    return 0;
}

static int stop_sim(void **state) {
    (void)state;
    int st = proc_stop(sim_pid, SIGTERM, 10000);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return -1;
    return st == 0 ? 0 : -1;
}

/* A pool over backends given as "tier:model:extra-json" triples. */
static struct agent_pool *make_pool(const char *backends_json, struct cfg **ret_cfg) {
    char path[128], json[4096];
    snprintf(path, sizeof path, "%s/slorag.json", dir);
    snprintf(json, sizeof json, "{\"backends\": [%s]}", backends_json);
    /* PORT placeholder */
    char port[16];
    snprintf(port, sizeof port, "%d", sim_port);
    char final[4096] = "";
    for (const char *p = json; *p;) {
        const char *hit = strstr(p, "PORT");
        if (!hit) {
            strcat(final, p);
            break;
        }
        strncat(final, p, (size_t)(hit - p));
        strcat(final, port);
        p = hit + 4;
    }
    FILE *f = fopen(path, "w");
    fputs(final, f);
    fclose(f);
    char err[256];
    struct cfg *c = NULL;
    if (cfg_load(path, NULL, err, sizeof err, &c) != ERR_OK)
        fail_msg("config: %s", err);
    struct agent_pool *p = NULL;
    assert_int_equal(agent_pool_new(c, &p), ERR_OK);
    *ret_cfg = c;
    return p;
}

#define BE(name, tier, model, extra)                                                                    \
    "{\"name\": \"" name "\", \"tier\": \"" tier "\", \"url\": \"http://127.0.0.1:PORT\", \"model\": \"" model \
    "\"" extra "}"

/* Waits for one call's completion. */
struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    struct agent_llm_result res;
    char content[4096];
    char backend[32];
    int64_t done_us;
};

static void on_done(void *ud, const struct agent_llm_result *res) {
    struct waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->res = *res;
    snprintf(w->content, sizeof w->content, "%s", res->content ? res->content : "");
    snprintf(w->backend, sizeof w->backend, "%s", res->backend ? res->backend : "");
    w->res.content = w->content;
    w->res.backend = w->backend;
    w->done = true;
    w->done_us = clock_us();
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_init(struct waiter *w) {
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void wait_for(struct waiter *w) {
    pthread_mutex_lock(&w->mu);
    int64_t until = clock_us() + 15 * 1000000LL;
    while (!w->done && clock_us() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    assert_true(w->done);
}

static const char *user_prompt = "Passages:\n[1] The harbour office opens at seven in the morning.\n"
                                 "[2] Ferries leave every two hours from pier four.\n\n"
                                 "Question: When does the harbour office open?\nAnswer:";

static enum err chat(struct agent_pool *p, const char *tier, bool stream, int deadline_ms, struct waiter *w) {
    waiter_init(w);
    struct agent_llm_call call = {.tier = tier, .system = "Answer from the passages.", .user = user_prompt,
                                  .max_tokens = 64, .stream = stream,
                                  .deadline_us = clock_us() + (int64_t)deadline_ms * 1000};
    enum err e = agent_pool_chat(p, &call, on_done, w);
    if (e == ERR_OK)
        wait_for(w);
    return e;
}

static void test_answers_streaming_and_not(void **state) {
    (void)state;
    struct cfg *c;
    struct agent_pool *p = make_pool(BE("g", "medium", "good", ", \"price_in_per_1k\": 1.0, \"price_out_per_1k\": 2.0"), &c);
    struct waiter plain, streamed;
    assert_int_equal(chat(p, "medium", false, 5000, &plain), ERR_OK);
    assert_int_equal(plain.res.err, ERR_OK);
    assert_non_null(strstr(plain.content, "seven in the morning"));
    assert_non_null(strstr(plain.content, "[1]"));
    assert_false(plain.res.usage_estimated);
    assert_true(plain.res.prompt_tokens > 0 && plain.res.completion_tokens > 0);
    double want = plain.res.prompt_tokens / 1000.0 * 1.0 + plain.res.completion_tokens / 1000.0 * 2.0;
    assert_true(plain.res.cost > want - 1e-9 && plain.res.cost < want + 1e-9);
    assert_string_equal(plain.backend, "g");
    assert_int_equal(plain.res.attempts, 1);

    assert_int_equal(chat(p, "medium", true, 5000, &streamed), ERR_OK);
    assert_int_equal(streamed.res.err, ERR_OK);
    assert_string_equal(streamed.content, plain.content); /* same answer, reassembled from SSE deltas */
    assert_int_equal(streamed.res.completion_tokens, plain.res.completion_tokens);

    /* a tier with no backend is refused at once */
    struct waiter w;
    assert_int_equal(chat(p, "large", false, 5000, &w), ERR_UNAVAILABLE);
    agent_pool_free(p);
    cfg_unref(c);
}

static void test_faults(void **state) {
    (void)state;
    struct cfg *c;
    struct agent_pool *p = make_pool(BE("e", "small", "e500", ", \"max_retries\": 2, \"breaker_failures\": 100") ","
                                     BE("j", "medium", "junk", ", \"max_retries\": 2") ","
                                     BE("d", "large", "drop", ", \"max_retries\": 1"), &c);
    struct waiter w;
    /* 500: retried, then a clear error */
    assert_int_equal(chat(p, "small", false, 5000, &w), ERR_OK);
    assert_int_equal(w.res.err, ERR_BACKEND);
    assert_int_equal(w.res.http_status, 500);
    assert_int_equal(w.res.attempts, 3);
    assert_non_null(strstr(w.res.errmsg, "HTTP 500"));
    /* malformed JSON: not retried */
    assert_int_equal(chat(p, "medium", false, 5000, &w), ERR_OK);
    assert_int_equal(w.res.err, ERR_BACKEND);
    assert_int_equal(w.res.attempts, 1);
    assert_non_null(strstr(w.res.errmsg, "not valid JSON"));
    /* dropped connection: retried once, then an error */
    assert_int_equal(chat(p, "large", false, 5000, &w), ERR_OK);
    assert_int_equal(w.res.err, ERR_BACKEND);
    if (w.res.attempts != 2)
        fail_msg("drop: attempts %d: %s", w.res.attempts, w.res.errmsg);
    struct agent_backend_health h[4];
    size_t n = agent_pool_health(p, h, 4);
    assert_int_equal(n, 3);
    assert_int_equal(h[0].retries, 2);
    assert_int_equal(h[0].failures, 3);
    agent_pool_free(p);
    cfg_unref(c);

    p = make_pool(BE("r", "small", "r429", ", \"max_retries\": 1") "," BE("h", "medium", "hang", "") ","
                  BE("s", "large", "stall", ""), &c);
    assert_int_equal(chat(p, "small", false, 5000, &w), ERR_OK);
    assert_int_equal(w.res.http_status, 429);
    assert_int_equal(w.res.attempts, 2);
    /* a backend that never answers: the call ends at its deadline */
    int64_t t0 = clock_us();
    assert_int_equal(chat(p, "medium", false, 300, &w), ERR_OK);
    assert_int_equal(w.res.err, ERR_DEADLINE);
    double ms = (double)(w.done_us - t0) / 1000.0;
    assert_true(ms >= 290 && ms < 1000);
    /* a stream that stalls mid-way: same */
    t0 = clock_us();
    assert_int_equal(chat(p, "large", true, 300, &w), ERR_OK);
    assert_int_equal(w.res.err, ERR_DEADLINE);
    ms = (double)(w.done_us - t0) / 1000.0;
    assert_true(ms >= 290 && ms < 1000);
    agent_pool_free(p);
    cfg_unref(c);
}

static void test_breaker(void **state) {
    (void)state;
    struct cfg *c;
    struct agent_pool *p =
        make_pool(BE("e", "small", "e500", ", \"max_retries\": 0, \"breaker_failures\": 2, \"breaker_cooldown_ms\": 300"),
                  &c);
    struct waiter w;
    assert_int_equal(chat(p, "small", false, 5000, &w), ERR_OK);
    assert_int_equal(chat(p, "small", false, 5000, &w), ERR_OK);
    struct agent_backend_health h;
    agent_pool_health(p, &h, 1);
    assert_int_equal(h.breaker, AGENT_BREAKER_OPEN);
    /* open: refused without a network call */
    assert_int_equal(chat(p, "small", false, 5000, &w), ERR_UNAVAILABLE);
    assert_false(agent_pool_has_tier(p, "small"));
    usleep(350 * 1000);
    agent_pool_health(p, &h, 1);
    assert_int_equal(h.breaker, AGENT_BREAKER_HALF_OPEN);
    /* the half-open probe fails: open again */
    assert_int_equal(chat(p, "small", false, 5000, &w), ERR_OK);
    assert_int_equal(w.res.err, ERR_BACKEND);
    agent_pool_health(p, &h, 1);
    assert_int_equal(h.breaker, AGENT_BREAKER_OPEN);
    assert_int_equal(h.calls, 3);
    agent_pool_free(p);
    cfg_unref(c);

    /* a good backend closes again after its probe */
    p = make_pool(BE("g", "small", "good", ", \"breaker_failures\": 1, \"breaker_cooldown_ms\": 100"), &c);
    assert_int_equal(chat(p, "small", false, 5000, &w), ERR_OK);
    assert_int_equal(w.res.err, ERR_OK);
    agent_pool_health(p, &h, 1);
    assert_int_equal(h.breaker, AGENT_BREAKER_CLOSED);
    agent_pool_free(p);
    cfg_unref(c);
}

/* Four calls to a backend limited to one at a time queue and run in turn,
 * each reporting how long it waited for the slot; raising the limit at runtime lets the queue drain in parallel, and a
 * backend removed at runtime finishes what it has in flight. */
static void test_queue_and_reconfigure(void **state) {
    (void)state;
    struct cfg *c;
    struct agent_pool *p = make_pool(BE("s", "medium", "slow", ", \"max_concurrency\": 1"), &c);
    struct waiter w[4];
    int64_t t0 = clock_us();
    for (int i = 0; i < 4; i++) {
        waiter_init(&w[i]);
        struct agent_llm_call call = {.tier = "medium", .user = user_prompt, .max_tokens = 16,
                                      .deadline_us = clock_us() + 10 * 1000000LL};
        assert_int_equal(agent_pool_chat(p, &call, on_done, &w[i]), ERR_OK);
    }
    usleep(50 * 1000);
    struct agent_backend_health h;
    agent_pool_health(p, &h, 1);
    assert_int_equal(h.in_flight, 1);
    assert_int_equal(h.queued, 3);
    for (int i = 0; i < 4; i++)
        wait_for(&w[i]);
    double serial_ms = (double)(clock_us() - t0) / 1000.0;
    assert_true(serial_ms >= 4 * 190); /* one at a time */
    for (int i = 0; i < 4; i++)
        assert_int_equal(w[i].res.err, ERR_OK);
    /* each waited for the ones before it: its wait is their calls' time,
     * give or take a few ms a call (the next starts as soon as one ends) */
    double before = 0;
    for (int i = 0; i < 4; i++) {
        print_message("call %d: waited %.1f ms for the slot, ran %.1f ms\n", i, w[i].res.wait_ms, w[i].res.ms);
        assert_true(w[i].res.wait_ms >= before - 5 && w[i].res.wait_ms <= before + 5 * (i + 1));
        before += w[i].res.ms;
    }

    /* now raise the limit while the calls wait */
    t0 = clock_us();
    for (int i = 0; i < 4; i++) {
        waiter_init(&w[i]);
        struct agent_llm_call call = {.tier = "medium", .user = user_prompt, .max_tokens = 16,
                                      .deadline_us = clock_us() + 10 * 1000000LL};
        assert_int_equal(agent_pool_chat(p, &call, on_done, &w[i]), ERR_OK);
    }
    struct cfg *c2 = NULL;
    char err[256];
    struct cfg_overrides none = {0};
    (void)none;
    c->backends[0].max_concurrency = 4;
    agent_pool_reconfigure(p, c);
    for (int i = 0; i < 4; i++)
        wait_for(&w[i]);
    double parallel_ms = (double)(clock_us() - t0) / 1000.0;
    assert_true(parallel_ms < 3 * 200); /* not serial any more */

    /* remove the backend with a call in flight: that call still completes */
    waiter_init(&w[0]);
    struct agent_llm_call call = {.tier = "medium", .user = user_prompt, .max_tokens = 16,
                                  .deadline_us = clock_us() + 10 * 1000000LL};
    assert_int_equal(agent_pool_chat(p, &call, on_done, &w[0]), ERR_OK);
    usleep(50 * 1000);
    assert_int_equal(cfg_load(NULL, NULL, err, sizeof err, &c2), ERR_OK); /* no backends */
    agent_pool_reconfigure(p, c2);
    wait_for(&w[0]);
    assert_int_equal(w[0].res.err, ERR_OK);
    struct waiter none_left;
    assert_int_equal(chat(p, "medium", false, 1000, &none_left), ERR_UNAVAILABLE);
    agent_pool_health(p, &h, 1);
    assert_true(h.retired);
    agent_pool_free(p);
    cfg_unref(c);
    cfg_unref(c2);
}

/* Freeing the pool with calls queued and running completes each exactly
 * once with ERR_UNAVAILABLE (ASan checks nothing leaks). */
static void test_shutdown_with_calls_pending(void **state) {
    (void)state;
    struct cfg *c;
    struct agent_pool *p = make_pool(BE("s", "medium", "slow", ", \"max_concurrency\": 1"), &c);
    struct waiter w[3];
    for (int i = 0; i < 3; i++) {
        waiter_init(&w[i]);
        struct agent_llm_call call = {.tier = "medium", .user = user_prompt, .max_tokens = 16,
                                      .deadline_us = clock_us() + 10 * 1000000LL};
        assert_int_equal(agent_pool_chat(p, &call, on_done, &w[i]), ERR_OK);
    }
    usleep(50 * 1000);
    agent_pool_free(p);
    for (int i = 0; i < 3; i++) {
        assert_true(w[i].done);
        assert_int_equal(w[i].res.err, ERR_UNAVAILABLE);
    }
    cfg_unref(c);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_streaming_and_not),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_breaker),
        cmocka_unit_test(test_queue_and_reconfigure),
        cmocka_unit_test(test_shutdown_with_calls_pending),
    };
    int rc = cmocka_run_group_tests_name("backend", tests, start_sim, stop_sim);
    curl_global_cleanup();
    return rc;
}
