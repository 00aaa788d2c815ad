/* util.c - see util.h. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <time.h>

int64_t clock_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void util_random_hex(char *out, size_t nbytes) {
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    if (nbytes > sizeof raw)
        nbytes = sizeof raw;
    size_t got = 0;
    while (got < nbytes) {
        ssize_t r = getrandom(raw + got, nbytes - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            abort(); /* no entropy source: nothing sensible to do */
        }
        got += (size_t)r;
    }
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

void util_request_id(char out[33]) {
    static const char hex[] = "0123456789abcdef";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    for (int i = 11; i >= 0; i--, ms >>= 4)
        out[i] = hex[ms & 15];
    util_random_hex(out + 12, 10);
}

bool util_utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            c = (c << 6) | (s[i + j] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

bool util_parse_hostport(const char *s, char *ret_host, size_t hostlen, int *ret_port) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return false;
    size_t hl = (size_t)(colon - s);
    if (hl >= hostlen)
        return false;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
        return false;
    memcpy(ret_host, s, hl);
    ret_host[hl] = '\0';
    *ret_port = (int)port;
    return true;
}

bool util_host_is_loopback(const char *host) {
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0 || strcmp(host, "[::1]") == 0;
}

/* Vector indexes are single allocations of up to gigabytes (4 bytes a
 * dimension a chunk), filled at start-up and grown by ingestion.  With
 * 4 KiB pages every one of them is a page fault, and faults are dear on a
 * virtual machine: loading a 1M-chunk Flat index (1 GB) took 5-6.5 s here,
 * 80% of it faulting and zero-filling, and 0.2 s with transparent huge
 * pages (docs/benchmarks.md).  Kernels commonly give huge pages only to
 * memory that asks (THP "madvise"), and glibc's malloc asks only when told
 * by a tunable, which is read when the program starts: so slorag starts
 * itself again once with it set.  SLORAG_HUGEPAGES=0 turns this off; a
 * GLIBC_TUNABLES that already names the setting is left alone. */
void util_restart_with_huge_pages(char **argv) {
    const char *off = getenv("SLORAG_HUGEPAGES"), *t = getenv("GLIBC_TUNABLES"), *pre = getenv("LD_PRELOAD");
    if ((off && strcmp(off, "0") == 0) || (t && strstr(t, "glibc.malloc.hugetlb")))
        return;
    if (pre && strstr(pre, "vgpreload")) /* under valgrind /proc/self/exe is valgrind */
        return;
    char v[2048];
    int n = t && *t ? snprintf(v, sizeof v, "%s:glibc.malloc.hugetlb=1", t)
                    : snprintf(v, sizeof v, "glibc.malloc.hugetlb=1");
    if (n < 0 || (size_t)n >= sizeof v || setenv("GLIBC_TUNABLES", v, 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* could not: run on without (the setting stays, so no second try) */
}
