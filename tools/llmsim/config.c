/* config.c - loading and validating the simulator's configuration.
 *
 * Like config/config.c, numeric keys are rows of a table (name, bounds,
 * offset) so range checks, unknown-key rejection and path-qualified
 * messages are one loop.  The same loop serves the top level and each
 * model, with the struct it writes passed as a base pointer. */
#include "config.h"
#include "util.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum field_type { F_INT, F_LONG, F_DOUBLE };

struct field {
    const char *name;
    enum field_type type;
    double min, max;
    size_t offset;
};

#define TOP(type, name, lo, hi) {#name, type, lo, hi, offsetof(struct sim_cfg, name)}
#define MODEL(type, name, lo, hi) {#name, type, lo, hi, offsetof(struct sim_model, name)}
#define FAULT(sym, key) {key, F_DOUBLE, 0, 1, offsetof(struct sim_model, fault_p) + SIM_FAULT_##sym * sizeof(double)},

static const struct field top_fields[] = {
    TOP(F_INT, embedding_dim, 1, 4096),
    TOP(F_LONG, max_body_bytes, 1024, 64L << 20),
    TOP(F_INT, hang_ms, 1, 3600000),
    TOP(F_DOUBLE, min_overlap, 0, 1),
    TOP(F_INT, max_connections, 16, 65536),
};

static const struct field model_fields[] = {
    MODEL(F_DOUBLE, ttft_ms, 0, 600000),
    MODEL(F_DOUBLE, ms_per_token, 0, 60000),
    MODEL(F_DOUBLE, jitter, 0, 1),
    MODEL(F_INT, max_concurrency, 1, 100000),
    MODEL(F_DOUBLE, wrong_rate, 0, 1),
    MODEL(F_DOUBLE, abstain_rate, 0, 1),
    MODEL(F_INT, spans, 0, 1),
    {"error_rate", F_DOUBLE, 0, 1, offsetof(struct sim_model, fault_p) + SIM_FAULT_ERROR * sizeof(double)},
};

/* Every fault except ERROR, which is the model-level error_rate. */
static const struct field fault_fields[] = {
    SIM_FAULT_LIST(FAULT)
};
#define FAULT_FIELDS (fault_fields + 1)
#define NFAULT_FIELDS (ARRAY_SIZE(fault_fields) - 1)

static const char *const fault_names[] = {
    "none",
#define FAULT_NAME(sym, key) key,
    SIM_FAULT_LIST(FAULT_NAME)
#undef FAULT_NAME
};

static void fail(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(char *errbuf, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (errbuf && errlen)
        vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

const char *sim_fault_name(enum sim_fault f) {
    return f < SIM_FAULT__COUNT ? fault_names[f] : "?";
}

enum sim_fault sim_fault_draw(const struct sim_model *m, double u) {
    double acc = 0;
    for (int f = SIM_FAULT_NONE + 1; f < SIM_FAULT__COUNT; f++) {
        acc += m->fault_p[f];
        if (u < acc)
            return (enum sim_fault)f;
    }
    return SIM_FAULT_NONE;
}

const struct sim_model *sim_cfg_model(const struct sim_cfg *c, const char *name) {
    for (size_t i = 0; i < c->nmodels; i++)
        if (strcmp(c->models[i].name, name) == 0)
            return &c->models[i];
    return NULL;
}

/* Sets a numeric field if key names one; returns 1 when not in the table,
 * -1 on a bad value, 0 when set. */
static int set_numeric(void *base, const struct field *fields, size_t nfields, const char *key, json_t *val,
                       const char *path, char *errbuf, size_t errlen) {
    const struct field *f = NULL;
    for (size_t i = 0; i < nfields && !f; i++)
        if (strcmp(fields[i].name, key) == 0)
            f = &fields[i];
    if (!f)
        return 1;
    if (f->type == F_DOUBLE ? !json_is_number(val) : !json_is_integer(val)) {
        fail(errbuf, errlen, "%s: must be %s", path, f->type == F_DOUBLE ? "a number" : "an integer");
        return -1;
    }
    double v = json_number_value(val);
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
    }
    return 0;
}

static bool name_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > SIM_MODEL_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-' || c == ':' || c == '/';
        if (!ok)
            return false;
    }
    return true;
}

static int load_faults(struct sim_model *m, json_t *obj, const char *mpath, char *errbuf, size_t errlen) {
    char path[160];
    if (!json_is_object(obj)) {
        fail(errbuf, errlen, "%s.faults: must be an object", mpath);
        return -1;
    }
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        snprintf(path, sizeof path, "%s.faults.%s", mpath, key);
        int rc = set_numeric(m, FAULT_FIELDS, NFAULT_FIELDS, key, val, path, errbuf, errlen);
        if (rc > 0)
            fail(errbuf, errlen, "%s: unknown key (expected one of http500, http429, timeout, malformed, "
                 "stall, drop)", path);
        if (rc)
            return -1;
    }
    return 0;
}

static int load_model(struct sim_model *m, json_t *obj, size_t idx, char *errbuf, size_t errlen) {
    char mpath[32], path[160];
    snprintf(mpath, sizeof mpath, "models[%zu]", idx);
    if (!json_is_object(obj)) {
        fail(errbuf, errlen, "%s: must be an object", mpath);
        return -1;
    }
    *m = (struct sim_model){.max_concurrency = 64};
    bool named = false;
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        snprintf(path, sizeof path, "%s.%s", mpath, key);
        if (strcmp(key, "name") == 0) {
            if (!json_is_string(val) || !name_valid(json_string_value(val))) {
                fail(errbuf, errlen, "%s: must be a string of 1-%d characters from [A-Za-z0-9._:/-]", path,
                     SIM_MODEL_NAME_MAX);
                return -1;
            }
            snprintf(m->name, sizeof m->name, "%s", json_string_value(val));
            named = true;
            continue;
        }
        if (strcmp(key, "faults") == 0) {
            if (load_faults(m, val, mpath, errbuf, errlen))
                return -1;
            continue;
        }
        int rc = set_numeric(m, model_fields, ARRAY_SIZE(model_fields), key, val, path, errbuf, errlen);
        if (rc > 0)
            fail(errbuf, errlen, "%s: unknown key", path);
        if (rc)
            return -1;
    }
    if (!named) {
        fail(errbuf, errlen, "%s.name: required", mpath);
        return -1;
    }
    if (m->wrong_rate + m->abstain_rate > 1 + 1e-9) {
        fail(errbuf, errlen, "%s: wrong_rate + abstain_rate must be <= 1 (is %g)", mpath,
             m->wrong_rate + m->abstain_rate);
        return -1;
    }
    double sum = 0;
    for (int f = SIM_FAULT_NONE + 1; f < SIM_FAULT__COUNT; f++)
        sum += m->fault_p[f];
    if (sum > 1 + 1e-9) {
        fail(errbuf, errlen, "%s: error_rate plus all faults must be <= 1 (is %g)", mpath, sum);
        return -1;
    }
    return 0;
}

static int load_models(struct sim_cfg *c, json_t *arr, char *errbuf, size_t errlen) {
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > 256) {
        fail(errbuf, errlen, "models: must be an array of 1 to 256 models");
        return -1;
    }
    c->models = calloc(json_array_size(arr), sizeof *c->models);
    if (!c->models) {
        fail(errbuf, errlen, "models: out of memory");
        return -1;
    }
    size_t i;
    json_t *m;
    json_array_foreach(arr, i, m) {
        if (load_model(&c->models[i], m, i, errbuf, errlen))
            return -1;
        c->nmodels = i + 1;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->models[j].name, c->models[i].name) == 0) {
                fail(errbuf, errlen, "models[%zu].name: \"%s\" is already the name of models[%zu]", i,
                     c->models[i].name, j);
                return -1;
            }
        }
    }
    return 0;
}

bool sim_cfg_set_listen(struct sim_cfg *c, const char *hostport, char *errbuf, size_t errlen) {
    char host[sizeof c->listen_host];
    int port;
    if (!util_parse_hostport(hostport, host, sizeof host, &port)) {
        fail(errbuf, errlen, "must be HOST:PORT with PORT in 0..65535, got \"%s\"", hostport);
        return false;
    }
    memcpy(c->listen_host, host, sizeof host);
    c->listen_port = port;
    return true;
}

static int load_root(struct sim_cfg *c, json_t *root, char *errbuf, size_t errlen) {
    if (!json_is_object(root)) {
        fail(errbuf, errlen, "(root): must be an object");
        return -1;
    }
    bool have_models = false;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "models") == 0) {
            if (load_models(c, val, errbuf, errlen))
                return -1;
            have_models = true;
        } else if (strcmp(key, "listen") == 0) {
            char msg[160];
            if (!json_is_string(val)) {
                fail(errbuf, errlen, "listen: must be a string");
                return -1;
            }
            if (!sim_cfg_set_listen(c, json_string_value(val), msg, sizeof msg)) {
                fail(errbuf, errlen, "listen: %s", msg);
                return -1;
            }
        } else if (strcmp(key, "seed") == 0) {
            if (!json_is_integer(val) || json_integer_value(val) < 0) {
                fail(errbuf, errlen, "seed: must be an integer >= 0");
                return -1;
            }
            c->seed = (uint64_t)json_integer_value(val);
        } else if (strcmp(key, "answer_key") == 0) {
            char msg[400];
            if (!json_is_string(val) || !json_string_length(val)) {
                fail(errbuf, errlen, "answer_key: must be the path of a SQuAD-format file");
                return -1;
            }
            sim_key_free(c->key);
            c->key = NULL;
            enum err e = sim_key_load(json_string_value(val), msg, sizeof msg, &c->key);
            if (e) {
                fail(errbuf, errlen, "answer_key: %s", e == ERR_NOMEM ? "out of memory" : msg);
                return -1;
            }
        } else {
            int rc = set_numeric(c, top_fields, ARRAY_SIZE(top_fields), key, val, key, errbuf, errlen);
            if (rc > 0)
                fail(errbuf, errlen, "%s: unknown key", key);
            if (rc)
                return -1;
        }
    }
    if (!have_models) {
        fail(errbuf, errlen, "models: required");
        return -1;
    }
    return 0;
}

enum err sim_cfg_load(const char *path, char *errbuf, size_t errlen, struct sim_cfg **ret_cfg) {
    struct sim_cfg *c = calloc(1, sizeof *c);
    if (!c)
        return ERR_NOMEM;
    snprintf(c->listen_host, sizeof c->listen_host, "127.0.0.1");
    c->listen_port = 8081;
    c->seed = 42;
    c->embedding_dim = 256;
    c->max_body_bytes = 4L << 20;
    c->hang_ms = 60000;
    c->min_overlap = 0.5;
    c->max_connections = 4096;
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        fail(errbuf, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        sim_cfg_free(c);
        return ERR_CONFIG;
    }
    int rc = load_root(c, root, errbuf, errlen);
    json_decref(root);
    if (rc) {
        sim_cfg_free(c);
        return ERR_CONFIG;
    }
    *ret_cfg = c;
    return ERR_OK;
}

struct sim_cfg *sim_cfg_free(struct sim_cfg *c) {
    if (c) {
        free(c->models);
        sim_key_free(c->key);
        free(c);
    }
    return NULL;
}
