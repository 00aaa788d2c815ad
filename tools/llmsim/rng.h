/* rng.h - hashing and a seeded pseudo-random stream for the LLM simulator.
 *
 * Every request gets its own stream, seeded from the configured seed and a
 * hash of the request's content, so outcomes do not depend on arrival order
 * or on what other requests are in flight.  FNV-1a for hashing bytes,
 * splitmix64 to spread a 64-bit seed over the state, xoshiro256** for the
 * stream itself: small, fast and good enough for simulation. */
#ifndef SLORAG_LLMSIM_RNG_H
#define SLORAG_LLMSIM_RNG_H

#include <stddef.h>
#include <stdint.h>

#define SIM_HASH_INIT 0xcbf29ce484222325ull

struct sim_rng {
    uint64_t s[4];
};

/* FNV-1a over n bytes, continuing from h (start with SIM_HASH_INIT). */
static inline uint64_t sim_hash64(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* One splitmix64 step: advances *state and returns a well-mixed value. */
static inline uint64_t sim_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void sim_rng_init(struct sim_rng *r, uint64_t seed) {
    uint64_t st = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = sim_splitmix64(&st);
}

static inline uint64_t sim_rng_rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t sim_rng_next(struct sim_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = sim_rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = sim_rng_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double sim_rng_unit(struct sim_rng *r) {
    return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

#endif
