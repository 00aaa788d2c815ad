/* config.c - JSON config loading and validation (see config.h).
 *
 * Each section is described by a table of fields (name, type, bounds,
 * offset), so validation, unknown-key rejection and error paths are one loop
 * rather than hand-written per field. */
#include "config.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum field_type { F_INT, F_LONG, F_DOUBLE, F_STR };

struct field {
    const char *name;
    enum field_type type;
    double min, max;
    size_t offset;
};

#define FI(sect, name, lo, hi) {#name, F_INT, lo, hi, offsetof(struct cfg, sect.name)}
#define FL(sect, name, lo, hi) {#name, F_LONG, lo, hi, offsetof(struct cfg, sect.name)}
#define FD(sect, name, lo, hi) {#name, F_DOUBLE, lo, hi, offsetof(struct cfg, sect.name)}
/* strings: min/max are length bounds; the field is a char array */
#define FS(sect, name, lo) {#name, F_STR, lo, sizeof(((struct cfg *)0)->sect.name) - 1, offsetof(struct cfg, sect.name)}

static const struct field server_fields[] = {
    FI(server, workers, 1, 256),
    FI(server, queue_max, 1, 1000000),
    FL(server, max_body_bytes, 1024, 1L << 30),
    FL(server, max_header_bytes, 4096, 1L << 20),
    FL(server, max_upload_bytes, 1024, 1L << 30),
    FI(server, max_connections, 1, 100000),
    FI(server, connection_timeout_s, 1, 3600),
    FI(server, drain_timeout_ms, 0, 600000),
};

static const struct field query_fields[] = {
    FI(query, deadline_ms, 1, 600000),
    FI(query, default_k, 1, 1000),
    FI(query, max_k, 1, 1000),
    FL(query, max_question_bytes, 16, 1L << 20),
    FD(query, min_confidence, 0, 1),
    FS(query, default_tier, 1),
    FD(query, explore_rate, 0, 0.2),
    FS(query, calibration, 0),
    FI(query, max_tokens, 1, 32768),
};

#define BI(name, lo, hi) {#name, F_INT, lo, hi, offsetof(struct cfg_backend, name)}
#define BD(name, lo, hi) {#name, F_DOUBLE, lo, hi, offsetof(struct cfg_backend, name)}
#define BS(name, lo) {#name, F_STR, lo, sizeof(((struct cfg_backend *)0)->name) - 1, offsetof(struct cfg_backend, name)}

static const struct field backend_fields[] = {
    BS(name, 1), BS(url, 8), BS(model, 1), BS(api_key_env, 0), BS(tier, 1),
    BD(price_in_per_1k, 0, 1e6), BD(price_out_per_1k, 0, 1e6), BD(price_per_second, 0, 1e6),
    BI(max_concurrency, 1, 100000), BI(connect_timeout_ms, 1, 600000), BI(first_token_timeout_ms, 1, 600000),
    BI(timeout_ms, 1, 3600000), BI(max_retries, 0, 10), BI(breaker_failures, 1, 1000),
    BI(breaker_cooldown_ms, 1, 3600000),
};

static const struct field retrieval_fields[] = {
    FI(retrieval, chunk_tokens, 16, 8192),
    FI(retrieval, chunk_overlap_tokens, 0, 4096),
    FL(retrieval, max_document_bytes, 1, 1L << 30),
    FI(retrieval, embedding_dim, 16, 4096),
    FS(retrieval, index_factory, 1),
    FI(retrieval, index_save_interval_ms, 10, 3600000),
    FS(retrieval, default_mode, 1),
    FI(retrieval, max_batch_documents, 1, 100000),
    FL(retrieval, ann_threshold, 0, 1L << 40),
    FI(retrieval, lexical_index, 0, 1),
    FS(retrieval, ann_factory, 1),
    FI(retrieval, ann_nprobe, 0, 1 << 20),
    FL(retrieval, quantized_scan_min, 0, 1L << 40),
    FI(retrieval, text_cache_mb, 0, 1 << 20),
};

static const struct field embedder_fields[] = {
    FS(embedder, kind, 1),
    FS(embedder, url, 0),
    FS(embedder, model, 0),
    FS(embedder, api_key_env, 0),
    FS(embedder, encoding, 1),
    FI(embedder, batch, 1, 2048),
    FI(embedder, connect_timeout_ms, 1, 600000),
    FI(embedder, timeout_ms, 1, 3600000),
    FI(embedder, dimension, 0, 4096),
};

static const struct field ledger_fields[] = {
    FI(ledger, retention_days, 0, 36500),
};

static const struct section {
    const char *name;
    const struct field *fields;
    size_t nfields;
} sections[] = {
    {"server", server_fields, ARRAY_SIZE(server_fields)},
    {"query", query_fields, ARRAY_SIZE(query_fields)},
    {"retrieval", retrieval_fields, ARRAY_SIZE(retrieval_fields)},
    {"embedder", embedder_fields, ARRAY_SIZE(embedder_fields)},
    {"ledger", ledger_fields, ARRAY_SIZE(ledger_fields)},
};

static void fail(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(char *errbuf, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (errbuf && errlen)
        vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static void set_defaults(struct cfg *c) {
    snprintf(c->listen_host, sizeof c->listen_host, "127.0.0.1");
    c->listen_port = 8080;
    c->log_level = LOG_INFO;
    c->server.workers = 2;
    c->server.queue_max = 1024;
    c->server.max_body_bytes = 1L << 20;
    c->server.max_header_bytes = 32768;
    c->server.max_connections = 1024;
    c->server.connection_timeout_s = 30;
    c->server.drain_timeout_ms = 10000;
    c->query.deadline_ms = 8000;
    c->query.default_k = 5;
    c->query.max_k = 50;
    c->query.max_question_bytes = 4096;
    c->query.min_confidence = 0.25;
    snprintf(c->query.default_tier, sizeof c->query.default_tier, "auto");
    c->query.explore_rate = 0.02;
    c->query.max_tokens = 256;
    c->retrieval.chunk_tokens = 160;
    c->retrieval.chunk_overlap_tokens = 24;
    c->retrieval.max_document_bytes = 8L << 20;
    c->server.max_upload_bytes = 32L << 20;
    c->retrieval.embedding_dim = 256;
    snprintf(c->retrieval.index_factory, sizeof c->retrieval.index_factory, "Flat");
    c->retrieval.index_save_interval_ms = 2000;
    snprintf(c->retrieval.default_mode, sizeof c->retrieval.default_mode, "hybrid");
    c->retrieval.max_batch_documents = 1000;
    c->retrieval.ann_threshold = 100000;
    c->retrieval.quantized_scan_min = 4096; /* RET_VINDEX_QUANTIZED_MIN */
    c->retrieval.lexical_index = 1;
    c->retrieval.text_cache_mb = 64; /* RET_TEXT_CACHE_DEFAULT */
    snprintf(c->retrieval.ann_factory, sizeof c->retrieval.ann_factory, "IVF{nlist},Flat");
    snprintf(c->embedder.kind, sizeof c->embedder.kind, "builtin");
    snprintf(c->embedder.encoding, sizeof c->embedder.encoding, "float");
    c->embedder.batch = 64;
    c->embedder.connect_timeout_ms = 2000;
    c->embedder.timeout_ms = 30000;
}

/* The embedder section's rules across its fields. */
static int check_embedder(const struct cfg *c, char *errbuf, size_t errlen) {
    const typeof(c->embedder) *em = &c->embedder;
    if (strcmp(em->kind, "builtin") && strcmp(em->kind, "http")) {
        fail(errbuf, errlen, "embedder.kind: must be one of builtin, http");
        return -1;
    }
    if (strcmp(em->encoding, "float") && strcmp(em->encoding, "base64")) {
        fail(errbuf, errlen, "embedder.encoding: must be one of float, base64");
        return -1;
    }
    if (strcmp(em->kind, "builtin") == 0) {
        const char *set = em->url[0] ? "url" : em->model[0] ? "model" : em->api_key_env[0] ? "api_key_env" : NULL;
        if (set) {
            fail(errbuf, errlen, "embedder.%s: only used when kind is \"http\"", set);
            return -1;
        }
        if (em->dimension) {
            fail(errbuf, errlen,
                 "embedder.dimension: only used when kind is \"http\" (the built-in embedder's is "
                 "retrieval.embedding_dim)");
            return -1;
        }
        return 0;
    }
    if (!em->url[0]) {
        fail(errbuf, errlen, "embedder.url: required when kind is \"http\"");
        return -1;
    }
    if (strncmp(em->url, "http://", 7) != 0 && strncmp(em->url, "https://", 8) != 0) {
        fail(errbuf, errlen, "embedder.url: must start with http:// or https://");
        return -1;
    }
    if (!em->model[0]) {
        fail(errbuf, errlen, "embedder.model: required when kind is \"http\"");
        return -1;
    }
    if (em->connect_timeout_ms > em->timeout_ms) {
        fail(errbuf, errlen, "embedder.connect_timeout_ms: must be <= embedder.timeout_ms (%d)", em->timeout_ms);
        return -1;
    }
    return 0;
}

static int set_field(void *base, const struct field *f, double v, const char *path, char *errbuf,
                     size_t errlen) {
    if (v < f->min) {
        fail(errbuf, errlen, "%s: must be >= %g", path, f->min);
        return -1;
    }
    if (v > f->max) {
        fail(errbuf, errlen, "%s: must be <= %g", path, f->max);
        return -1;
    }
    char *p = (char *)base + f->offset;
    switch (f->type) {
    case F_INT: *(int *)p = (int)v; break;
    case F_LONG: *(long *)p = (long)v; break;
    case F_DOUBLE: *(double *)p = v; break;
    case F_STR: break;
    }
    return 0;
}

/* Fills base's fields from obj; prefix names the object in messages. */
static int load_fields(void *base, const struct field *fields, size_t nfields, const char *prefix, json_t *obj,
                       char *errbuf, size_t errlen) {
    if (!json_is_object(obj)) {
        fail(errbuf, errlen, "%s: must be an object", prefix);
        return -1;
    }
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        const struct field *f = NULL;
        for (size_t i = 0; i < nfields; i++)
            if (strcmp(fields[i].name, key) == 0)
                f = &fields[i];
        char path[160];
        snprintf(path, sizeof path, "%s.%s", prefix, key);
        if (!f) {
            fail(errbuf, errlen, "%s: unknown key", path);
            return -1;
        }
        if (f->type == F_STR) {
            if (!json_is_string(val)) {
                fail(errbuf, errlen, "%s: must be a string", path);
                return -1;
            }
            size_t n = json_string_length(val);
            if (n < f->min || n > f->max) {
                fail(errbuf, errlen, "%s: must be %g to %g characters", path, f->min, f->max);
                return -1;
            }
            memcpy((char *)base + f->offset, json_string_value(val), n + 1);
            continue;
        }
        if (f->type == F_DOUBLE ? !json_is_number(val) : !json_is_integer(val)) {
            fail(errbuf, errlen, "%s: must be %s", path, f->type == F_DOUBLE ? "a number" : "an integer");
            return -1;
        }
        if (set_field(base, f, json_number_value(val), path, errbuf, errlen))
            return -1;
    }
    return 0;
}

static void backend_defaults(struct cfg_backend *b) {
    *b = (struct cfg_backend){
        .max_concurrency = 16,
        .connect_timeout_ms = 2000,
        .first_token_timeout_ms = 10000,
        .timeout_ms = 30000,
        .max_retries = 1,
        .breaker_failures = 5,
        .breaker_cooldown_ms = 5000,
    };
    snprintf(b->tier, sizeof b->tier, "medium");
}

static int load_backends(struct cfg *c, json_t *arr, char *errbuf, size_t errlen) {
    if (!json_is_array(arr)) {
        fail(errbuf, errlen, "backends: must be an array");
        return -1;
    }
    if (json_array_size(arr) > CFG_MAX_BACKENDS) {
        fail(errbuf, errlen, "backends: at most %d backends", CFG_MAX_BACKENDS);
        return -1;
    }
    c->nbackends = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        struct cfg_backend *b = &c->backends[i];
        char prefix[32];
        snprintf(prefix, sizeof prefix, "backends[%zu]", i);
        backend_defaults(b);
        if (load_fields(b, backend_fields, ARRAY_SIZE(backend_fields), prefix, json_array_get(arr, i), errbuf, errlen))
            return -1;
        if (!b->name[0] || !b->url[0] || !b->model[0]) {
            fail(errbuf, errlen, "%s: \"name\", \"url\" and \"model\" are required", prefix);
            return -1;
        }
        if (strncmp(b->url, "http://", 7) != 0 && strncmp(b->url, "https://", 8) != 0) {
            fail(errbuf, errlen, "%s.url: must start with http:// or https://", prefix);
            return -1;
        }
        if (strcmp(b->tier, "small") && strcmp(b->tier, "medium") && strcmp(b->tier, "large")) {
            fail(errbuf, errlen, "%s.tier: must be one of small, medium, large", prefix);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->backends[j].name, b->name) == 0) {
                fail(errbuf, errlen, "%s.name: \"%s\" is already used by backends[%zu]", prefix, b->name, j);
                return -1;
            }
        c->nbackends++;
    }
    return 0;
}

static int set_listen(struct cfg *c, const char *v, const char *path, char *errbuf, size_t errlen) {
    char host[sizeof c->listen_host];
    int port;
    if (!util_parse_hostport(v, host, sizeof host, &port)) {
        fail(errbuf, errlen, "%s: must be HOST:PORT with PORT in 0..65535, got \"%s\"", path, v);
        return -1;
    }
    memcpy(c->listen_host, host, sizeof host);
    c->listen_port = port;
    return 0;
}

static int set_log_level(struct cfg *c, const char *v, const char *path, char *errbuf, size_t errlen) {
    int lvl = log_level_parse(v);
    if (lvl < 0) {
        fail(errbuf, errlen, "%s: must be one of debug, info, warn, error", path);
        return -1;
    }
    c->log_level = lvl;
    return 0;
}

static int set_data_dir(struct cfg *c, const char *v, const char *path, char *errbuf, size_t errlen) {
    if (!*v) {
        fail(errbuf, errlen, "%s: must not be empty", path);
        return -1;
    }
    char *d = strdup(v);
    if (!d) {
        fail(errbuf, errlen, "%s: out of memory", path);
        return -1;
    }
    free(c->data_dir);
    c->data_dir = d;
    return 0;
}

static int set_key(char *dst, size_t dstlen, const char *v, const char *path, char *errbuf, size_t errlen) {
    size_t n = strlen(v);
    if (n < CFG_ADMIN_KEY_MIN || n >= dstlen) {
        fail(errbuf, errlen, "%s: must be %d to %zu characters", path, CFG_ADMIN_KEY_MIN, dstlen - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f) {
            fail(errbuf, errlen, "%s: printable ASCII without spaces only", path);
            return -1;
        }
    memcpy(dst, v, n + 1);
    return 0;
}

static int set_admin_key(struct cfg *c, const char *v, const char *path, char *errbuf, size_t errlen) {
    return set_key(c->admin_key, sizeof c->admin_key, v, path, errbuf, errlen);
}

static int set_dashboard_key(struct cfg *c, const char *v, const char *path, char *errbuf, size_t errlen) {
    return set_key(c->dashboard_key, sizeof c->dashboard_key, v, path, errbuf, errlen);
}

static int load_root(struct cfg *c, json_t *root, char *errbuf, size_t errlen) {
    if (!json_is_object(root)) {
        fail(errbuf, errlen, "(root): must be an object");
        return -1;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        const struct section *sect = NULL;
        for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
            if (strcmp(sections[i].name, key) == 0)
                sect = &sections[i];
        if (sect) {
            if (load_fields(c, sect->fields, sect->nfields, sect->name, val, errbuf, errlen))
                return -1;
            continue;
        }
        if (strcmp(key, "backends") == 0) {
            if (load_backends(c, val, errbuf, errlen))
                return -1;
            continue;
        }
        int (*setter)(struct cfg *, const char *, const char *, char *, size_t) = NULL;
        if (strcmp(key, "listen") == 0)
            setter = set_listen;
        else if (strcmp(key, "data_dir") == 0)
            setter = set_data_dir;
        else if (strcmp(key, "log_level") == 0)
            setter = set_log_level;
        else if (strcmp(key, "admin_key") == 0)
            setter = set_admin_key;
        else if (strcmp(key, "dashboard_key") == 0)
            setter = set_dashboard_key;
        if (!setter) {
            fail(errbuf, errlen, "%s: unknown key", key);
            return -1;
        }
        if (!json_is_string(val)) {
            fail(errbuf, errlen, "%s: must be a string", key);
            return -1;
        }
        if (setter(c, json_string_value(val), key, errbuf, errlen))
            return -1;
    }
    return 0;
}

static int apply_env(struct cfg *c, char *errbuf, size_t errlen) {
    const char *v;
    if ((v = getenv("SLORAG_LISTEN")) && set_listen(c, v, "SLORAG_LISTEN", errbuf, errlen))
        return -1;
    if ((v = getenv("SLORAG_DATA_DIR")) && set_data_dir(c, v, "SLORAG_DATA_DIR", errbuf, errlen))
        return -1;
    if ((v = getenv("SLORAG_LOG_LEVEL")) && set_log_level(c, v, "SLORAG_LOG_LEVEL", errbuf, errlen))
        return -1;
    if ((v = getenv("SLORAG_ADMIN_KEY")) && *v && set_admin_key(c, v, "SLORAG_ADMIN_KEY", errbuf, errlen))
        return -1;
    if ((v = getenv("SLORAG_DASHBOARD_KEY")) && *v && set_dashboard_key(c, v, "SLORAG_DASHBOARD_KEY", errbuf, errlen))
        return -1;
    if ((v = getenv("SLORAG_WORKERS"))) {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || !*v || *end) {
            fail(errbuf, errlen, "SLORAG_WORKERS: must be an integer");
            return -1;
        }
        if (set_field(c, &server_fields[0], (double)n, "SLORAG_WORKERS", errbuf, errlen))
            return -1;
    }
    return 0;
}

static int apply_overrides(struct cfg *c, const struct cfg_overrides *ov, char *errbuf, size_t errlen) {
    if (!ov)
        return 0;
    if (ov->listen && set_listen(c, ov->listen, "--listen", errbuf, errlen))
        return -1;
    if (ov->data_dir && set_data_dir(c, ov->data_dir, "--data", errbuf, errlen))
        return -1;
    if (ov->log_level && set_log_level(c, ov->log_level, "--log-level", errbuf, errlen))
        return -1;
    return 0;
}

/* Rules that involve more than one field. */
static int cross_check(const struct cfg *c, char *errbuf, size_t errlen) {
    if (c->query.default_k > c->query.max_k) {
        fail(errbuf, errlen, "query.default_k: must be <= query.max_k (%d)", c->query.max_k);
        return -1;
    }
    if (c->retrieval.chunk_overlap_tokens >= c->retrieval.chunk_tokens) {
        fail(errbuf, errlen, "retrieval.chunk_overlap_tokens: must be < retrieval.chunk_tokens (%d)",
             c->retrieval.chunk_tokens);
        return -1;
    }
    if (strcmp(c->retrieval.default_mode, "lexical") && strcmp(c->retrieval.default_mode, "dense") &&
        strcmp(c->retrieval.default_mode, "hybrid")) {
        fail(errbuf, errlen, "retrieval.default_mode: must be one of lexical, dense, hybrid");
        return -1;
    }
    const char *t = c->query.default_tier;
    if (strcmp(t, "auto") && strcmp(t, "extractive") && strcmp(t, "small") && strcmp(t, "medium") &&
        strcmp(t, "large")) {
        fail(errbuf, errlen, "query.default_tier: must be one of auto, extractive, small, medium, large");
        return -1;
    }
    if (strcmp(t, "extractive") && strcmp(t, "auto")) {
        bool have = false;
        for (int i = 0; i < c->nbackends; i++)
            have = have || strcmp(c->backends[i].tier, t) == 0;
        if (!have) {
            fail(errbuf, errlen, "query.default_tier: no backend has tier \"%s\"", t);
            return -1;
        }
    }
    if (check_embedder(c, errbuf, errlen))
        return -1;
    if (c->query.max_question_bytes >= c->server.max_body_bytes) {
        fail(errbuf, errlen, "query.max_question_bytes: must be < server.max_body_bytes (%ld)",
             c->server.max_body_bytes);
        return -1;
    }
    return 0;
}

/* path names the source in messages; text, when not NULL, is its content
 * (so tests and fuzzers need no file). */
static enum err load(const char *path, const char *text, size_t len, const struct cfg_overrides *ov, char *errbuf,
                     size_t errlen, struct cfg **ret_cfg) {
    struct cfg *c = calloc(1, sizeof(*c));
    if (!c)
        return ERR_NOMEM;
    atomic_init(&c->refs, 1);
    set_defaults(c);
    c->data_dir = strdup("./var");
    if (!c->data_dir) {
        free(c);
        return ERR_NOMEM;
    }
    if (path) {
        json_error_t jerr;
        json_t *root = text ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)
                            : json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
            fail(errbuf, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
            cfg_unref(c);
            return ERR_CONFIG;
        }
        int rc = load_root(c, root, errbuf, errlen);
        json_decref(root);
        if (rc) {
            cfg_unref(c);
            return ERR_CONFIG;
        }
    }
    if (apply_env(c, errbuf, errlen) || apply_overrides(c, ov, errbuf, errlen) ||
        cross_check(c, errbuf, errlen)) {
        cfg_unref(c);
        return ERR_CONFIG;
    }
    *ret_cfg = c;
    return ERR_OK;
}

struct cfg *cfg_ref(struct cfg *c) {
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

struct cfg *cfg_unref(struct cfg *c) {
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        free(c->data_dir);
        free(c);
    }
    return NULL;
}

void cfg_slot_init(struct cfg_slot *s, struct cfg *c) {
    pthread_mutex_init(&s->mu, NULL);
    s->cur = c;
}

struct cfg *cfg_slot_get(struct cfg_slot *s) {
    pthread_mutex_lock(&s->mu);
    struct cfg *c = cfg_ref(s->cur);
    pthread_mutex_unlock(&s->mu);
    return c;
}

void cfg_slot_swap(struct cfg_slot *s, struct cfg *c) {
    pthread_mutex_lock(&s->mu);
    struct cfg *old = s->cur;
    s->cur = c;
    pthread_mutex_unlock(&s->mu);
    cfg_unref(old);
}

void cfg_slot_done(struct cfg_slot *s) {
    s->cur = cfg_unref(s->cur);
    pthread_mutex_destroy(&s->mu);
}

enum err cfg_load(const char *path, const struct cfg_overrides *ov, char *errbuf, size_t errlen,
                  struct cfg **ret_cfg) {
    return load(path, NULL, 0, ov, errbuf, errlen, ret_cfg);
}

enum err cfg_load_text(const char *text, size_t len, char *errbuf, size_t errlen, struct cfg **ret_cfg) {
    return load("(text)", text, len, NULL, errbuf, errlen, ret_cfg);
}
