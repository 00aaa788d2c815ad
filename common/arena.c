/* arena.c - bump allocator over a list of blocks (see arena.h). */
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 16384
#define ARENA_ALIGN 16

struct block {
    struct block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char mem[];
};

struct arena {
    struct block *head;
    size_t total;     /* bytes handed out, for the cap */
    size_t max_bytes; /* 0 = unlimited */
};

struct arena *arena_new(size_t max_bytes) {
    struct arena *a = calloc(1, sizeof(*a));
    if (a)
        a->max_bytes = max_bytes;
    return a;
}

struct arena *arena_free(struct arena *a) {
    if (!a)
        return NULL;
    for (struct block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(a);
    return NULL;
}

void *arena_alloc(struct arena *a, size_t n) {
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (a->max_bytes && (n > a->max_bytes || a->total > a->max_bytes - n))
        return NULL;
    struct block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        struct block *nb = malloc(sizeof(*nb) + size);
        if (!nb)
            return NULL;
        nb->size = size;
        nb->used = 0;
        /* A big one-off allocation goes behind the current block so the
         * current block's free space stays usable. */
        if (b && size == n && b->size - b->used > 0) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->head = nb;
        }
        b = nb;
    }
    void *p = b->mem + b->used;
    b->used += n;
    a->total += n;
    return p;
}

void *arena_calloc(struct arena *a, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n) {
    char *p = arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *arena_strdup(struct arena *a, const char *s) {
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(struct arena *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

size_t arena_used(const struct arena *a) {
    return a->total;
}
