/* key.c - see key.h.  Entries are sorted by normalised question and found
 * by binary search; a question asked twice in the file keeps the entry
 * that comes first in it. */
#include "key.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sim_key {
    struct sim_key_entry *entries;
    size_t n;
};

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static char fold(char c) {
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Case folded, white space runs as one space, trimmed; malloc'd. */
static char *normalise(const char *s, size_t n) {
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        if (is_space(s[i])) {
            space = true;
            continue;
        }
        if (space && o)
            out[o++] = ' ';
        space = false;
        out[o++] = fold(s[i]);
    }
    out[o] = '\0';
    return out;
}

static void fail(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(char *errbuf, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static void entry_done(struct sim_key_entry *e) {
    free(e->question);
    for (size_t i = 0; i < e->nanswers; i++)
        free(e->answers[i]);
}

struct sim_key *sim_key_free(struct sim_key *k) {
    if (k) {
        for (size_t i = 0; i < k->n; i++)
            entry_done(&k->entries[i]);
        free(k->entries);
        free(k);
    }
    return NULL;
}

size_t sim_key_count(const struct sim_key *k) {
    return k ? k->n : 0;
}

static int by_question(const void *a, const void *b) {
    const struct sim_key_entry *x = a, *y = b;
    return strcmp(x->question, y->question);
}

static int by_question_then_order(const void *a, const void *b) {
    const struct sim_key_entry *x = a, *y = b;
    int c = strcmp(x->question, y->question);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* One qas[] element into *e; 0, or -1 with a message (ERR_NOMEM: -2). */
static int load_qa(json_t *qa, const char *where, struct sim_key_entry *e, char *errbuf, size_t errlen) {
    memset(e, 0, sizeof *e);
    json_t *q = json_object_get(qa, "question");
    if (!json_is_string(q)) {
        fail(errbuf, errlen, "%s.question: must be a string", where);
        return -1;
    }
    e->question = normalise(json_string_value(q), json_string_length(q));
    if (!e->question)
        return -2;
    json_t *imp = json_object_get(qa, "is_impossible");
    if (imp && !json_is_boolean(imp)) {
        fail(errbuf, errlen, "%s.is_impossible: must be true or false", where);
        return -1;
    }
    json_t *answers = json_object_get(qa, "answers");
    if (answers && !json_is_array(answers)) {
        fail(errbuf, errlen, "%s.answers: must be an array", where);
        return -1;
    }
    size_t i;
    json_t *a;
    json_array_foreach(answers, i, a) {
        json_t *t = json_object_get(a, "text");
        if (!json_is_string(t)) {
            fail(errbuf, errlen, "%s.answers[%zu].text: must be a string", where, i);
            return -1;
        }
        if (e->nanswers == SIM_KEY_MAX_ANSWERS || json_string_length(t) == 0)
            continue;
        if (!(e->answers[e->nanswers] = strdup(json_string_value(t))))
            return -2;
        e->nanswers++;
    }
    e->impossible = json_is_true(imp) || e->nanswers == 0;
    return 0;
}

enum err sim_key_load(const char *path, char *errbuf, size_t errlen, struct sim_key **ret_key) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        fail(errbuf, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return ERR_CONFIG;
    }
    struct sim_key *k = calloc(1, sizeof *k);
    size_t cap = 0;
    enum err e = k ? ERR_OK : ERR_NOMEM;
    json_t *data = json_object_get(root, "data");
    if (!e && !json_is_array(data)) {
        fail(errbuf, errlen, "%s: data: must be an array (a SQuAD v1.1 or v2.0 file)", path);
        e = ERR_CONFIG;
    }
    size_t ai, pi, qi;
    json_t *art, *par, *qa;
    json_array_foreach(data, ai, art) {
        json_array_foreach(json_object_get(art, "paragraphs"), pi, par) {
            json_array_foreach(json_object_get(par, "qas"), qi, qa) {
                if (e)
                    break;
                if (k->n == SIM_KEY_MAX_ENTRIES) {
                    fail(errbuf, errlen, "%s: more than %d questions", path, SIM_KEY_MAX_ENTRIES);
                    e = ERR_CONFIG;
                    break;
                }
                if (k->n == cap) {
                    size_t ncap = cap ? cap * 2 : 256;
                    struct sim_key_entry *ne = realloc(k->entries, ncap * sizeof *ne);
                    if (!ne) {
                        e = ERR_NOMEM;
                        break;
                    }
                    k->entries = ne;
                    cap = ncap;
                }
                char where[96];
                snprintf(where, sizeof where, "data[%zu].paragraphs[%zu].qas[%zu]", ai, pi, qi);
                char msg[160];
                int rc = load_qa(qa, where, &k->entries[k->n], msg, sizeof msg);
                if (rc) {
                    entry_done(&k->entries[k->n]);
                    if (rc == -1)
                        fail(errbuf, errlen, "%s: %s", path, msg);
                    e = rc == -1 ? ERR_CONFIG : ERR_NOMEM;
                    break;
                }
                k->entries[k->n].order = k->n;
                k->n++;
            }
        }
    }
    json_decref(root);
    if (e) {
        sim_key_free(k);
        return e;
    }
    qsort(k->entries, k->n, sizeof *k->entries, by_question_then_order);
    size_t w = 0;
    for (size_t r = 0; r < k->n; r++) {
        if (w && strcmp(k->entries[w - 1].question, k->entries[r].question) == 0) {
            entry_done(&k->entries[r]);
            continue;
        }
        k->entries[w++] = k->entries[r];
    }
    k->n = w;
    *ret_key = k;
    return ERR_OK;
}

const struct sim_key_entry *sim_key_find(const struct sim_key *k, const char *q, size_t n) {
    if (!k || !k->n)
        return NULL;
    char *norm = normalise(q, n);
    if (!norm)
        return NULL;
    struct sim_key_entry probe = {.question = norm};
    const struct sim_key_entry *hit = bsearch(&probe, k->entries, k->n, sizeof *k->entries, by_question);
    free(norm);
    return hit;
}

long sim_key_locate(const char *hay, size_t n, const char *needle) {
    while (is_space(*needle))
        needle++;
    if (!*needle)
        return -1;
    for (size_t start = 0; start < n; start++) {
        size_t h = start;
        const char *p = needle;
        while (*p && h < n) {
            if (is_space(*p)) {
                if (!is_space(hay[h]))
                    break;
                while (is_space(*p))
                    p++;
                while (h < n && is_space(hay[h]))
                    h++;
                continue;
            }
            if (fold(*p) != fold(hay[h]))
                break;
            p++, h++;
        }
        while (is_space(*p))
            p++; /* trailing white space in the needle */
        if (!*p)
            return (long)start;
    }
    return -1;
}
