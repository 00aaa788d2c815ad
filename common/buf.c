/* buf.c - capped byte buffer (see buf.h). */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

void buf_init(struct buf *b, size_t max) {
    *b = (struct buf){.max = max};
}

void buf_done(struct buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *buf_steal(struct buf *b) {
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

static enum err reserve(struct buf *b, size_t extra) {
    if (extra > b->max || b->len > b->max - extra) {
        buf_done(b);
        return ERR_TOO_LARGE;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return ERR_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->data, cap);
    if (!p) {
        buf_done(b);
        return ERR_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return ERR_OK;
}

enum err buf_append(struct buf *b, const void *p, size_t n) {
    enum err e = reserve(b, n);
    if (e)
        return e;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return ERR_OK;
}

enum err buf_puts(struct buf *b, const char *s) {
    return buf_append(b, s, strlen(s));
}

enum err buf_put_int(struct buf *b, long long v) {
    char s[24], *p = s + sizeof s;
    unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return buf_append(b, p, (size_t)(s + sizeof s - p));
}

enum err buf_printf(struct buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ERR_INTERNAL;
    enum err e = reserve(b, (size_t)n);
    if (e)
        return e;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return ERR_OK;
}

/* The length of s's leading run of bytes JSON can carry as they are (not
 * a control byte, '"' or '\\'): 16 bytes a step with SSE2. */
static size_t json_plain_run(const unsigned char *s, size_t n) {
    size_t i = 0;
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1f);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl)); /* v <= 0x1f */
        int bits = _mm_movemask_epi8(m);
        if (bits)
            return i + (size_t)__builtin_ctz((unsigned)bits);
    }
#endif
    while (i < n && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

enum err buf_json_str(struct buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF"; /* as jansson writes them (orchestrator/jsonw.h) */
    const unsigned char *u = (const unsigned char *)s;
    enum err e = reserve(b, n < SIZE_MAX - 2 ? n + 2 : n);
    if (e)
        return e;
    size_t i = json_plain_run(u, n);
    if (i == n) { /* the common case: nothing to escape, room reserved */
        char *d = b->data + b->len;
        d[0] = '"';
        memcpy(d + 1, s, n);
        d[n + 1] = '"';
        d[n + 2] = '\0';
        b->len += n + 2;
        return ERR_OK;
    }
    e = buf_append(b, "\"", 1);
    if (!e)
        e = buf_append(b, s, i);
    while (!e && i < n) {
        unsigned char c = u[i++];
        switch (c) {
        case '"': e = buf_append(b, "\\\"", 2); break;
        case '\\': e = buf_append(b, "\\\\", 2); break;
        case '\n': e = buf_append(b, "\\n", 2); break;
        case '\r': e = buf_append(b, "\\r", 2); break;
        case '\t': e = buf_append(b, "\\t", 2); break;
        case '\b': e = buf_append(b, "\\b", 2); break;
        case '\f': e = buf_append(b, "\\f", 2); break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            e = buf_append(b, esc, 6);
        }
        }
        size_t run = e ? 0 : json_plain_run(u + i, n - i);
        if (run)
            e = buf_append(b, s + i, run);
        i += run;
    }
    if (!e)
        e = buf_append(b, "\"", 1);
    return e;
}
