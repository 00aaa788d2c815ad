/* embed.c - see embed.h. */
#include "embed.h"
#include "rng.h"
#include "terms.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static void add_feature(float *v, size_t dim, const char *t, size_t len) {
    uint64_t h = sim_hash64(t, len, SIM_HASH_INIT);
    h = sim_splitmix64(&h); /* FNV's low bits are weak for short words */
    v[h % dim] += (h >> 63) ? -1.0f : 1.0f;
}

static size_t add_terms(const char *s, size_t n, float *v, size_t dim, bool content_only) {
    size_t pos = 0, added = 0;
    char term[SIM_TERM_MAX + 1];
    bool content;
    while (sim_term_next(s, n, &pos, term, &content)) {
        if (content_only && !content)
            continue;
        add_feature(v, dim, term, strlen(term));
        added++;
    }
    return added;
}

static void normalise(float *v, size_t dim) {
    double sum = 0;
    for (size_t i = 0; i < dim; i++)
        sum += (double)v[i] * (double)v[i];
    if (sum == 0) {
        v[0] = 1.0f; /* every term cancelled out: any fixed unit vector will do */
        return;
    }
    double scale = 1.0 / sqrt(sum);
    for (size_t i = 0; i < dim; i++)
        v[i] = (float)((double)v[i] * scale);
}

void sim_embed(const char *s, size_t n, float *out, size_t dim) {
    memset(out, 0, dim * sizeof *out);
    if (add_terms(s, n, out, dim, true) == 0 && add_terms(s, n, out, dim, false) == 0)
        add_feature(out, dim, s, n);
    normalise(out, dim);
}

enum err sim_embed_base64(const float *v, size_t dim, struct buf *out) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t nbytes = dim * 4;
    unsigned char tri[3];
    char quad[4];
    size_t filled = 0;
    for (size_t i = 0; i < nbytes; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i / 4], 4);
        tri[filled++] = (unsigned char)(bits >> (8 * (i % 4))); /* little-endian on any host */
        if (filled < 3 && i + 1 < nbytes)
            continue;
        for (size_t k = filled; k < 3; k++)
            tri[k] = 0;
        quad[0] = alphabet[tri[0] >> 2];
        quad[1] = alphabet[((tri[0] & 3) << 4) | (tri[1] >> 4)];
        quad[2] = filled > 1 ? alphabet[((tri[1] & 15) << 2) | (tri[2] >> 6)] : '=';
        quad[3] = filled > 2 ? alphabet[tri[2] & 63] : '=';
        enum err e = buf_append(out, quad, 4);
        if (e)
            return e;
        filled = 0;
    }
    return ERR_OK;
}
