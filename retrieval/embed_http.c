/* embed_http.c - an embedder over an OpenAI-compatible /v1/embeddings
 * endpoint (llama.cpp server --embeddings, Ollama, vLLM, TEI).
 *
 * Embedding runs on worker threads (a query's question) and during
 * ingestion, where blocking is fine, so this uses libcurl's easy interface:
 * one synchronous POST per batch of texts.  Easy handles are kept in a small
 * mutex-guarded stack of idle ones, so concurrent callers each hold their
 * own handle and a later call reuses a warm keep-alive connection.
 *
 * The reply parser is separate from the transport
 * (ret_embed_parse_response) so it can be tested without a network.  It
 * trusts nothing: the count, every index, every value (finite), the base64
 * length and the dimension are checked, and the reply is capped in size.  A
 * dimension other than the one the indexes were built with is
 * ERR_CONFLICT: mixing vectors of two models in one index would return
 * nonsense silently. */
#include "buf.h"
#include "config.h"
#include "embed.h"
#include "util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDLE_HANDLES_MAX 8
#define SNIPPET_MAX 200
#define PROBE_TEXT "dimension probe"

struct http_embedder {
    struct ret_embedder base;
    char *url;      /* owned; full endpoint URL */
    char *model;    /* owned */
    struct curl_slist *headers; /* owned; read-only once built, shared by handles */
    bool base64;
    int batch, connect_timeout_ms, timeout_ms;

    pthread_mutex_t idle_mu;
    CURL *idle[IDLE_HANDLES_MAX];
    int nidle;
};

/* ---- reply parsing ---- */

static void errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Reports a vector of `got` values against the expected dimension. */
static enum err dim_mismatch(size_t item, int got, int want, bool learned, char *err, size_t errlen) {
    if (learned) { /* both from this reply: the backend contradicts itself */
        errf(err, errlen, "data[%zu].embedding: %d values, but data[0] has %d", item, got, want);
        return ERR_BACKEND;
    }
    errf(err, errlen,
         "embedding dimension changed: the backend returned %d, the index has %d - re-embed the collection "
         "(see docs/retrieval.md)",
         got, want);
    return ERR_CONFLICT;
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Decodes one item's embedding into *ret_v (malloc'd) and its length. */
static enum err decode_one(json_t *emb, size_t item, float **ret_v, int *ret_n, char *err, size_t errlen) {
    float *v = NULL;
    size_t n = 0;
    if (json_is_array(emb)) {
        n = json_array_size(emb);
        if (n == 0 || n > RET_EMBED_DIM_MAX) {
            errf(err, errlen, "data[%zu].embedding: %zu values, expected 1 to %d", item, n, RET_EMBED_DIM_MAX);
            return ERR_BACKEND;
        }
        v = malloc(n * sizeof(float));
        if (!v)
            return ERR_NOMEM;
        for (size_t j = 0; j < n; j++) {
            json_t *x = json_array_get(emb, j);
            if (!json_is_number(x)) {
                errf(err, errlen, "data[%zu].embedding[%zu]: not a number", item, j);
                free(v);
                return ERR_BACKEND;
            }
            v[j] = (float)json_number_value(x);
        }
    } else if (json_is_string(emb)) {
        const char *s = json_string_value(emb);
        size_t slen = json_string_length(emb);
        size_t cap = slen / 4 * 3 + 3;
        if (cap > (size_t)RET_EMBED_DIM_MAX * 4 + 3) {
            errf(err, errlen, "data[%zu].embedding: base64 of %zu characters is longer than %d floats", item, slen,
                 RET_EMBED_DIM_MAX);
            return ERR_BACKEND;
        }
        unsigned char *raw = malloc(cap ? cap : 1);
        if (!raw)
            return ERR_NOMEM;
        size_t bytes = 0;
        const char *end = NULL;
        if (sodium_base642bin(raw, cap, s, slen, NULL, &bytes, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
            end != s + slen) {
            errf(err, errlen, "data[%zu].embedding: not valid base64", item);
            free(raw);
            return ERR_BACKEND;
        }
        if (bytes == 0 || bytes % 4 != 0) {
            errf(err, errlen, "data[%zu].embedding: base64 decodes to %zu bytes, not a whole number of float32s",
                 item, bytes);
            free(raw);
            return ERR_BACKEND;
        }
        n = bytes / 4;
        v = malloc(n * sizeof(float));
        if (!v) {
            free(raw);
            return ERR_NOMEM;
        }
        for (size_t j = 0; j < n; j++) {
            uint32_t u = le32(raw + 4 * j);
            memcpy(&v[j], &u, sizeof u);
        }
        free(raw);
    } else {
        errf(err, errlen, "data[%zu].embedding: missing, or neither an array nor a base64 string", item);
        return ERR_BACKEND;
    }
    for (size_t j = 0; j < n; j++)
        if (!isfinite(v[j])) {
            errf(err, errlen, "data[%zu].embedding[%zu]: not a finite float32", item, j);
            free(v);
            return ERR_BACKEND;
        }
    *ret_v = v;
    *ret_n = (int)n;
    return ERR_OK;
}

static void normalise(float *v, int dim) {
    double norm = 0;
    for (int i = 0; i < dim; i++)
        norm += (double)v[i] * v[i];
    if (norm > 0) {
        float inv = (float)(1.0 / sqrt(norm));
        for (int i = 0; i < dim; i++)
            v[i] *= inv;
    }
}

enum err ret_embed_parse_response(const char *body, size_t len, size_t n, int *io_dim, float **ret_vecs, char *err,
                                  size_t errlen) {
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        errf(err, errlen, "reply is not JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return ERR_BACKEND;
    }
    json_t *data = json_object_get(root, "data");
    if (!json_is_array(data)) {
        errf(err, errlen, "reply has no \"data\" array");
        json_decref(root);
        return ERR_BACKEND;
    }
    if (json_array_size(data) != n) {
        errf(err, errlen, "reply holds %zu embeddings for %zu inputs", json_array_size(data), n);
        json_decref(root);
        return ERR_BACKEND;
    }
    int want = *io_dim;
    bool learning = want == 0;
    float *out = NULL;
    bool *seen = calloc(n ? n : 1, sizeof(*seen));
    enum err e = seen ? ERR_OK : ERR_NOMEM;
    for (size_t i = 0; !e && i < n; i++) {
        json_t *item = json_array_get(data, i);
        json_t *ix = json_object_get(item, "index");
        if (!json_is_integer(ix)) {
            errf(err, errlen, "data[%zu].index: missing or not an integer", i);
            e = ERR_BACKEND;
            break;
        }
        json_int_t idx = json_integer_value(ix);
        if (idx < 0 || (size_t)idx >= n) {
            errf(err, errlen, "data[%zu].index: %lld is out of range for %zu inputs", i, (long long)idx, n);
            e = ERR_BACKEND;
            break;
        }
        if (seen[idx]) {
            errf(err, errlen, "data[%zu].index: %lld appears twice", i, (long long)idx);
            e = ERR_BACKEND;
            break;
        }
        seen[idx] = true;
        float *v = NULL;
        int d = 0;
        e = decode_one(json_object_get(item, "embedding"), i, &v, &d, err, errlen);
        if (e)
            break;
        if (want == 0)
            want = d;
        if (d != want) {
            e = dim_mismatch(i, d, want, learning, err, errlen);
            free(v);
            break;
        }
        if (!out) {
            out = malloc((n ? n : 1) * (size_t)want * sizeof(float));
            if (!out) {
                free(v);
                e = ERR_NOMEM;
                break;
            }
        }
        normalise(v, d);
        memcpy(out + (size_t)idx * (size_t)want, v, (size_t)d * sizeof(float));
        free(v);
    }
    free(seen);
    json_decref(root);
    if (e) {
        free(out);
        return e;
    }
    if (!out) /* n == 0 */
        out = malloc(sizeof(float));
    if (!out)
        return ERR_NOMEM;
    *io_dim = want;
    *ret_vecs = out;
    return ERR_OK;
}

/* ---- transport ---- */

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud) {
    struct buf *b = ud;
    size_t n = size * nmemb;
    return buf_append(b, p, n) == ERR_OK ? n : 0; /* 0: curl fails with CURLE_WRITE_ERROR */
}

static CURL *handle_get(struct http_embedder *h) {
    CURL *c = NULL;
    pthread_mutex_lock(&h->idle_mu);
    if (h->nidle > 0)
        c = h->idle[--h->nidle];
    pthread_mutex_unlock(&h->idle_mu);
    return c ? c : curl_easy_init();
}

static void handle_put(struct http_embedder *h, CURL *c, bool reusable) {
    if (!c)
        return;
    if (reusable) {
        pthread_mutex_lock(&h->idle_mu);
        if (h->nidle < IDLE_HANDLES_MAX) {
            h->idle[h->nidle++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&h->idle_mu);
    }
    if (c)
        curl_easy_cleanup(c);
}

/* A printable, truncated copy of a reply body for error messages. */
static void snippet(const struct buf *b, char *out, size_t outlen) {
    size_t n = 0;
    for (size_t i = 0; b->data && i < b->len && n + 4 < outlen && i < SNIPPET_MAX; i++) {
        unsigned char ch = (unsigned char)b->data[i];
        out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : ' ';
    }
    if (b->len > SNIPPET_MAX && n + 4 < outlen) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Builds {"model", "input": [...], "encoding_format"} for texts[idx[0..n)]. */
static char *request_body(const struct http_embedder *h, const char *const *texts, const size_t *lens,
                          const size_t *idx, size_t n, enum err *ret_e) {
    json_t *input = json_array();
    json_t *req = json_object();
    *ret_e = input && req ? ERR_OK : ERR_NOMEM;
    for (size_t i = 0; !*ret_e && i < n; i++) {
        json_t *s = json_stringn(texts[idx[i]], lens[idx[i]]);
        if (!s) {
            ret_set_error("embedding input %zu is not valid UTF-8", idx[i]);
            *ret_e = ERR_INVALID_UTF8;
        } else if (json_array_append_new(input, s)) {
            *ret_e = ERR_NOMEM;
        }
    }
    char *body = NULL;
    if (!*ret_e && (json_object_set_new(req, "model", json_string(h->model)) ||
                    json_object_set_new(req, "input", input) ||
                    json_object_set_new(req, "encoding_format", json_string(h->base64 ? "base64" : "float"))))
        *ret_e = ERR_NOMEM;
    else if (!*ret_e)
        input = NULL; /* owned by req now */
    if (!*ret_e && !(body = json_dumps(req, JSON_COMPACT)))
        *ret_e = ERR_NOMEM;
    json_decref(input);
    json_decref(req);
    return body;
}

/* One POST for texts[idx[0..n)]; vectors land at out[idx[i] * dim].  With
 * *io_dim 0 the dimension is taken from the reply. */
static enum err post_batch(struct http_embedder *h, const char *const *texts, const size_t *lens, const size_t *idx,
                           size_t n, int *io_dim, float *out, float **ret_learned) {
    /* the request's deadline, when it comes before the embedder's own timeout */
    long timeout_ms = h->timeout_ms, connect_ms = h->connect_timeout_ms;
    bool deadline_bound = false;
    if (ret_deadline() > 0) {
        long left_ms = (long)((ret_deadline() - clock_us()) / 1000);
        if (left_ms < 1) {
            ret_set_error("embedding backend %s: not asked, the request's deadline has passed", h->url);
            return ERR_DEADLINE;
        }
        if (left_ms < timeout_ms) {
            timeout_ms = left_ms;
            deadline_bound = true;
        }
        connect_ms = connect_ms < timeout_ms ? connect_ms : timeout_ms;
    }
    enum err e;
    char *body = request_body(h, texts, lens, idx, n, &e);
    if (!body)
        return e;
    CURL *c = handle_get(h);
    if (!c) {
        free(body);
        return ERR_NOMEM;
    }
    struct buf reply;
    buf_init(&reply, RET_EMBED_REPLY_MAX);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    free(body);
    e = ERR_OK;
    if (rc == CURLE_OPERATION_TIMEDOUT && deadline_bound) {
        ret_set_error("embedding backend %s: no reply in the %ld ms left before the request's deadline", h->url,
                      timeout_ms);
        e = ERR_DEADLINE;
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        ret_set_error("embedding backend %s: timed out after %d ms", h->url, h->timeout_ms);
        e = ERR_BACKEND;
    } else if (rc == CURLE_WRITE_ERROR) {
        ret_set_error("embedding backend %s: reply larger than %u bytes", h->url, RET_EMBED_REPLY_MAX);
        e = ERR_BACKEND;
    } else if (rc != CURLE_OK) {
        ret_set_error("embedding backend %s: %s", h->url, curl_easy_strerror(rc));
        e = ERR_BACKEND;
    } else if (status != 200) {
        char snip[SNIPPET_MAX + 8];
        snippet(&reply, snip, sizeof snip);
        ret_set_error("embedding backend %s: HTTP %ld: %s", h->url, status, snip);
        e = ERR_BACKEND;
    }
    handle_put(h, c, e == ERR_OK);
    if (e) {
        buf_done(&reply);
        return e;
    }
    float *vecs = NULL;
    char msg[300];
    int dim = *io_dim;
    e = ret_embed_parse_response(reply.data ? reply.data : "", reply.len, n, &dim, &vecs, msg, sizeof msg);
    buf_done(&reply);
    if (e) {
        ret_set_error("embedding backend %s: %s", h->url, msg);
        return e;
    }
    if (out)
        for (size_t i = 0; i < n; i++)
            memcpy(out + idx[i] * (size_t)dim, vecs + i * (size_t)dim, (size_t)dim * sizeof(float));
    *io_dim = dim;
    if (ret_learned)
        *ret_learned = vecs;
    else
        free(vecs);
    return ERR_OK;
}

static enum err http_embed(struct ret_embedder *e, const char *const *texts, const size_t *lens, size_t n,
                           float *ret_vecs) {
    struct http_embedder *h = (struct http_embedder *)e;
    if (e->dim <= 0) {
        ret_set_error("embedding backend %s: dimension not known yet", h->url);
        return ERR_INTERNAL;
    }
    /* empty texts get the zero vector, like the built-in embedder's:
     * servers reject empty inputs */
    size_t *idx = malloc((n ? n : 1) * sizeof(*idx));
    if (!idx)
        return ERR_NOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0)
            memset(ret_vecs + i * (size_t)e->dim, 0, (size_t)e->dim * sizeof(float));
        else
            idx[m++] = i;
    }
    enum err err = ERR_OK;
    for (size_t off = 0; !err && off < m; off += (size_t)h->batch) {
        size_t k = m - off < (size_t)h->batch ? m - off : (size_t)h->batch;
        int dim = e->dim;
        err = post_batch(h, texts, lens, idx + off, k, &dim, ret_vecs, NULL);
    }
    free(idx);
    return err;
}

enum err ret_embedder_http_learn_dim(struct ret_embedder *e) {
    struct http_embedder *h = (struct http_embedder *)e;
    if (e->dim > 0)
        return ERR_OK;
    const char *text = PROBE_TEXT;
    size_t len = strlen(text), zero = 0;
    int dim = 0;
    float *v = NULL;
    enum err err = post_batch(h, &text, &len, &zero, 1, &dim, NULL, &v);
    free(v);
    if (err)
        return err;
    e->dim = dim;
    return ERR_OK;
}

static void http_free(struct ret_embedder *e) {
    struct http_embedder *h = (struct http_embedder *)e;
    for (int i = 0; i < h->nidle; i++)
        curl_easy_cleanup(h->idle[i]);
    pthread_mutex_destroy(&h->idle_mu);
    curl_slist_free_all(h->headers);
    free(h->url);
    free(h->model);
    free(h);
}

static const struct ret_embedder_ops http_ops = {
    .name = "http",
    .embed = http_embed,
    .free = http_free,
};

enum err ret_embedder_http_new(const struct ret_embed_http_opts *o, struct ret_embedder **ret_e) {
    if (!o->url || !o->model || !*o->model || o->batch < 1 || o->batch > RET_EMBED_BATCH_MAX ||
        o->connect_timeout_ms < 1 || o->timeout_ms < 1 || o->dim < 0 || o->dim > RET_EMBED_DIM_MAX ||
        (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)) {
        ret_set_error("embedder: invalid options (url, model, batch 1..%d, timeouts >= 1, dimension 0..%d)",
                      RET_EMBED_BATCH_MAX, RET_EMBED_DIM_MAX);
        return ERR_INVALID_FIELD;
    }
    if (sodium_init() < 0)
        return ERR_INTERNAL;
    struct http_embedder *h = calloc(1, sizeof(*h));
    if (!h)
        return ERR_NOMEM;
    h->base.ops = &http_ops;
    h->base.dim = o->dim;
    h->base64 = o->base64;
    h->batch = o->batch;
    h->connect_timeout_ms = o->connect_timeout_ms;
    h->timeout_ms = o->timeout_ms;
    pthread_mutex_init(&h->idle_mu, NULL);
    size_t ul = strlen(o->url);
    while (ul > 0 && o->url[ul - 1] == '/')
        ul--;
    size_t cap = ul + sizeof "/v1/embeddings";
    h->url = malloc(cap);
    h->model = strdup(o->model);
    bool ok = h->url && h->model;
    if (ok)
        snprintf(h->url, cap, "%.*s/v1/embeddings", (int)ul, o->url);
    struct curl_slist *l = NULL;
    static const char *const fixed[] = {"Content-Type: application/json", "Accept: application/json", "Expect:"};
    for (size_t i = 0; ok && i < sizeof fixed / sizeof *fixed; i++) {
        struct curl_slist *nl = curl_slist_append(l, fixed[i]);
        ok = nl != NULL;
        if (ok)
            l = nl;
    }
    if (ok && o->api_key && *o->api_key) {
        size_t alen = strlen(o->api_key) + sizeof "Authorization: Bearer ";
        char *auth = malloc(alen);
        ok = auth != NULL;
        if (ok) {
            snprintf(auth, alen, "Authorization: Bearer %s", o->api_key);
            struct curl_slist *nl = curl_slist_append(l, auth);
            ok = nl != NULL;
            if (ok)
                l = nl;
            sodium_memzero(auth, alen);
            free(auth);
        }
    }
    h->headers = l;
    if (!ok) {
        http_free(&h->base);
        return ERR_NOMEM;
    }
    *ret_e = &h->base;
    return ERR_OK;
}

enum err ret_embed_http_opts_from_cfg(const struct cfg *c, struct ret_embed_http_opts *o, bool *ret_http) {
    if (strcmp(c->embedder.kind, "http") != 0) {
        *ret_http = false;
        return ERR_OK;
    }
    const char *key = NULL;
    if (c->embedder.api_key_env[0]) {
        key = getenv(c->embedder.api_key_env);
        if (!key || !*key) {
            ret_set_error("embedder.api_key_env: the environment variable %s is not set", c->embedder.api_key_env);
            return ERR_CONFIG;
        }
    }
    *o = (struct ret_embed_http_opts){
        .url = c->embedder.url,
        .model = c->embedder.model,
        .api_key = key,
        .base64 = strcmp(c->embedder.encoding, "base64") == 0,
        .batch = c->embedder.batch,
        .connect_timeout_ms = c->embedder.connect_timeout_ms,
        .timeout_ms = c->embedder.timeout_ms,
        .dim = c->embedder.dimension,
    };
    *ret_http = true;
    return ERR_OK;
}
