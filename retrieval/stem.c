/* stem.c - see stem.h.  Words and stems up to STEM_KEY_MAX bytes are
 * cached (longer ones are rare and go to the stemmer each time); the cache
 * is allocated on a thread's first call and freed when the thread ends. */
#include "stem.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEM_SETS 4096 /* a power of two */
#define STEM_WAYS 4     /* slots a set: 16,384 in all, about 1 MB a thread */
#define STEM_KEY_MAX 30

struct slot {
    uint32_t hash;
    uint8_t wlen, slen; /* wlen 0: empty */
    char w[STEM_KEY_MAX], s[STEM_KEY_MAX];
};

static pthread_key_t cache_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static __thread struct slot *cache;
static __thread unsigned misses, victim;

static void make_key(void) {
    pthread_key_create(&cache_key, free);
}

static uint32_t hash_word(const char *w, int n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < n; i++) {
        h ^= (unsigned char)w[i];
        h *= 16777619u;
    }
    return h;
}

unsigned ret_stem_misses(void) {
    return misses;
}

int ret_stem(struct sb_stemmer *st, const char *w, int wlen, const char **ret) {
    if (!cache) {
        pthread_once(&key_once, make_key);
        cache = calloc((size_t)STEM_SETS * STEM_WAYS, sizeof(*cache));
        if (cache)
            pthread_setspecific(cache_key, cache); /* freed at thread exit */
    }
    uint32_t h = hash_word(w, wlen);
    struct slot *set = cache && wlen > 0 && wlen <= STEM_KEY_MAX ? &cache[(h & (STEM_SETS - 1)) * STEM_WAYS] : NULL;
    struct slot *c = NULL;
    if (set) {
        for (int i = 0; i < STEM_WAYS; i++) {
            struct slot *t = &set[i];
            if (t->hash == h && t->wlen == wlen && memcmp(t->w, w, (size_t)wlen) == 0) {
                *ret = t->s;
                return t->slen;
            }
            if (!c && t->wlen == 0)
                c = t;
        }
        if (!c) /* a full set: any of its slots, in turn */
            c = &set[victim++ % STEM_WAYS];
    }
    misses++;
    const sb_symbol *s = sb_stemmer_stem(st, (const sb_symbol *)w, wlen);
    if (!s)
        return -1;
    int n = sb_stemmer_length(st);
    if (c && n >= 0 && n <= STEM_KEY_MAX) {
        c->hash = h;
        c->wlen = (uint8_t)wlen;
        c->slen = (uint8_t)n;
        memcpy(c->w, w, (size_t)wlen);
        memcpy(c->s, s, (size_t)n);
        *ret = c->s;
    } else {
        *ret = (const char *)s;
    }
    return n;
}

size_t ret_stem_into(struct sb_stemmer *st, const char *w, char *out, size_t outlen) {
    const char *s = NULL;
    int n = ret_stem(st, w, (int)strlen(w), &s);
    if (n <= 0 || (size_t)n >= outlen) {
        int m = snprintf(out, outlen, "%s", w);
        return m < 0 ? 0 : (size_t)m < outlen ? (size_t)m : outlen - 1;
    }
    memcpy(out, s, (size_t)n);
    out[n] = '\0';
    return (size_t)n;
}
