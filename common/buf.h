/* buf.h - a growable byte buffer with a hard maximum.
 *
 * Every buffer fed from the network has a cap: an append that would exceed
 * it frees the buffer and fails with ERR_TOO_LARGE instead of growing. */
#ifndef SLORAG_BUF_H
#define SLORAG_BUF_H

#include <stddef.h>
#include "err.h"

struct buf {
    char *data;   /* owned; always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max;   /* hard limit on len */
};

void buf_init(struct buf *b, size_t max);
enum err buf_append(struct buf *b, const void *p, size_t n);
enum err buf_puts(struct buf *b, const char *s);
enum err buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One byte: buf_append(b, &c, 1), without the call when there is room. */
static inline enum err buf_putc(struct buf *b, char c) {
    if (b->data && b->len + 2 <= b->cap && b->len < b->max) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return ERR_OK;
    }
    return buf_append(b, &c, 1);
}
/* Appends v in decimal, as "%lld" would, without printf. */
enum err buf_put_int(struct buf *b, long long v);
/* Appends s as a JSON string literal, quotes included. */
enum err buf_json_str(struct buf *b, const char *s, size_t n);
/* Hands the data to the caller (who frees it) and resets the buffer. */
char *buf_steal(struct buf *b);
void buf_done(struct buf *b);

#endif
