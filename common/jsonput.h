/* jsonput.h - filling a jansson object field by field, without json_pack.
 *
 * json_pack parses its format string on every call and checks every key
 * and value for UTF-8: a ten-field object cost 13,600 instructions built
 * and freed that way against 7,400 set field by field (callgrind), and an
 * answer's response is about a hundred fields.  Keys here are the
 * caller's constants and are not checked; jput_str checks its value (text
 * from documents, questions and backends), jput_name does not (the
 * program's own names: tiers, modes, intents).
 *
 * Each returns 0, or -1 when the value could not be made (out of memory,
 * invalid UTF-8): callers add the results up and drop the object when the
 * sum is not 0, as json_pack returns NULL.  Header-only: common/ does not
 * link jansson; its users do. */
#ifndef SLORAG_JSONPUT_H
#define SLORAG_JSONPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

/* Takes v (NULL: fails). */
static inline int jput(json_t *o, const char *key, json_t *v) {
    return json_object_set_new_nocheck(o, key, v);
}

/* s checked for UTF-8; NULL is null. */
static inline int jput_str(json_t *o, const char *key, const char *s) {
    return jput(o, key, s ? json_string(s) : json_null());
}

/* One of the program's own names (ASCII); NULL is null. */
static inline int jput_name(json_t *o, const char *key, const char *s) {
    return jput(o, key, s ? json_stringn_nocheck(s, strlen(s)) : json_null());
}

static inline int jput_int(json_t *o, const char *key, json_int_t v) {
    return jput(o, key, json_integer(v));
}

static inline int jput_real(json_t *o, const char *key, double v) {
    return jput(o, key, json_real(v));
}

static inline int jput_bool(json_t *o, const char *key, bool v) {
    return jput(o, key, json_boolean(v));
}

/* o when every put into it succeeded (failed == 0), else NULL (o freed). */
static inline json_t *jput_done(json_t *o, int failed) {
    if (o && failed == 0)
        return o;
    json_decref(o);
    return NULL;
}

#endif
