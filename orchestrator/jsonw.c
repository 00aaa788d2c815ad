/* jsonw.c - compact JSON of a jansson value, written straight into a buf
 * (jsonw.h says why and what bytes). */
#include "jsonw.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Digits of v, most significant first, into the end of out (at least 20
 * bytes); returns where they start. */
static char *utoa_back(uint64_t v, char *end) {
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static const double pow10s[18] = {1,   1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,
                                 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17};

/* "%.*g" of a non-integral v in fixed notation (10^-4 <= |v| <
 * 10^(p-1)), for p <= 9, without printf: the p significant digits are
 * |v| * 10^(p-1-X) rounded, X being v's decimal exponent; the power is
 * exact and the product rounded once, so its error is below 10^-7 when
 * it is under 10^9, and a fraction within 10^-6 of one half (a tie or too
 * near to tell) is left to printf.  Returns the length written to out,
 * or 0 to leave v to printf. */
static int fixed_g(double v, int p, char *out) {
    double a = fabs(v);
    if (p > 9 || !(a >= 1e-4) || a >= pow10s[p - 1])
        return 0;
    int x = p - 2; /* the largest X with 10^X <= a (inexact below 1: checked by the digits) */
    while (x > -4 && a < (x >= 0 ? pow10s[x] : 1.0 / pow10s[-x]))
        x--;
    double m = a * pow10s[p - 1 - x], whole = floor(m), frac = m - whole;
    if (fabs(frac - 0.5) < 1e-6)
        return 0;
    uint64_t digits = (uint64_t)whole + (frac > 0.5);
    if (digits == (uint64_t)pow10s[p]) { /* rounded up to the next power */
        digits /= 10;
        x++;
    }
    if (digits < (uint64_t)pow10s[p - 1] || x >= p - 1)
        return 0; /* the exponent was misjudged, or e-notation: printf */
    char d[20], *dend = d + sizeof d, *ds = utoa_back(digits, dend);
    const char *point = x >= 0 ? ds + x + 1 : ds; /* where the fraction's digits start */
    while (dend > point && dend[-1] == '0') /* %g drops the fraction's trailing zeros */
        dend--;
    int n = 0;
    if (v < 0)
        out[n++] = '-';
    if (x >= 0) {
        memcpy(out + n, ds, (size_t)x + 1);
        n += x + 1;
        out[n++] = '.';
        if (dend - ds == x + 1) /* rounded to an integer: jansson's ".0" */
            out[n++] = '0';
        memcpy(out + n, ds + x + 1, (size_t)(dend - ds - x - 1));
        n += (int)(dend - ds - x - 1);
    } else {
        out[n++] = '0';
        out[n++] = '.';
        for (int z = 0; z < -x - 1; z++)
            out[n++] = '0';
        memcpy(out + n, ds, (size_t)(dend - ds));
        n += (int)(dend - ds);
    }
    return n;
}

/* "%.*g" as jansson finishes it: ".0" after an integral result, no '+'
 * and no leading zeros in the exponent.  Integral values printed in full
 * by "%.*g" (below 10^precision), and most others in fixed notation, skip
 * printf (whose exact conversion costs about 3,000 instructions here). */
static enum err put_real(struct buf *b, double v, int precision) {
    if (v == floor(v) && fabs(v) < pow10s[precision]) {
        char s[32], *end = s + sizeof s;
        *--end = '0';
        *--end = '.';
        char *p = utoa_back((uint64_t)fabs(v), end);
        if (signbit(v))
            *--p = '-';
        return buf_append(b, p, (size_t)(s + sizeof s - p));
    }
    char s[64];
    int n = fixed_g(v, precision, s);
    if (n > 0)
        return buf_append(b, s, (size_t)n);
    n = snprintf(s, sizeof s, "%.*g", precision, v);
    if (n < 0 || (size_t)n >= sizeof s)
        return ERR_INTERNAL;
    char *e = strchr(s, 'e');
    if (!e && !strchr(s, '.')) {
        s[n++] = '.';
        s[n++] = '0';
    } else if (e) { /* "1e+06" -> "1e6", "2.5e-07" -> "2.5e-7" */
        char *d = e + 1, *r = e + 1;
        if (*r == '+')
            r++;
        else if (*r == '-')
            d++, r++;
        while (*r == '0' && r[1])
            r++;
        memmove(d, r, strlen(r) + 1);
        n = (int)strlen(s);
    }
    return buf_append(b, s, (size_t)n);
}

static enum err put_value(struct buf *b, const json_t *j, int precision, int depth) {
    if (depth > JSONW_DEPTH_MAX)
        return ERR_INVALID_FIELD;
    enum err e = ERR_OK;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        e = buf_putc(b, '{');
        const char *key;
        json_t *v;
        bool first = true;
        json_object_foreach((json_t *)j, key, v) {
            if (!e && !first)
                e = buf_putc(b, ',');
            first = false;
            if (!e)
                e = buf_json_str(b, key, strlen(key));
            if (!e)
                e = buf_putc(b, ':');
            if (!e)
                e = put_value(b, v, precision, depth + 1);
            if (e)
                return e;
        }
        return buf_putc(b, '}');
    }
    case JSON_ARRAY: {
        e = buf_putc(b, '[');
        for (size_t i = 0; !e && i < json_array_size(j); i++) {
            if (i)
                e = buf_putc(b, ',');
            if (!e)
                e = put_value(b, json_array_get(j, i), precision, depth + 1);
        }
        return e ? e : buf_putc(b, ']');
    }
    case JSON_STRING: return buf_json_str(b, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return buf_put_int(b, json_integer_value(j));
    case JSON_REAL: return put_real(b, json_real_value(j), precision);
    case JSON_TRUE: return buf_append(b, "true", 4);
    case JSON_FALSE: return buf_append(b, "false", 5);
    case JSON_NULL: return buf_append(b, "null", 4);
    }
    return ERR_INTERNAL;
}

enum err jsonw_dump(struct buf *b, const json_t *j, int precision) {
    if (!j || precision < 1 || precision > 17)
        return ERR_INVALID_FIELD;
    return put_value(b, j, precision, 0);
}

char *jsonw_dumps(const json_t *j, int precision) {
    struct buf b;
    buf_init(&b, SIZE_MAX / 2);
    if (jsonw_dump(&b, j, precision) != ERR_OK) { /* else at least a byte is there */
        buf_done(&b);
        return NULL;
    }
    return buf_steal(&b);
}
