/* vindex.h - a vector index over FAISS, through the FAISS C API only.
 *
 * Ids are the store's chunk ids.  The index is a derived file: it is saved by
 * write-then-rename (so a crash leaves the old file or the new one, never a
 * torn one) and can always be rebuilt from the embeddings in SQLite. */
#ifndef SLORAG_VINDEX_H
#define SLORAG_VINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "err.h"

struct ret_vindex;

/* factory is a FAISS index-factory string ("Flat", "IVF256,Flat", "HNSW32");
 * an IDMap is added around it so that chunk ids can be stored. Inner-product
 * metric: callers pass normalised vectors for cosine similarity. */
enum err ret_vindex_new(int dim, const char *factory, struct ret_vindex **ret_vi);
struct ret_vindex *ret_vindex_free(struct ret_vindex *vi);

int ret_vindex_dim(const struct ret_vindex *vi);
int64_t ret_vindex_count(const struct ret_vindex *vi);
int ret_vindex_is_trained(const struct ret_vindex *vi);

enum err ret_vindex_train(struct ret_vindex *vi, size_t n, const float *x);
enum err ret_vindex_add(struct ret_vindex *vi, size_t n, const float *x, const int64_t *ids);
/* For each of nq queries writes k (score, id) pairs; missing results have id -1. */
enum err ret_vindex_search(const struct ret_vindex *vi, size_t nq, const float *q, int k, float *ret_scores,
                           int64_t *ret_ids);
/* True when a single query over this index is scanned by slorag itself
 * (a Flat or, with the own FAISS C API layer, an IVF-Flat inner-product
 * index on a CPU with AVX2 and FMA): such searches are cheaper one by one
 * than batched through FAISS. */
bool ret_vindex_scans_itself(const struct ret_vindex *vi);
/* The same, always through faiss_Index_search (ret_vindex_search scans a
 * single query over a Flat index itself, see vindex.c): for benchmarks
 * that compare with FAISS. */
enum err ret_vindex_search_faiss(const struct ret_vindex *vi, size_t nq, const float *q, int k, float *ret_scores,
                                 int64_t *ret_ids);
/* From this many vectors on (default RET_VINDEX_QUANTIZED_MIN; 0 = never), a
 * single-query search of a Flat index scans an 8-bit copy of the vectors
 * for candidates and scores those exactly (vindex.c, "quantized scan").
 * Process-wide; the engine sets it from retrieval.quantized_scan_min. */
#define RET_VINDEX_QUANTIZED_MIN 4096
void ret_vindex_set_quantized_min(int64_t n);
/* Whether a query with few non-zero components (the built-in embedder's)
 * reads the 8-bit copy by dimension, only its non-zero ones (vindex.c,
 * "sparse queries"); on by default.  Process-wide; for benchmarks and
 * tests that compare the two scans. */
void ret_vindex_set_sparse_scan(bool on);
/* Bytes the 8-bit copy holds, by rows and, once a sparse query has read
 * it, by dimension (0: none built since the last change). */
size_t ret_vindex_quantized_bytes(const struct ret_vindex *vi);
/* add, remove and train change the index: no search of it may run
 * meanwhile (the engine's slot lock). */
enum err ret_vindex_remove(struct ret_vindex *vi, size_t n, const int64_t *ids, size_t *ret_removed);
/* Sets a search-time parameter such as "nprobe" or "efSearch". */
enum err ret_vindex_set_param(struct ret_vindex *vi, const char *name, double value);
/* For an IVF index: its number of lists, and how many a search visits
 * (0 for other kinds; setting fails with ERR_INVALID_FIELD there).  Not
 * safe while another thread searches the same index. */
int ret_vindex_nlist(const struct ret_vindex *vi);
int ret_vindex_nprobe(const struct ret_vindex *vi);
enum err ret_vindex_set_nprobe(struct ret_vindex *vi, int nprobe);

enum err ret_vindex_save(const struct ret_vindex *vi, const char *path);
/* ERR_NOT_FOUND when the file is missing, ERR_INDEX when it is unreadable. */
enum err ret_vindex_load(const char *path, struct ret_vindex **ret_vi);

/* The last FAISS error message on this thread, or "" */
const char *ret_vindex_last_error(void);

#endif
