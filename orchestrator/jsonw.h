/* jsonw.h - a jansson value written as compact JSON into a buf.
 *
 * The bytes are json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(p))'s
 * (keys in insertion order, reals as "%.*g" with ".0" added to an integral
 * one and the exponent's '+' and leading zeros dropped), at a fraction of
 * the cost: json_dumps prints each container's address into a hash table
 * to detect cycles and formats every real with snprintf; a query's
 * response is a tree of about 20 containers and 30 reals, most of them 0
 * or integral, and these are written without printf where the digits can
 * be had exactly (bench/instructions.sh).  Trees deeper than JSONW_DEPTH_MAX
 * (a cycle among them) fail with ERR_INVALID_FIELD. */
#ifndef SLORAG_JSONW_H
#define SLORAG_JSONW_H

#include <jansson.h>
#include "buf.h"
#include "err.h"

#define JSONW_DEPTH_MAX 256

/* Appends j to b; precision 1..17 (digits of a real).  On failure b may
 * hold part of it. */
enum err jsonw_dump(struct buf *b, const json_t *j, int precision);

/* j as a NUL-terminated string (malloc'd), or NULL: out of memory, or
 * too deep. */
char *jsonw_dumps(const json_t *j, int precision);

#endif
