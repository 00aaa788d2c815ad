/* vindex.c - FAISS-backed vector index (see vindex.h).  Only faiss/c_api
 * headers are included here; whether the implementation behind them is an
 * installed libfaiss_c or slorag's own faiss_c.cpp is the build's business. */
#include "vindex.h"

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/index_io_c.h>
#include <faiss/c_api/utils/distances_c.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ret_vindex {
    FaissIndex *index; /* owned */
};

/* FAISS parallelises searches with OpenMP.  For a handful of queries that
 * only costs: waking the OpenMP team took ~2 ms per single-vector search
 * here, against ~0.05 ms on one thread, and the service already runs
 * queries in parallel on its workers.  The calls are weak so the build
 * does not depend on which OpenMP runtime (if any) FAISS uses; the setting
 * is per calling thread. */
extern void omp_set_num_threads(int n) __attribute__((weak));
extern int omp_get_num_procs(void) __attribute__((weak));

static void omp_threads_for(size_t nq) {
    if (omp_set_num_threads && omp_get_num_procs)
        omp_set_num_threads(nq < 16 ? 1 : omp_get_num_procs());
}

/* An exact search of several queries at once is a matrix product when
 * FAISS hands it to BLAS, reading the index once for all of them; by
 * default FAISS does that only from 20 queries on and scans the index once
 * per query below.  The engine batches concurrent queries (engine.c), and
 * batches of 2..19 are the common case on a loaded 2-core server, so any
 * batch goes to BLAS.  (Process-wide FAISS setting; set once.) */
static pthread_once_t tune_once = PTHREAD_ONCE_INIT;
/* OpenBLAS's own threads spin in sched_yield between calls: under a load
 * of batched searches they took ~9% of the server's CPU doing nothing
 * (perf, bench/overhead.sh).  Workers give the parallelism, so BLAS runs
 * on the calling thread.  Weak, like the OpenMP calls above: a BLAS
 * without it is left alone. */
extern void openblas_set_num_threads(int n) __attribute__((weak));
static void tune(void) {
    faiss_set_distance_compute_blas_threshold(2);
    if (openblas_set_num_threads)
        openblas_set_num_threads(1);
}

const char *ret_vindex_last_error(void) {
    const char *m = faiss_get_last_error();
    return m ? m : "";
}

enum err ret_vindex_new(int dim, const char *factory, struct ret_vindex **ret_vi) {
    if (dim < 1 || dim > 65536 || !factory || strlen(factory) > 200)
        return ERR_INVALID_FIELD;
    pthread_once(&tune_once, tune);
    /* IVF indexes store our chunk ids in their lists themselves.  Other
     * kinds (Flat, HNSW) get an IDMap that maps FAISS positions to ids; an
     * IDMap must not wrap an IVF: removing ids renumbers the IDMap's
     * positions but not the ids the IVF lists hold, so every later result
     * would come back under a neighbour's id.  Removal works for Flat and
     * IVF; HNSW refuses with ERR_INDEX. */
    FaissIndex *idx = NULL;
    if (faiss_index_factory(&idx, dim, factory, METRIC_INNER_PRODUCT) != 0)
        return ERR_INVALID_FIELD;
    if (!faiss_IndexIVF_cast(idx)) {
        faiss_Index_free(idx);
        idx = NULL;
        char desc[256];
        snprintf(desc, sizeof desc, "IDMap,%s", factory);
        if (faiss_index_factory(&idx, dim, desc, METRIC_INNER_PRODUCT) != 0)
            return ERR_INVALID_FIELD;
    }
    struct ret_vindex *vi = calloc(1, sizeof(*vi));
    if (!vi) {
        faiss_Index_free(idx);
        return ERR_NOMEM;
    }
    vi->index = idx;
    *ret_vi = vi;
    return ERR_OK;
}

struct ret_vindex *ret_vindex_free(struct ret_vindex *vi) {
    if (vi) {
        faiss_Index_free(vi->index);
        free(vi);
    }
    return NULL;
}

int ret_vindex_dim(const struct ret_vindex *vi) { return faiss_Index_d(vi->index); }
int64_t ret_vindex_count(const struct ret_vindex *vi) { return faiss_Index_ntotal(vi->index); }
int ret_vindex_is_trained(const struct ret_vindex *vi) { return faiss_Index_is_trained(vi->index); }

enum err ret_vindex_train(struct ret_vindex *vi, size_t n, const float *x) {
    return faiss_Index_train(vi->index, (idx_t)n, x) == 0 ? ERR_OK : ERR_INDEX;
}

enum err ret_vindex_add(struct ret_vindex *vi, size_t n, const float *x, const int64_t *ids) {
    if (!faiss_Index_is_trained(vi->index))
        return ERR_INDEX;
    return faiss_Index_add_with_ids(vi->index, (idx_t)n, x, ids) == 0 ? ERR_OK : ERR_INDEX;
}

/* ---- one query over an exact index, with AVX2 ----
 *
 * Debian's FAISS is built for any x86-64, so its exact scan of one query
 * runs scalar code: 12.5 ms for 100k vectors of 256 floats here, where the
 * same scan with AVX2 and FMA takes 2.8 ms (the memory bus, not the
 * arithmetic, is then the limit).  So for a single query over a Flat index
 * (inner product) on a CPU that has them, slorag reads the vectors FAISS
 * stores (faiss_IndexFlat_xb, and the IDMap's ids) and scans them itself,
 * keeping the k best in a heap; with slorag's own FAISS C API layer, an
 * IVF-Flat index too (own_scan).  Batches of queries still go to FAISS,
 * which hands them to BLAS; so do other index kinds and other CPUs.
 * Scores agree with FAISS's to float rounding (the sums run in another
 * order). */

struct kbest {
    float score;
    int64_t pos;
};

/* Min-heap on score: the worst of the k best on top. */
static void kb_down(struct kbest *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < n && h[l].score < h[m].score)
            m = l;
        if (l + 1 < n && h[l + 1].score < h[m].score)
            m = l + 1;
        if (m == i)
            return;
        struct kbest x = h[i];
        h[i] = h[m];
        h[m] = x;
        i = m;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_SCAN_AVX2 1

/* Scores n vectors (xb, d floats each) against q into the min-heap h of
 * at most k entries (*nh of them used); an entry's pos is ids[i], or i
 * when ids is NULL. */
__attribute__((target("avx2,fma"))) static void scan_avx2(const float *xb, size_t n, int d, const float *q,
                                                           const int64_t *ids, int k, struct kbest *h, int *nh) {
    int d32 = d & ~31, d8 = d & ~7;
    for (size_t i = 0; i < n; i++) {
        const float *v = xb + i * (size_t)d;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int j = 0;
        for (; j < d32; j += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v + j), _mm256_loadu_ps(q + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(v + j + 8), _mm256_loadu_ps(q + j + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(v + j + 16), _mm256_loadu_ps(q + j + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(v + j + 24), _mm256_loadu_ps(q + j + 24), a3);
        }
        for (; j < d8; j += 8)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v + j), _mm256_loadu_ps(q + j), a0);
        __m256 s8 = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
        s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
        float s = _mm_cvtss_f32(s4);
        for (; j < d; j++)
            s += v[j] * q[j];
        int64_t pos = ids ? ids[i] : (int64_t)i;
        if (*nh < k) {
            h[*nh] = (struct kbest){s, pos};
            for (int c = (*nh)++; c > 0 && h[c].score < h[(c - 1) / 2].score; c = (c - 1) / 2) {
                struct kbest x = h[c];
                h[c] = h[(c - 1) / 2];
                h[(c - 1) / 2] = x;
            }
        } else if (s > h[0].score) {
            h[0] = (struct kbest){s, pos};
            kb_down(h, *nh, 0);
        }
    }
}

static int cpu_has_avx2(void) {
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return have;
}
#endif

static int cmp_kbest_desc(const void *x, const void *y) {
    const struct kbest *a = x, *b = y;
    if (a->score != b->score)
        return a->score < b->score ? 1 : -1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* SLORAG_FAISS_SCAN=1 turns the own scan off (every search to FAISS): for
 * comparisons, and a way out should a CPU misreport its features. */
static int own_scan_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("SLORAG_FAISS_SCAN");
        on = !(e && strcmp(e, "1") == 0);
    }
    return on;
}

#ifdef SLORAG_OWN_FAISS_C
/* The own shim's view of an IVF-Flat index (retrieval/faiss_c/faiss_c.cpp):
 * its coarse quantizer, and each list's vectors and ids. */
int slorag_ivfflat_parts(FaissIndex *index, FaissIndex **ret_quantizer, size_t *ret_nlist, size_t *ret_nprobe);
size_t slorag_ivfflat_list(FaissIndex *index, size_t list_no, const float **ret_vecs, const idx_t **ret_ids);
#endif

static void kbest_out(struct kbest *h, int nh, int k, const idx_t *idmap, float *ret_scores, int64_t *ret_ids) {
    qsort(h, (size_t)nh, sizeof(*h), cmp_kbest_desc);
    for (int i = 0; i < k; i++) {
        ret_scores[i] = i < nh ? h[i].score : -INFINITY;
        ret_ids[i] = i < nh ? (idmap ? idmap[h[i].pos] : h[i].pos) : -1;
    }
}

/* True when it searched: one query over a Flat inner-product index, or,
 * with the own shim, over an IVF-Flat one (the nprobe lists whose
 * centroids score highest, as FAISS picks them, then their vectors). */
static bool own_scan(const struct ret_vindex *vi, const float *q, int k, float *ret_scores, int64_t *ret_ids,
                     enum err *ret_e) {
#ifdef HAVE_SCAN_AVX2
    if (!own_scan_enabled() || !cpu_has_avx2())
        return false;
    FaissIndexIDMap *map = faiss_IndexIDMap_cast(vi->index);
    FaissIndex *inner = map ? faiss_IndexIDMap_sub_index(map) : vi->index;
    FaissIndexFlat *flat = faiss_IndexFlat_cast(inner);
    int d = faiss_Index_d(inner);
    struct kbest stack[256];
    if (flat && faiss_Index_metric_type(inner) == METRIC_INNER_PRODUCT) {
        float *xb = NULL;
        size_t nfloats = 0;
        faiss_IndexFlat_xb(flat, &xb, &nfloats);
        size_t n = nfloats / (size_t)d;
        idx_t *idmap = NULL;
        size_t nids = n;
        if (map)
            faiss_IndexIDMap_id_map(map, &idmap, &nids);
        if (nids != n)
            return false; /* not what an IDMap over a Flat holds: let FAISS decide */
        struct kbest *h = k <= 256 ? stack : malloc((size_t)k * sizeof(*h));
        if (!h) {
            *ret_e = ERR_NOMEM;
            return true;
        }
        int nh = 0;
        scan_avx2(xb, n, d, q, NULL, k, h, &nh);
        kbest_out(h, nh, k, idmap, ret_scores, ret_ids);
        if (h != stack)
            free(h);
        *ret_e = ERR_OK;
        return true;
    }
#ifdef SLORAG_OWN_FAISS_C
    FaissIndex *quant = NULL;
    size_t nlist = 0, nprobe = 0;
    if (map || slorag_ivfflat_parts(vi->index, &quant, &nlist, &nprobe) != 0)
        return false;
    FaissIndexFlat *qflat = faiss_IndexFlat_cast(quant);
    if (!qflat || faiss_Index_metric_type(quant) != METRIC_INNER_PRODUCT)
        return false;
    float *cxb = NULL;
    size_t cfloats = 0;
    faiss_IndexFlat_xb(qflat, &cxb, &cfloats);
    if (cfloats / (size_t)d != nlist)
        return false;
    if (nprobe > nlist)
        nprobe = nlist;
    if (nprobe < 1)
        nprobe = 1;
    struct kbest *lists = malloc(nprobe * sizeof(*lists));
    struct kbest *h = k <= 256 ? stack : malloc((size_t)k * sizeof(*h));
    if (!lists || !h) {
        free(lists);
        if (h != stack)
            free(h);
        *ret_e = ERR_NOMEM;
        return true;
    }
    int nl = 0, nh = 0;
    scan_avx2(cxb, nlist, d, q, NULL, (int)nprobe, lists, &nl);
    for (int i = 0; i < nl; i++) {
        const float *vecs = NULL;
        const idx_t *ids = NULL;
        size_t len = slorag_ivfflat_list(vi->index, (size_t)lists[i].pos, &vecs, &ids);
        scan_avx2(vecs, len, d, q, ids, k, h, &nh);
    }
    kbest_out(h, nh, k, NULL, ret_scores, ret_ids);
    free(lists);
    if (h != stack)
        free(h);
    *ret_e = ERR_OK;
    return true;
#else
    return false;
#endif
#else
    (void)vi, (void)q, (void)k, (void)ret_scores, (void)ret_ids, (void)ret_e;
    return false;
#endif
}

enum err ret_vindex_search(const struct ret_vindex *vi, size_t nq, const float *q, int k, float *ret_scores,
                           int64_t *ret_ids) {
    if (k < 1)
        return ERR_INVALID_FIELD;
    enum err e;
    if (nq == 1 && own_scan(vi, q, k, ret_scores, ret_ids, &e))
        return e;
    return ret_vindex_search_faiss(vi, nq, q, k, ret_scores, ret_ids);
}

enum err ret_vindex_search_faiss(const struct ret_vindex *vi, size_t nq, const float *q, int k, float *ret_scores,
                                 int64_t *ret_ids) {
    if (k < 1)
        return ERR_INVALID_FIELD;
    omp_threads_for(nq);
    return faiss_Index_search(vi->index, (idx_t)nq, q, k, ret_scores, ret_ids) == 0 ? ERR_OK : ERR_INDEX;
}

enum err ret_vindex_remove(struct ret_vindex *vi, size_t n, const int64_t *ids, size_t *ret_removed) {
    FaissIDSelectorBatch *sel = NULL;
    if (faiss_IDSelectorBatch_new(&sel, n, ids) != 0)
        return ERR_NOMEM;
    size_t removed = 0;
    int rc = faiss_Index_remove_ids(vi->index, (const FaissIDSelector *)sel, &removed);
    faiss_IDSelector_free((FaissIDSelector *)sel);
    if (rc != 0)
        return ERR_INDEX;
    if (ret_removed)
        *ret_removed = removed;
    return ERR_OK;
}

/* The IVF index inside the IDMap, or NULL for any other kind. */
static FaissIndexIVF *inner_ivf(const struct ret_vindex *vi) {
    FaissIndexIDMap *map = faiss_IndexIDMap_cast(vi->index);
    return faiss_IndexIVF_cast(map ? faiss_IndexIDMap_sub_index(map) : vi->index);
}

int ret_vindex_nlist(const struct ret_vindex *vi) {
    FaissIndexIVF *ivf = inner_ivf(vi);
    return ivf ? (int)faiss_IndexIVF_nlist(ivf) : 0;
}

int ret_vindex_nprobe(const struct ret_vindex *vi) {
    FaissIndexIVF *ivf = inner_ivf(vi);
    return ivf ? (int)faiss_IndexIVF_nprobe(ivf) : 0;
}

enum err ret_vindex_set_nprobe(struct ret_vindex *vi, int nprobe) {
    FaissIndexIVF *ivf = inner_ivf(vi);
    if (!ivf || nprobe < 1)
        return ERR_INVALID_FIELD;
    faiss_IndexIVF_set_nprobe(ivf, (size_t)nprobe);
    return ERR_OK;
}

enum err ret_vindex_set_param(struct ret_vindex *vi, const char *name, double value) {
    FaissParameterSpace *ps = NULL;
    if (faiss_ParameterSpace_new(&ps) != 0)
        return ERR_NOMEM;
    int rc = faiss_ParameterSpace_set_index_parameter(ps, vi->index, name, value);
    faiss_ParameterSpace_free(ps);
    return rc == 0 ? ERR_OK : ERR_INVALID_FIELD;
}

static enum err fsync_path(const char *path, int flags) {
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return ERR_IO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? ERR_OK : ERR_IO;
}

enum err ret_vindex_save(const struct ret_vindex *vi, const char *path) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return ERR_INVALID_FIELD;
    if (faiss_write_index_fname(vi->index, tmp) != 0) {
        unlink(tmp);
        return ERR_IO;
    }
    enum err e = fsync_path(tmp, O_RDONLY);
    if (!e && rename(tmp, path) != 0)
        e = ERR_IO;
    if (e) {
        unlink(tmp);
        return e;
    }
    /* Make the rename itself durable. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    return fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

enum err ret_vindex_load(const char *path, struct ret_vindex **ret_vi) {
    struct stat stbuf;
    if (stat(path, &stbuf) != 0)
        return errno == ENOENT ? ERR_NOT_FOUND : ERR_IO;
    FaissIndex *idx = NULL;
    if (faiss_read_index_fname(path, 0, &idx) != 0 || !idx)
        return ERR_INDEX;
    struct ret_vindex *vi = calloc(1, sizeof(*vi));
    if (!vi) {
        faiss_Index_free(idx);
        return ERR_NOMEM;
    }
    vi->index = idx;
    *ret_vi = vi;
    return ERR_OK;
}
