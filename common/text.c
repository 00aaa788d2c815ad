/* text.c - see text.h. */
#include "text.h"

#include <pthread.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

/* ASCII letters and digits, and every byte >= 0x80 (UTF-8 words stay whole). */
const unsigned char text_word_byte[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* A-Z to a-z, every other byte as it is. */
const unsigned char text_lower_byte[256] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
    64, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 91, 92, 93, 94, 95,
    96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127,
    128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143,
    144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159,
    160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175,
    176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191,
    192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207,
    208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223,
    224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
    240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255,
};

/* Sorted (for people and tests). */
static const char *const stopwords[] = {
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "being", "but", "by", "can", "could", "did", "do", "does", "doing", "for",
    "from", "had", "has", "have", "having", "he", "her", "here", "him", "his", "how", "i", "if",
    "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "our", "she", "should", "so",
    "some", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "those", "to", "us", "was", "we", "were", "what", "when", "where", "which", "while", "who",
    "whom", "why", "will", "with", "would", "you", "your",
};

/* Bit (c - 'a') is set when a stopword starts with c; no stopword is longer
 * than STOPWORD_MAX bytes.  Most words are ruled out by one of the two
 * before the lookup (test-common checks both against the list). */
#define STOPWORD_FIRST 0x15c51afu
#define STOPWORD_MAX 7
#define STOPWORD_SLOTS 256 /* a power of two, over twice the list */

/* The list as an open-addressing set of words packed into 64-bit keys
 * (at most 7 bytes and zero padding: one compare a probe), built on
 * first use.  A bsearch with strcmp took ~60 instructions a word, and
 * the reranker and the reader ask for every word of every passage. */
static uint64_t stop_keys[STOPWORD_SLOTS];
static pthread_once_t stop_once = PTHREAD_ONCE_INIT;

static uint64_t stop_pack(const char *w, size_t n) {
    uint64_t k = 0;
    memcpy(&k, w, n);
    return k;
}

static unsigned stop_slot(uint64_t k) {
    return (unsigned)((k * 0x9e3779b97f4a7c15ull) >> 56) & (STOPWORD_SLOTS - 1);
}

static void stop_build(void) {
    for (size_t i = 0; i < sizeof stopwords / sizeof stopwords[0]; i++) {
        uint64_t k = stop_pack(stopwords[i], strlen(stopwords[i]));
        unsigned j = stop_slot(k);
        while (stop_keys[j])
            j = (j + 1) & (STOPWORD_SLOTS - 1);
        stop_keys[j] = k;
    }
}

/* Whether the n lower-cased bytes of w (n <= STOPWORD_MAX) are on the list. */
static bool stop_find(const char *w, size_t n) {
    pthread_once(&stop_once, stop_build);
    uint64_t k = stop_pack(w, n);
    for (unsigned j = stop_slot(k); stop_keys[j]; j = (j + 1) & (STOPWORD_SLOTS - 1))
        if (stop_keys[j] == k)
            return true;
    return false;
}

/* The first-letter gate: a lower-case letter some stopword starts with. */
static bool stop_first(unsigned char c) {
    return c >= 'a' && c <= 'z' && ((STOPWORD_FIRST >> (c - 'a')) & 1u);
}

bool text_is_stopword(const char *lower_word) {
    if (!stop_first((unsigned char)lower_word[0]))
        return false;
    size_t n = strnlen(lower_word, STOPWORD_MAX + 1);
    return n <= STOPWORD_MAX && stop_find(lower_word, n);
}

bool text_is_stopword_n(const char *s, size_t len) {
    if (len == 0 || len > STOPWORD_MAX || !stop_first(text_lower_byte[(unsigned char)s[0]]))
        return false;
    char w[STOPWORD_MAX];
    for (size_t i = 0; i < len; i++)
        w[i] = (char)text_lower_byte[(unsigned char)s[i]];
    return stop_find(w, len);
}

size_t text_stopwords(const char *const **ret_list) {
    *ret_list = stopwords;
    return sizeof stopwords / sizeof stopwords[0];
}

/* 1 for the bytes text_count_words separates words by. */
static const unsigned char space_byte[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1, [' '] = 1,
};

size_t text_next_break(const char *s, size_t i, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
#if defined(__SSE2__)
    const __m128i nl = _mm_set1_epi8('\n'), dot = _mm_set1_epi8('.'), bang = _mm_set1_epi8('!'),
                  ask = _mm_set1_epi8('?');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(u + i));
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, nl), _mm_cmpeq_epi8(v, dot)),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, bang), _mm_cmpeq_epi8(v, ask)));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits)
            return i + (size_t)__builtin_ctz(bits);
    }
#endif
    for (; i < n; i++)
        if (u[i] == '\n' || u[i] == '.' || u[i] == '!' || u[i] == '?')
            return i;
    return n;
}

/* Bits set in x < 2^16, inline: __builtin_popcount is a libgcc call
 * without -mpopcnt (the build targets baseline x86-64). */
static inline size_t popcount16(unsigned x) {
    x = x - ((x >> 1) & 0x5555u);
    x = (x & 0x3333u) + ((x >> 2) & 0x3333u);
    x = (x + (x >> 4)) & 0x0f0fu;
    return (x + (x >> 8)) & 0x1fu;
}

size_t text_count_words(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t count = 0;
    unsigned prev_space = 1;
    size_t i = 0;
#if defined(__SSE2__)
    /* 16 bytes at a time: a mask of the spaces (' ', and 9..13 as
     * byte - 9 <= 4 unsigned), and a word starts where a non-space follows
     * a space.  The extractive reader counts every passage's words; one
     * byte at a time this was 5% of a query's instructions. */
    const __m128i nine = _mm_set1_epi8(9), four = _mm_set1_epi8(4), blank = _mm_set1_epi8(' ');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(u + i));
        __m128i x = _mm_sub_epi8(v, nine);
        __m128i sp = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, four), x), _mm_cmpeq_epi8(v, blank));
        unsigned mask = (unsigned)_mm_movemask_epi8(sp);
        unsigned starts = ~mask & ((mask << 1) | prev_space) & 0xffffu;
        count += popcount16(starts);
        prev_space = mask >> 15;
    }
#endif
    for (; i < n; i++) {
        unsigned space = space_byte[u[i]];
        count += prev_space & (space ^ 1u); /* a word starts here */
        prev_space = space;
    }
    return count;
}
