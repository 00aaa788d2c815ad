/* Unit tests for common/: errors, capped buffers, arena, UTF-8, text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "text.h"
#include "util.h"

static void test_err_table(void **state) {
    (void)state;
    assert_string_equal(err_name(ERR_BAD_JSON), "invalid_json");
    assert_int_equal(err_http_status(ERR_BAD_JSON), 400);
    assert_int_equal(err_http_status(ERR_TOO_LARGE), 413);
    assert_int_equal(err_http_status(ERR_OVERLOADED), 503);
    assert_int_equal(err_http_status(ERR_METHOD_NOT_ALLOWED), 405);
    assert_int_equal(err_http_status(ERR_INVALID_FIELD), 422);
    /* names are unique */
    for (int i = 0; i < ERR__COUNT; i++)
        for (int j = i + 1; j < ERR__COUNT; j++)
            assert_true(strcmp(err_name(i), err_name(j)) != 0);
    /* out-of-range values map to internal_error rather than reading past the table */
    assert_string_equal(err_name((enum err)999), "internal_error");
}

static void test_buf_cap(void **state) {
    (void)state;
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "abcd", 4), ERR_OK);
    assert_int_equal(buf_append(&b, "efgh", 4), ERR_OK);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "abcdefgh");
    /* one byte over the cap fails and frees */
    assert_int_equal(buf_append(&b, "i", 1), ERR_TOO_LARGE);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    buf_done(&b);
}

static void test_buf_json_str(void **state) {
    (void)state;
    struct buf b;
    buf_init(&b, 1024);
    const char in[] = "a\"b\\c\n\x01z";
    assert_int_equal(buf_json_str(&b, in, sizeof in - 1), ERR_OK);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001z\"");
    buf_done(&b);
    buf_init(&b, 64);
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), ERR_OK);
    assert_string_equal(b.data, "42-x");
    buf_done(&b);
}

/* buf_json_str against a byte-at-a-time reference, on random strings of
 * every length to 70 (both sides of the 16-byte steps), every byte value
 * likely: the escapes may fall anywhere in a step. */
static void test_buf_json_str_random(void **state) {
    (void)state;
    srand(11);
    for (int iter = 0; iter < 20000; iter++) {
        unsigned char in[80];
        size_t n = (size_t)(iter % 71);
        for (size_t i = 0; i < n; i++) {
            int r = rand() % 10;
            in[i] = (unsigned char)(r == 0 ? '"' : r == 1 ? '\\' : r == 2 ? rand() % 0x20 : r == 3 ? 0x80 + rand() % 0x80
                                                                                                : 'a' + rand() % 26);
        }
        char want[600];
        size_t w = 0;
        want[w++] = '"';
        for (size_t i = 0; i < n; i++) {
            unsigned char c = in[i];
            const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
            if (e)
                w += (size_t)sprintf(want + w, "%s", e);
            else if (c < 0x20)
                w += (size_t)sprintf(want + w, "\\u%04X", c);
            else
                want[w++] = (char)c;
        }
        want[w++] = '"';
        want[w] = '\0';
        struct buf b;
        buf_init(&b, 4096);
        assert_int_equal(buf_append(&b, "x", 1), ERR_OK); /* not at the buffer's start */
        assert_int_equal(buf_json_str(&b, (const char *)in, n), ERR_OK);
        assert_int_equal(b.len, w + 1);
        assert_memory_equal(b.data + 1, want, w);
        buf_done(&b);
    }
}

/* text_next_break against a byte-at-a-time scan, from every start. */
static void test_next_break(void **state) {
    (void)state;
    static const char alphabet[] = "ab .!?\n\t";
    srand(5);
    for (int iter = 0; iter < 3000; iter++) {
        char s[80];
        size_t n = (size_t)(iter % 75);
        for (size_t i = 0; i < n; i++)
            s[i] = rand() % 4 ? (char)('a' + rand() % 26) : alphabet[rand() % (sizeof alphabet - 1)];
        for (size_t from = 0; from <= n; from++) {
            size_t want = from;
            while (want < n && !strchr(".!?\n", s[want]))
                want++;
            assert_int_equal(text_next_break(s, from, n), want);
        }
    }
}

static void test_arena(void **state) {
    (void)state;
    struct arena *a = arena_new(100000);
    char *p = arena_alloc(a, 3);
    char *q = arena_alloc(a, 5);
    assert_non_null(p);
    assert_non_null(q);
    assert_int_equal(((uintptr_t)q) % 16, 0);
    assert_string_equal(arena_printf(a, "%s=%d", "k", 7), "k=7");
    char *big = arena_alloc(a, 50000); /* larger than a block */
    assert_non_null(big);
    memset(big, 1, 50000);
    assert_null(arena_alloc(a, 60000)); /* over the cap */
    assert_true(arena_used(a) <= 100000);
    assert_null(arena_free(a));
}

static void test_utf8(void **state) {
    (void)state;
    assert_true(util_utf8_valid("plain", 5));
    const char *mixed = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    assert_true(util_utf8_valid(mixed, strlen(mixed)));
    assert_false(util_utf8_valid(mixed, strlen(mixed) - 1)); /* cut inside the emoji */
    assert_false(util_utf8_valid("\xff", 1));
    assert_false(util_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(util_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(util_utf8_valid("\xe2\x82", 2));         /* truncated */
    assert_false(util_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
}

static void test_hostport(void **state) {
    (void)state;
    char host[64];
    int port = -1;
    assert_true(util_parse_hostport("127.0.0.1:8080", host, sizeof host, &port));
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_true(util_parse_hostport("localhost:0", host, sizeof host, &port));
    assert_int_equal(port, 0);
    assert_false(util_parse_hostport("127.0.0.1", host, sizeof host, &port));
    assert_false(util_parse_hostport("127.0.0.1:70000", host, sizeof host, &port));
    assert_false(util_parse_hostport("127.0.0.1:80x", host, sizeof host, &port));
    assert_true(util_host_is_loopback("127.0.0.1"));
    assert_false(util_host_is_loopback("0.0.0.0"));
}

static void test_text_tokens(void **state) {
    (void)state;
    const char *s = "Hello, Wörld! x2";
    size_t pos = 0;
    struct text_token t = {0};
    char w[32];
    assert_true(text_next_token(s, strlen(s), &pos, &t));
    text_token_lower(s, &t, w, sizeof w);
    assert_string_equal(w, "hello");
    assert_true(text_next_token(s, strlen(s), &pos, &t));
    text_token_lower(s, &t, w, sizeof w);
    assert_string_equal(w, "w\xc3\xb6rld");
    assert_true(text_next_token(s, strlen(s), &pos, &t));
    text_token_lower(s, &t, w, sizeof w);
    assert_string_equal(w, "x2");
    assert_false(text_next_token(s, strlen(s), &pos, &t));
    assert_true(text_is_stopword("the"));
    assert_false(text_is_stopword("paris"));
    /* the fast rejections (first letter, length) never reject a stopword,
     * the list is sorted, and near misses are not stopwords */
    const char *const *list;
    size_t n = text_stopwords(&list);
    assert_true(n > 50);
    for (size_t i = 0; i < n; i++) {
        if (!text_is_stopword(list[i]))
            fail_msg("\"%s\" is on the list but not a stopword", list[i]);
        if (i && strcmp(list[i - 1], list[i]) >= 0)
            fail_msg("the list is not sorted at \"%s\"", list[i]);
        char longer[32];
        snprintf(longer, sizeof longer, "%sz", list[i]);
        assert_false(text_is_stopword(longer));
    }
    assert_false(text_is_stopword(""));
    assert_false(text_is_stopword("because1"));
    assert_false(text_is_stopword("Because")); /* lower-cased words only */
    /* against a plain search of the list, on random words of the
     * stopwords' own letters, up to 9 long */
    unsigned wseed = 99;
    static const char letters[] = "abcdefghimnorstuvwy";
    for (int round = 0; round < 200000; round++) {
        char word[16];
        size_t len = 1 + (size_t)(rand_r(&wseed) % 9);
        for (size_t i = 0; i < len; i++)
            word[i] = letters[rand_r(&wseed) % (sizeof letters - 1)];
        word[len] = 0;
        if (round % 7 == 0) /* a stopword with a letter changed or cut */
            snprintf(word, sizeof word, "%.*s", (int)(strlen(list[round % n]) - (round % 2)), list[round % n]);
        bool listed = false;
        for (size_t i = 0; i < n; i++)
            listed = listed || strcmp(list[i], word) == 0;
        char raw[16]; /* the same word as it may stand in a text: any case */
        size_t wl = strlen(word);
        for (size_t i = 0; i < wl; i++)
            raw[i] = (char)((round >> (i % 8)) & 1 ? word[i] - 32 : word[i]);
        if (text_is_stopword_n(raw, wl) != listed)
            fail_msg("raw \"%.*s\": stopword %d, on the list %d", (int)wl, raw, text_is_stopword_n(raw, wl), listed);
        if (text_is_stopword(word) != listed)
            fail_msg("\"%s\": stopword %d, on the list %d", word, text_is_stopword(word), listed);
    }
    assert_int_equal(text_count_words("  a b\n\tc  ", 10), 3);
    assert_int_equal(text_count_words("\v\fx\ry\x80 \xff", 8), 3);
    /* against the plain definition, on random bytes weighted to spaces
     * and to the bytes beside them (8, 14, 31, 33: the 16-byte path's
     * range test), lengths past several 16-byte blocks */
    static const char pool[] = " \t\n\v\f\rab.\x80\xe9\x08\x0e\x1f!\x7f\xff\x00";
    unsigned seed = 12345;
    for (int round = 0; round < 4000; round++) {
        char buf[200];
        size_t len = (size_t)(round % 200);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = pool[(seed >> 16) % (sizeof pool - 1)];
        }
        size_t want = 0;
        bool in_word = false;
        for (size_t i = 0; i < len; i++) {
            bool sp = strchr(" \t\n\v\f\r", buf[i]) != NULL && buf[i] != '\0';
            want += !sp && !in_word;
            in_word = !sp;
        }
        assert_int_equal(text_count_words(buf, len), want);
    }
}

static void test_random_hex(void **state) {
    (void)state;
    char a[33], b[33];
    util_random_hex(a, 16);
    util_random_hex(b, 16);
    assert_int_equal(strlen(a), 32);
    assert_true(strspn(a, "0123456789abcdef") == 32);
    assert_string_not_equal(a, b);
}

static void test_buf_put_int(void **state) {
    (void)state;
    const long long v[] = {0, 7, -1, 10, -10, 1234567890123LL, 9223372036854775807LL, -9223372036854775807LL - 1};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct buf b;
        buf_init(&b, 64);
        assert_int_equal(buf_put_int(&b, v[i]), ERR_OK);
        char want[32];
        snprintf(want, sizeof want, "%lld", v[i]);
        assert_string_equal(b.data, want);
        buf_done(&b);
    }
}

/* One JSON line a call, fields in order; the time stamp is the call's UTC
 * time to the millisecond, also when the second's text comes from the
 * thread's copy (the second line). */
static void test_log_line(void **state) {
    (void)state;
    char path[] = "/tmp/slorag-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    time_t before = time(NULL);
    for (int i = 0; i < 2; i++)
        log_msg(LOG_WARN, "ev\"x", LOG_S("s", "a\nb"), LOG_S("n", NULL), LOG_I("i", -42),
                LOG_I("big", (long long)(-9223372036854775807LL - 1)), LOG_F("f", 1.5), LOG_END);
    log_msg(LOG_DEBUG, "below the level", LOG_END);
    time_t after = time(NULL);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char text[1024] = {0};
    assert_true(pread(fd, text, sizeof text - 1, 0) > 0);
    close(fd);
    unlink(path);
    const char *tail = "\",\"level\":\"warn\",\"event\":\"ev\\\"x\",\"s\":\"a\\nb\",\"n\":null,\"i\":-42,"
                       "\"big\":-9223372036854775808,\"f\":1.500}\n";
    char *line = text;
    for (int i = 0; i < 2; i++) {
        assert_memory_equal(line, "{\"ts\":\"", 7);
        char *ts = line + 7;
        /* 2026-11-29T16:37:08.123Z */
        assert_int_equal(ts[4], '-');
        assert_int_equal(ts[10], 'T');
        assert_int_equal(ts[19], '.');
        assert_int_equal(ts[23], 'Z');
        struct tm tm = {0};
        assert_non_null(strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm));
        time_t t = timegm(&tm);
        assert_true(t >= before && t <= after);
        assert_true(strspn(ts + 20, "0123456789") == 3);
        char *end = strchr(line, '\n');
        assert_non_null(end);
        assert_true((size_t)(end + 1 - (ts + 24)) == strlen(tail));
        assert_memory_equal(ts + 24, tail, strlen(tail));
        line = end + 1;
    }
    assert_string_equal(line, ""); /* nothing below the level */
}

static void test_request_id(void **state) {
    (void)state;
    struct timespec t0, t1;
    clock_gettime(CLOCK_REALTIME, &t0);
    char a[33], b[33];
    util_request_id(a);
    util_request_id(b);
    clock_gettime(CLOCK_REALTIME, &t1);
    assert_int_equal(strlen(a), 32);
    assert_true(strspn(a, "0123456789abcdef") == 32);
    assert_string_not_equal(a, b);
    char head[13];
    memcpy(head, a, 12);
    head[12] = '\0';
    unsigned long long ms = strtoull(head, NULL, 16);
    assert_true(ms >= (unsigned long long)t0.tv_sec * 1000 + (unsigned long long)t0.tv_nsec / 1000000);
    assert_true(ms <= (unsigned long long)t1.tv_sec * 1000 + (unsigned long long)t1.tv_nsec / 1000000);
    assert_true(memcmp(a, b, 12) <= 0); /* they sort by time */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_table),   cmocka_unit_test(test_buf_cap),   cmocka_unit_test(test_buf_json_str),
        cmocka_unit_test(test_arena),       cmocka_unit_test(test_utf8),      cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_text_tokens), cmocka_unit_test(test_random_hex),  cmocka_unit_test(test_buf_put_int),
        cmocka_unit_test(test_log_line),    cmocka_unit_test(test_request_id), cmocka_unit_test(test_buf_json_str_random),
        cmocka_unit_test(test_next_break),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
