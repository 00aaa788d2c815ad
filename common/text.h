/* text.h - word tokenising shared by retrieval and the agents.
 *
 * A token is a maximal run of ASCII letters/digits or bytes >= 0x80 (so
 * UTF-8 words stay whole); ASCII is lower-cased.  This mirrors what SQLite's
 * unicode61 tokenizer does for the ASCII range, which keeps lexical search
 * and the extractive scorer in agreement. */
#ifndef SLORAG_TEXT_H
#define SLORAG_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct text_token {
    size_t start; /* byte offset of the token in the input */
    size_t len;
};

/* Byte classes, indexed by unsigned char: 1 for a word byte; the byte
 * ASCII-lower-cased.  Tables so that the per-byte loops below (the
 * reranker and the extractive reader run them over every passage of every
 * query) are one load a byte, inlined into their callers. */
extern const unsigned char text_word_byte[256];
extern const unsigned char text_lower_byte[256];

/* Scans the next token at or after *pos; returns false at the end. */
static inline bool text_next_token(const char *s, size_t n, size_t *pos, struct text_token *ret_tok) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = *pos;
    while (i < n && !text_word_byte[u[i]])
        i++;
    if (i >= n) {
        *pos = n;
        return false;
    }
    size_t start = i;
    while (i < n && text_word_byte[u[i]])
        i++;
    ret_tok->start = start;
    ret_tok->len = i - start;
    *pos = i;
    return true;
}

/* Copies the token lower-cased into out (truncated to outlen-1). */
static inline void text_token_lower(const char *s, const struct text_token *t, char *out, size_t outlen) {
    const unsigned char *u = (const unsigned char *)s + t->start;
    size_t n = t->len < outlen - 1 ? t->len : outlen - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)text_lower_byte[u[i]];
    out[n] = '\0';
}
/* Common English function words that carry no retrieval signal. */
bool text_is_stopword(const char *lower_word);
/* The same for a word as it stands in a text (len bytes, any case), with
 * no copy: text_is_stopword of its lower-cased form. */
bool text_is_stopword_n(const char *s, size_t len);
/* The stopword list (sorted), for tests. */
size_t text_stopwords(const char *const **ret_list);
/* Whitespace-separated word count, the project's token estimate. */
size_t text_count_words(const char *s, size_t n);
/* The index of the first '\n', '.', '!' or '?' in s[i, n), or n: where the
 * sentence splitter (retrieval/chunk.c) has something to decide. */
size_t text_next_break(const char *s, size_t i, size_t n);

#endif
