/* sse.c - see sse.h. */
#include "sse.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The end of the event starting at s (within n bytes): the offset just past
 * its blank line, or 0 when the event is not complete yet. */
static size_t event_end(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n' && i + 1 < n && s[i + 1] == '\n')
            return i + 2;
        if (s[i] == '\r') {
            /* CR LF CR LF, or CR CR */
            if (i + 3 < n && s[i + 1] == '\n' && s[i + 2] == '\r' && s[i + 3] == '\n')
                return i + 4;
            if (i + 1 < n && s[i + 1] == '\r')
                return i + 2;
            /* CR LF followed by LF: a blank line in mixed endings */
            if (i + 2 < n && s[i + 1] == '\n' && s[i + 2] == '\n')
                return i + 3;
        }
    }
    return 0;
}

static void handle_data(struct sse_reader *r, const char *d, size_t n) {
    if (n == 6 && memcmp(d, "[DONE]", 6) == 0) {
        r->done = true;
        return;
    }
    json_t *ev = json_loadb(d, n, 0, NULL);
    if (!ev)
        return;
    json_t *delta = json_object_get(json_array_get(json_object_get(ev, "choices"), 0), "delta");
    json_t *piece = json_object_get(delta, "content");
    if (json_is_string(piece) && json_string_length(piece) > 0 && r->on_content)
        r->on_content(r->ud, json_string_value(piece), json_string_length(piece));
    json_t *usage = json_object_get(ev, "usage");
    json_t *pt = json_object_get(usage, "prompt_tokens"), *ct = json_object_get(usage, "completion_tokens");
    if (json_is_integer(pt) && json_is_integer(ct) && json_integer_value(pt) >= 0 && json_integer_value(ct) >= 0 &&
        json_integer_value(pt) < (1 << 30) && json_integer_value(ct) < (1 << 30)) {
        r->prompt_tokens = (int)json_integer_value(pt);
        r->completion_tokens = (int)json_integer_value(ct);
    }
    json_decref(ev);
}

/* One complete event: its data lines joined with LF. */
static void handle_event(struct sse_reader *r, const char *s, size_t n) {
    char *data = NULL;
    size_t dlen = 0;
    bool have = false;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j] != '\n' && s[j] != '\r')
            j++;
        const char *line = s + i;
        size_t ll = j - i;
        if (ll >= 5 && memcmp(line, "data:", 5) == 0) {
            const char *v = line + 5;
            size_t vl = ll - 5;
            if (vl && *v == ' ')
                v++, vl--;
            char *nd = realloc(data, dlen + vl + 2);
            if (!nd) {
                free(data);
                return;
            }
            data = nd;
            if (have)
                data[dlen++] = '\n';
            memcpy(data + dlen, v, vl);
            dlen += vl;
            have = true;
        }
        /* next line: CR LF counts as one ending */
        if (j < n && s[j] == '\r' && j + 1 < n && s[j + 1] == '\n')
            j++;
        i = j + 1;
    }
    if (have)
        handle_data(r, data, dlen);
    free(data);
}

void sse_read(struct sse_reader *r, const char *buf, size_t len) {
    while (r->pos < len && !r->done) {
        size_t end = event_end(buf + r->pos, len - r->pos);
        if (end == 0)
            return;
        handle_event(r, buf + r->pos, end);
        r->pos += end;
    }
}
