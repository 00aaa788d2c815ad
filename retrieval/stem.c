/* stem.c - see stem.h.  Words and stems up to STEM_KEY_MAX bytes are
 * cached (longer ones are rare and go to the stemmer each time); the cache
 * is allocated on a thread's first call and freed when the thread ends. */
#include "stem.h"
#include "util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEM_SETS 4096 /* a power of two */
#define STEM_WAYS 4     /* ways a set: 16,384 words in all, 1.1 MB a thread */
#define STEM_KEY_MAX 30

/* A set's four tags (the words' hashes, never 0: 0 marks an empty way)
 * share one cache line with three other sets' tags; a lookup reads that
 * line and then only the slot whose tag matches: two cache lines a hit
 * (the four slots one after the other were five). */
struct slot {
    uint8_t wlen, slen;
    char w[STEM_KEY_MAX], s[STEM_KEY_MAX];
} __attribute__((aligned(64)));

struct cache {
    uint32_t tag[STEM_SETS][STEM_WAYS];
    struct slot slot[STEM_SETS][STEM_WAYS];
};

static pthread_key_t cache_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static __thread struct cache *cache;
static __thread unsigned misses, victim;

static void make_key(void) {
    pthread_key_create(&cache_key, free);
}

static uint32_t hash_word(const char *w, int n) {
    return util_fnv32(UTIL_FNV32_BASIS, w, n > 0 ? (size_t)n : 0) | 1; /* never 0 */
}

unsigned ret_stem_misses(void) {
    return misses;
}

uint32_t ret_stem_prefetch(const char *w, int wlen) {
    uint32_t h = hash_word(w, wlen);
    if (!cache || wlen <= 0 || wlen > STEM_KEY_MAX)
        return h;
    __builtin_prefetch(cache->tag[(h >> 1) & (STEM_SETS - 1)]);
    return h;
}

void ret_stem_prefetch_slot(int wlen, uint32_t h) {
    if (!cache || wlen <= 0 || wlen > STEM_KEY_MAX)
        return;
    uint32_t set = (h >> 1) & (STEM_SETS - 1);
    for (int i = 0; i < STEM_WAYS; i++)
        if (cache->tag[set][i] == h) {
            __builtin_prefetch(&cache->slot[set][i]);
            return;
        }
}

int ret_stem(struct sb_stemmer *st, const char *w, int wlen, const char **ret) {
    return ret_stem_hashed(st, w, wlen, hash_word(w, wlen), ret);
}

int ret_stem_hashed(struct sb_stemmer *st, const char *w, int wlen, uint32_t h, const char **ret) {
    if (!cache) {
        pthread_once(&key_once, make_key);
        cache = aligned_alloc(64, sizeof(*cache));
        if (cache) {
            memset(cache, 0, sizeof(*cache));
            pthread_setspecific(cache_key, cache); /* freed at thread exit */
        }
    }
    uint32_t set = (h >> 1) & (STEM_SETS - 1);
    bool cacheable = cache && wlen > 0 && wlen <= STEM_KEY_MAX;
    int way = -1;
    if (cacheable) {
        uint32_t *tag = cache->tag[set];
        for (int i = 0; i < STEM_WAYS; i++) {
            if (tag[i] == h) {
                struct slot *t = &cache->slot[set][i];
                if (t->wlen == wlen && memcmp(t->w, w, (size_t)wlen) == 0) {
                    *ret = t->s;
                    return t->slen;
                }
            }
            if (way < 0 && tag[i] == 0)
                way = i;
        }
        if (way < 0) /* a full set: any of its ways, in turn */
            way = (int)(victim++ % STEM_WAYS);
    }
    misses++;
    const sb_symbol *s = sb_stemmer_stem(st, (const sb_symbol *)w, wlen);
    if (!s)
        return -1;
    int n = sb_stemmer_length(st);
    if (way >= 0 && n >= 0 && n <= STEM_KEY_MAX) {
        struct slot *c = &cache->slot[set][way];
        cache->tag[set][way] = h;
        c->wlen = (uint8_t)wlen;
        c->slen = (uint8_t)n;
        memcpy(c->w, w, (size_t)wlen);
        memcpy(c->s, s, (size_t)n);
        *ret = c->s;
    } else {
        *ret = (const char *)s; /* not kept: the way keeps its word */
    }
    return n;
}

size_t ret_stem_into(struct sb_stemmer *st, const char *w, char *out, size_t outlen) {
    int wlen = (int)strlen(w);
    return ret_stem_into_hashed(st, w, wlen, hash_word(w, wlen), out, outlen);
}

size_t ret_stem_into_hashed(struct sb_stemmer *st, const char *w, int wlen, uint32_t h, char *out, size_t outlen) {
    const char *s = NULL;
    int n = ret_stem_hashed(st, w, wlen, h, &s);
    if (n <= 0 || (size_t)n >= outlen) {
        int m = snprintf(out, outlen, "%s", w);
        return m < 0 ? 0 : (size_t)m < outlen ? (size_t)m : outlen - 1;
    }
    memcpy(out, s, (size_t)n);
    out[n] = '\0';
    return (size_t)n;
}
