/* vindex.c - FAISS-backed vector index (see vindex.h).  Only faiss/c_api
 * headers are included here; whether the implementation behind them is an
 * installed libfaiss_c or slorag's own faiss_c.cpp is the build's business. */
#include "vindex.h"

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include <errno.h>
#include <fcntl.h>
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

const char *ret_vindex_last_error(void) {
    const char *m = faiss_get_last_error();
    return m ? m : "";
}

enum err ret_vindex_new(int dim, const char *factory, struct ret_vindex **ret_vi) {
    if (dim < 1 || dim > 65536 || !factory || strlen(factory) > 200)
        return ERR_INVALID_FIELD;
    char desc[256];
    /* The IDMap maps FAISS positions to our chunk ids.  Removal works where
     * the inner index supports it (Flat, IVF); HNSW refuses with ERR_INDEX. */
    snprintf(desc, sizeof desc, "IDMap,%s", factory);
    FaissIndex *idx = NULL;
    if (faiss_index_factory(&idx, dim, desc, METRIC_INNER_PRODUCT) != 0)
        return ERR_INVALID_FIELD;
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

enum err ret_vindex_search(const struct ret_vindex *vi, size_t nq, const float *q, int k, float *ret_scores,
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
