/* faultrun.h - the fault run of issue 8 ("Robustness: faults").
 *
 * The real daemon on loopback with two simulators (tools/llmsim): one is
 * its small-tier LLM backend, one its HTTP embedder, and both inject faults
 * (HTTP 500, hung requests, malformed and cut-off replies); the embedding
 * simulator is also stopped for a stretch of the run and started again on
 * the same port.  Client threads send questions that need dense retrieval
 * (planner-chosen hybrid, explicit hybrid, dense /v1/retrieve) and LLM
 * answers, each with a deadline.  Every response is timed against its
 * deadline and must be a 200 or a precise JSON error; the daemon's open
 * descriptors (by kind), threads and RSS are read after a warm-up under
 * the same load and again after the run, both times with no client
 * connected.
 *
 * Shared by tests/integration/test-faults.c, which asserts on the report,
 * and bench/bench-soak --faults, which prints it. */
#ifndef SLORAG_TEST_FAULTRUN_H
#define SLORAG_TEST_FAULTRUN_H

#include <stdbool.h>
#include <stddef.h>

struct faultrun_opts {
    const char *docs;     /* directory ingested into the collection */
    int warmup_s;         /* load before the baseline is read */
    int seconds;          /* load after it */
    int clients;          /* threads sending requests */
    int deadline_ms;      /* each request's deadline (and query.deadline_ms) */
    int down_from_s;      /* the embedding backend is stopped this far into the run ... */
    int down_for_s;       /* ... for this long (0 = never) */
    int sample_every_s;   /* 0 = no samples during the run */
    /* when set, the load goes on past `seconds` (by up to this many
     * seconds) until each kind of fault has shown: an answer after a
     * lexical fallback, one by the extractive tier after the LLM failed,
     * an error naming the embedder.  They are random, and a loaded
     * machine makes fewer requests in the same time. */
    int until_each_fault_s;
    /* called with each sample (t from the start of the run), e.g. to print it */
    void (*on_sample)(void *ud, int t, long rss_kb, long threads, int fds, long requests, long late, long bad);
    void *ud;
};

/* What the daemon holds, by kind of descriptor. */
struct faultrun_fds {
    int total;
    int files;        /* regular files: SQLite, WAL, index files, the log */
    int other;        /* pipes, eventfd, epoll, timerfd, ... */
    int listeners;    /* listening sockets */
    int clients;      /* connections accepted from clients */
    int llm;          /* connections to the LLM backend */
    int embedder;     /* connections to the embedding backend */
    int unix_sockets; /* socketpairs (curl's wake-ups, ...) */
    int sockets_other;
};

struct faultrun_state {
    long rss_kb, threads;
    struct faultrun_fds fds;
};

struct faultrun_report {
    long requests;          /* during the run (not the warm-up) */
    long by_status[600];
    long answered;          /* 200 */
    long precise_errors;    /* a JSON error whose code fits its status */
    long bad;               /* anything else: no response, not JSON, wrong shape */
    long late;              /* longer than deadline + slack */
    long late_committing;   /* of those, answers computed within the deadline (timings.total_ms) that
                               waited for the ledger's commit (an fsync) */
    long lexical_fallbacks; /* answers whose dense retrieval failed (decision.skipped "dense") */
    long tier_fallbacks;    /* answers the extractive tier gave after the LLM failed */
    long embedder_errors;   /* errors naming the embedding backend */
    double max_ms;          /* slowest response */
    int slack_ms;           /* what "late" allows beyond the deadline */
    char first_bad[1024];   /* the first bad or late response, described */
    struct faultrun_state before, after;
    int daemon_exit;        /* of SIGTERM at the end: 0 = clean (and, under ASan, no leak) */
    bool started;           /* false: the setup failed (first_bad says why) */
};

/* Runs it; SLORAG_BIN and SLORAG_LLMSIM_BIN name the binaries; with
 * FAULTRUN_VERBOSE set every bad or late response goes to stderr.  Returns
 * false when the setup failed. */
bool faultrun(const struct faultrun_opts *o, int slack_ms, struct faultrun_report *ret);

#endif
