/* Unit tests for the chat completion stream reader (agents/sse.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "sse.h"

static char got[256];

static void collect(void *ud, const char *t, size_t n) {
    (void)ud;
    strncat(got, t, n < sizeof got - strlen(got) - 1 ? n : sizeof got - strlen(got) - 1);
}

#define CHUNK(c) "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" c "\"}}]}"

static void test_sse_lf_and_usage(void **state) {
    (void)state;
    got[0] = '\0';
    const char s[] = CHUNK("The ") "\n\n" CHUNK("harbour.") "\n\n"
                     "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":4}}\n\n"
                     "data: [DONE]\n\n";
    struct sse_reader r = {.on_content = collect};
    sse_read(&r, s, strlen(s));
    assert_string_equal(got, "The harbour.");
    assert_true(r.done);
    assert_int_equal(r.prompt_tokens, 12);
    assert_int_equal(r.completion_tokens, 4);
    assert_int_equal(r.pos, strlen(s));
}

static void test_sse_incremental_and_line_endings(void **state) {
    (void)state;
    got[0] = '\0';
    /* CR LF events, fed a byte at a time: nothing is read twice or early */
    const char s[] = CHUNK("a") "\r\n\r\n" ": keep-alive\r\n\r\n" CHUNK("b") "\r\r" "data: [DONE]\r\n\r\n";
    struct sse_reader r = {.on_content = collect};
    for (size_t n = 0; n <= strlen(s); n++) {
        sse_read(&r, s, n);
        assert_true(r.pos <= n);
    }
    assert_string_equal(got, "ab");
    assert_true(r.done);
    assert_int_equal(r.prompt_tokens, 0);
}

static void test_sse_partial_and_garbage(void **state) {
    (void)state;
    got[0] = '\0';
    const char s[] = "data: {not json\n\n" "event: ping\n\n" CHUNK("x") "\n";
    struct sse_reader r = {.on_content = collect};
    sse_read(&r, s, strlen(s));
    assert_string_equal(got, "");  /* the last event is not complete */
    assert_false(r.done);
    assert_int_equal(r.pos, strlen("data: {not json\n\n" "event: ping\n\n"));
    /* multi-line data is joined with LF before parsing */
    got[0] = '\0';
    const char m[] = "data: {\"choices\":[{\"delta\":\ndata: {\"content\":\"joined\"}}]}\n\n";
    struct sse_reader r2 = {.on_content = collect};
    sse_read(&r2, m, strlen(m));
    assert_string_equal(got, "joined");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_lf_and_usage),
        cmocka_unit_test(test_sse_incremental_and_line_endings),
        cmocka_unit_test(test_sse_partial_and_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
