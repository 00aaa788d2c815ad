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

/* Scans the next token at or after *pos; returns false at the end. */
bool text_next_token(const char *s, size_t n, size_t *pos, struct text_token *ret_tok);
/* Copies the token lower-cased into out (truncated to outlen-1). */
void text_token_lower(const char *s, const struct text_token *t, char *out, size_t outlen);
/* Common English function words that carry no retrieval signal. */
bool text_is_stopword(const char *lower_word);
/* The stopword list (sorted), for tests. */
size_t text_stopwords(const char *const **ret_list);
/* Whitespace-separated word count, the project's token estimate. */
size_t text_count_words(const char *s, size_t n);

#endif
