/* Unit tests for retrieval/lexindex (in-memory BM25 with MaxScore):
 * against a brute-force scorer written here, through adds, removals,
 * compaction and re-adds; and, through the engine over a real SQLite
 * store, against FTS5's own bm25() ranking, including an index built in
 * the background while documents are written and deleted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "lexindex.h"

/* ---- a small deterministic corpus ---- */

static uint64_t rng_state;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

#define VOCAB 400
static char vocab[VOCAB][12];

static void make_vocab(void) {
    static const char *const syl[] = {"ka", "lo", "mi", "ten", "sar", "vu", "pel", "dor", "fi", "gan", "hu", "ris"};
    for (int i = 0; i < VOCAB; i++) {
        int a = i % 12, b = (i / 12) % 12, c = i / 144;
        snprintf(vocab[i], sizeof vocab[i], "%s%s%s", syl[a], syl[b], c ? syl[c] : "");
    }
}

/* Zipf-like: word i with weight ~ 1/(i+1); the few first words are in
 * most chunks, the way common words make FTS5 score a third of a corpus. */
static int word(void) {
    static double cum[VOCAB];
    static bool init;
    if (!init) {
        double s = 0;
        for (int i = 0; i < VOCAB; i++)
            cum[i] = s += 1.0 / (i + 1);
        init = true;
    }
    double x = (double)rnd() / 4294967296.0 * cum[VOCAB - 1];
    int lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cum[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- lexindex against brute force ---- */

#define NCHUNKS 5000
#define MAXTOK 48

static int toks_of[NCHUNKS][MAXTOK];
static int ntoks_of[NCHUNKS];
static bool live_of[NCHUNKS];

static void fill_tokens(struct ret_lex_tokens *t, int c) {
    ret_lex_tokens_clear(t);
    for (int i = 0; i < ntoks_of[c]; i++)
        assert_int_equal(ret_lex_tokens_add(t, vocab[toks_of[c][i]], strlen(vocab[toks_of[c][i]])), ERR_OK);
}

struct ref_hit {
    double score;
    int64_t id;
};

static int cmp_ref(const void *x, const void *y) {
    const struct ref_hit *a = x, *b = y;
    if (a->score != b->score)
        return a->score < b->score ? 1 : -1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* FTS5's bm25() over the live chunks, every chunk scored. */
static size_t brute(const int *q, int nq, int k, struct ref_hit *out) {
    double n = 0, total = 0;
    for (int c = 0; c < NCHUNKS; c++)
        if (live_of[c]) {
            n++;
            total += ntoks_of[c];
        }
    double avgdl = total / n, idf[8];
    for (int i = 0; i < nq; i++) {
        double df = 0;
        for (int c = 0; c < NCHUNKS; c++) {
            bool has = false;
            for (int j = 0; live_of[c] && j < ntoks_of[c]; j++)
                has |= toks_of[c][j] == q[i];
            df += has;
        }
        idf[i] = log((n - df + 0.5) / (df + 0.5));
        if (idf[i] <= 0)
            idf[i] = 1e-6;
    }
    static struct ref_hit all[NCHUNKS];
    size_t m = 0;
    for (int c = 0; c < NCHUNKS; c++) {
        if (!live_of[c])
            continue;
        double s = 0;
        bool any = false;
        for (int i = 0; i < nq; i++) {
            int tf = 0;
            for (int j = 0; j < ntoks_of[c]; j++)
                tf += toks_of[c][j] == q[i];
            if (tf) {
                any = true;
                s += idf[i] * (tf * 2.2) / (tf + 1.2 * (0.25 + 0.75 * ntoks_of[c] / avgdl));
            }
        }
        if (any)
            all[m++] = (struct ref_hit){s, 1000 + c};
    }
    qsort(all, m, sizeof(*all), cmp_ref);
    if (m > (size_t)k)
        m = (size_t)k;
    memcpy(out, all, m * sizeof(*out));
    return m;
}

/* The index's top k and brute force's agree: same scores, and the same
 * chunks except where scores tie at the k-th place. */
static void check_queries(const struct ret_lexindex *li, int nqueries) {
    for (int qi = 0; qi < nqueries; qi++) {
        int nq = 1 + (int)(rnd() % 5), q[8];
        const char *terms[8];
        for (int i = 0; i < nq; i++) {
            q[i] = rnd() % 4 == 0 ? (int)(rnd() % VOCAB) : word();
            terms[i] = vocab[q[i]];
        }
        if (qi % 7 == 0 && nq > 1) { /* a repeated term counts twice */
            q[1] = q[0];
            terms[1] = terms[0];
        }
        int k = qi % 3 == 0 ? 1 : 10;
        int64_t ids[10];
        double sc[10];
        size_t n = 0;
        struct ref_hit ref[10];
        assert_int_equal(ret_lexindex_search(li, terms, (size_t)nq, k, ids, sc, &n), ERR_OK);
        size_t m = brute(q, nq, k, ref);
        assert_int_equal(n, m);
        for (size_t i = 0; i < n; i++) {
            assert_true(fabs(sc[i] - ref[i].score) <= 1e-9 * fmax(1.0, fabs(ref[i].score)));
            if (fabs(ref[i].score - ref[m - 1].score) > 1e-9)
                assert_int_equal(ids[i], ref[i].id);
        }
    }
}

static void test_against_brute_force(void **state) {
    (void)state;
    rng_state = 42;
    struct ret_lexindex *li = NULL;
    assert_int_equal(ret_lexindex_new(&li), ERR_OK);
    struct ret_lex_tokens t = {0};
    for (int c = 0; c < NCHUNKS; c++) {
        ntoks_of[c] = 8 + (int)(rnd() % (MAXTOK - 8));
        for (int j = 0; j < ntoks_of[c]; j++)
            toks_of[c][j] = word();
        fill_tokens(&t, c);
        assert_int_equal(ret_lexindex_add(li, 1000 + c, &t), ERR_OK);
        live_of[c] = true;
    }
    fill_tokens(&t, 0);
    assert_int_equal(ret_lexindex_add(li, 1000, &t), ERR_OK); /* present already: no change */
    assert_int_equal(ret_lexindex_chunks(li), NCHUNKS);
    check_queries(li, 150);

    /* remove 30% (crossing the compaction point) in three rounds */
    for (int round = 0; round < 3; round++) {
        int64_t gone[501];
        size_t ng = 0;
        for (int c = round; c < NCHUNKS && ng < 500; c += 7)
            if (live_of[c]) {
                gone[ng++] = 1000 + c;
                live_of[c] = false;
            }
        gone[ng++] = 999999; /* absent: ignored */
        assert_int_equal(ret_lexindex_remove(li, gone, ng), ERR_OK);
        check_queries(li, 60);
    }
    assert_int_equal(ret_lexindex_chunks(li), NCHUNKS - 1500);

    /* re-add some removed ids with new text, as a replaced document would */
    for (int c = 0; c < NCHUNKS; c += 11)
        if (!live_of[c]) {
            ntoks_of[c] = 5 + (int)(rnd() % 20);
            for (int j = 0; j < ntoks_of[c]; j++)
                toks_of[c][j] = word();
            fill_tokens(&t, c);
            assert_int_equal(ret_lexindex_add(li, 1000 + c, &t), ERR_OK);
            live_of[c] = true;
        }
    check_queries(li, 100);

    /* unknown terms and an empty index */
    const char *none[] = {"zzzz"};
    int64_t ids[1];
    double sc[1];
    size_t n = 9;
    assert_int_equal(ret_lexindex_search(li, none, 1, 1, ids, sc, &n), ERR_OK);
    assert_int_equal(n, 0);
    ret_lex_tokens_done(&t);
    ret_lexindex_free(li);
    assert_int_equal(ret_lexindex_new(&li), ERR_OK);
    n = 9;
    const char *one[] = {vocab[0]};
    assert_int_equal(ret_lexindex_search(li, one, 1, 1, ids, sc, &n), ERR_OK);
    assert_int_equal(n, 0);
    ret_lexindex_free(li);
}

/* Documents replaced over and over, each time with a token of its own (a
 * number, as a week's tide table has): the index's memory must stay
 * bounded, because compaction drops the terms no chunk holds any more,
 * while every live chunk stays findable by its own token. */
static void test_churn_bounded(void **state) {
    (void)state;
    struct ret_lexindex *li = NULL;
    assert_int_equal(ret_lexindex_new(&li), ERR_OK);
    struct ret_lex_tokens t = {0};
    char tok[32];
    int last[50];
    size_t peak_early = 0, peak_late = 0;
    for (int k = 0; k < 20000; k++) {
        int64_t id = 1 + k % 50;
        if (k >= 50)
            assert_int_equal(ret_lexindex_remove(li, &id, 1), ERR_OK);
        ret_lex_tokens_clear(&t);
        assert_int_equal(ret_lex_tokens_add(&t, "tide", 4), ERR_OK);
        assert_int_equal(ret_lex_tokens_add(&t, "table", 5), ERR_OK);
        int n = snprintf(tok, sizeof tok, "week%d", k);
        assert_int_equal(ret_lex_tokens_add(&t, tok, (size_t)n), ERR_OK);
        assert_int_equal(ret_lexindex_add(li, id, &t), ERR_OK);
        last[id - 1] = k;
        size_t b = ret_lexindex_bytes(li);
        if (k >= 1000 && k < 5000 && b > peak_early)
            peak_early = b;
        if (k >= 16000 && b > peak_late)
            peak_late = b;
    }
    if (peak_late > peak_early + peak_early / 4)
        fail_msg("the index grew with the churn: %zu bytes at most early on, %zu late", peak_early, peak_late);
    assert_int_equal(ret_lexindex_chunks(li), 50);
    int64_t ids[64];
    double sc[64];
    for (int d = 0; d < 50; d++) {
        snprintf(tok, sizeof tok, "week%d", last[d]);
        const char *q[] = {tok};
        size_t n = 0;
        assert_int_equal(ret_lexindex_search(li, q, 1, 5, ids, sc, &n), ERR_OK);
        assert_int_equal(n, 1);
        assert_int_equal(ids[0], d + 1);
    }
    const char *gone[] = {"week7"}, *common[] = {"tide"};
    size_t n = 9;
    assert_int_equal(ret_lexindex_search(li, gone, 1, 5, ids, sc, &n), ERR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ret_lexindex_search(li, common, 1, 64, ids, sc, &n), ERR_OK);
    assert_int_equal(n, 50);
    ret_lex_tokens_done(&t);
    ret_lexindex_free(li);
}

/* ---- through the engine, against FTS5 ---- */

static char dir[64], dbpath[128], idxdir[128];
static const struct ret_chunk_opts chunk = {.max_tokens = 40, .overlap_tokens = 5};

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/slorag-lex-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/slorag.db", dir);
    snprintf(idxdir, sizeof idxdir, "%s/index", dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct ret_engine *open_engine_par(struct ret_store **ret_store, bool lexical_index, int64_t parallel_min) {
    struct ret_store *s = NULL;
    assert_int_equal(ret_store_open(dbpath, 4, &s), ERR_OK);
    struct ret_engine_opts o = {.index_dir = idxdir, .index_factory = "Flat", .dim = 32, .save_interval_ms = 100,
                                .chunk = chunk, .lexical_index = lexical_index, .hybrid_parallel_min = parallel_min};
    struct ret_engine *eng = NULL;
    assert_int_equal(ret_engine_open(s, &o, NULL, &eng), ERR_OK);
    *ret_store = s;
    return eng;
}

static struct ret_engine *open_engine(struct ret_store **ret_store, bool lexical_index) {
    return open_engine_par(ret_store, lexical_index, -1);
}

/* A document of sentences over the vocabulary, with some inflected forms
 * ("kaloes", "kaloing") for the porter stemmer and some stop words. */
static void make_doc(char *out, size_t len, int words) {
    size_t used = 0;
    for (int i = 0; i < words && used + 40 < len; i++) {
        const char *w = vocab[word()];
        int r = (int)(rnd() % 10);
        used += (size_t)snprintf(out + used, len - used, "%s%s%s%s", i ? " " : "", r == 0 ? "the " : "", w,
                                 r == 1 ? "ing" : r == 2 ? "s" : "");
        if (i % 9 == 8)
            used += (size_t)snprintf(out + used, len - used, ".");
    }
}

static void put(struct ret_engine *eng, int64_t cid, const char *id, const char *text) {
    struct ret_doc_in d = {.ext_id = id, .title = id, .text = text, .text_len = strlen(text)};
    assert_int_equal(ret_engine_put(eng, cid, &d, NULL), ERR_OK);
}

static void wait_ready(struct ret_engine *eng, int64_t cid) {
    for (int i = 0; i < 3000; i++) {
        struct ret_index_info info;
        assert_int_equal(ret_engine_index_info(eng, cid, &info), ERR_OK);
        if (info.lexical_ready)
            return;
        usleep(10000);
    }
    fail_msg("the lexical index was not ready after 30 s");
}

/* The engine's lexical search (the in-memory index once ready) and FTS5's
 * bm25() ranking agree, query after query. */
static void compare_with_fts5(struct ret_engine *eng, struct ret_store *s, int64_t cid, int nqueries) {
    for (int qi = 0; qi < nqueries; qi++) {
        struct arena *a = arena_new(0);
        char q[256];
        size_t used = 0;
        int nq = 1 + (int)(rnd() % 4);
        for (int i = 0; i < nq; i++)
            used += (size_t)snprintf(q + used, sizeof q - used, "%s%s%s", i ? " " : "", i == 1 ? "what is " : "",
                                     vocab[rnd() % 3 == 0 ? (int)(rnd() % VOCAB) : word()]);
        if (qi % 5 == 0)
            snprintf(q + used, sizeof q - used, " %sing", vocab[word()]); /* stems to the same term */
        struct ret_scored *res = NULL;
        struct ret_hit *ref = NULL;
        size_t n = 0, m = 0;
        assert_int_equal(ret_engine_search(eng, cid, q, 10, RET_MODE_LEXICAL, a, &res, &n, NULL), ERR_OK);
        assert_int_equal(ret_search_lexical(s, cid, q, 10, a, &ref, &m), ERR_OK);
        assert_int_equal(n, m);
        for (size_t i = 0; i < n; i++) {
            if (fabs(res[i].lexical_score - ref[i].score) > 1e-9 * fmax(1.0, fabs(ref[i].score)))
                fail_msg("query \"%s\" rank %zu: score %.12f, FTS5 %.12f", q, i, res[i].lexical_score, ref[i].score);
            /* FTS5 orders equal scores as it finds them: a chunk may sit
             * elsewhere among its equals, or be one of several tying the
             * k-th score that only one list kept */
            bool found = fabs(res[i].lexical_score - ref[m - 1].score) <= 1e-9;
            for (size_t j = 0; !found && j < m; j++)
                found = ref[j].chunk_id == res[i].hit.chunk_id && fabs(ref[j].score - res[i].lexical_score) <= 1e-9;
            if (!found)
                fail_msg("query \"%s\" rank %zu: chunk %lld (%.12f) is not in FTS5's list", q, i,
                         (long long)res[i].hit.chunk_id, res[i].lexical_score);
            assert_non_null(res[i].hit.text);
        }
        arena_free(a);
    }
}

static void test_same_as_fts5(void **state) {
    (void)state;
    rng_state = 7;
    struct ret_store *s = NULL;
    struct ret_engine *eng = open_engine(&s, true);
    int64_t cid;
    assert_int_equal(ret_collection_ensure(s, "t", "c", &cid), ERR_OK);
    char text[4096], id[32];
    for (int d = 0; d < 300; d++) {
        make_doc(text, sizeof text, 30 + (int)(rnd() % 120));
        snprintf(id, sizeof id, "d%d", d);
        put(eng, cid, id, text);
    }
    wait_ready(eng, cid); /* new since open: ready at once */
    compare_with_fts5(eng, s, cid, 200);

    /* replace a third, delete a third */
    for (int d = 0; d < 300; d += 3) {
        make_doc(text, sizeof text, 20 + (int)(rnd() % 60));
        snprintf(id, sizeof id, "d%d", d);
        put(eng, cid, id, text);
        snprintf(id, sizeof id, "d%d", d + 1);
        assert_int_equal(ret_engine_delete(eng, cid, id), ERR_OK);
    }
    compare_with_fts5(eng, s, cid, 200);

    /* a word FTS5 splits in two (an em dash inside) is a phrase: FTS5
     * answers it, and the result is FTS5's */
    char q[64];
    snprintf(q, sizeof q, "%s\xe2\x80\x94%s", vocab[1], vocab[2]);
    struct arena *a = arena_new(0);
    struct ret_scored *res = NULL;
    struct ret_hit *ref = NULL;
    size_t n = 0, m = 0;
    assert_int_equal(ret_engine_search(eng, cid, q, 5, RET_MODE_LEXICAL, a, &res, &n, NULL), ERR_OK);
    assert_int_equal(ret_search_lexical(s, cid, q, 5, a, &ref, &m), ERR_OK);
    assert_int_equal(n, m);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(res[i].hit.chunk_id, ref[i].chunk_id);
    arena_free(a);

    struct ret_index_info info;
    int64_t chunks = 0;
    assert_int_equal(ret_engine_index_info(eng, cid, &info), ERR_OK);
    assert_int_equal(ret_collection_chunk_count(s, cid, &chunks), ERR_OK);
    assert_true(info.lexical_ready);
    assert_int_equal(info.lexical_chunks, chunks);
    assert_true(info.lexical_bytes > 0);
    ret_engine_free(eng);
    ret_store_free(s);
}

struct writer {
    struct ret_engine *eng;
    int64_t cid;
    int puts, deletes;
    bool stop;
};

static void *writer_main(void *arg) {
    struct writer *w = arg;
    char text[2048], id[32];
    uint64_t st = 99;
    for (int i = 0; !__atomic_load_n(&w->stop, __ATOMIC_RELAXED) || i < 40; i++) {
        st = st * 6364136223846793005ull + 1;
        if (i % 3 != 0) {
            snprintf(id, sizeof id, "d%d", (int)((st >> 33) % 1500));
            enum err e = ret_engine_delete(w->eng, w->cid, id);
            assert_true(e == ERR_OK || e == ERR_NOT_FOUND);
            w->deletes += e == ERR_OK;
        } else {
            /* new documents, and replacements of old ones */
            snprintf(id, sizeof id, i % 2 ? "w%d" : "d%d", i % 2 ? i : (int)((st >> 33) % 1500));
            snprintf(text, sizeof text, "%s %s %s %s %s. %s %s", vocab[(st >> 20) % 50], vocab[(st >> 30) % VOCAB],
                     vocab[(st >> 40) % 20], vocab[3], vocab[(st >> 10) % VOCAB], vocab[0], vocab[i % VOCAB]);
            put(w->eng, w->cid, id, text);
            w->puts++;
        }
    }
    return NULL;
}

/* An index built in the background at open, page by page, while documents
 * are written and deleted, ends up as FTS5 sees the collection. */
static void test_built_during_writes(void **state) {
    (void)state;
    rng_state = 11;
    struct ret_store *s = NULL;
    struct ret_engine *eng = open_engine(&s, false);
    int64_t cid;
    assert_int_equal(ret_collection_ensure(s, "t", "c", &cid), ERR_OK);
    char text[4096], id[32];
    for (int d = 0; d < 1500; d++) {
        make_doc(text, sizeof text, 60 + (int)(rnd() % 100));
        snprintf(id, sizeof id, "d%d", d);
        put(eng, cid, id, text);
    }
    int64_t chunks = 0;
    assert_int_equal(ret_collection_chunk_count(s, cid, &chunks), ERR_OK);
    assert_true(chunks > 20 * 256); /* many pages for the builder, writes between them */
    ret_engine_free(eng);
    ret_store_free(s);

    eng = open_engine(&s, true);
    struct writer w = {.eng = eng, .cid = cid};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
    wait_ready(eng, cid);
    __atomic_store_n(&w.stop, true, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    assert_true(w.puts > 0 && w.deletes > 0);
    compare_with_fts5(eng, s, cid, 300);
    struct ret_index_info info;
    assert_int_equal(ret_engine_index_info(eng, cid, &info), ERR_OK);
    assert_int_equal(ret_collection_chunk_count(s, cid, &chunks), ERR_OK);
    assert_int_equal(info.lexical_chunks, chunks);
    ret_engine_free(eng);
    ret_store_free(s);
}

/* Hybrid with its two searches in parallel (every collection, here) gives
 * what the sequential path gives, through the in-memory index and through
 * FTS5 (whose hits carry their text from the other thread's arena). */
static void test_parallel_hybrid(void **state) {
    (void)state;
    rng_state = 23;
    struct ret_store *s = NULL;
    struct ret_engine *eng = open_engine(&s, false);
    int64_t cid;
    assert_int_equal(ret_collection_ensure(s, "t", "c", &cid), ERR_OK);
    char text[4096], id[32];
    for (int d = 0; d < 200; d++) {
        make_doc(text, sizeof text, 30 + (int)(rnd() % 100));
        snprintf(id, sizeof id, "d%d", d);
        put(eng, cid, id, text);
    }
    ret_engine_free(eng);
    ret_store_free(s);
    char queries[60][128];
    for (int qi = 0; qi < 60; qi++)
        snprintf(queries[qi], sizeof queries[qi], "%s %s %s", vocab[word()], vocab[rnd() % VOCAB], vocab[word()]);
    /* reference: sequential, FTS5 */
    struct arena *ra = arena_new(0);
    struct ret_scored *ref[60];
    size_t nref[60];
    eng = open_engine_par(&s, false, -1);
    for (int qi = 0; qi < 60; qi++)
        assert_int_equal(ret_engine_search(eng, cid, queries[qi], 8, RET_MODE_HYBRID, ra, &ref[qi], &nref[qi], NULL),
                         ERR_OK);
    ret_engine_free(eng);
    ret_store_free(s);
    for (int variant = 0; variant < 2; variant++) {
        eng = open_engine_par(&s, variant == 1, 1);
        if (variant == 1)
            wait_ready(eng, cid);
        for (int qi = 0; qi < 60; qi++) {
            struct arena *a = arena_new(0);
            struct ret_scored *res = NULL;
            size_t n = 0;
            struct ret_signals sig;
            assert_int_equal(ret_engine_search(eng, cid, queries[qi], 8, RET_MODE_HYBRID, a, &res, &n, &sig), ERR_OK);
            assert_int_equal(n, nref[qi]);
            for (size_t i = 0; i < n; i++) {
                assert_non_null(res[i].hit.text);
                assert_string_equal(res[i].hit.text, ref[qi][i].hit.text);
                assert_true(fabs(res[i].hit.score - ref[qi][i].hit.score) < 1e-12);
            }
            arena_free(a);
        }
        ret_engine_free(eng);
        ret_store_free(s);
    }
    arena_free(ra);
}

int main(void) {
    make_vocab();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_brute_force),
        cmocka_unit_test(test_churn_bounded),
        cmocka_unit_test_setup_teardown(test_same_as_fts5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_built_during_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_hybrid, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
