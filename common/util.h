/* util.h - clocks, ids and small string helpers. */
#ifndef SLORAG_UTIL_H
#define SLORAG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic clock. */
int64_t clock_us(void);
double clock_ms(void);

/* Fills out with 2*nbytes lowercase hex digits from the kernel's CSPRNG,
 * plus a NUL.  out must hold 2*nbytes+1 bytes. */
void util_random_hex(char *out, size_t nbytes);
/* A request id: 32 hex digits, the first 12 the UTC time in milliseconds
 * (ids sort by time, so the ledger's index of them grows at one end
 * instead of taking a random page on every insert), then 80 random bits. */
void util_request_id(char out[33]);

/* FNV-1a over the n bytes at p, continuing from h (start from
 * UTIL_FNV32_BASIS or UTIL_FNV64_BASIS; chain calls to hash several
 * pieces): the string hash of the project's in-memory tables.  Not kept
 * on disk. */
#define UTIL_FNV32_BASIS 2166136261u
#define UTIL_FNV64_BASIS 1469598103934665603ull

static inline uint32_t util_fnv32(uint32_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return h;
}

static inline uint64_t util_fnv64(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

/* True when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
bool util_utf8_valid(const char *s, size_t n);

/* Parses "host:port" (IPv4 literal or "localhost"); port 0..65535. */
bool util_parse_hostport(const char *s, char *ret_host, size_t hostlen, int *ret_port);

/* True for 127.0.0.0/8, ::1 and "localhost". */
bool util_host_is_loopback(const char *host);

/* Starts the program again (execv of /proc/self/exe, same arguments) with
 * glibc's malloc told to ask for transparent huge pages, unless that is set
 * already or SLORAG_HUGEPAGES=0; returns when it does not (see util.c).
 * Call first thing in main, before any thread or open file. */
void util_restart_with_huge_pages(char **argv);

#endif
