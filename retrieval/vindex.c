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

struct sq8;

struct ret_vindex {
    FaissIndex *index; /* owned */
    /* The quantized copy of a Flat index's vectors (see "quantized scan"
     * below): built by the first search that wants it, under sq_mu, since
     * searches run side by side; dropped by every change, which callers
     * make alone (vindex.h). */
    pthread_mutex_t sq_mu;
    struct sq8 *sq;
    size_t sq_failed; /* vectors when building the copy last failed (no memory): not retried until a change */
};

static _Atomic int64_t quantized_min = RET_VINDEX_QUANTIZED_MIN;

void ret_vindex_set_quantized_min(int64_t n) { quantized_min = n < 0 ? 0 : n; }

static void sq8_drop(struct ret_vindex *vi);

static struct ret_vindex *vindex_wrap(FaissIndex *idx) {
    struct ret_vindex *vi = calloc(1, sizeof(*vi));
    if (!vi)
        return NULL;
    pthread_mutex_init(&vi->sq_mu, NULL);
    vi->index = idx;
    return vi;
}

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
    struct ret_vindex *vi = vindex_wrap(idx);
    if (!vi) {
        faiss_Index_free(idx);
        return ERR_NOMEM;
    }
    *ret_vi = vi;
    return ERR_OK;
}

struct ret_vindex *ret_vindex_free(struct ret_vindex *vi) {
    if (vi) {
        sq8_drop(vi);
        pthread_mutex_destroy(&vi->sq_mu);
        faiss_Index_free(vi->index);
        free(vi);
    }
    return NULL;
}

int ret_vindex_dim(const struct ret_vindex *vi) { return faiss_Index_d(vi->index); }
int64_t ret_vindex_count(const struct ret_vindex *vi) { return faiss_Index_ntotal(vi->index); }
int ret_vindex_is_trained(const struct ret_vindex *vi) { return faiss_Index_is_trained(vi->index); }

enum err ret_vindex_train(struct ret_vindex *vi, size_t n, const float *x) {
    sq8_drop(vi);
    return faiss_Index_train(vi->index, (idx_t)n, x) == 0 ? ERR_OK : ERR_INDEX;
}

enum err ret_vindex_add(struct ret_vindex *vi, size_t n, const float *x, const int64_t *ids) {
    sq8_drop(vi);
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

/* ---- quantized scan ----
 *
 * An exact scan reads every vector: 10 MB a query at 10k chunks of 256
 * floats, the largest single cost of a query (bench/instructions.sh).
 * From RET_VINDEX_QUANTIZED_MIN vectors on, a Flat index also keeps each
 * vector in 8 bits (scaled by its largest component, so 1/254 of that is
 * the worst rounding), a quarter of the bytes; a query scans those with
 * AVX2's byte multiply-adds for its SQ8_WIDEN*k best candidates, then
 * scores the candidates again on their float vectors, exactly as the full
 * scan would, and keeps the k best.  A true neighbour is lost only when
 * rounding pushes it below SQ8_WIDEN*k others: recall against the exact
 * scan is measured by bench-retrieval and test-vindex.c.  Scores returned
 * are always the exact ones. */

#define SQ8_WIDEN 4
#define SQ8_MIN_CANDIDATES 32
#define SQ8_COL_BLOCK 64 /* vectors a column block holds: one cache line */

struct sq8 {
    size_t n;        /* vectors (the Flat index's count when built) */
    int d, stride;   /* dimensions; bytes a row: d rounded up to 32 */
    uint8_t *codes;  /* n rows: 128 + round(v[j] / scale) */
    float *scale;    /* a row's largest |v[j]| / 127 */
    /* The same bytes by dimension (see "sparse queries" below): d columns
     * of cstride signed bytes, built by the first sparse query under the
     * index's sq_mu, then read without it. */
    int8_t *cols;
    size_t cstride;  /* n rounded up to SQ8_COL_BLOCK; zeros past n */
    bool cols_failed;
};

static void sq8_free(struct sq8 *q) {
    if (q) {
        free(q->codes);
        free(q->scale);
        free(q->cols);
        free(q);
    }
}

size_t ret_vindex_quantized_bytes(const struct ret_vindex *vi) {
    const struct sq8 *sq = __atomic_load_n(&vi->sq, __ATOMIC_ACQUIRE);
    if (!sq)
        return 0;
    size_t cols = __atomic_load_n(&sq->cols, __ATOMIC_ACQUIRE) ? (size_t)sq->d * sq->cstride : 0;
    return sq->n * ((size_t)sq->stride + sizeof(*sq->scale)) + cols;
}

static void sq8_drop(struct ret_vindex *vi) {
    sq8_free(vi->sq);
    vi->sq = NULL;
    vi->sq_failed = 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_SCAN_AVX2 1

__attribute__((target("avx2,fma"))) static inline float dot_avx2(const float *v, const float *q, int d) {
    int d32 = d & ~31, d8 = d & ~7;
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
    return s;
}

/* Offers (s, pos) to the min-heap h of at most k entries (*nh used). */
static inline void kb_offer(struct kbest *h, int k, int *nh, float s, int64_t pos) {
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

/* Scores n vectors (xb, d floats each) against q into the min-heap h of
 * at most k entries (*nh of them used); an entry's pos is ids[i], or i
 * when ids is NULL. */
__attribute__((target("avx2,fma"))) static void scan_avx2(const float *xb, size_t n, int d, const float *q,
                                                           const int64_t *ids, int k, struct kbest *h, int *nh) {
    for (size_t i = 0; i < n; i++)
        kb_offer(h, k, nh, dot_avx2(xb + i * (size_t)d, q, d), ids ? ids[i] : (int64_t)i);
}

static struct sq8 *sq8_build(const float *xb, size_t n, int d) {
    struct sq8 *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->n = n;
    q->d = d;
    q->stride = (d + 31) & ~31;
    q->codes = aligned_alloc(32, n * (size_t)q->stride > 0 ? n * (size_t)q->stride : 32);
    q->scale = malloc((n ? n : 1) * sizeof(*q->scale));
    q->cstride = (n + SQ8_COL_BLOCK - 1) / SQ8_COL_BLOCK * SQ8_COL_BLOCK;
    if (!q->codes || !q->scale) {
        sq8_free(q);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const float *v = xb + i * (size_t)d;
        uint8_t *c = q->codes + i * (size_t)q->stride;
        float m = 0;
        for (int j = 0; j < d; j++)
            m = fmaxf(m, fabsf(v[j]));
        float inv = m > 0 && isfinite(m) ? 127.0f / m : 0;
        for (int j = 0; j < d; j++) {
            float r = nearbyintf(v[j] * inv);
            c[j] = (uint8_t)(128 + (r > 127 ? 127 : r < -127 ? -127 : r == r ? (int)r : 0)); /* NaN: 0 */
        }
        memset(c + d, 128, (size_t)(q->stride - d)); /* zero, as the query's padding is */
        q->scale[i] = inv > 0 ? m / 127.0f : 0;
    }
    return q;
}

/* The query in signed bytes of at most 63 in magnitude, so that a pair of
 * byte products (255 * 63 * 2) fits maddubs' 16 bits; padded with zeros.
 * Returns the offset the stored codes' +128 adds to a dot product. */
static int32_t sq8_query(const float *q, int d, int stride, int8_t *out) {
    float m = 0;
    for (int j = 0; j < d; j++)
        m = fmaxf(m, fabsf(q[j]));
    float inv = m > 0 && isfinite(m) ? 63.0f / m : 0;
    int32_t sum = 0;
    for (int j = 0; j < stride; j++) {
        float r = j < d ? nearbyintf(q[j] * inv) : 0;
        out[j] = (int8_t)(r > 63 ? 63 : r < -63 ? -63 : r == r ? (int)r : 0); /* NaN: 0 */
        sum += out[j];
    }
    return 128 * sum;
}

/* One row's dot product with the query bytes, before the offset: stride
 * bytes, a multiple of 32.  Inlined with a constant stride below, so the
 * common widths run unrolled with the query held in registers. */
__attribute__((target("avx2,fma"), always_inline)) static inline int32_t sq8_dot(const uint8_t *c, const int8_t *qb,
                                                                                   int stride) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
    int j = 0;
#pragma GCC unroll 16
    for (; j + 64 <= stride; j += 64) {
        __m256i p0 = _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(c + j)),
                                          _mm256_load_si256((const __m256i *)(qb + j)));
        __m256i p1 = _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(c + j + 32)),
                                          _mm256_load_si256((const __m256i *)(qb + j + 32)));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, ones));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(p1, ones));
    }
    if (j < stride) {
        __m256i p0 = _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(c + j)),
                                          _mm256_load_si256((const __m256i *)(qb + j)));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, ones));
    }
    __m256i acc = _mm256_add_epi32(acc0, acc1);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s4);
}

#define SQ8_SCAN_LOOP(STRIDE)                                                                                  \
    for (size_t i = 0; i < sq->n; i++) {                                                                       \
        int32_t dot = sq8_dot(sq->codes + i * (size_t)(STRIDE), qb, (STRIDE)) - off;                           \
        float s = (float)dot * sq->scale[i];                                                                   \
        if (*nh < r || s > h[0].score)                                                                         \
            kb_offer(h, r, nh, s, (int64_t)i);                                                                 \
    }

/* The r best rows of sq for the query bytes qb (offset off), approximately
 * scored, into the min-heap h. */
__attribute__((target("avx2,fma"))) static void sq8_scan(const struct sq8 *sq, const int8_t *qb, int32_t off,
                                                          int r, struct kbest *h, int *nh) {
    switch (sq->stride) {
    case 128: SQ8_SCAN_LOOP(128) break;
    case 256: SQ8_SCAN_LOOP(256) break;
    case 384: SQ8_SCAN_LOOP(384) break;
    case 512: SQ8_SCAN_LOOP(512) break;
    case 768: SQ8_SCAN_LOOP(768) break;
    default: SQ8_SCAN_LOOP(sq->stride) break;
    }
}

/* ---- sparse queries ----
 *
 * The built-in embedder's query has a few dozen non-zero components of
 * 256 (feature hashing of a question's few content words), so a row scan
 * multiplies mostly zeros.  A query with at most 1/SQ8_SPARSE_SHARE of its
 * components non-zero once quantized reads the copy by dimension instead:
 * only the columns of its non-zero dimensions, two at a time (their bytes
 * interleaved, widened to 16 bits and multiply-added with the query's
 * pair), with the sums of a block of SQ8_COL_BLOCK vectors held in
 * registers.  Its candidates are scored exactly as the row scan's are.
 * The columns are a second copy of the bytes, built by the first sparse
 * query (ret_vindex_quantized_bytes counts them). */
#define SQ8_SPARSE_SHARE 4
#define SQ8_SPARSE_DIM_MAX 4096

static _Atomic bool sparse_scan = true;

void ret_vindex_set_sparse_scan(bool on) { sparse_scan = on; }

static int8_t *sq8_cols_build(const struct sq8 *sq) {
    int8_t *c = aligned_alloc(64, (size_t)sq->d * sq->cstride);
    if (!c)
        return NULL;
    for (size_t b = 0; b < sq->cstride; b += SQ8_COL_BLOCK) { /* a block's rows stay in cache */
        size_t end = b + SQ8_COL_BLOCK < sq->n ? b + SQ8_COL_BLOCK : sq->n;
        for (int j = 0; j < sq->d; j++) {
            int8_t *col = c + (size_t)j * sq->cstride;
            size_t i = b;
            for (; i < end; i++)
                col[i] = (int8_t)(sq->codes[i * (size_t)sq->stride + (size_t)j] - 128);
            for (; i < b + SQ8_COL_BLOCK; i++)
                col[i] = 0;
        }
    }
    return c;
}

/* sq's columns, built now if no search has yet; NULL without memory. */
static const int8_t *sq8_cols(struct ret_vindex *vi, struct sq8 *sq) {
    int8_t *c = __atomic_load_n(&sq->cols, __ATOMIC_ACQUIRE);
    if (c || sq->cstride == 0)
        return c;
    pthread_mutex_lock(&vi->sq_mu);
    c = sq->cols;
    if (!c && !sq->cols_failed) {
        c = sq8_cols_build(sq);
        __atomic_store_n(&sq->cols, c, __ATOMIC_RELEASE);
        sq->cols_failed = !c;
    }
    pthread_mutex_unlock(&vi->sq_mu);
    return c;
}

/* The query's non-zero dimensions, in bytes of at most 127 in magnitude,
 * as pairs: dims[2p], dims[2p+1] and w[p] holding both bytes as 16-bit
 * halves (an odd one out is paired with itself at weight 0).  Returns the
 * pair count, or -1 when more than d/SQ8_SPARSE_SHARE are non-zero. */
static int sq8_sparse_query(const float *q, int d, int *dims, int32_t *w) {
    float m = 0;
    for (int j = 0; j < d; j++)
        m = fmaxf(m, fabsf(q[j]));
    float inv = m > 0 && isfinite(m) ? 127.0f / m : 0;
    int nz = 0, max = d / SQ8_SPARSE_SHARE;
    int16_t v[SQ8_SPARSE_DIM_MAX / SQ8_SPARSE_SHARE + 1];
    for (int j = 0; j < d; j++) {
        float r = nearbyintf(q[j] * inv);
        if (!(r >= 1 || r <= -1)) /* zero, or NaN */
            continue;
        if (nz == max)
            return -1;
        dims[nz] = j;
        v[nz++] = (int16_t)(r > 127 ? 127 : r < -127 ? -127 : r);
    }
    if (nz % 2) {
        dims[nz] = dims[nz - 1];
        v[nz++] = 0;
    }
    for (int p = 0; p < nz / 2; p++)
        w[p] = (int32_t)((uint32_t)(uint16_t)v[2 * p] | (uint32_t)(uint16_t)v[2 * p + 1] << 16);
    return nz / 2;
}

/* 16 vectors' products with one pair of dimensions, added to lo (the
 * first 8) and hi. */
__attribute__((target("avx2,fma"), always_inline)) static inline void sq8_pair16(const int8_t *c1, const int8_t *c2,
                                                                                  __m256i wq, __m256i *lo,
                                                                                  __m256i *hi) {
    __m128i x1 = _mm_load_si128((const __m128i *)c1), x2 = _mm_load_si128((const __m128i *)c2);
    *lo = _mm256_add_epi32(*lo, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(x1, x2)), wq));
    *hi = _mm256_add_epi32(*hi, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_unpackhi_epi8(x1, x2)), wq));
}

/* The r best vectors for the np query pairs, approximately scored, into
 * the min-heap h.  Once h is full, a block's 64 scores are compared with
 * its least at once and only those above it are offered. */
__attribute__((target("avx2,fma"))) static void sq8_cols_scan(const struct sq8 *sq, const int8_t *cols,
                                                               const int *dims, const int32_t *w, int np, int r,
                                                               struct kbest *h, int *nh) {
    _Alignas(32) int32_t dots[SQ8_COL_BLOCK];
    _Alignas(32) float sc[SQ8_COL_BLOCK];
    for (size_t b = 0; b < sq->n; b += SQ8_COL_BLOCK) {
        /* eight sums of 8 vectors, in registers through the pairs */
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int p = 0; p < np; p++) {
            const int8_t *c1 = cols + (size_t)dims[2 * p] * sq->cstride + b;
            const int8_t *c2 = cols + (size_t)dims[2 * p + 1] * sq->cstride + b;
            __m256i wq = _mm256_set1_epi32(w[p]);
            sq8_pair16(c1, c2, wq, &a0, &a1);
            sq8_pair16(c1 + 16, c2 + 16, wq, &a2, &a3);
            sq8_pair16(c1 + 32, c2 + 32, wq, &a4, &a5);
            sq8_pair16(c1 + 48, c2 + 48, wq, &a6, &a7);
        }
        __m256i a[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
        if (*nh == r && b + SQ8_COL_BLOCK <= sq->n) {
            __m256 least = _mm256_set1_ps(h[0].score);
            uint64_t above = 0;
            for (int t = 0; t < 8; t++) {
                __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(a[t]), _mm256_loadu_ps(sq->scale + b + 8 * (size_t)t));
                _mm256_store_ps(sc + 8 * t, s);
                above |= (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(s, least, _CMP_GT_OQ)) << (8 * t);
            }
            for (; above; above &= above - 1) {
                int i = __builtin_ctzll(above);
                if (sc[i] > h[0].score)
                    kb_offer(h, r, nh, sc[i], (int64_t)(b + (size_t)i));
            }
            continue;
        }
        for (int t = 0; t < 8; t++)
            _mm256_store_si256((__m256i *)(dots + 8 * t), a[t]);
        size_t end = sq->n - b < SQ8_COL_BLOCK ? sq->n - b : SQ8_COL_BLOCK;
        for (size_t i = 0; i < end; i++) {
            float s = (float)dots[i] * sq->scale[b + i];
            if (*nh < r || s > h[0].score)
                kb_offer(h, r, nh, s, (int64_t)(b + i));
        }
    }
}

/* The r best rows for a query that is not sparse, by rows. */
static bool sq8_rows(const struct sq8 *sq, const float *q, int d, int r, struct kbest *cand, int *nc) {
    _Alignas(32) int8_t qstack[1024];
    bool qheap = sq->stride > (int)sizeof qstack;
    int8_t *qb = qheap ? aligned_alloc(32, (size_t)sq->stride) : qstack;
    if (!qb)
        return false;
    int32_t off = sq8_query(q, d, sq->stride, qb);
    sq8_scan(sq, qb, off, r, cand, nc);
    if (qheap)
        free(qb);
    return true;
}

/* A quantized scan of a Flat index of n vectors, when it pays and the
 * copy can be had; false leaves the search to the exact scan. */
static bool sq8_search(const struct ret_vindex *cvi, const float *xb, size_t n, int d, const float *q, int k,
                       struct kbest *h, int *nh) {
    int64_t min = quantized_min;
    int r = k * SQ8_WIDEN > SQ8_MIN_CANDIDATES ? k * SQ8_WIDEN : SQ8_MIN_CANDIDATES;
    if (min <= 0 || (int64_t)n < min || (size_t)r * 4 > n)
        return false;
    struct ret_vindex *vi = (struct ret_vindex *)cvi; /* the copy is a cache; see struct ret_vindex */
    struct sq8 *sq = __atomic_load_n(&vi->sq, __ATOMIC_ACQUIRE);
    if (!sq) {
        pthread_mutex_lock(&vi->sq_mu);
        sq = vi->sq;
        if (!sq && vi->sq_failed != n) {
            sq = sq8_build(xb, n, d);
            __atomic_store_n(&vi->sq, sq, __ATOMIC_RELEASE);
            if (!sq)
                vi->sq_failed = n;
        }
        pthread_mutex_unlock(&vi->sq_mu);
    }
    if (!sq || sq->n != n || sq->d != d)
        return false; /* no memory for it, or not this index's vectors */
    struct kbest cstack[256];
    struct kbest *cand = r <= 256 ? cstack : malloc((size_t)r * sizeof(*cand));
    if (!cand)
        return false;
    int dims[SQ8_SPARSE_DIM_MAX / SQ8_SPARSE_SHARE + 1];
    int32_t w[SQ8_SPARSE_DIM_MAX / SQ8_SPARSE_SHARE / 2 + 1];
    int np = sparse_scan && d <= SQ8_SPARSE_DIM_MAX ? sq8_sparse_query(q, d, dims, w) : -1;
    const int8_t *cols = np >= 0 ? sq8_cols(vi, sq) : NULL;
    int nc = 0;
    bool ok = true;
    if (cols)
        sq8_cols_scan(sq, cols, dims, w, np, r, cand, &nc);
    else
        ok = sq8_rows(sq, q, d, r, cand, &nc);
    for (int i = 0; i < nc; i++)
        kb_offer(h, k, nh, dot_avx2(xb + (size_t)cand[i].pos * (size_t)d, q, d), cand[i].pos);
    if (cand != cstack)
        free(cand);
    return ok;
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

#ifdef HAVE_SCAN_AVX2
/* What slorag's own scan reads of an index: a Flat inner-product index's
 * vectors (and its IDMap's ids), or, with the own shim, an IVF-Flat one's
 * centroids (its lists are read per search).  False when FAISS must
 * search it: another kind, own scans off, no AVX2, or parts that do not
 * add up. */
struct own_parts {
    int d;
    const float *xb;     /* Flat: n vectors; IVF: nlist centroids */
    size_t n;
    const idx_t *idmap;  /* Flat under an IDMap: position -> id */
    bool ivf;
    size_t nprobe;       /* IVF: lists a search visits, 1..n */
};

static bool own_parts_of(const struct ret_vindex *vi, struct own_parts *p) {
    if (!own_scan_enabled() || !cpu_has_avx2())
        return false;
    FaissIndexIDMap *map = faiss_IndexIDMap_cast(vi->index);
    FaissIndex *inner = map ? faiss_IndexIDMap_sub_index(map) : vi->index;
    FaissIndexFlat *flat = faiss_IndexFlat_cast(inner);
    *p = (struct own_parts){.d = faiss_Index_d(inner)};
    if (flat && faiss_Index_metric_type(inner) == METRIC_INNER_PRODUCT) {
        float *xb = NULL;
        size_t nfloats = 0;
        faiss_IndexFlat_xb(flat, &xb, &nfloats);
        p->xb = xb;
        p->n = nfloats / (size_t)p->d;
        size_t nids = p->n;
        idx_t *idmap = NULL;
        if (map)
            faiss_IndexIDMap_id_map(map, &idmap, &nids);
        p->idmap = idmap;
        return nids == p->n; /* else not what an IDMap over a Flat holds: let FAISS decide */
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
    if (cfloats / (size_t)p->d != nlist)
        return false;
    p->ivf = true;
    p->xb = cxb;
    p->n = nlist;
    p->nprobe = nprobe > nlist ? nlist : nprobe < 1 ? 1 : nprobe;
    return true;
#else
    return false;
#endif
}
#endif

bool ret_vindex_scans_itself(const struct ret_vindex *vi) {
#ifdef HAVE_SCAN_AVX2
    struct own_parts p;
    return own_parts_of(vi, &p);
#else
    (void)vi;
    return false;
#endif
}

/* True when it searched: one query over a Flat inner-product index, or,
 * with the own shim, over an IVF-Flat one (the nprobe lists whose
 * centroids score highest, as FAISS picks them, then their vectors). */
static bool own_scan(const struct ret_vindex *vi, const float *q, int k, float *ret_scores, int64_t *ret_ids,
                     enum err *ret_e) {
#ifdef HAVE_SCAN_AVX2
    struct own_parts p;
    if (!own_parts_of(vi, &p))
        return false;
    struct kbest stack[256];
    struct kbest *h = k <= 256 ? stack : malloc((size_t)k * sizeof(*h));
    struct kbest *lists = p.ivf ? malloc(p.nprobe * sizeof(*lists)) : NULL;
    if (!h || (p.ivf && !lists)) {
        free(lists);
        if (h != stack)
            free(h);
        *ret_e = ERR_NOMEM;
        return true;
    }
    int nh = 0;
    if (!p.ivf) {
        if (!sq8_search(vi, p.xb, p.n, p.d, q, k, h, &nh))
            scan_avx2(p.xb, p.n, p.d, q, NULL, k, h, &nh);
    } else {
#ifdef SLORAG_OWN_FAISS_C
        int nl = 0;
        scan_avx2(p.xb, p.n, p.d, q, NULL, (int)p.nprobe, lists, &nl);
        for (int i = 0; i < nl; i++) {
            const float *vecs = NULL;
            const idx_t *ids = NULL;
            size_t len = slorag_ivfflat_list(vi->index, (size_t)lists[i].pos, &vecs, &ids);
            scan_avx2(vecs, len, p.d, q, ids, k, h, &nh);
        }
#endif
    }
    kbest_out(h, nh, k, p.idmap, ret_scores, ret_ids);
    free(lists);
    if (h != stack)
        free(h);
    *ret_e = ERR_OK;
    return true;
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
    sq8_drop(vi);
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
    struct ret_vindex *vi = vindex_wrap(idx);
    if (!vi) {
        faiss_Index_free(idx);
        return ERR_NOMEM;
    }
    *ret_vi = vi;
    return ERR_OK;
}
