/* arena.h - per-request memory pool.
 *
 * Everything a request allocates comes from its arena and dies with it, in
 * one arena_free().  Allocation is a pointer bump inside 16 KiB blocks (or one
 * block sized to fit a larger request).  An arena has a byte cap so a single
 * request cannot take the process down. */
#ifndef SLORAG_ARENA_H
#define SLORAG_ARENA_H

#include <stddef.h>

struct arena;

struct arena *arena_new(size_t max_bytes);
struct arena *arena_free(struct arena *a); /* NULL-safe, returns NULL */
/* Returns NULL when out of memory or over the arena's cap. */
void *arena_alloc(struct arena *a, size_t n);
void *arena_calloc(struct arena *a, size_t count, size_t size);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t arena_used(const struct arena *a);

#endif
