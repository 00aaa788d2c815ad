/* text.c - see text.h. */
#include "text.h"

#include <stdlib.h>
#include <string.h>

static bool is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

bool text_next_token(const char *s, size_t n, size_t *pos, struct text_token *ret_tok) {
    size_t i = *pos;
    while (i < n && !is_word_byte((unsigned char)s[i]))
        i++;
    if (i >= n) {
        *pos = n;
        return false;
    }
    size_t start = i;
    while (i < n && is_word_byte((unsigned char)s[i]))
        i++;
    ret_tok->start = start;
    ret_tok->len = i - start;
    *pos = i;
    return true;
}

void text_token_lower(const char *s, const struct text_token *t, char *out, size_t outlen) {
    size_t n = t->len < outlen - 1 ? t->len : outlen - 1;
    for (size_t i = 0; i < n; i++) {
        char c = s[t->start + i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[n] = '\0';
}

/* Sorted for bsearch. */
static const char *const stopwords[] = {
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "being", "but", "by", "can", "could", "did", "do", "does", "doing", "for",
    "from", "had", "has", "have", "having", "he", "her", "here", "him", "his", "how", "i", "if",
    "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "our", "she", "should", "so",
    "some", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "those", "to", "us", "was", "we", "were", "what", "when", "where", "which", "while", "who",
    "whom", "why", "will", "with", "would", "you", "your",
};

static int cmp_word(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Bit (c - 'a') is set when a stopword starts with c; no stopword is longer
 * than STOPWORD_MAX bytes.  Most words are ruled out by one of the two
 * before the search (test-text checks both against the list). */
#define STOPWORD_FIRST 0x15c51afu
#define STOPWORD_MAX 7

bool text_is_stopword(const char *lower_word) {
    unsigned char c = (unsigned char)lower_word[0];
    if (c < 'a' || c > 'z' || !((STOPWORD_FIRST >> (c - 'a')) & 1u) || strnlen(lower_word, STOPWORD_MAX + 1) > STOPWORD_MAX)
        return false;
    return bsearch(&lower_word, stopwords, sizeof stopwords / sizeof stopwords[0], sizeof stopwords[0],
                   cmp_word) != NULL;
}

size_t text_stopwords(const char *const **ret_list) {
    *ret_list = stopwords;
    return sizeof stopwords / sizeof stopwords[0];
}

size_t text_count_words(const char *s, size_t n) {
    size_t count = 0;
    bool in_word = false;
    for (size_t i = 0; i < n; i++) {
        bool space = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r' || s[i] == '\f' ||
                     s[i] == '\v';
        if (!space && !in_word)
            count++;
        in_word = !space;
    }
    return count;
}
