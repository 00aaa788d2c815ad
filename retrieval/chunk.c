/* chunk.c - paragraph- and sentence-aware chunking.
 *
 * Two passes: first the text is cut into "units" (sentences, headings, list
 * items), each tagged with whether a paragraph break precedes it; then units
 * are packed greedily into chunks.  A single newline inside a paragraph is
 * just a wrapped line, not a boundary.  The unit iterator is public so the
 * extractive answerer cuts sentences exactly as the chunker does.  Offsets always point into the original
 * text so that citations can quote the exact span. */
#include "chunk.h"
#include "text.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct units {
    struct ret_unit *v;
    size_t n, cap;
};

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* A line that starts a new block in Markdown-ish text: heading, list item,
 * table row, code fence. */
static bool starts_block(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i >= n)
        return false;
    char c = s[i];
    if (c == '#' || c == '|' || c == '>' || (c == '`' && i + 2 < n && s[i + 1] == '`' && s[i + 2] == '`'))
        return true;
    if ((c == '-' || c == '*' || c == '+') && i + 1 < n && s[i + 1] == ' ')
        return true;
    size_t j = i;
    while (j < n && s[j] >= '0' && s[j] <= '9')
        j++;
    return j > i && j + 1 < n && (s[j] == '.' || s[j] == ')') && s[j + 1] == ' ';
}

void ret_units_init(struct ret_unit_iter *it, const char *text, size_t len) {
    *it = (struct ret_unit_iter){.text = text, .len = len, .pos = 0, .para = true};
}

/* Trims [*s, *e) of white space; false when nothing is left. */
static bool trim(const char *text, size_t *s, size_t *e) {
    while (*s < *e && is_space(text[*s]))
        (*s)++;
    while (*e > *s && is_space(text[*e - 1]))
        (*e)--;
    return *e > *s;
}

bool ret_units_next(struct ret_unit_iter *it, struct ret_unit *ret) {
    const char *text = it->text;
    size_t len = it->len;
    while (it->pos < len) {
        size_t start = it->pos, end = len, next = len;
        bool para = it->para, next_para = false;
        /* only the bytes below can end a unit: skip to them */
        for (size_t i = text_next_break(text, start, len); i < len; i = text_next_break(text, i + 1, len)) {
            char c = text[i];
            if (c == '\n') {
                size_t j = i + 1;
                while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r'))
                    j++;
                bool blank = j < len && text[j] == '\n';
                if (blank || starts_block(text + i + 1, len - i - 1) || starts_block(text + start, i - start)) {
                    end = i;
                    next = i + 1;
                    next_para = blank;
                    if (blank)
                        while (next < len && is_space(text[next]))
                            next++;
                    break;
                }
            } else if ((c == '.' || c == '!' || c == '?') && i + 1 < len && is_space(text[i + 1])) {
                /* Don't cut after a single capital initial ("J. Smith"). */
                bool initial = i >= 1 && text[i - 1] >= 'A' && text[i - 1] <= 'Z' && (i < 2 || is_space(text[i - 2]));
                if (!initial) {
                    end = i + 1;
                    next = i + 1;
                    break;
                }
            }
        }
        it->pos = next;
        bool nonempty = trim(text, &start, &end);
        /* A paragraph flag survives units that trim to nothing. */
        it->para = next_para || (para && !nonempty);
        if (nonempty) {
            *ret = (struct ret_unit){start, end, text_count_words(text + start, end - start), para};
            return true;
        }
    }
    return false;
}

static enum err split_units(const char *text, size_t len, struct units *u) {
    struct ret_unit_iter it;
    struct ret_unit un;
    ret_units_init(&it, text, len);
    while (ret_units_next(&it, &un)) {
        if (u->n == u->cap) {
            size_t cap = u->cap ? u->cap * 2 : 64;
            struct ret_unit *v = realloc(u->v, cap * sizeof(*v));
            if (!v)
                return ERR_NOMEM;
            u->v = v;
            u->cap = cap;
        }
        u->v[u->n++] = un;
    }
    return ERR_OK;
}

struct spans {
    struct ret_chunk_span *v;
    size_t n, cap;
};

static enum err push_span(struct spans *s, size_t start, size_t end, size_t tokens) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        struct ret_chunk_span *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return ERR_NOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (struct ret_chunk_span){start, end, tokens};
    return ERR_OK;
}

/* Cuts one over-long unit into pieces of at most max words. */
static enum err split_long(const char *text, const struct ret_unit *un, size_t max, struct spans *out) {
    size_t i = un->start, piece = un->start, words = 0;
    bool in_word = false;
    for (; i < un->end; i++) {
        bool sp = is_space(text[i]);
        if (!sp && !in_word) {
            if (words == max) {
                enum err e = push_span(out, piece, i, words);
                if (e)
                    return e;
                piece = i;
                words = 0;
            }
            words++;
        }
        in_word = !sp;
    }
    size_t end = un->end;
    return words ? push_span(out, piece, end, words) : ERR_OK;
}

enum err ret_chunk_text(const char *text, size_t len, int max_tokens, int overlap_tokens,
                        struct ret_chunk_span **ret_spans, size_t *ret_n) {
    if (max_tokens < 1 || overlap_tokens < 0 || overlap_tokens >= max_tokens)
        return ERR_INVALID_FIELD;
    struct units u = {0};
    struct spans out = {0};
    enum err e = split_units(text, len, &u);
    size_t max = (size_t)max_tokens, first = 0; /* first unit of the current chunk */
    size_t tokens = 0;
    for (size_t i = 0; !e && i <= u.n; i++) {
        bool flush = i == u.n;
        if (!flush && tokens > 0) {
            flush = tokens + u.v[i].tokens > max || (u.v[i].para_start && tokens * 2 >= max);
        }
        if (flush && tokens > 0) {
            e = push_span(&out, u.v[first].start, u.v[i - 1].end, tokens);
            if (e || i == u.n)
                break;
            /* Overlap: back up over trailing units of the same paragraph. */
            size_t back = i, ov = 0;
            if (!u.v[i].para_start) {
                while (back > first + 1 && (back == i || !u.v[back].para_start) &&
                       ov + u.v[back - 1].tokens <= (size_t)overlap_tokens &&
                       ov + u.v[back - 1].tokens + u.v[i].tokens <= max) {
                    ov += u.v[back - 1].tokens;
                    back--;
                }
            }
            first = back;
            tokens = ov;
        }
        if (i == u.n)
            break;
        if (u.v[i].tokens > max) {
            e = split_long(text, &u.v[i], max, &out);
            first = i + 1;
            tokens = 0;
            continue;
        }
        if (tokens == 0)
            first = i;
        tokens += u.v[i].tokens;
    }
    free(u.v);
    if (e) {
        free(out.v);
        return e;
    }
    *ret_spans = out.v;
    *ret_n = out.n;
    return ERR_OK;
}
