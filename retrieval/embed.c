/* embed.c - the built-in embedder: signed feature hashing.
 *
 * Each content word (stop words dropped) is stemmed with the Snowball
 * English stemmer and hashed into one of `dim` buckets with a hash-derived
 * sign; its character trigrams (of "^stem$") are hashed too at a lower
 * weight, so morphological variants and typos land near each other.  Term
 * counts are dampened (1 + log tf) and the vector is L2-normalised, so inner
 * product is cosine similarity.  This is deliberately simple: it gives the
 * dense side of hybrid search a different view from BM25 (subword overlap)
 * without any model file. */
#include "embed.h"
#include "text.h"

#include <libstemmer.h>

#include "stem.h"
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMBED_WORD_MAX 64
#define TRIGRAM_WEIGHT 0.25f

static uint64_t hash64(const char *s, size_t n, uint64_t seed) {
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    /* finaliser (splitmix64) so low bits are well mixed for the modulo */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

static void add_feature(float *v, int dim, const char *s, size_t n, uint64_t seed, float w) {
    uint64_t h = hash64(s, n, seed);
    v[h % (uint64_t)dim] += (h >> 63) ? w : -w;
}

static void embed_one(struct sb_stemmer *st, int dim, const char *text, size_t len, float *v) {
    memset(v, 0, (size_t)dim * sizeof(float));
    size_t pos = 0;
    struct text_token t;
    while (text_next_token(text, len, &pos, &t)) {
        char w[EMBED_WORD_MAX];
        text_token_lower(text, &t, w, sizeof w);
        if (text_is_stopword(w))
            continue;
        char stem[EMBED_WORD_MAX + 2];
        size_t sl = ret_stem_into(st, w, stem + 1, EMBED_WORD_MAX);
        add_feature(v, dim, stem + 1, sl, 1, 1.0f);
        stem[0] = '^';
        stem[sl + 1] = '$';
        size_t n = sl + 2;
        for (size_t i = 0; i + 3 <= n; i++)
            add_feature(v, dim, stem + i, 3, 2, TRIGRAM_WEIGHT);
    }
    /* dampen repeated features, then normalise */
    double norm = 0;
    for (int i = 0; i < dim; i++) {
        float x = v[i];
        float a = fabsf(x);
        if (a > 1.0f)
            v[i] = copysignf(1.0f + logf(a), x);
        norm += (double)v[i] * v[i];
    }
    if (norm > 0) {
        float inv = (float)(1.0 / sqrt(norm));
        for (int i = 0; i < dim; i++)
            v[i] *= inv;
    }
}

static enum err builtin_embed(struct ret_embedder *e, const char *const *texts, const size_t *lens, size_t n,
                              float *ret_vecs) {
    /* sb_stemmer objects are not thread-safe: one per call */
    struct sb_stemmer *st = sb_stemmer_new("english", "UTF_8");
    if (!st)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        embed_one(st, e->dim, texts[i], lens[i], ret_vecs + i * (size_t)e->dim);
    sb_stemmer_delete(st);
    return ERR_OK;
}

static void builtin_free(struct ret_embedder *e) {
    free(e);
}

static const struct ret_embedder_ops builtin_ops = {
    .name = "builtin",
    .embed = builtin_embed,
    .free = builtin_free,
};

enum err ret_embedder_builtin_new(int dim, struct ret_embedder **ret_e) {
    if (dim < 16 || dim > 4096)
        return ERR_INVALID_FIELD;
    struct ret_embedder *e = calloc(1, sizeof(*e));
    if (!e)
        return ERR_NOMEM;
    e->ops = &builtin_ops;
    e->dim = dim;
    *ret_e = e;
    return ERR_OK;
}

struct ret_embedder *ret_embedder_free(struct ret_embedder *e) {
    if (e)
        e->ops->free(e);
    return NULL;
}

/* ---- the thread's last failure detail (see embed.h) ---- */

static _Thread_local char last_error[512];

const char *ret_last_error(void) {
    return last_error;
}

void ret_set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

void ret_clear_error(void) {
    last_error[0] = '\0';
}

const char *ret_error_detail(enum err e) {
    return last_error[0] ? last_error : err_message(e);
}

/* ---- the thread's request deadline (see embed.h) ---- */

static _Thread_local int64_t request_deadline_us;

void ret_set_deadline(int64_t deadline_us) {
    request_deadline_us = deadline_us;
}

int64_t ret_deadline(void) {
    return request_deadline_us;
}
