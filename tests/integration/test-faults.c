/* The fault run (faultrun.h) as a test: with the LLM backend and the HTTP
 * embedder injecting faults, and the embedder down for a stretch, every
 * request gets a 200 or a precise JSON error within its deadline plus a
 * slack, the faults really happened (answers fell back to lexical search
 * and to the extractive tier, errors named the embedding backend), and
 * after the run the daemon holds what it held after the warm-up: the same
 * threads, files and other descriptors, no client connection, and no more
 * of what curl keeps for reuse than was ever in use at once.  Memory is
 * printed, not asserted: the figures belong to bench-soak --faults
 * (docs/benchmarks.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "faultrun.h"

#define DEADLINE_MS 1500
/* The HTTP round trip, and the ledger row's commit the response waits for
 * after slorag's clock stops: an fsync, which on a busy shared disk took up
 * to ~500 ms in bench-soak --faults runs (docs/benchmarks.md). */
#define SLACK_MS 1000
#define WORKERS 2    /* server.workers in faultrun.c's config */

static void print_state(const char *when, const struct faultrun_state *s) {
    printf("# %s: rss %.1f MB, threads %ld, fds %d (files %d, other %d, listeners %d, clients %d, llm %d, "
           "embedder %d, unix %d, other sockets %d)\n",
           when, (double)s->rss_kb / 1024.0, s->threads, s->fds.total, s->fds.files, s->fds.other, s->fds.listeners,
           s->fds.clients, s->fds.llm, s->fds.embedder, s->fds.unix_sockets, s->fds.sockets_other);
}

static void test_faults(void **state) {
    (void)state;
    struct faultrun_opts o = {
        .docs = getenv("SLORAG_TEST_DOCS"),
        .warmup_s = 4,
        .seconds = 16,
        .clients = 4,
        .deadline_ms = DEADLINE_MS,
        .down_from_s = 6,
        .down_for_s = 4,
        .until_each_fault_s = 30,
    };
    static struct faultrun_report rep;
    if (!faultrun(&o, SLACK_MS, &rep))
        fail_msg("setup: %s", rep.first_bad);
    printf("# %ld requests: %ld answered (%ld after a lexical fallback, %ld by the extractive tier after the LLM "
           "failed), %ld precise errors (%ld naming the embedding backend), %ld bad, %ld late (%ld waiting for the "
           "ledger's commit after an answer within the deadline); slowest %.0f ms\n",
           rep.requests, rep.answered, rep.lexical_fallbacks, rep.tier_fallbacks, rep.precise_errors,
           rep.embedder_errors, rep.bad, rep.late, rep.late_committing, rep.max_ms);
    print_state("after the warm-up", &rep.before);
    print_state("after the run", &rep.after);
    if (rep.bad || rep.late)
        fail_msg("%ld bad and %ld late responses; the first: %s", rep.bad, rep.late, rep.first_bad);
    assert_true(rep.requests > 50);
    /* the faults happened, so the test can fail */
    assert_true(rep.lexical_fallbacks > 0);
    assert_true(rep.tier_fallbacks > 0);
    assert_true(rep.embedder_errors > 0);
    /* nothing leaked */
    assert_int_equal(rep.after.threads, rep.before.threads);
    assert_int_equal(rep.after.fds.files, rep.before.fds.files);
    assert_int_equal(rep.after.fds.other, rep.before.fds.other);
    assert_int_equal(rep.after.fds.listeners, rep.before.fds.listeners);
    assert_int_equal(rep.after.fds.sockets_other, rep.before.fds.sockets_other);
    assert_int_equal(rep.after.fds.clients, 0);
    /* What curl keeps for reuse varies with the last requests' luck (a
     * failed transfer's handle is dropped), but no more than was ever in
     * use at once: a connection per concurrent LLM call (one per client
     * here; 5 with 4 clients was seen once, under ASan on a loaded
     * machine, most likely a call given up at its deadline still closing
     * when the client's next query began: so at most two), an embedder handle
     * with its connection per worker (2), and a wake-up socketpair for the
     * LLM pool's multi handle and for each embedder handle.  A leak would
     * grow with the hundreds of requests, far past these bounds. */
    assert_true(rep.after.fds.llm <= 2 * o.clients);
    assert_true(rep.after.fds.embedder <= WORKERS);
    assert_true(rep.after.fds.unix_sockets <= 2 * (1 + WORKERS));
    assert_int_equal(rep.daemon_exit, 0); /* and under ASan: no leak at exit */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
