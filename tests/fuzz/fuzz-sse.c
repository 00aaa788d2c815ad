/* fuzz-sse.c - the chat completion stream reader (agents/sse.c).
 *
 * Invariants: it never reads past what it was given, never consumes an
 * incomplete event, and reading the stream in two pieces (split at a point
 * chosen by the first input byte) gives exactly what reading it whole
 * gives: the same content, the same [DONE], the same usage. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

struct out {
    char *text;
    size_t len;
};

static void collect(void *ud, const char *t, size_t n) {
    struct out *o = ud;
    char *nt = realloc(o->text, o->len + n + 1);
    if (!nt)
        abort();
    memcpy(nt + o->len, t, n);
    o->text = nt;
    o->len += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t split = data[0] % size;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if (split > n)
        split = n;

    struct out whole = {0}, parts = {0};
    struct sse_reader a = {.on_content = collect, .ud = &whole};
    sse_read(&a, s, n);
    if (a.pos > n)
        abort();

    struct sse_reader b = {.on_content = collect, .ud = &parts};
    sse_read(&b, s, split);
    if (b.pos > split)
        abort();
    sse_read(&b, s, n);

    if (a.pos != b.pos || a.done != b.done || a.prompt_tokens != b.prompt_tokens ||
        a.completion_tokens != b.completion_tokens || whole.len != parts.len ||
        (whole.len && memcmp(whole.text, parts.text, whole.len) != 0))
        abort();
    free(whole.text);
    free(parts.text);
    return 0;
}
