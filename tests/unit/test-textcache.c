/* Unit tests for retrieval/textcache.c: hits and misses, the generation,
 * the byte bound and recency, and many threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textcache.h"

struct got {
    const char *doc, *title, *text;
    int64_t start, end;
};

static bool get(struct ret_textcache *c, int64_t id, int64_t coll, struct arena *a, struct got *g) {
    return ret_textcache_get(c, id, coll, a, &g->doc, &g->title, &g->text, &g->start, &g->end);
}

static void test_hit_miss_and_copy(void **state) {
    (void)state;
    struct ret_textcache *c = ret_textcache_new(1 << 20);
    struct arena *a = arena_new(0);
    struct got g = {0};
    assert_false(get(c, 7, 1, a, &g));
    ret_textcache_put(c, ret_textcache_gen(c), 7, 1, "doc-7", "Title", "Some chunk text.", 10, 26);
    assert_true(get(c, 7, 1, a, &g));
    assert_string_equal(g.doc, "doc-7");
    assert_string_equal(g.title, "Title");
    assert_string_equal(g.text, "Some chunk text.");
    assert_int_equal(g.start, 10);
    assert_int_equal(g.end, 26);
    /* the strings are the arena's copies, not the cache's */
    struct got h = {0};
    assert_true(get(c, 7, 1, a, &h));
    assert_ptr_not_equal(h.text, g.text);
    /* another collection never sees it */
    assert_false(get(c, 7, 2, a, &h));
    /* storing the same id again replaces the entry */
    ret_textcache_put(c, ret_textcache_gen(c), 7, 1, "doc-7", "New", "Other text.", 0, 11);
    assert_true(get(c, 7, 1, a, &h));
    assert_string_equal(h.title, "New");
    assert_string_equal(h.text, "Other text.");
    struct ret_textcache_stats st;
    ret_textcache_stats(c, &st);
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.entries, 1);
    assert_true(st.bytes > strlen("doc-7NewOther text."));
    arena_free(a);
    ret_textcache_free(c);
}

static void test_generation(void **state) {
    (void)state;
    struct ret_textcache *c = ret_textcache_new(1 << 20);
    struct arena *a = arena_new(0);
    struct got g;
    uint64_t before = ret_textcache_gen(c);
    ret_textcache_put(c, before, 1, 1, "d", "t", "old text", 0, 8);
    assert_true(get(c, 1, 1, a, &g));
    ret_textcache_invalidate(c);
    assert_false(get(c, 1, 1, a, &g)); /* entries from before are gone */
    /* a row read under a snapshot older than the invalidation is not kept */
    ret_textcache_put(c, before, 2, 1, "d", "t", "stale", 0, 5);
    assert_false(get(c, 2, 1, a, &g));
    ret_textcache_put(c, ret_textcache_gen(c), 2, 1, "d", "t", "fresh", 0, 5);
    assert_true(get(c, 2, 1, a, &g));
    assert_string_equal(g.text, "fresh");
    struct ret_textcache_stats st;
    ret_textcache_stats(c, &st);
    assert_int_equal(st.entries, 1); /* the stale entry was dropped when met */
    arena_free(a);
    ret_textcache_free(c);
}

/* After an invalidation, the entries from before leave with the puts
 * that follow (two a put, from the least recent end of their shard),
 * not only when the byte bound pushes them out. */
static void test_stale_entries_freed(void **state) {
    (void)state;
    struct ret_textcache *c = ret_textcache_new(64 << 20);
    char text[200];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    for (int64_t id = 1; id <= 1000; id++)
        ret_textcache_put(c, ret_textcache_gen(c), id, 1, "d", "t", text, 0, 1);
    struct ret_textcache_stats st;
    ret_textcache_stats(c, &st);
    assert_int_equal(st.entries, 1000);
    size_t full = st.bytes;
    ret_textcache_invalidate(c);
    /* 600 new entries: two stale ones freed per put, in its own shard */
    for (int64_t id = 5001; id <= 5600; id++)
        ret_textcache_put(c, ret_textcache_gen(c), id, 1, "d", "t", text, 0, 1);
    ret_textcache_stats(c, &st);
    if (st.entries > 600 + 100)
        fail_msg("%zu entries (%zu bytes; %zu before the invalidation): the stale ones stayed", (size_t)st.entries,
                 (size_t)st.bytes, full);
    struct arena *a = arena_new(0);
    struct got g;
    for (int64_t id = 5001; id <= 5600; id++)
        assert_true(get(c, id, 1, a, &g)); /* the fresh ones all stayed */
    arena_free(a);
    ret_textcache_free(c);
}

static void test_bound_and_recency(void **state) {
    (void)state;
    /* 16 shards of 8 KiB; texts of 200 bytes: about 30 entries a shard */
    size_t cap = 128 << 10;
    struct ret_textcache *c = ret_textcache_new(cap);
    struct arena *a = arena_new(0);
    char text[201];
    memset(text, 'x', 200);
    text[200] = '\0';
    struct got g;
    /* id 0 is read after every put: the most recent, it must survive */
    ret_textcache_put(c, ret_textcache_gen(c), 0, 1, "d0", "t", text, 0, 200);
    for (int64_t id = 1; id <= 5000; id++) {
        ret_textcache_put(c, ret_textcache_gen(c), id, 1, "d", "t", text, 0, 200);
        assert_true(get(c, 0, 1, a, &g));
    }
    struct ret_textcache_stats st;
    ret_textcache_stats(c, &st);
    assert_true(st.bytes <= cap);
    assert_true(st.bytes > cap / 2);
    assert_true(st.entries < 5000 / 4);
    /* the newest entries are there, the oldest gone */
    assert_true(get(c, 5000, 1, a, &g));
    assert_false(get(c, 1, 1, a, &g));
    /* a row larger than an eighth of a shard is not stored */
    char *big = malloc(2000);
    memset(big, 'y', 1999);
    big[1999] = '\0';
    ret_textcache_put(c, ret_textcache_gen(c), 9999, 1, "d", "t", big, 0, 1999);
    assert_false(get(c, 9999, 1, a, &g));
    free(big);
    arena_free(a);
    ret_textcache_free(c);

    /* capacity 0: nothing is kept */
    c = ret_textcache_new(0);
    a = arena_new(0);
    ret_textcache_put(c, ret_textcache_gen(c), 1, 1, "d", "t", "x", 0, 1);
    assert_false(get(c, 1, 1, a, &g));
    ret_textcache_stats(c, &st);
    assert_int_equal(st.entries, 0);
    arena_free(a);
    ret_textcache_free(c);
}

struct worker {
    struct ret_textcache *c;
    unsigned seed;
    int bad, hits;
};

/* Every id's text is derived from the id: a hit with another text means
 * entries were mixed up under concurrency. */
static void *hammer(void *p) {
    struct worker *w = p;
    struct arena *a = arena_new(0);
    for (int i = 0; i < 40000; i++) {
        w->seed = w->seed * 1103515245u + 12345u;
        int64_t id = (int64_t)((w->seed >> 8) % 3000);
        char want[64];
        snprintf(want, sizeof want, "text of chunk %lld", (long long)id);
        struct got g;
        if (get(w->c, id, 1, a, &g)) {
            w->hits++;
            if (strcmp(g.text, want) != 0 || g.start != id)
                w->bad++;
        } else {
            ret_textcache_put(w->c, ret_textcache_gen(w->c), id, 1, "d", "t", want, id, id + 1);
        }
        if (i % 5000 == 4999) {
            arena_free(a);
            a = arena_new(0);
        }
    }
    arena_free(a);
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    /* small enough that entries are evicted all along */
    struct ret_textcache *c = ret_textcache_new(64 << 10);
    struct worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.c = c, .seed = 17u + (unsigned)i};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    int hits = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].bad, 0);
        hits += w[i].hits;
    }
    assert_true(hits > 1000);
    struct ret_textcache_stats st;
    ret_textcache_stats(c, &st);
    assert_true(st.bytes <= 64 << 10);
    assert_int_equal(st.hits, (uint64_t)hits);
    ret_textcache_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_and_copy),
        cmocka_unit_test(test_generation),
        cmocka_unit_test(test_stale_entries_freed),
        cmocka_unit_test(test_bound_and_recency),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
