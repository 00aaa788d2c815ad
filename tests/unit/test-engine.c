/* Unit tests for retrieval/engine: built-in embedder, dense and hybrid
 * search, index persistence by generation, rebuild of missing or corrupt
 * index files, deletes and collection drops keeping FAISS and SQLite agreed. */
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

#include "embed.h"
#include "engine.h"
#include "vindex.h"

static char dir[64], dbpath[128], idxdir[128];
static const struct ret_chunk_opts chunk = {.max_tokens = 40, .overlap_tokens = 5};

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/slorag-eng-XXXXXX");
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

static double dot(const float *a, const float *b, int d) {
    double s = 0;
    for (int i = 0; i < d; i++)
        s += (double)a[i] * b[i];
    return s;
}

static void test_builtin_embedder(void **state) {
    (void)state;
    struct ret_embedder *e = NULL;
    assert_int_equal(ret_embedder_builtin_new(256, &e), ERR_OK);
    const char *t[] = {"configuring the harbour ferries", "ferry configuration in the harbour",
                       "tuna sardines mackerel fish"};
    size_t l[] = {strlen(t[0]), strlen(t[1]), strlen(t[2])};
    float v[3 * 256];
    assert_int_equal(ret_embed(e, t, l, 3, v), ERR_OK);
    assert_true(fabs(dot(v, v, 256) - 1.0) < 1e-5);               /* unit norm */
    assert_true(dot(v, v + 256, 256) > 0.5);                      /* morphological variants are close */
    assert_true(dot(v, v + 256, 256) > dot(v, v + 512, 256) + 0.3); /* unrelated text is far */
    float again[256];
    assert_int_equal(ret_embed(e, t, l, 1, again), ERR_OK);
    assert_memory_equal(v, again, sizeof again); /* deterministic */
    ret_embedder_free(e);
    assert_int_equal(ret_embedder_builtin_new(8, &e), ERR_INVALID_FIELD);
}

static struct ret_engine *open_engine_dim(struct ret_store **ret_store, struct ret_startup_report *rep, int dim) {
    struct ret_store *s = NULL;
    assert_int_equal(ret_store_open(dbpath, 2, &s), ERR_OK);
    struct ret_engine_opts o = {.index_dir = idxdir, .index_factory = "Flat", .dim = dim, .save_interval_ms = 50,
                                .chunk = chunk};
    struct ret_engine *eng = NULL;
    assert_int_equal(ret_engine_open(s, &o, rep, &eng), ERR_OK);
    *ret_store = s;
    return eng;
}

static struct ret_engine *open_engine(struct ret_store **ret_store, struct ret_startup_report *rep) {
    return open_engine_dim(ret_store, rep, 128);
}

static void put(struct ret_engine *eng, int64_t cid, const char *id, const char *text) {
    struct ret_doc_in d = {.ext_id = id, .title = id, .text = text, .text_len = strlen(text)};
    assert_int_equal(ret_engine_put(eng, cid, &d, NULL), ERR_OK);
}

static const char *top_doc(struct ret_engine *eng, int64_t cid, const char *q, enum ret_mode mode, struct arena *a,
                           struct ret_signals *sig) {
    struct ret_scored *res;
    size_t n;
    assert_int_equal(ret_engine_search(eng, cid, q, 3, mode, a, &res, &n, sig), ERR_OK);
    return n ? res[0].hit.document_id : NULL;
}

static int count_files(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.faiss$' > '%s/count'", idxdir, dir);
    if (system(cmd) < 0)
        return -1;
    char p[160];
    snprintf(p, sizeof p, "%s/count", dir);
    FILE *f = fopen(p, "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        fclose(f);
    }
    return n;
}

static void test_dense_hybrid_and_persistence(void **state) {
    (void)state;
    struct ret_store *s;
    struct ret_startup_report rep;
    struct ret_engine *eng = open_engine(&s, &rep);
    assert_int_equal(rep.collections, 0);
    int64_t cid;
    assert_int_equal(ret_collection_ensure(s, "default", "kb", &cid), ERR_OK);
    put(eng, cid, "ferry", "Ferries to the island leave every two hours from pier four.");
    put(eng, cid, "light", "The lighthouse beam reaches thirty kilometres out to sea.");
    put(eng, cid, "fish", "Sardines and mackerel are sold at the market on Tuesdays.");
    assert_int_equal(ret_engine_vectors(eng), 3);

    struct arena *a = arena_new(0);
    struct ret_signals sig;
    /* dense finds "ferry" from a variant spelling BM25 cannot match */
    assert_string_equal(top_doc(eng, cid, "ferrie islands", RET_MODE_DENSE, a, &sig), "ferry");
    assert_int_equal(sig.lexical_hits, 0);
    assert_true(sig.dense_hits >= 1);
    assert_string_equal(top_doc(eng, cid, "lighthouse beam", RET_MODE_HYBRID, a, &sig), "light");
    assert_true(sig.lexical_hits >= 1 && sig.dense_hits >= 1);
    assert_true(sig.overlap > 0);
    assert_true(sig.top_score > 0);
    assert_string_equal(top_doc(eng, cid, "mackerel market", RET_MODE_LEXICAL, a, &sig), "fish");

    /* deletes reach the dense index too */
    assert_int_equal(ret_engine_delete(eng, cid, "light"), ERR_OK);
    assert_int_equal(ret_engine_vectors(eng), 2);
    const char *top = top_doc(eng, cid, "lighthouse beam", RET_MODE_DENSE, a, &sig);
    assert_true(top == NULL || strcmp(top, "light") != 0);
    assert_int_equal(ret_engine_delete(eng, cid, "light"), ERR_NOT_FOUND);
    ret_engine_free(eng); /* saves */
    ret_store_free(s);
    assert_int_equal(count_files(), 1);

    /* restart: the saved index matches SQLite's generation and is loaded */
    eng = open_engine(&s, &rep);
    assert_int_equal(rep.collections, 1);
    assert_int_equal(rep.loaded, 1);
    assert_int_equal(rep.rebuilt, 0);
    assert_int_equal(rep.vectors, 2);
    assert_string_equal(top_doc(eng, cid, "ferrie islands", RET_MODE_DENSE, a, &sig), "ferry");
    ret_engine_free(eng);
    ret_store_free(s);

    /* corrupt the file: rebuilt from SQLite at start-up, same answers */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "for f in '%s'/*.faiss; do printf garbage > \"$f\"; done", idxdir);
    assert_int_equal(system(cmd), 0);
    eng = open_engine(&s, &rep);
    assert_int_equal(rep.rebuilt, 1);
    assert_int_equal(rep.vectors, 2);
    assert_string_equal(top_doc(eng, cid, "ferrie islands", RET_MODE_DENSE, a, &sig), "ferry");
    ret_engine_free(eng);
    ret_store_free(s);

    /* delete the file: rebuilt as well */
    snprintf(cmd, sizeof cmd, "rm -f '%s'/*.faiss", idxdir);
    assert_int_equal(system(cmd), 0);
    eng = open_engine(&s, &rep);
    assert_int_equal(rep.rebuilt, 1);
    assert_int_equal(count_files(), 1); /* and written back */

    /* a write after start-up bumps the generation; a stale file is never loaded */
    put(eng, cid, "new", "A brand new document about tides.");
    int64_t gen;
    assert_int_equal(ret_collection_generation(s, cid, &gen), ERR_OK);
    usleep(300 * 1000); /* the saver (every 50 ms) writes the new generation */
    char want[256];
    snprintf(want, sizeof want, "%s/c%lld.g%lld.faiss", idxdir, (long long)cid, (long long)gen);
    assert_int_equal(access(want, F_OK), 0);
    assert_int_equal(count_files(), 1); /* the old generation's file is gone */

    /* dropping the collection removes its files and its vectors */
    assert_int_equal(ret_engine_drop_collection(eng, "default", "kb"), ERR_OK);
    assert_int_equal(ret_engine_vectors(eng), 0);
    assert_int_equal(count_files(), 0);
    assert_int_equal(ret_engine_drop_collection(eng, "default", "kb"), ERR_NOT_FOUND);
    arena_free(a);
    ret_engine_free(eng);
    ret_store_free(s);
}

/* Stored embeddings of one dimension, an embedder of another: dense search
 * and writes are refused with the conflict, lexical search and deletes
 * work, and a collection emptied of old vectors takes new ones. */
static void test_dimension_conflict(void **state) {
    (void)state;
    struct ret_store *s;
    struct ret_startup_report rep;
    struct ret_engine *eng = open_engine_dim(&s, &rep, 128);
    int64_t cid, other;
    assert_int_equal(ret_collection_ensure(s, "t", "docs", &cid), ERR_OK);
    assert_int_equal(ret_collection_ensure(s, "t", "empty", &other), ERR_OK);
    put(eng, cid, "ferry", "The ferry leaves the harbour at seven every morning.");
    put(eng, cid, "mill", "The old mill was converted to electricity in 1921.");
    ret_engine_free(eng);
    ret_store_free(s);

    eng = open_engine_dim(&s, &rep, 64);
    assert_int_equal(ret_engine_conflicts(eng), 1); /* "empty" has no vectors: no conflict */
    assert_int_equal(ret_engine_dim(eng), 64);
    struct arena *a = arena_new(1 << 20);
    struct ret_scored *res;
    size_t n;
    assert_int_equal(ret_engine_search(eng, cid, "ferry", 3, RET_MODE_DENSE, a, &res, &n, NULL), ERR_CONFLICT);
    assert_string_equal(ret_last_error(),
                        "embedding dimension changed: the collection's stored embeddings have 128 dimensions, the "
                        "embedder (builtin) gives 64 - re-embed the collection (see docs/retrieval.md)");
    assert_int_equal(ret_engine_search(eng, cid, "ferry", 3, RET_MODE_HYBRID, a, &res, &n, NULL), ERR_CONFLICT);
    assert_string_equal(top_doc(eng, cid, "ferry", RET_MODE_LEXICAL, a, NULL), "ferry");
    assert_string_equal(ret_last_error(), ""); /* cleared by the successful search */
    struct ret_doc_in d = {.ext_id = "new", .title = "new", .text = "A new pier.", .text_len = 11};
    assert_int_equal(ret_engine_put(eng, cid, &d, NULL), ERR_CONFLICT);
    assert_non_null(strstr(ret_last_error(), "have 128 dimensions"));
    put(eng, other, "pier", "A new pier was built."); /* other collections are unaffected */
    assert_string_equal(top_doc(eng, other, "pier", RET_MODE_DENSE, a, NULL), "pier");
    /* re-ingestion path: delete, then store again */
    assert_int_equal(ret_engine_delete(eng, cid, "ferry"), ERR_OK);
    assert_int_equal(ret_engine_conflicts(eng), 1);
    assert_int_equal(ret_engine_delete(eng, cid, "mill"), ERR_OK);
    assert_int_equal(ret_engine_conflicts(eng), 0);
    put(eng, cid, "ferry", "The ferry leaves the harbour at seven every morning.");
    assert_string_equal(top_doc(eng, cid, "ferry", RET_MODE_DENSE, a, NULL), "ferry");
    ret_engine_free(eng);
    ret_store_free(s);
    /* and it stays resolved after a restart */
    eng = open_engine_dim(&s, &rep, 64);
    assert_int_equal(ret_engine_conflicts(eng), 0);
    assert_string_equal(top_doc(eng, cid, "ferry", RET_MODE_DENSE, a, NULL), "ferry");
    arena_free(a);
    ret_engine_free(eng);
    ret_store_free(s);
}


/* Text of synthetic document i: its own rare word plus common ones. */
static void synth_text(int i, char *out, size_t n) {
    static const char *const words[] = {"harbour", "ferry", "island", "lighthouse", "market", "sardine", "pier",
                                        "tide", "keeper", "beam", "fog", "sail", "anchor", "net", "gull", "dune"};
    uint32_t x = (uint32_t)i * 2654435761u + 12345u;
    int len = snprintf(out, n, "entry%dzq", i);
    for (int w = 0; w < 12 && (size_t)len < n; w++) {
        x = x * 1103515245u + 12345u;
        len += snprintf(out + len, n - (size_t)len, " %s", words[(x >> 16) % 16]);
    }
}

static void put_synth(struct ret_engine *eng, int64_t cid, int i) {
    char id[32], text[256];
    snprintf(id, sizeof id, "d%d", i);
    synth_text(i, text, sizeof text);
    put(eng, cid, id, text);
}

static struct ret_engine *open_ann(struct ret_store **ret_store, struct ret_startup_report *rep, int64_t threshold) {
    struct ret_store *s = NULL;
    assert_int_equal(ret_store_open(dbpath, 2, &s), ERR_OK);
    /* nprobe above nlist visits every list: results must equal exact search */
    struct ret_engine_opts o = {.index_dir = idxdir, .index_factory = "Flat", .dim = 64, .save_interval_ms = 50,
                                .chunk = chunk, .ann_threshold = threshold, .ann_nprobe = 100000};
    struct ret_engine *eng = NULL;
    assert_int_equal(ret_engine_open(s, &o, rep, &eng), ERR_OK);
    *ret_store = s;
    return eng;
}

static struct ret_index_info wait_built(struct ret_engine *eng, int64_t cid, int64_t builds) {
    struct ret_index_info info;
    for (int i = 0; i < 3000; i++) {
        assert_int_equal(ret_engine_index_info(eng, cid, &info), ERR_OK);
        if (info.builds >= builds && !info.building)
            return info;
        usleep(10 * 1000);
    }
    fail_msg("approximate index not built within 30 s (builds %lld)", (long long)info.builds);
    return info;
}

static void assert_finds_self(struct ret_engine *eng, int64_t cid, int i, bool present) {
    char text[256], id[32];
    synth_text(i, text, sizeof text);
    snprintf(id, sizeof id, "d%d", i);
    struct arena *a = arena_new(1 << 16);
    const char *top = top_doc(eng, cid, text, RET_MODE_DENSE, a, NULL);
    if (present) {
        assert_non_null(top);
        assert_string_equal(top, id);
    } else {
        assert_true(!top || strcmp(top, id) != 0);
    }
    arena_free(a);
}

/* A collection crossing ann_threshold gets an IVF index built in the
 * background; writes made during the build are replayed into it; the
 * index is saved, loaded back as approximate, and agrees with SQLite. */
static void test_approximate_index(void **state) {
    (void)state;
    struct ret_store *s;
    struct ret_startup_report rep;
    struct ret_engine *eng = open_ann(&s, &rep, 400);
    int64_t cid;
    assert_int_equal(ret_collection_ensure(s, "default", "big", &cid), ERR_OK);
    for (int i = 0; i < 399; i++)
        put_synth(eng, cid, i);
    struct ret_index_info info;
    assert_int_equal(ret_engine_index_info(eng, cid, &info), ERR_OK);
    assert_false(info.approximate);
    assert_false(info.building);
    assert_int_equal(info.vectors, 399);
    /* the 400th crosses the threshold; keep writing while it builds */
    for (int i = 399; i < 600; i++) {
        put_synth(eng, cid, i);
        if (i % 4 == 0) {
            char id[32];
            snprintf(id, sizeof id, "d%d", i - 200);
            assert_int_equal(ret_engine_delete(eng, cid, id), ERR_OK);
        }
    }
    info = wait_built(eng, cid, 1);
    assert_true(info.approximate);
    assert_true(info.nlist >= 400 / 39 && info.nlist <= 600 / 39); /* n/39 here, n in 400..600 */
    assert_int_equal(info.nprobe, info.nlist);
    int64_t stored = 0;
    assert_int_equal(ret_collection_chunk_count(s, cid, &stored), ERR_OK);
    assert_int_equal(info.vectors, stored);
    assert_int_equal(stored, 600 - 50);
    /* writes after the swap go straight into the IVF index */
    put_synth(eng, cid, 600);
    assert_int_equal(ret_engine_delete(eng, cid, "d1"), ERR_OK);
    for (int i = 0; i < 601; i += 7) {
        bool deleted = i == 1 || (i >= 200 && i < 400 && i % 4 == 0);
        assert_finds_self(eng, cid, i, !deleted);
    }
    assert_finds_self(eng, cid, 1, false);
    assert_finds_self(eng, cid, 204, false); /* deleted while the build ran */
    assert_finds_self(eng, cid, 599, true);  /* added while the build ran */
    assert_int_equal(ret_engine_flush(eng), ERR_OK);
    ret_engine_free(eng);
    ret_store_free(s);

    /* loaded back as it was, not rebuilt */
    eng = open_ann(&s, &rep, 400);
    assert_int_equal(rep.loaded, 1);
    assert_int_equal(rep.rebuilt, 0);
    assert_int_equal(ret_engine_index_info(eng, cid, &info), ERR_OK);
    assert_true(info.approximate);
    assert_int_equal(info.vectors, 600 - 50);
    assert_finds_self(eng, cid, 600, true);
    ret_engine_free(eng);
    ret_store_free(s);

    /* a factory FAISS does not know is a configuration error, said so */
    assert_int_equal(ret_store_open(dbpath, 2, &s), ERR_OK);
    struct ret_engine_opts o = {.index_dir = idxdir, .index_factory = "Flat", .dim = 64, .chunk = chunk,
                                .ann_threshold = 10, .ann_factory = "NoSuchIndex{nlist}"};
    assert_int_equal(ret_engine_open(s, &o, &rep, &eng), ERR_INVALID_FIELD);
    assert_non_null(strstr(ret_last_error(), "retrieval.ann_factory"));
    ret_store_free(s);
}

struct searcher {
    struct ret_engine *eng;
    int64_t cid;
    int first, wrong;
};

static void *search_many(void *arg) {
    struct searcher *w = arg;
    struct arena *a = arena_new(1 << 22);
    for (int r = 0; r < 40; r++) {
        int i = w->first + r;
        char text[256], id[32];
        synth_text(i, text, sizeof text);
        snprintf(id, sizeof id, "d%d", i);
        struct ret_scored *res;
        size_t n;
        if (ret_engine_search(w->eng, w->cid, text, 5, RET_MODE_DENSE, a, &res, &n, NULL) != ERR_OK || n == 0 ||
            strcmp(res[0].hit.document_id, id) != 0)
            w->wrong++;
    }
    arena_free(a);
    return NULL;
}

/* Concurrent dense searches run side by side over an index slorag scans
 * itself, and are batched into shared FAISS calls otherwise (the
 * engine-faiss run of this program, SLORAG_FAISS_SCAN=1); each caller
 * must get its own results either way. */
static void test_concurrent_dense(void **state) {
    (void)state;
    struct ret_store *s;
    struct ret_startup_report rep;
    struct ret_engine *eng = open_engine_dim(&s, &rep, 64);
    int64_t cid;
    assert_int_equal(ret_collection_ensure(s, "default", "kb", &cid), ERR_OK);
    for (int i = 0; i < 320; i++)
        put_synth(eng, cid, i);
    struct ret_index_info info;
    assert_int_equal(ret_engine_index_info(eng, cid, &info), ERR_OK);
    assert_int_equal(info.quantized_bytes, 0); /* built by the first search that wants it */
    ret_vindex_set_quantized_min(100);          /* 320 vectors: the 8-bit scan, where slorag scans */
    pthread_t th[8];
    struct searcher w[8];
    for (int t = 0; t < 8; t++) {
        w[t] = (struct searcher){.eng = eng, .cid = cid, .first = t * 40};
        assert_int_equal(pthread_create(&th[t], NULL, search_many, &w[t]), 0);
    }
    for (int t = 0; t < 8; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(w[t].wrong, 0);
    }
    /* the 8-bit copy of 320 vectors of 64 dimensions (64 bytes and a float
     * scale each), reported to /v1/collections; none when FAISS searches */
    const char *faiss = getenv("SLORAG_FAISS_SCAN");
    __builtin_cpu_init();
    bool own = !(faiss && strcmp(faiss, "1") == 0) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    assert_int_equal(ret_engine_index_info(eng, cid, &info), ERR_OK);
    assert_int_equal(info.quantized_bytes, own ? 320 * (64 + sizeof(float)) : 0);
    ret_vindex_set_quantized_min(RET_VINDEX_QUANTIZED_MIN);
    ret_engine_free(eng);
    ret_store_free(s);
}

/* Searches "tmp" over and over, by whatever id it has now, while the main
 * thread drops and remakes it. */
struct dropper_searcher {
    struct ret_engine *eng;
    struct ret_store *store;
    int stop; /* atomic */
    long searches, wrong;
};

static void *search_while_dropped(void *arg) {
    struct dropper_searcher *w = arg;
    static const enum ret_mode modes[] = {RET_MODE_DENSE, RET_MODE_LEXICAL, RET_MODE_HYBRID};
    while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
        int64_t cid;
        if (ret_collection_find(w->store, "default", "tmp", &cid) != ERR_OK)
            continue;
        struct arena *a = arena_new(1 << 20);
        struct ret_scored *res;
        size_t n;
        /* a collection dropped between the lookup and the search answers
         * with nothing or not found, never with another's passages */
        enum err e = ret_engine_search(w->eng, cid, "tides harbour", 3, modes[w->searches % 3], a, &res, &n, NULL);
        for (size_t i = 0; e == ERR_OK && i < n; i++)
            w->wrong += strcmp(res[i].hit.document_id, "tides") != 0;
        struct ret_index_info info;
        ret_engine_index_info(w->eng, cid, &info);
        arena_free(a);
        w->searches++;
    }
    return NULL;
}

/* A dropped collection's in-memory index goes with it, also while
 * searches hold it (it used to stay in the engine, retired, until the
 * engine was freed: memory and a longer lookup for every drop). */
static void test_drop_frees_slot(void **state) {
    (void)state;
    struct ret_startup_report rep;
    struct ret_store *s = NULL;
    assert_int_equal(ret_store_open(dbpath, 2, &s), ERR_OK);
    struct ret_engine_opts o = {.index_dir = idxdir, .index_factory = "Flat", .dim = 64, .save_interval_ms = 20,
                                .chunk = chunk, .lexical_index = true};
    struct ret_engine *eng = NULL;
    assert_int_equal(ret_engine_open(s, &o, &rep, &eng), ERR_OK);
    int64_t keep;
    assert_int_equal(ret_collection_ensure(s, "default", "kb", &keep), ERR_OK);
    put(eng, keep, "kb1", "The ferry leaves every hour.");
    assert_int_equal(ret_engine_collections(eng), 1);
    struct dropper_searcher w = {.eng = eng, .store = s};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, search_while_dropped, &w), 0);
    for (int i = 0; i < 300; i++) {
        int64_t cid;
        assert_int_equal(ret_collection_ensure(s, "default", "tmp", &cid), ERR_OK);
        put(eng, cid, "tides", "The tides in the harbour turn every six hours.");
        assert_int_equal(ret_engine_collections(eng), 2);
        assert_int_equal(ret_engine_drop_collection(eng, "default", "tmp"), ERR_OK);
        assert_int_equal(ret_engine_collections(eng), 1);
    }
    __atomic_store_n(&w.stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    assert_true(w.searches > 0);
    assert_int_equal(w.wrong, 0);
    assert_int_equal(ret_engine_vectors(eng), 1);
    struct arena *a = arena_new(1 << 20);
    assert_string_equal(top_doc(eng, keep, "ferry", RET_MODE_HYBRID, a, NULL), "kb1");
    arena_free(a);
    ret_engine_free(eng);
    ret_store_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_embedder),
        cmocka_unit_test_setup_teardown(test_dense_hybrid_and_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dimension_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_approximate_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_dense, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_frees_slot, setup, teardown),
    };
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
