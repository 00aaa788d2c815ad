/* test-jsonw.c - the compact JSON writer gives json_dumps' bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void) { /* xorshift64 */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A valid UTF-8 string of up to 12 characters: ASCII with its control
 * characters, quotes and backslashes, and two-, three- and four-byte ones. */
static void random_text(char *out, size_t *len) {
    static const char *const pieces[] = {"a", "Z", "0", " ", "\"", "\\", "/", "\n", "\r", "\t", "\b", "\f",
                                         "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xe2\x80\xa8", "\xe6\x97\xa5",
                                         "\xf0\x9f\x98\x80", "{", "}", ":", ","};
    size_t n = next() % 13, l = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = pieces[next() % (sizeof pieces / sizeof pieces[0])];
        memcpy(out + l, p, strlen(p));
        l += strlen(p);
    }
    out[l] = 0;
    *len = l;
}

static double random_real(void) {
    static const double special[] = {0.0, -0.0, 1.0, -1.0, 0.5, 143.0, 999999.0, 1e6, -1e6, 999999.5, 1234567.0,
                                     0.1, 1e-5, 2.5e-7, 1e21, 1e100, -3e-300, DBL_MAX, DBL_MIN, 5e-324,
                                     123456789012345678.0, 99999999999999984.0, 0.000102, 0.579037, 3000.0};
    switch (next() % 5) {
    case 0: return special[next() % (sizeof special / sizeof special[0])];
    case 1: return (double)(int64_t)(next() % 2000001) - 1000000.0; /* integral */
    case 2: return (double)(next() % 100000) / 1000.0;
    case 3: {
        double v;
        do { /* any finite bit pattern */
            uint64_t bits = next();
            memcpy(&v, &bits, sizeof v);
        } while (!isfinite(v));
        return v;
    }
    default: return ((double)(next() % 1000000) / 7.0) * pow(10.0, (double)(int)(next() % 40) - 20.0);
    }
}

static json_t *random_value(int depth) {
    int kind = (int)(next() % (depth > 4 ? 6 : 8));
    char text[64];
    size_t len;
    switch (kind) {
    case 0: return json_true();
    case 1: return json_false();
    case 2: return json_null();
    case 3: {
        static const json_int_t special[] = {0, -1, 1, INT64_MIN, INT64_MAX, 1000000, -999999};
        return json_integer(next() % 3 ? (json_int_t)(next() % 2000001) - 1000000
                                       : special[next() % (sizeof special / sizeof special[0])]);
    }
    case 4: return json_real(random_real());
    case 5: random_text(text, &len); return json_stringn(text, len);
    case 6: {
        json_t *o = json_object();
        for (int i = (int)(next() % 6); i > 0; i--) {
            random_text(text, &len);
            json_object_set_new(o, text, random_value(depth + 1));
        }
        return o;
    }
    default: {
        json_t *a = json_array();
        for (int i = (int)(next() % 6); i > 0; i--)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    }
}

/* Random trees (and bare values) at several precisions: the same bytes
 * as json_dumps with JSON_COMPACT and that precision. */
static void test_same_bytes_as_jansson(void **state) {
    (void)state;
    static const int precisions[] = {6, 17, 1, 4, 10};
    int compared = 0;
    for (int t = 0; t < 4000; t++) {
        json_t *j = random_value(0);
        assert_non_null(j);
        int p = precisions[t % 5];
        char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(p));
        char *got = jsonw_dumps(j, p);
        assert_non_null(want);
        assert_non_null(got);
        if (strcmp(want, got) != 0)
            print_error("precision %d:\n want %s\n got  %s\n", p, want, got);
        assert_string_equal(got, want);
        compared++;
        free(want);
        free(got);
        json_decref(j);
    }
    print_message("%d random values written as json_dumps writes them\n", compared);
}

/* Reals where the writer formats digits itself (fixed notation, up to 9
 * digits): spread over magnitudes, near halfway between two decimals,
 * near powers of ten and next to values that round up to one; each the
 * same as json_dumps at precisions 1 to 10. */
static void test_reals(void **state) {
    (void)state;
    int compared = 0;
    for (int t = 0; t < 100000; t++) {
        double v;
        switch (t % 4) {
        case 0: v = pow(10.0, (double)(next() % 1100000) / 100000.0 - 4.5); break; /* 10^-4.5 .. 10^6.5 */
        case 1: { /* a decimal with a 5 after it: a near tie at some precision */
            int j = (int)(next() % 9);
            v = ((double)(next() % 100000) + 0.5) / pow(10.0, (double)j);
            break;
        }
        case 2: v = pow(10.0, (double)((int)(next() % 11) - 4)) * (1.0 + ((double)(next() % 2001) - 1000.0) * 1e-15); break;
        default: { /* 0.99999951, 99.9996, ...: round up to a power of ten */
            int j = (int)(next() % 10);
            v = (pow(10.0, (double)((int)(next() % 8) - 3)) - pow(10.0, -(double)j) * 0.5) *
                (1.0 + ((double)(next() % 21) - 10.0) * 1e-12);
        }
        }
        if (next() % 2)
            v = -v;
        json_t *j = json_real(v);
        int p = 1 + (int)(next() % 10);
        char *want = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(p));
        char *got = jsonw_dumps(j, p);
        assert_non_null(want);
        assert_non_null(got);
        if (strcmp(want, got) != 0)
            print_error("%.17g at precision %d: want %s, got %s\n", v, p, want, got);
        assert_string_equal(got, want);
        compared++;
        free(want);
        free(got);
        json_decref(j);
    }
    print_message("%d reals written as json_dumps writes them\n", compared);
}

/* Nesting beyond JSONW_DEPTH_MAX fails instead of recursing on; up to it
 * is written. */
static void test_depth_limit(void **state) {
    (void)state;
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < JSONW_DEPTH_MAX; i++) {
        json_t *a = json_array();
        json_array_append_new(cur, a);
        cur = a;
    }
    char *s = jsonw_dumps(root, 6);
    assert_non_null(s);
    assert_int_equal(strlen(s), 2 * (JSONW_DEPTH_MAX + 1));
    free(s);
    json_array_append_new(cur, json_array());
    assert_null(jsonw_dumps(root, 6));
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(jsonw_dump(&b, root, 6), ERR_INVALID_FIELD);
    buf_done(&b);
    assert_int_equal(jsonw_dump(&b, json_null(), 0), ERR_INVALID_FIELD); /* precision out of range */
    json_decref(root);
}

/* A buf's cap is kept: a value too large for it fails with
 * ERR_TOO_LARGE. */
static void test_buf_cap(void **state) {
    (void)state;
    json_t *j = json_pack("{s:s}", "answer", "a fairly long string of text");
    struct buf b;
    buf_init(&b, 16);
    assert_int_equal(jsonw_dump(&b, j, 6), ERR_TOO_LARGE);
    buf_done(&b);
    json_decref(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes_as_jansson),
        cmocka_unit_test(test_reals),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_buf_cap),
    };
    return cmocka_run_group_tests_name("jsonw", tests, NULL, NULL);
}
