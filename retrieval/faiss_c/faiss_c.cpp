/*
 * faiss_c.cpp - slorag's own implementation of the FAISS C API subset it uses.
 *
 * Debian 12 ships the FAISS C API headers (faiss/c_api/...) but not the
 * library that implements them; libfaiss.a is the C++ library only.  When no
 * libfaiss_c is installed, meson compiles this file: each function below has
 * exactly the C signature declared in the upstream header (the header is
 * included, so the compiler checks it) and forwards to the C++ API.
 *
 * Exceptions never cross into C: each entry point catches them, records the
 * message in a thread-local slot read by faiss_get_last_error(), and returns
 * the FaissErrorCode the upstream headers define.
 */
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

#include <faiss/AutoTune.h>
#include <faiss/Index.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_factory.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/invlists/InvertedLists.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>

#include <exception>
#include <string>

namespace {

thread_local std::string last_error;

/* Runs fn, converting any exception into a FaissErrorCode. */
template <typename Fn>
int guarded(Fn&& fn) {
    try {
        fn();
        return OK;
    } catch (const faiss::FaissException& e) {
        last_error = e.what();
        return FAISS_EXCEPT;
    } catch (const std::exception& e) {
        last_error = e.what();
        return STD_EXCEPT;
    } catch (...) {
        last_error = "unknown exception";
        return UNKNOWN_EXCEPT;
    }
}

faiss::Index* cxx(FaissIndex* p) {
    return reinterpret_cast<faiss::Index*>(p);
}
const faiss::Index* cxx(const FaissIndex* p) {
    return reinterpret_cast<const faiss::Index*>(p);
}

} // namespace

extern "C" {

const char* faiss_get_last_error() {
    return last_error.empty() ? nullptr : last_error.c_str();
}

int faiss_index_factory(
        FaissIndex** p_index,
        int d,
        const char* description,
        FaissMetricType metric) {
    return guarded([&] {
        faiss::Index* idx = faiss::index_factory(
                d, description, static_cast<faiss::MetricType>(metric));
        *p_index = reinterpret_cast<FaissIndex*>(idx);
    });
}

void faiss_Index_free(FaissIndex* obj) {
    delete cxx(obj);
}

int faiss_Index_d(const FaissIndex* obj) {
    return cxx(obj)->d;
}

int faiss_Index_is_trained(const FaissIndex* obj) {
    return cxx(obj)->is_trained ? 1 : 0;
}

idx_t faiss_Index_ntotal(const FaissIndex* obj) {
    return cxx(obj)->ntotal;
}

FaissMetricType faiss_Index_metric_type(const FaissIndex* obj) {
    return static_cast<FaissMetricType>(cxx(obj)->metric_type);
}

int faiss_Index_train(FaissIndex* index, idx_t n, const float* x) {
    return guarded([&] { cxx(index)->train(n, x); });
}

int faiss_Index_add(FaissIndex* index, idx_t n, const float* x) {
    return guarded([&] { cxx(index)->add(n, x); });
}

int faiss_Index_add_with_ids(
        FaissIndex* index,
        idx_t n,
        const float* x,
        const idx_t* xids) {
    return guarded([&] { cxx(index)->add_with_ids(n, x, xids); });
}

int faiss_Index_search(
        const FaissIndex* index,
        idx_t n,
        const float* x,
        idx_t k,
        float* distances,
        idx_t* labels) {
    return guarded([&] { cxx(index)->search(n, x, k, distances, labels); });
}

int faiss_Index_reset(FaissIndex* index) {
    return guarded([&] { cxx(index)->reset(); });
}

int faiss_Index_remove_ids(
        FaissIndex* index,
        const FaissIDSelector* sel,
        size_t* n_removed) {
    return guarded([&] {
        size_t n = cxx(index)->remove_ids(
                *reinterpret_cast<const faiss::IDSelector*>(sel));
        if (n_removed)
            *n_removed = n;
    });
}

int faiss_IDSelectorBatch_new(
        FaissIDSelectorBatch** p_sel,
        size_t n,
        const idx_t* indices) {
    return guarded([&] {
        *p_sel = reinterpret_cast<FaissIDSelectorBatch*>(
                new faiss::IDSelectorBatch(n, indices));
    });
}

void faiss_IDSelector_free(FaissIDSelector* obj) {
    delete reinterpret_cast<faiss::IDSelector*>(obj);
}

int faiss_write_index_fname(const FaissIndex* idx, const char* fname) {
    return guarded([&] { faiss::write_index(cxx(idx), fname); });
}

int faiss_read_index_fname(const char* fname, int io_flags, FaissIndex** p_out) {
    return guarded([&] {
        *p_out = reinterpret_cast<FaissIndex*>(
                faiss::read_index(fname, io_flags));
    });
}

int faiss_ParameterSpace_new(FaissParameterSpace** space) {
    return guarded([&] {
        *space = reinterpret_cast<FaissParameterSpace*>(
                new faiss::ParameterSpace());
    });
}

void faiss_ParameterSpace_free(FaissParameterSpace* obj) {
    delete reinterpret_cast<faiss::ParameterSpace*>(obj);
}

int faiss_ParameterSpace_set_index_parameter(
        const FaissParameterSpace* space,
        FaissIndex* index,
        const char* name,
        double value) {
    return guarded([&] {
        reinterpret_cast<const faiss::ParameterSpace*>(space)
                ->set_index_parameter(cxx(index), name, value);
    });
}

} // extern "C"

void faiss_set_distance_compute_blas_threshold(int value) {
    faiss::distance_compute_blas_threshold = value;
}

int faiss_get_distance_compute_blas_threshold() {
    return faiss::distance_compute_blas_threshold;
}

FaissIndexIDMap* faiss_IndexIDMap_cast(FaissIndex* index) {
    return reinterpret_cast<FaissIndexIDMap*>(dynamic_cast<faiss::IndexIDMap*>(cxx(index)));
}

FaissIndex* faiss_IndexIDMap_sub_index(FaissIndexIDMap* index) {
    return reinterpret_cast<FaissIndex*>(reinterpret_cast<faiss::IndexIDMap*>(index)->index);
}

void faiss_IndexIDMap_id_map(FaissIndexIDMap* index, idx_t** p_id_map, size_t* p_size) {
    auto* m = reinterpret_cast<faiss::IndexIDMap*>(index);
    *p_id_map = m->id_map.data();
    *p_size = m->id_map.size();
}

FaissIndexFlat* faiss_IndexFlat_cast(FaissIndex* index) {
    return reinterpret_cast<FaissIndexFlat*>(dynamic_cast<faiss::IndexFlat*>(cxx(index)));
}

void faiss_IndexFlat_xb(FaissIndexFlat* index, float** p_xb, size_t* p_size) {
    auto* f = reinterpret_cast<faiss::IndexFlat*>(index);
    *p_xb = f->get_xb();
    *p_size = f->codes.size() / sizeof(float);
}

FaissIndexIVF* faiss_IndexIVF_cast(FaissIndex* index) {
    return reinterpret_cast<FaissIndexIVF*>(dynamic_cast<faiss::IndexIVF*>(cxx(index)));
}

size_t faiss_IndexIVF_nlist(const FaissIndexIVF* index) {
    return reinterpret_cast<const faiss::IndexIVF*>(index)->nlist;
}

size_t faiss_IndexIVF_nprobe(const FaissIndexIVF* index) {
    return reinterpret_cast<const faiss::IndexIVF*>(index)->nprobe;
}

void faiss_IndexIVF_set_nprobe(FaissIndexIVF* index, size_t nprobe) {
    reinterpret_cast<faiss::IndexIVF*>(index)->nprobe = nprobe;
}

/* ---- slorag's extensions (this shim only; see retrieval/vindex.c) ---- */

extern "C" int slorag_ivfflat_parts(FaissIndex* index, FaissIndex** ret_quantizer, size_t* ret_nlist,
                                    size_t* ret_nprobe) {
    auto* ivf = dynamic_cast<faiss::IndexIVFFlat*>(cxx(index));
    if (!ivf || ivf->metric_type != faiss::METRIC_INNER_PRODUCT ||
        !dynamic_cast<faiss::ArrayInvertedLists*>(ivf->invlists) || ivf->code_size != ivf->d * sizeof(float))
        return -1;
    *ret_quantizer = reinterpret_cast<FaissIndex*>(ivf->quantizer);
    *ret_nlist = ivf->nlist;
    *ret_nprobe = ivf->nprobe;
    return 0;
}

extern "C" size_t slorag_ivfflat_list(FaissIndex* index, size_t list_no, const float** ret_vecs,
                                      const idx_t** ret_ids) {
    auto* ivf = static_cast<faiss::IndexIVFFlat*>(cxx(index));
    auto* lists = static_cast<faiss::ArrayInvertedLists*>(ivf->invlists);
    *ret_vecs = reinterpret_cast<const float*>(lists->codes[list_no].data());
    *ret_ids = lists->ids[list_no].data();
    return lists->ids[list_no].size();
}
