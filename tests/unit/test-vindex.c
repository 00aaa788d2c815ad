/* Unit tests for retrieval/vindex: FAISS through its C API - build, search,
 * remove, write, re-read, and a corrupted file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vindex.h"

#define DIM 16

/* Deterministic pseudo-random unit vectors. */
static void fill(float *v, size_t n, unsigned seed) {
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        float norm = 0;
        for (int d = 0; d < DIM; d++) {
            x = x * 1664525u + 1013904223u;
            v[i * DIM + d] = (float)((x >> 8) & 0xffff) / 65536.0f - 0.5f;
            norm += v[i * DIM + d] * v[i * DIM + d];
        }
        for (int d = 0; d < DIM; d++)
            v[i * DIM + d] /= sqrtf(norm);
    }
}

static void test_flat_search_remove_save_load(void **state) {
    (void)state;
    enum { N = 200 };
    float *x = malloc(N * DIM * sizeof(float));
    int64_t ids[N];
    fill(x, N, 7);
    for (int i = 0; i < N; i++)
        ids[i] = 1000 + i * 3;
    struct ret_vindex *vi = NULL;
    assert_int_equal(ret_vindex_new(DIM, "Flat", &vi), ERR_OK);
    assert_int_equal(ret_vindex_dim(vi), DIM);
    assert_int_equal(ret_vindex_add(vi, N, x, ids), ERR_OK);
    assert_int_equal(ret_vindex_count(vi), N);

    /* each vector's nearest neighbour is itself, under its own id */
    float scores[3];
    int64_t got[3];
    for (int i = 0; i < N; i += 37) {
        assert_int_equal(ret_vindex_search(vi, 1, x + i * DIM, 3, scores, got), ERR_OK);
        assert_int_equal(got[0], ids[i]);
        assert_true(fabsf(scores[0] - 1.0f) < 1e-4f);
        assert_true(scores[1] <= scores[0]);
    }

    /* remove two ids: they no longer come back */
    int64_t gone[2] = {ids[5], ids[6]};
    size_t removed = 0;
    assert_int_equal(ret_vindex_remove(vi, 2, gone, &removed), ERR_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(ret_vindex_count(vi), N - 2);
    assert_int_equal(ret_vindex_search(vi, 1, x + 5 * DIM, 1, scores, got), ERR_OK);
    assert_true(got[0] != ids[5]);

    /* write then re-read: same answers */
    char path[] = "/tmp/slorag-vindex-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(ret_vindex_save(vi, path), ERR_OK);
    struct ret_vindex *back = NULL;
    assert_int_equal(ret_vindex_load(path, &back), ERR_OK);
    assert_int_equal(ret_vindex_count(back), N - 2);
    float s2[3];
    int64_t g2[3];
    assert_int_equal(ret_vindex_search(back, 1, x + 40 * DIM, 3, s2, g2), ERR_OK);
    assert_int_equal(ret_vindex_search(vi, 1, x + 40 * DIM, 3, scores, got), ERR_OK);
    assert_memory_equal(g2, got, sizeof got);
    assert_int_equal(g2[0], ids[40]);

    /* a truncated file is refused, not crashed on */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), 40), 0);
    fclose(f);
    struct ret_vindex *bad = NULL;
    assert_int_equal(ret_vindex_load(path, &bad), ERR_INDEX);
    assert_null(bad);
    assert_true(strlen(ret_vindex_last_error()) > 0);
    unlink(path);
    assert_int_equal(ret_vindex_load(path, &bad), ERR_NOT_FOUND);

    ret_vindex_free(back);
    ret_vindex_free(vi);
    free(x);
}

static void test_ivf_train_and_nprobe(void **state) {
    (void)state;
    enum { N = 2000 };
    float *x = malloc(N * DIM * sizeof(float));
    int64_t *ids = malloc(N * sizeof(int64_t));
    fill(x, N, 11);
    for (int i = 0; i < N; i++)
        ids[i] = i;
    struct ret_vindex *vi = NULL;
    assert_int_equal(ret_vindex_new(DIM, "IVF16,Flat", &vi), ERR_OK);
    assert_false(ret_vindex_is_trained(vi));
    assert_int_equal(ret_vindex_add(vi, N, x, ids), ERR_INDEX); /* untrained */
    assert_int_equal(ret_vindex_train(vi, N, x), ERR_OK);
    assert_true(ret_vindex_is_trained(vi));
    assert_int_equal(ret_vindex_add(vi, N, x, ids), ERR_OK);
    assert_int_equal(ret_vindex_set_param(vi, "nprobe", 16), ERR_OK); /* all lists: exact */
    float s;
    int64_t id;
    for (int i = 0; i < N; i += 101) {
        assert_int_equal(ret_vindex_search(vi, 1, x + i * DIM, 1, &s, &id), ERR_OK);
        assert_int_equal(id, i);
    }
    assert_int_equal(ret_vindex_set_param(vi, "no_such_param", 1), ERR_INVALID_FIELD);
    ret_vindex_free(vi);
    free(ids);
    free(x);
}

/* n vectors of d uniform values in [-0.5, 0.5] from seed, and their ids
 * id0, id0 + step, ... (both malloc'd). */
static void random_set(size_t n, int d, unsigned seed, int64_t id0, int64_t step, float **ret_x, int64_t **ret_ids) {
    float *x = malloc(n * (size_t)d * sizeof(float));
    int64_t *ids = malloc(n * sizeof(int64_t));
    assert_non_null(x);
    assert_non_null(ids);
    for (size_t i = 0; i < n * (size_t)d; i++)
        x[i] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
    for (size_t i = 0; i < n; i++)
        ids[i] = id0 + (int64_t)i * step;
    *ret_x = x;
    *ret_ids = ids;
}

/* random_set's vectors in a new Flat index. */
static struct ret_vindex *random_flat(size_t n, int d, unsigned seed, int64_t id0, int64_t step, float **ret_x,
                                      int64_t **ret_ids) {
    random_set(n, d, seed, id0, step, ret_x, ret_ids);
    struct ret_vindex *vi = NULL;
    assert_int_equal(ret_vindex_new(d, "Flat", &vi), ERR_OK);
    assert_int_equal(ret_vindex_add(vi, n, *ret_x, *ret_ids), ERR_OK);
    return vi;
}

/* One query over a Flat index is scanned by slorag's own AVX2 loop (when
 * the CPU has it); a batch goes to FAISS.  The same query alone and in a
 * batch must find the same ids with the same scores, also after removals
 * (the IDMap's ids then no longer follow positions), with k beyond the
 * count padded with -1, and for a dimension that is no multiple of 8. */
static void test_single_query_matches_faiss(void **state) {
    (void)state;
    static const int dims[] = {256, 37};
    for (size_t di = 0; di < 2; di++) {
        int d = dims[di];
        size_t n = 3000;
        float *x = NULL;
        int64_t *ids = NULL;
        struct ret_vindex *vi = random_flat(n, d, 5, 100000, 3, &x, &ids);
        int64_t gone[300];
        for (int i = 0; i < 300; i++)
            gone[i] = ids[i * 7];
        for (int round = 0; round < 2; round++) {
            for (int t = 0; t < 20; t++) {
                const float *q = x + (size_t)(t * 97 % (int)n) * (size_t)d;
                float pair[2 * 256], s1[50], s2[100];
                int64_t i1[50], i2[100];
                memcpy(pair, q, (size_t)d * sizeof(float));
                memcpy(pair + d, q, (size_t)d * sizeof(float));
                assert_int_equal(ret_vindex_search(vi, 1, q, 50, s1, i1), ERR_OK);
                assert_int_equal(ret_vindex_search(vi, 2, pair, 50, s2, i2), ERR_OK);
                for (int i = 0; i < 50; i++) {
                    assert_true(fabsf(s1[i] - s2[i]) < 1e-4f);
                    if (i + 1 < 50 && fabsf(s2[i] - s2[i + 1]) > 1e-4f && (i == 0 || fabsf(s2[i] - s2[i - 1]) > 1e-4f))
                        assert_int_equal(i1[i], i2[i]);
                }
            }
            assert_int_equal(ret_vindex_remove(vi, 300, gone, NULL), ERR_OK);
        }
        /* more asked than held */
        struct ret_vindex *small = NULL;
        assert_int_equal(ret_vindex_new(d, "Flat", &small), ERR_OK);
        assert_int_equal(ret_vindex_add(small, 3, x, ids), ERR_OK);
        float sc[5];
        int64_t id[5];
        assert_int_equal(ret_vindex_search(small, 1, x, 5, sc, id), ERR_OK);
        assert_int_equal(id[0], ids[0]);
        assert_int_equal(id[3], -1);
        assert_int_equal(id[4], -1);
        ret_vindex_free(small);
        ret_vindex_free(vi);
        free(x);
        free(ids);
    }
}

/* The k results (s1, i1) of a quantized search for q over the n vectors
 * x (ids id0 + step * row): each score the exact inner product, in order.
 * Returns how many of the ids are among the exact search's i2. */
static size_t check_quantized(const float *x, size_t n, int d, int64_t id0, int64_t step, const float *q, int k,
                              const float *s1, const int64_t *i1, const int64_t *i2) {
    size_t found = 0;
    for (int i = 0; i < k; i++) {
        assert_true(i1[i] >= id0 && (i1[i] - id0) % step == 0 && (i1[i] - id0) / step < (int64_t)n);
        const float *v = x + (size_t)((i1[i] - id0) / step) * (size_t)d;
        float exact = 0;
        for (int j = 0; j < d; j++)
            exact += v[j] * q[j];
        assert_true(fabsf(s1[i] - exact) < 1e-3f);
        assert_true(i == 0 || s1[i] <= s1[i - 1]);
        for (int m = 0; m < k; m++)
            found += i1[i] == i2[m];
    }
    return found;
}

/* From ret_vindex_set_quantized_min vectors on, one query over a Flat
 * index scans an 8-bit copy for candidates and scores them exactly: the
 * scores returned are the exact ones, the ids nearly always the exact
 * scan's (recall@k against FAISS), the copy follows adds and removals,
 * and a dimension that is no multiple of 32 is padded right. */
static void test_quantized_scan(void **state) {
    (void)state;
    static const int dims[] = {256, 100};
    for (size_t di = 0; di < 2; di++) {
        int d = dims[di];
        size_t n = 6000;
        float *x = NULL;
        int64_t *ids = NULL;
        struct ret_vindex *vi = random_flat(n, d, 21, 500, 2, &x, &ids);
        ret_vindex_set_quantized_min(1000);
        size_t found = 0, wanted = 0;
        unsigned seed = 3;
        for (int t = 0; t < 60; t++) {
            int k = t % 2 ? 10 : 50;
            float q[256], s1[50], s2[50];
            int64_t i1[50], i2[50];
            const float *near = x + (size_t)(t * 89 % (int)n) * (size_t)d;
            for (int j = 0; j < d; j++) /* near a stored vector, or anywhere */
                q[j] = (t % 3 ? near[j] : 0) + ((float)rand_r(&seed) / RAND_MAX - 0.5f) * (t % 3 ? 0.3f : 1.0f);
            assert_int_equal(ret_vindex_search(vi, 1, q, k, s1, i1), ERR_OK);
            assert_true(ret_vindex_quantized_bytes(vi) > 0);
            assert_int_equal(ret_vindex_search_faiss(vi, 1, q, k, s2, i2), ERR_OK);
            found += check_quantized(x, n, d, 500, 2, q, k, s1, i1, i2);
            wanted += (size_t)k;
        }
        double recall = (double)found / (double)wanted;
        print_message("quantized scan, d=%d: recall@k %.4f of the exact scan\n", d, recall);
        assert_true(recall >= 0.99);
        /* a vector added is found, and gone once removed */
        float *nv = malloc((size_t)d * sizeof(float));
        assert_non_null(nv);
        for (int j = 0; j < d; j++)
            nv[j] = j % 2 ? 0.9f : -0.9f;
        int64_t nid = 7;
        float sc[10];
        int64_t id[10];
        assert_int_equal(ret_vindex_add(vi, 1, nv, &nid), ERR_OK);
        assert_int_equal(ret_vindex_quantized_bytes(vi), 0);
        assert_int_equal(ret_vindex_search(vi, 1, nv, 10, sc, id), ERR_OK);
        assert_int_equal(id[0], 7);
        assert_int_equal(ret_vindex_remove(vi, 1, &nid, NULL), ERR_OK);
        assert_int_equal(ret_vindex_search(vi, 1, nv, 10, sc, id), ERR_OK);
        for (int i = 0; i < 10; i++)
            assert_true(id[i] != 7);
        /* off: the exact scan, no copy */
        ret_vindex_set_quantized_min(0);
        assert_int_equal(ret_vindex_add(vi, 1, nv, &nid), ERR_OK);
        assert_int_equal(ret_vindex_search(vi, 1, nv, 10, sc, id), ERR_OK);
        assert_int_equal(id[0], 7);
        assert_int_equal(ret_vindex_quantized_bytes(vi), 0);
        ret_vindex_set_quantized_min(RET_VINDEX_QUANTIZED_MIN);
        free(nv);
        ret_vindex_free(vi);
        free(x);
        free(ids);
    }
}

/* Sparse queries for test_quantized_sparse_scan: d/8 random dimensions
 * non-zero, near a stored vector's (two in three) or anywhere. */
static void sparse_queries(const float *x, size_t n, int d, int nq, float *qs) {
    unsigned seed = 5;
    memset(qs, 0, (size_t)nq * (size_t)d * sizeof(float));
    for (int t = 0; t < nq; t++) {
        const float *near = x + (size_t)(t * 97 % (int)n) * (size_t)d;
        float *q = qs + (size_t)t * (size_t)d;
        for (int m = 0; m < d / 8; m++) {
            int j = (int)(rand_r(&seed) % (unsigned)d);
            q[j] = (t % 3 ? near[j] : 0) + ((float)rand_r(&seed) / RAND_MAX - 0.5f) * (t % 3 ? 0.2f : 1.0f);
        }
    }
}

struct sparse_job {
    const struct ret_vindex *vi;
    const float *qs;
    const int64_t *want; /* 10 ids a query */
    int d, first, count;
    size_t found;
    int errors;
};

static void *sparse_searcher(void *arg) {
    struct sparse_job *j = arg;
    for (int t = j->first; t < j->first + j->count; t++) {
        float s[10];
        int64_t id[10];
        if (ret_vindex_search(j->vi, 1, j->qs + (size_t)t * (size_t)j->d, 10, s, id) != ERR_OK) {
            j->errors++;
            continue;
        }
        for (int i = 0; i < 10; i++)
            for (int m = 0; m < 10; m++)
                j->found += id[i] == j->want[t * 10 + m];
    }
    return NULL;
}

/* Queries with few non-zero components (as the built-in embedder's are)
 * read the 8-bit copy by dimension: a second copy, built by the first
 * such query (here four threads at once, with the rows' copy) and counted
 * in quantized_bytes (d columns of n rounded up to 64 bytes, beside the
 * rows: d rounded up to 32 bytes and a float scale each); the same exact
 * scores and order, and recall against FAISS's exact search as the row
 * scan's.  A count of vectors no multiple of 64 and a dimension no
 * multiple of 32 are among the cases. */
static void test_quantized_sparse_scan(void **state) {
    (void)state;
    static const int dims[] = {256, 100};
    enum { NQ = 60 };
    for (size_t di = 0; di < 2; di++) {
        int d = dims[di];
        size_t n = 6001;
        float *x = NULL;
        int64_t *ids = NULL;
        struct ret_vindex *vi = random_flat(n, d, 33, 0, 1, &x, &ids);
        float *qs = malloc((size_t)NQ * (size_t)d * sizeof(float));
        assert_non_null(qs);
        sparse_queries(x, n, d, NQ, qs);
        int64_t want[NQ * 10];
        float ws[10];
        for (int t = 0; t < NQ; t++)
            assert_int_equal(ret_vindex_search_faiss(vi, 1, qs + (size_t)t * (size_t)d, 10, ws, want + t * 10), ERR_OK);
        assert_int_equal(ret_vindex_quantized_bytes(vi), 0);
        ret_vindex_set_quantized_min(1000);
        pthread_t th[4];
        struct sparse_job jobs[4];
        for (int i = 0; i < 4; i++) {
            jobs[i] = (struct sparse_job){.vi = vi, .qs = qs, .want = want, .d = d, .first = i * (NQ / 4), .count = NQ / 4};
            assert_int_equal(pthread_create(&th[i], NULL, sparse_searcher, &jobs[i]), 0);
        }
        size_t found = 0;
        int errors = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            found += jobs[i].found;
            errors += jobs[i].errors;
        }
        assert_int_equal(errors, 0);
        print_message("quantized sparse scan, d=%d, 4 threads: recall@10 %.4f of the exact scan\n", d,
                      (double)found / (NQ * 10));
        assert_true(found >= NQ * 10 * 99 / 100);
        assert_int_equal(ret_vindex_quantized_bytes(vi),
                         n * (size_t)((d + 31) / 32 * 32 + 4) + (size_t)d * ((n + 63) / 64 * 64));
        /* one after the other, k = 10 and 50: scores exact, in order */
        found = 0;
        size_t wanted = 0;
        for (int t = 0; t < NQ; t++) {
            int k = t % 2 ? 10 : 50;
            const float *q = qs + (size_t)t * (size_t)d;
            float s1[50], s2[50];
            int64_t i1[50], i2[50];
            assert_int_equal(ret_vindex_search(vi, 1, q, k, s1, i1), ERR_OK);
            assert_int_equal(ret_vindex_search_faiss(vi, 1, q, k, s2, i2), ERR_OK);
            found += check_quantized(x, n, d, 0, 1, q, k, s1, i1, i2);
            wanted += (size_t)k;
        }
        double recall = (double)found / (double)wanted;
        print_message("quantized sparse scan, d=%d: recall@k %.4f of the exact scan\n", d, recall);
        assert_true(recall >= 0.99);
        /* a change drops both copies */
        int64_t gone = 17;
        assert_int_equal(ret_vindex_remove(vi, 1, &gone, NULL), ERR_OK);
        assert_int_equal(ret_vindex_quantized_bytes(vi), 0);
        ret_vindex_set_quantized_min(RET_VINDEX_QUANTIZED_MIN);
        ret_vindex_free(vi);
        free(qs);
        free(x);
        free(ids);
    }
}

/* The same for an IVF-Flat index: slorag's own scan of the nprobe lists
 * (with the own FAISS C API shim) agrees with FAISS's search, before and
 * after removals, for several nprobe. */
static void test_single_query_ivf_matches_faiss(void **state) {
    (void)state;
    int d = 64;
    size_t n = 4000;
    float *x = NULL;
    int64_t *ids = NULL;
    random_set(n, d, 9, 7, 2, &x, &ids);
    struct ret_vindex *vi = NULL;
    assert_int_equal(ret_vindex_new(d, "IVF32,Flat", &vi), ERR_OK);
    assert_int_equal(ret_vindex_train(vi, n, x), ERR_OK);
    assert_int_equal(ret_vindex_add(vi, n, x, ids), ERR_OK);
    int64_t gone[200];
    for (int i = 0; i < 200; i++)
        gone[i] = ids[i * 11];
    static const int probes[] = {1, 5, 32, 100};
    for (int round = 0; round < 2; round++) {
        for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
            assert_int_equal(ret_vindex_set_nprobe(vi, probes[p]), ERR_OK);
            for (int t = 0; t < 25; t++) {
                const float *q = x + (size_t)(t * 131 % (int)n) * (size_t)d;
                float s1[20], s2[20];
                int64_t i1[20], i2[20];
                assert_int_equal(ret_vindex_search(vi, 1, q, 20, s1, i1), ERR_OK);
                assert_int_equal(ret_vindex_search_faiss(vi, 1, q, 20, s2, i2), ERR_OK);
                for (int i = 0; i < 20; i++) {
                    if (i2[i] < 0) {
                        assert_int_equal(i1[i], -1);
                        continue;
                    }
                    assert_true(fabsf(s1[i] - s2[i]) < 1e-4f);
                    bool tie = (i > 0 && fabsf(s2[i] - s2[i - 1]) < 1e-4f) || (i + 1 < 20 && fabsf(s2[i] - s2[i + 1]) < 1e-4f);
                    if (!tie)
                        assert_int_equal(i1[i], i2[i]);
                }
            }
        }
        assert_int_equal(ret_vindex_remove(vi, 200, gone, NULL), ERR_OK);
    }
    ret_vindex_free(vi);
    free(x);
    free(ids);
}

static void test_bad_factory(void **state) {
    (void)state;
    struct ret_vindex *vi = NULL;
    assert_int_equal(ret_vindex_new(DIM, "NoSuchIndex99", &vi), ERR_INVALID_FIELD);
    assert_null(vi);
    assert_int_equal(ret_vindex_new(0, "Flat", &vi), ERR_INVALID_FIELD);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flat_search_remove_save_load),
        cmocka_unit_test(test_ivf_train_and_nprobe),
        cmocka_unit_test(test_single_query_matches_faiss),
        cmocka_unit_test(test_single_query_ivf_matches_faiss),
        cmocka_unit_test(test_quantized_scan),
        cmocka_unit_test(test_quantized_sparse_scan),
        cmocka_unit_test(test_bad_factory),
    };
    return cmocka_run_group_tests_name("vindex", tests, NULL, NULL);
}
