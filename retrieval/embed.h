/* embed.h - text embedders.
 *
 * An embedder turns texts into L2-normalised float vectors of a fixed
 * dimension.  The built-in one needs no model files (feature hashing over
 * stemmed words and their character trigrams); an HTTP one speaking the
 * OpenAI /v1/embeddings format can sit behind the same interface. */
#ifndef SLORAG_EMBED_H
#define SLORAG_EMBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "err.h"

#define RET_EMBED_DIM_MAX 4096
#define RET_EMBED_BATCH_MAX 2048           /* texts per request (the OpenAI limit) */
#define RET_EMBED_REPLY_MAX (64u << 20)    /* bytes of one /v1/embeddings reply */

struct ret_embedder;

struct ret_embedder_ops {
    const char *name;
    /* Writes n*dim floats to ret_vecs; on failure may set ret_last_error(). */
    enum err (*embed)(struct ret_embedder *e, const char *const *texts, const size_t *lens, size_t n,
                      float *ret_vecs);
    void (*free)(struct ret_embedder *e);
};

struct ret_embedder {
    const struct ret_embedder_ops *ops;
    int dim;
};

/* dim in 16..4096. */
enum err ret_embedder_builtin_new(int dim, struct ret_embedder **ret_e);
struct ret_embedder *ret_embedder_free(struct ret_embedder *e);

/* An OpenAI-compatible POST {url}/v1/embeddings endpoint (llama.cpp server,
 * Ollama, vLLM, TEI).  Strings are copied. */
struct ret_embed_http_opts {
    const char *url;        /* base URL, e.g. http://127.0.0.1:8081 */
    const char *model;
    const char *api_key;    /* sent as a bearer token; NULL or "" = none */
    bool base64;            /* encoding_format base64 (else float) */
    int batch;              /* texts per request, 1..RET_EMBED_BATCH_MAX */
    int connect_timeout_ms;
    int timeout_ms;         /* per request */
    int dim;                /* expected dimension; 0 = unknown until ret_embedder_http_learn_dim */
};

struct cfg;
/* Fills o from the configuration's embedder section; *ret_http is false
 * for the built-in embedder (o untouched).  o's strings point into c, the
 * API key into the environment.  ERR_CONFIG (with ret_last_error()) when
 * embedder.api_key_env names an unset variable. */
enum err ret_embed_http_opts_from_cfg(const struct cfg *c, struct ret_embed_http_opts *o, bool *ret_http);

enum err ret_embedder_http_new(const struct ret_embed_http_opts *o, struct ret_embedder **ret_e);
/* Sends one short probe text and fixes the embedder's dimension to the
 * reply's.  For an embedder created with dim 0, before it is shared between
 * threads; a no-op when the dimension is already known. */
enum err ret_embedder_http_learn_dim(struct ret_embedder *e);

/* Reads an OpenAI /v1/embeddings reply that must hold n vectors: the data
 * items are put in input order by their "index"; each embedding is a JSON
 * array of numbers or a base64 string of little-endian float32s.  Every
 * value must be finite.  *io_dim is the expected dimension, or 0 to take
 * data[0]'s (and report it).  On success ret_vecs gets n * dim floats
 * (malloc'd, L2-normalised).  A dimension other than a non-zero *io_dim is
 * ERR_CONFLICT; anything else wrong is ERR_BACKEND; err says what. */
enum err ret_embed_parse_response(const char *body, size_t len, size_t n, int *io_dim, float **ret_vecs, char *err,
                                  size_t errlen);

/* The detail of the last retrieval failure on this thread (an embedder's
 * HTTP status and body, a dimension conflict, ...), or "" when the failing
 * call left none.  Like errno: set by the failing function, cleared by
 * ret_engine_put and ret_engine_search on entry, read by the caller before
 * its next retrieval call. */
const char *ret_last_error(void);
void ret_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ret_clear_error(void);

/* The deadline of the request this thread is serving, on clock_us()'s
 * clock (0 = none).  Like ret_last_error, a per-thread setting, so that it
 * reaches the embedder through ret_engine_search without every caller in
 * between passing it on: whoever serves a request with a deadline sets it
 * around the request's searches and sets 0 after.  The HTTP embedder ends
 * a request at the earlier of embedder.timeout_ms and this deadline, and
 * when the deadline is what ends it (or has already passed) fails with
 * ERR_DEADLINE. */
void ret_set_deadline(int64_t deadline_us);
int64_t ret_deadline(void);
/* ret_last_error() when set, else err_message(e). */
const char *ret_error_detail(enum err e);

static inline enum err ret_embed(struct ret_embedder *e, const char *const *texts, const size_t *lens, size_t n,
                                 float *ret_vecs) {
    return e->ops->embed(e, texts, lens, n, ret_vecs);
}

#endif
