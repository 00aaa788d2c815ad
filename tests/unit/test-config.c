/* Unit tests for config/: loading, validation messages, precedence, snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char path[64];

static const char *write_cfg(const char *json) {
    snprintf(path, sizeof path, "/tmp/slorag-cfg-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    return path;
}

/* Loads json and expects failure with exactly msg. */
static void expect_error(const char *json, const char *msg) {
    char err[256] = "";
    struct cfg *c = NULL;
    assert_int_equal(cfg_load(write_cfg(json), NULL, err, sizeof err, &c), ERR_CONFIG);
    assert_null(c);
    assert_string_equal(err, msg);
    unlink(path);
}

static void test_defaults(void **state) {
    (void)state;
    char err[256];
    struct cfg *c = NULL;
    assert_int_equal(cfg_load(NULL, NULL, err, sizeof err, &c), ERR_OK);
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_int_equal(c->listen_port, 8080);
    assert_string_equal(c->data_dir, "./var");
    assert_int_equal(c->server.workers, 2);
    assert_int_equal(c->server.max_body_bytes, 1L << 20);
    cfg_unref(c);
}

static void test_file_values(void **state) {
    (void)state;
    char err[256];
    struct cfg *c = NULL;
    const char *p = write_cfg("{\"listen\": \"127.0.0.1:9000\", \"data_dir\": \"/tmp/x\","
                              " \"server\": {\"workers\": 3, \"max_body_bytes\": 4096},"
                              " \"query\": {\"min_confidence\": 0.5, \"max_question_bytes\": 100}}");
    assert_int_equal(cfg_load(p, NULL, err, sizeof err, &c), ERR_OK);
    assert_int_equal(c->listen_port, 9000);
    assert_string_equal(c->data_dir, "/tmp/x");
    assert_int_equal(c->server.workers, 3);
    assert_int_equal(c->server.max_body_bytes, 4096);
    assert_true(c->query.min_confidence == 0.5);
    cfg_unref(c);
    unlink(p);
}

static void test_errors(void **state) {
    (void)state;
    expect_error("{\"server\": {\"workers\": 0}}", "server.workers: must be >= 1");
    expect_error("{\"server\": {\"workerz\": 2}}", "server.workerz: unknown key");
    expect_error("{\"colour\": 1}", "colour: unknown key");
    expect_error("{\"server\": {\"workers\": \"2\"}}", "server.workers: must be an integer");
    expect_error("{\"server\": {\"workers\": 2.5}}", "server.workers: must be an integer");
    expect_error("{\"query\": {\"min_confidence\": 1.5}}", "query.min_confidence: must be <= 1");
    expect_error("{\"ledger\": {\"retention_days\": -1}}", "ledger.retention_days: must be >= 0");
    expect_error("{\"ledger\": {\"keep\": 1}}", "ledger.keep: unknown key");
    expect_error("{\"listen\": \"nohost\"}", "listen: must be HOST:PORT with PORT in 0..65535, got \"nohost\"");
    expect_error("{\"log_level\": \"loud\"}", "log_level: must be one of debug, info, warn, error");
    expect_error("[]", "(root): must be an object");
    expect_error("{\"query\": {\"default_k\": 60}}", "query.default_k: must be <= query.max_k (50)");
    expect_error("{\"backends\": [{\"name\": \"a\", \"url\": \"http://x:1\", \"model\": \"m\"},"
                 " {\"name\": \"b\", \"url\": \"http://x:1\", \"model\": \"m\", \"timeout_ms\": 0}]}",
                 "backends[1].timeout_ms: must be >= 1");
    expect_error("{\"backends\": [{\"name\": \"a\", \"url\": \"http://x:1\", \"model\": \"m\", \"colour\": 1}]}",
                 "backends[0].colour: unknown key");
    expect_error("{\"backends\": [{\"name\": \"a\", \"url\": \"ftp://example\", \"model\": \"m\"}]}",
                 "backends[0].url: must start with http:// or https://");
    expect_error("{\"backends\": [{\"name\": \"a\", \"url\": \"http://x\", \"model\": \"m\", \"tier\": \"huge\"}]}",
                 "backends[0].tier: must be one of small, medium, large");
    expect_error("{\"backends\": [{\"name\": \"a\", \"url\": \"http://x\", \"model\": \"m\"},"
                 " {\"name\": \"a\", \"url\": \"http://y\", \"model\": \"m\"}]}",
                 "backends[1].name: \"a\" is already used by backends[0]");
    expect_error("{\"backends\": [{\"name\": \"a\", \"url\": \"http://x\"}]}",
                 "backends[0]: \"name\", \"url\" and \"model\" are required");
    expect_error("{\"query\": {\"default_tier\": \"large\"}}", "query.default_tier: no backend has tier \"large\"");
    expect_error("{\"retrieval\": {\"chunk_tokens\": 20, \"chunk_overlap_tokens\": 20}}",
                 "retrieval.chunk_overlap_tokens: must be < retrieval.chunk_tokens (20)");
}

static void test_backends(void **state) {
    (void)state;
    char err[256];
    struct cfg *c = NULL;
    const char *p = write_cfg("{\"query\": {\"default_tier\": \"small\"}, \"backends\": ["
                              "{\"name\": \"s1\", \"url\": \"http://127.0.0.1:8081\", \"model\": \"small\","
                              " \"tier\": \"small\", \"price_in_per_1k\": 0.0005, \"max_concurrency\": 4}]}");
    assert_int_equal(cfg_load(p, NULL, err, sizeof err, &c), ERR_OK);
    assert_int_equal(c->nbackends, 1);
    assert_string_equal(c->backends[0].name, "s1");
    assert_string_equal(c->backends[0].tier, "small");
    assert_int_equal(c->backends[0].max_concurrency, 4);
    assert_int_equal(c->backends[0].timeout_ms, 30000); /* default */
    assert_true(c->backends[0].price_in_per_1k == 0.0005);
    assert_string_equal(c->query.default_tier, "small");
    cfg_unref(c);
    unlink(p);
}

static void test_syntax_error_has_position(void **state) {
    (void)state;
    char err[256] = "";
    struct cfg *c = NULL;
    const char *p = write_cfg("{\n  \"server\": {,}\n}");
    assert_int_equal(cfg_load(p, NULL, err, sizeof err, &c), ERR_CONFIG);
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s:2:", p);
    assert_memory_equal(err, prefix, strlen(prefix));
    unlink(p);
}

static void test_embedder(void **state) {
    (void)state;
    char err[256];
    struct cfg *c = NULL;
    assert_int_equal(cfg_load(NULL, NULL, err, sizeof err, &c), ERR_OK);
    assert_string_equal(c->embedder.kind, "builtin"); /* no external model needed */
    assert_string_equal(c->embedder.encoding, "float");
    assert_int_equal(c->embedder.batch, 64);
    assert_int_equal(c->embedder.dimension, 0);
    cfg_unref(c);
    const char *p = write_cfg("{\"embedder\": {\"kind\": \"http\", \"url\": \"http://127.0.0.1:8081\","
                              " \"model\": \"nomic-embed-text\", \"encoding\": \"base64\", \"batch\": 16,"
                              " \"timeout_ms\": 5000, \"dimension\": 768, \"api_key_env\": \"EMB_KEY\"}}");
    assert_int_equal(cfg_load(p, NULL, err, sizeof err, &c), ERR_OK);
    assert_string_equal(c->embedder.kind, "http");
    assert_string_equal(c->embedder.model, "nomic-embed-text");
    assert_string_equal(c->embedder.encoding, "base64");
    assert_string_equal(c->embedder.api_key_env, "EMB_KEY");
    assert_int_equal(c->embedder.batch, 16);
    assert_int_equal(c->embedder.timeout_ms, 5000);
    assert_int_equal(c->embedder.dimension, 768);
    cfg_unref(c);
    unlink(path);

    expect_error("{\"embedder\": {\"kind\": \"http\", \"model\": \"m\"}}",
                 "embedder.url: required when kind is \"http\"");
    expect_error("{\"embedder\": {\"kind\": \"http\", \"url\": \"http://x\"}}",
                 "embedder.model: required when kind is \"http\"");
    expect_error("{\"embedder\": {\"kind\": \"http\", \"url\": \"ftp://x\", \"model\": \"m\"}}",
                 "embedder.url: must start with http:// or https://");
    expect_error("{\"embedder\": {\"kind\": \"onnx\"}}", "embedder.kind: must be one of builtin, http");
    expect_error("{\"embedder\": {\"encoding\": \"int8\"}}", "embedder.encoding: must be one of float, base64");
    expect_error("{\"embedder\": {\"batch\": 0}}", "embedder.batch: must be >= 1");
    expect_error("{\"embedder\": {\"batch\": 4096}}", "embedder.batch: must be <= 2048");
    expect_error("{\"embedder\": {\"dimension\": 5000}}", "embedder.dimension: must be <= 4096");
    expect_error("{\"embedder\": {\"dimension\": 768}}",
                 "embedder.dimension: only used when kind is \"http\" (the built-in embedder's is "
                 "retrieval.embedding_dim)");
    expect_error("{\"embedder\": {\"url\": \"http://x\"}}", "embedder.url: only used when kind is \"http\"");
    expect_error("{\"embedder\": {\"dimensions\": 8}}", "embedder.dimensions: unknown key");
    expect_error("{\"embedder\": {\"kind\": \"http\", \"url\": \"http://x\", \"model\": \"m\","
                 " \"connect_timeout_ms\": 9000, \"timeout_ms\": 1000}}",
                 "embedder.connect_timeout_ms: must be <= embedder.timeout_ms (1000)");
}

static void test_precedence(void **state) {
    (void)state;
    char err[256];
    struct cfg *c = NULL;
    const char *p = write_cfg("{\"listen\": \"127.0.0.1:9000\", \"data_dir\": \"/from/file\"}");
    setenv("SLORAG_LISTEN", "127.0.0.1:9100", 1);
    setenv("SLORAG_DATA_DIR", "/from/env", 1);
    struct cfg_overrides ov = {.data_dir = "/from/flag"};
    assert_int_equal(cfg_load(p, &ov, err, sizeof err, &c), ERR_OK);
    assert_int_equal(c->listen_port, 9100);       /* env beats file */
    assert_string_equal(c->data_dir, "/from/flag"); /* flag beats env */
    cfg_unref(c);
    setenv("SLORAG_WORKERS", "zero", 1);
    assert_int_equal(cfg_load(p, NULL, err, sizeof err, &c), ERR_CONFIG);
    assert_string_equal(err, "SLORAG_WORKERS: must be an integer");
    unsetenv("SLORAG_WORKERS");
    unsetenv("SLORAG_LISTEN");
    unsetenv("SLORAG_DATA_DIR");
    struct cfg_overrides bad = {.listen = "127.0.0.1:99999"};
    assert_int_equal(cfg_load(NULL, &bad, err, sizeof err, &c), ERR_CONFIG);
    assert_string_equal(err, "--listen: must be HOST:PORT with PORT in 0..65535, got \"127.0.0.1:99999\"");
    unlink(p);
}

static void test_snapshot_swap(void **state) {
    (void)state;
    char err[256];
    struct cfg *a = NULL, *b = NULL;
    assert_int_equal(cfg_load(NULL, NULL, err, sizeof err, &a), ERR_OK);
    struct cfg_overrides ov = {.listen = "127.0.0.1:1234"};
    assert_int_equal(cfg_load(NULL, &ov, err, sizeof err, &b), ERR_OK);
    struct cfg_slot slot;
    cfg_slot_init(&slot, a);
    struct cfg *held = cfg_slot_get(&slot); /* a request in flight */
    cfg_slot_swap(&slot, b);                /* reload */
    assert_int_equal(held->listen_port, 8080); /* still the old snapshot, still valid */
    struct cfg *now = cfg_slot_get(&slot);
    assert_int_equal(now->listen_port, 1234);
    cfg_unref(now);
    cfg_unref(held); /* last reference to a: freed here (ASan checks) */
    cfg_slot_done(&slot);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),   cmocka_unit_test(test_file_values),
        cmocka_unit_test(test_errors),     cmocka_unit_test(test_syntax_error_has_position),
        cmocka_unit_test(test_backends),   cmocka_unit_test(test_embedder),
        cmocka_unit_test(test_precedence), cmocka_unit_test(test_snapshot_swap),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
