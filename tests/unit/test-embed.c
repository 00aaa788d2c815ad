/* Unit tests for retrieval/embed_http.c: the /v1/embeddings reply parser
 * (order, both encodings, every malformed case, the dimension rule), the
 * options from config, and the transport's error on a closed port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "embed.h"
#include "stem.h"
#include "text.h"

static char err[512];

/* Parses body expecting failure e and a message containing want. */
static void expect_fail(const char *body, size_t n, int dim, enum err e, const char *want) {
    float *v = (float *)(uintptr_t)0x1; /* a failing call never writes its outputs */
    int d = dim;
    err[0] = '\0';
    assert_int_equal(ret_embed_parse_response(body, strlen(body), n, &d, &v, err, sizeof err), e);
    assert_ptr_equal(v, (float *)(uintptr_t)0x1);
    assert_int_equal(d, dim);
    if (!strstr(err, want))
        fail_msg("message \"%s\" does not contain \"%s\"", err, want);
}

static char *b64_of(const float *f, size_t n) {
    unsigned char raw[64];
    assert_true(n * 4 <= sizeof raw);
    for (size_t i = 0; i < n; i++) { /* little-endian whatever the host */
        uint32_t u;
        memcpy(&u, &f[i], 4);
        raw[4 * i] = (unsigned char)u;
        raw[4 * i + 1] = (unsigned char)(u >> 8);
        raw[4 * i + 2] = (unsigned char)(u >> 16);
        raw[4 * i + 3] = (unsigned char)(u >> 24);
    }
    size_t cap = sodium_base64_ENCODED_LEN(n * 4, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(cap);
    sodium_bin2base64(s, cap, raw, n * 4, sodium_base64_VARIANT_ORIGINAL);
    return s;
}

static void test_float_in_index_order(void **state) {
    (void)state;
    /* items out of order, not normalised; usage and model are ignored */
    const char *body = "{\"object\":\"list\",\"data\":["
                       "{\"object\":\"embedding\",\"index\":1,\"embedding\":[0,3,4]},"
                       "{\"object\":\"embedding\",\"index\":0,\"embedding\":[2,0,0]}],"
                       "\"model\":\"m\",\"usage\":{\"prompt_tokens\":2,\"total_tokens\":2}}";
    float *v = NULL;
    int dim = 3;
    assert_int_equal(ret_embed_parse_response(body, strlen(body), 2, &dim, &v, err, sizeof err), ERR_OK);
    assert_int_equal(dim, 3);
    const float want[] = {1, 0, 0, 0, 0.6f, 0.8f};
    for (int i = 0; i < 6; i++)
        assert_float_equal(v[i], want[i], 1e-6);
    free(v);
}

static void test_base64_equals_float(void **state) {
    (void)state;
    const float a[] = {0.25f, -0.5f, 0.125f, 1e-3f}, b[] = {-1.0f, 2.0f, 0.0f, 3.5f};
    char *ea = b64_of(a, 4), *eb = b64_of(b, 4);
    char body[512], fbody[512];
    snprintf(body, sizeof body, "{\"data\":[{\"index\":0,\"embedding\":\"%s\"},{\"index\":1,\"embedding\":\"%s\"}]}",
             ea, eb);
    snprintf(fbody, sizeof fbody,
             "{\"data\":[{\"index\":0,\"embedding\":[0.25,-0.5,0.125,0.001]},"
             "{\"index\":1,\"embedding\":[-1,2,0,3.5]}]}");
    float *v = NULL, *w = NULL;
    int dim = 0, fdim = 4;
    assert_int_equal(ret_embed_parse_response(body, strlen(body), 2, &dim, &v, err, sizeof err), ERR_OK);
    assert_int_equal(dim, 4); /* learned from data[0] */
    assert_int_equal(ret_embed_parse_response(fbody, strlen(fbody), 2, &fdim, &w, err, sizeof err), ERR_OK);
    double norm = 0;
    for (int i = 0; i < 8; i++) {
        assert_float_equal(v[i], w[i], 1e-7);
        if (i < 4)
            norm += (double)v[i] * v[i];
    }
    assert_float_equal(norm, 1.0, 1e-6);
    free(v);
    free(w);
    free(ea);
    free(eb);
}

static void test_malformed(void **state) {
    (void)state;
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":[1,2", 1, 2, ERR_BACKEND, "reply is not JSON");
    expect_fail("<html>502 Bad Gateway</html>", 1, 2, ERR_BACKEND, "reply is not JSON");
    expect_fail("{\"object\":\"list\"}", 1, 2, ERR_BACKEND, "reply has no \"data\" array");
    expect_fail("{\"data\":{}}", 1, 2, ERR_BACKEND, "reply has no \"data\" array");
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":[1,2]}]}", 2, 2, ERR_BACKEND,
                "reply holds 1 embeddings for 2 inputs");
    expect_fail("{\"data\":[{\"embedding\":[1,2]}]}", 1, 2, ERR_BACKEND, "data[0].index: missing or not an integer");
    expect_fail("{\"data\":[{\"index\":\"0\",\"embedding\":[1,2]}]}", 1, 2, ERR_BACKEND,
                "data[0].index: missing or not an integer");
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":[1,2]},{\"index\":2,\"embedding\":[1,2]}]}", 2, 2,
                ERR_BACKEND, "data[1].index: 2 is out of range for 2 inputs");
    expect_fail("{\"data\":[{\"index\":-1,\"embedding\":[1,2]}]}", 1, 2, ERR_BACKEND,
                "data[0].index: -1 is out of range");
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":[1,2]},{\"index\":0,\"embedding\":[1,2]}]}", 2, 2,
                ERR_BACKEND, "data[1].index: 0 appears twice");
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":[1,\"2\"]}]}", 1, 2, ERR_BACKEND,
                "data[0].embedding[1]: not a number");
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":[1,null]}]}", 1, 2, ERR_BACKEND,
                "data[0].embedding[1]: not a number");
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":[]}]}", 1, 2, ERR_BACKEND,
                "data[0].embedding: 0 values, expected 1 to 4096");
    expect_fail("{\"data\":[{\"index\":0}]}", 1, 2, ERR_BACKEND,
                "data[0].embedding: missing, or neither an array nor a base64 string");
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":{\"x\":1}}]}", 1, 2, ERR_BACKEND,
                "data[0].embedding: missing, or neither");
    /* 1e39 overflows float32 */
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":[1,1e39]}]}", 1, 2, ERR_BACKEND,
                "data[0].embedding[1]: not a finite float32");
}

static void test_base64_errors(void **state) {
    (void)state;
    /* 6 bytes: one and a half floats */
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":\"AAAAAAAA\"}]}", 1, 0, ERR_BACKEND,
                "data[0].embedding: base64 decodes to 6 bytes, not a whole number of float32s");
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":\"\"}]}", 1, 0, ERR_BACKEND, "decodes to 0 bytes");
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":\"!!!!\"}]}", 1, 0, ERR_BACKEND,
                "data[0].embedding: not valid base64");
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":\"AAAAAA=\"}]}", 1, 0, ERR_BACKEND, "not valid base64");
    /* NaN and infinity as raw float32 */
    float nan_inf[2] = {NAN, 1.0f};
    char *s = b64_of(nan_inf, 2), body[256];
    snprintf(body, sizeof body, "{\"data\":[{\"index\":0,\"embedding\":\"%s\"}]}", s);
    expect_fail(body, 1, 2, ERR_BACKEND, "data[0].embedding[0]: not a finite float32");
    free(s);
    nan_inf[0] = 1.0f;
    nan_inf[1] = INFINITY;
    s = b64_of(nan_inf, 2);
    snprintf(body, sizeof body, "{\"data\":[{\"index\":0,\"embedding\":\"%s\"}]}", s);
    expect_fail(body, 1, 2, ERR_BACKEND, "data[0].embedding[1]: not a finite float32");
    free(s);
}

static void test_dimension_rule(void **state) {
    (void)state;
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":[1,2,3]}]}", 1, 2, ERR_CONFLICT,
                "embedding dimension changed: the backend returned 3, the index has 2 - re-embed the collection "
                "(see docs/retrieval.md)");
    /* learning: the reply contradicts itself */
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":[1,2,3]},{\"index\":1,\"embedding\":[1,2]}]}", 2, 0,
                ERR_BACKEND, "data[1].embedding: 2 values, but data[0] has 3");
    /* a known dimension and a later item off by one */
    expect_fail("{\"data\":[{\"index\":0,\"embedding\":[1,2]},{\"index\":1,\"embedding\":[1,2,3]}]}", 2, 2,
                ERR_CONFLICT, "the backend returned 3, the index has 2");
}

static void test_opts_from_cfg(void **state) {
    (void)state;
    const char *text = "{\"embedder\": {\"kind\": \"http\", \"url\": \"http://127.0.0.1:9\", \"model\": \"m\","
                       " \"api_key_env\": \"SLORAG_TEST_EMBED_KEY\", \"encoding\": \"base64\", \"dimension\": 64}}";
    char msg[256];
    struct cfg *c = NULL;
    assert_int_equal(cfg_load_text(text, strlen(text), msg, sizeof msg, &c), ERR_OK);
    struct ret_embed_http_opts o;
    bool http = false;
    unsetenv("SLORAG_TEST_EMBED_KEY");
    assert_int_equal(ret_embed_http_opts_from_cfg(c, &o, &http), ERR_CONFIG);
    assert_string_equal(ret_last_error(), "embedder.api_key_env: the environment variable SLORAG_TEST_EMBED_KEY is not set");
    setenv("SLORAG_TEST_EMBED_KEY", "sk-test", 1);
    assert_int_equal(ret_embed_http_opts_from_cfg(c, &o, &http), ERR_OK);
    assert_true(http);
    assert_string_equal(o.api_key, "sk-test");
    assert_true(o.base64);
    assert_int_equal(o.dim, 64);
    assert_int_equal(o.batch, 64);
    cfg_unref(c);
    assert_int_equal(cfg_load_text("{}", 2, msg, sizeof msg, &c), ERR_OK);
    http = true;
    assert_int_equal(ret_embed_http_opts_from_cfg(c, &o, &http), ERR_OK);
    assert_false(http);
    cfg_unref(c);
}

static void test_closed_port(void **state) {
    (void)state;
    struct ret_embedder *e = NULL;
    struct ret_embed_http_opts o = {.url = "http://127.0.0.1:1/", .model = "m", .batch = 4,
                                    .connect_timeout_ms = 1000, .timeout_ms = 2000, .dim = 8};
    assert_int_equal(ret_embedder_http_new(&o, &e), ERR_OK);
    assert_int_equal(e->dim, 8);
    const char *t[] = {"a", ""};
    size_t l[] = {1, 0};
    float v[16];
    ret_clear_error();
    assert_int_equal(ret_embed(e, t, l, 2, v), ERR_BACKEND);
    assert_non_null(strstr(ret_last_error(), "embedding backend http://127.0.0.1:1/v1/embeddings: "));
    assert_string_equal(ret_error_detail(ERR_BACKEND), ret_last_error());
    /* only empty texts: no request, zero vectors */
    v[3] = 1;
    assert_int_equal(ret_embed(e, t + 1, l + 1, 1, v), ERR_OK);
    assert_true(v[3] == 0.0f);
    ret_embedder_free(e);
    /* a dimension-0 embedder cannot learn from a dead port */
    o.dim = 0;
    assert_int_equal(ret_embedder_http_new(&o, &e), ERR_OK);
    assert_int_equal(ret_embedder_http_learn_dim(e), ERR_BACKEND);
    assert_int_equal(e->dim, 0);
    assert_int_equal(ret_embed(e, t, l, 1, v), ERR_INTERNAL);
    ret_embedder_free(e);
    o.batch = 0;
    assert_int_equal(ret_embedder_http_new(&o, &e), ERR_INVALID_FIELD);
    ret_clear_error();
    assert_string_equal(ret_error_detail(ERR_BACKEND), "backend failed");
}

/* The stem cache gives what the stemmer gives: for more words than it has
 * slots (so slots are overwritten), twice over (so the second pass is
 * mostly hits), and for words longer than it keeps. */
static void test_stem_cache(void **state) {
    (void)state;
    struct sb_stemmer *st = sb_stemmer_new("english", "UTF_8"), *ref = sb_stemmer_new("english", "UTF_8");
    assert_non_null(st);
    assert_non_null(ref);
    static const char *const suffix[] = {"", "s", "ing", "ed", "ation", "ness", "ies", "ly"};
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < 12000; i++) {
            char w[160];
            int len = snprintf(w, sizeof w, "w%c%c%dx%s", 'a' + i % 26, 'a' + (i / 26) % 26, i, suffix[i % 8]);
            if (i % 997 == 0) /* past the cache's 30 bytes */
                len += snprintf(w + len, sizeof w - (size_t)len, "%s", "abcdefghijklmnopqrstuvwxyzabcdefghij");
            const char *got = NULL;
            int n = ret_stem(st, w, len, &got);
            const sb_symbol *want = sb_stemmer_stem(ref, (const sb_symbol *)w, len);
            assert_non_null(want);
            assert_int_equal(n, sb_stemmer_length(ref));
            assert_memory_equal(got, want, (size_t)n);
        }
    sb_stemmer_delete(st);
    sb_stemmer_delete(ref);
}

/* The cache keeps a working set that fills 6,000 of its 16,384 slots: a
 * second pass over the same words (in another order) sends few to the
 * stemmer: 138 with four slots a set; a direct-mapped cache of as many
 * slots missed 1,409 here, words sharing a slot evicting each other.  On
 * a thread of its own, so its cache starts empty. */
static void *stem_working_set(void *arg) {
    unsigned *second = arg;
    struct sb_stemmer *st = sb_stemmer_new("english", "UTF_8");
    if (!st)
        return NULL;
    unsigned before = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass)
            before = ret_stem_misses();
        for (int i = 0; i < 6000; i++) {
            int k = pass ? (i * 7919) % 6000 : i;
            char w[32];
            int len = snprintf(w, sizeof w, "k%dq%c", k * 31, 'a' + k % 26);
            const char *got = NULL;
            if (ret_stem(st, w, len, &got) <= 0) {
                sb_stemmer_delete(st);
                return NULL;
            }
        }
    }
    *second = ret_stem_misses() - before;
    sb_stemmer_delete(st);
    return second;
}

static void test_stem_cache_working_set(void **state) {
    (void)state;
    unsigned second = 0;
    void *ok = NULL;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stem_working_set, &second), 0);
    pthread_join(th, &ok);
    assert_non_null(ok);
    print_message("stem cache: %u of 6000 words missed on the second pass\n", second);
    assert_true(second <= 300);
}

/* The reranker skips stemming a passage word whose first byte starts no
 * question stem (agents/rerank.c): that holds only if stemming never
 * changes a word's first byte.  Checked over the exceptions English
 * Snowball knows, initial y, and every word of the shipped datasets. */
static void test_stem_keeps_first_byte(void **state) {
    (void)state;
    struct sb_stemmer *st = sb_stemmer_new("english", "UTF_8");
    assert_non_null(st);
    static const char *const words[] = {"dying", "lying", "tying", "skies", "sky", "news", "howe", "atlas", "cosmos",
                                        "bias", "andes", "gently", "ugly", "early", "only", "singly", "idly", "yelling",
                                        "youth", "yearly", "innings", "outing", "canning", "herring", "earring",
                                        "proceed", "exceed", "succeed", "generate", "communism", "arsenal", "\xc3\xa9t\xc3\xa9s"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        const sb_symbol *s = sb_stemmer_stem(st, (const sb_symbol *)words[i], (int)strlen(words[i]));
        assert_non_null(s);
        assert_true(sb_stemmer_length(st) > 0);
        assert_int_equal(s[0], (unsigned char)words[i][0]);
    }
    const char *root = getenv("SLORAG_SOURCE_ROOT");
    static const char *const files[] = {"tests/data/squad-mini.json", "tests/data/squad-heldout.json"};
    size_t checked = 0;
    for (size_t f = 0; root && f < 2; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", root, files[f]);
        FILE *fp = fopen(path, "rb");
        if (!fp)
            continue;
        char *buf = malloc(1 << 20);
        assert_non_null(buf);
        size_t n = fread(buf, 1, (1 << 20) - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        size_t pos = 0;
        struct text_token t;
        while (text_next_token(buf, n, &pos, &t)) {
            char w[64];
            text_token_lower(buf, &t, w, sizeof w);
            const sb_symbol *s = sb_stemmer_stem(st, (const sb_symbol *)w, (int)strlen(w));
            assert_non_null(s);
            if (sb_stemmer_length(st) > 0 && s[0] != (unsigned char)w[0])
                fail_msg("\"%s\" stems to \"%.*s\"", w, sb_stemmer_length(st), (const char *)s);
            checked++;
        }
        free(buf);
    }
    assert_true(checked > 1000);
    sb_stemmer_delete(st);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_in_index_order), cmocka_unit_test(test_base64_equals_float),
        cmocka_unit_test(test_malformed),            cmocka_unit_test(test_base64_errors),
        cmocka_unit_test(test_dimension_rule),       cmocka_unit_test(test_opts_from_cfg),
        cmocka_unit_test(test_closed_port),
        cmocka_unit_test(test_stem_cache),
        cmocka_unit_test(test_stem_cache_working_set),
        cmocka_unit_test(test_stem_keeps_first_byte),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
