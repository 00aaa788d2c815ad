/* intents.c - per-tenant intent classifiers (see intents.h).
 *
 * A tenant's model is trained from the built-in examples plus its own,
 * which takes well under a millisecond, so models are trained on demand
 * and kept in a small table (INTENTS_CACHE_SLOTS tenants, least recently
 * used evicted).  A tenant without examples is cached too, as "built-in",
 * so the query path reads SQLite once per tenant, not once per query.
 *
 * Invalidation race: a query may read the old examples from SQLite just
 * before a PUT commits and insert the stale model just after the PUT
 * invalidated the slot.  Every invalidation bumps a generation; a query's
 * model is only inserted when the generation is still the one it was
 * loaded under (otherwise it serves that one query and is dropped).  PUTs
 * are serialised among themselves (put_mu: store, invalidate, train,
 * insert), so two PUTs cannot leave the older set's model cached. */
#include "intents.h"
#include "text.h"
#include "util.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cache_slot {
    char tenant[CFG_TENANT_ID_MAX + 1]; /* "" = free */
    struct slo_intent_model *model;    /* one reference; NULL = the built-in model */
    uint64_t last_used;
};

struct intents_cache {
    pthread_mutex_t mu;          /* guards the fields below */
    pthread_mutex_t put_mu;      /* one PUT at a time */
    struct cfg_tenants *tenants; /* borrowed */
    uint64_t generation, tick;
    struct cache_slot slots[INTENTS_CACHE_SLOTS];
};

struct intents_cache *intents_cache_new(struct cfg_tenants *tenants) {
    struct intents_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->put_mu, NULL);
    c->tenants = tenants;
    return c;
}

struct intents_cache *intents_cache_free(struct intents_cache *c) {
    if (c) {
        for (size_t i = 0; i < INTENTS_CACHE_SLOTS; i++)
            slo_intent_model_unref(c->slots[i].model);
        pthread_mutex_destroy(&c->mu);
        pthread_mutex_destroy(&c->put_mu);
        free(c);
    }
    return NULL;
}

static struct cache_slot *find(struct intents_cache *c, const char *tenant) {
    for (size_t i = 0; i < INTENTS_CACHE_SLOTS; i++)
        if (c->slots[i].tenant[0] && strcmp(c->slots[i].tenant, tenant) == 0)
            return &c->slots[i];
    return NULL;
}

/* Caller holds mu.  Takes the reference in model. */
static void insert(struct intents_cache *c, const char *tenant, struct slo_intent_model *model) {
    struct cache_slot *s = find(c, tenant);
    for (size_t i = 0; !s && i < INTENTS_CACHE_SLOTS; i++)
        if (!c->slots[i].tenant[0])
            s = &c->slots[i];
    if (!s) { /* full: the least recently used goes */
        s = &c->slots[0];
        for (size_t i = 1; i < INTENTS_CACHE_SLOTS; i++)
            if (c->slots[i].last_used < s->last_used)
                s = &c->slots[i];
    }
    slo_intent_model_unref(s->model);
    snprintf(s->tenant, sizeof s->tenant, "%s", tenant);
    s->model = model;
    s->last_used = ++c->tick;
}

/* Trains the built-in examples plus ex[0..n); NULL model when n is 0. */
static enum err train(const struct cfg_intent_example *ex, size_t n, struct slo_intent_model **ret) {
    *ret = NULL;
    if (n == 0)
        return ERR_OK;
    struct slo_intent_example *extra = malloc(n * sizeof(*extra));
    if (!extra)
        return ERR_NOMEM;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        int intent = slo_intent_parse(ex[i].intent);
        if (intent >= 0) /* names were validated on the way in; skip anything else */
            extra[used++] = (struct slo_intent_example){(enum slo_intent)intent, ex[i].question};
    }
    enum err e = slo_intent_model_train(slo_intent_train, slo_intent_train_len, extra, used, ret);
    free(extra);
    return e;
}

struct slo_intent_model *intents_cache_get(struct intents_cache *c, const char *tenant) {
    if (!c || !tenant || !tenant[0])
        return NULL;
    pthread_mutex_lock(&c->mu);
    struct cache_slot *s = find(c, tenant);
    if (s) {
        s->last_used = ++c->tick;
        struct slo_intent_model *m = slo_intent_model_ref(s->model);
        pthread_mutex_unlock(&c->mu);
        return m;
    }
    uint64_t generation = c->generation;
    pthread_mutex_unlock(&c->mu);

    struct cfg_intent_example *ex = NULL;
    size_t n = 0;
    struct slo_intent_model *m = NULL;
    enum err e = cfg_tenant_get_intents(c->tenants, tenant, &ex, &n);
    if (e == ERR_NOT_FOUND) /* e.g. the implicit tenant of open mode */
        e = ERR_OK, n = 0;
    if (!e)
        e = train(ex, n, &m);
    cfg_intent_examples_free(ex, n);
    if (e)
        return NULL; /* not cached: the next query tries again */
    pthread_mutex_lock(&c->mu);
    if (c->generation == generation)
        insert(c, tenant, slo_intent_model_ref(m));
    pthread_mutex_unlock(&c->mu);
    return m;
}

void intents_cache_invalidate(struct intents_cache *c, const char *tenant) {
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->generation++;
    struct cache_slot *s = find(c, tenant);
    if (s) {
        s->model = slo_intent_model_unref(s->model);
        s->tenant[0] = '\0';
    }
    pthread_mutex_unlock(&c->mu);
}

/* ---- admin API ---- */

static json_t *examples_json(const struct cfg_intent_example *ex, size_t n) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "intent", ex[i].intent, "question", ex[i].question));
    return arr;
}

static bool has_word(const char *s) {
    size_t pos = 0;
    struct text_token t;
    return text_next_token(s, strlen(s), &pos, &t);
}

/* Fills ex[0..n) from body (strings borrowed from it); false with errmsg
 * set when anything is wrong. */
static bool parse_examples(const json_t *body, struct cfg_intent_example **ret, size_t *ret_n, char *errmsg,
                           size_t errlen) {
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)body, key, val) {
        if (strcmp(key, "examples") != 0) {
            snprintf(errmsg, errlen, "unknown field \"%.64s\"", key);
            return false;
        }
    }
    const json_t *arr = json_object_get(body, "examples");
    if (!json_is_array(arr)) {
        snprintf(errmsg, errlen, "examples: required, an array of {\"intent\", \"question\"}");
        return false;
    }
    size_t n = json_array_size(arr);
    if (n > SLO_INTENT_EXAMPLES_MAX) {
        snprintf(errmsg, errlen, "examples: at most %d examples (got %zu)", SLO_INTENT_EXAMPLES_MAX, n);
        return false;
    }
    struct cfg_intent_example *ex = calloc(n ? n : 1, sizeof(*ex));
    if (!ex) {
        snprintf(errmsg, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(arr, i);
        if (!json_is_object(item)) {
            snprintf(errmsg, errlen, "examples[%zu]: must be an object {\"intent\", \"question\"}", i);
            goto fail;
        }
        json_object_foreach((json_t *)item, key, val) {
            if (strcmp(key, "intent") != 0 && strcmp(key, "question") != 0) {
                snprintf(errmsg, errlen, "examples[%zu]: unknown field \"%.64s\"", i, key);
                goto fail;
            }
        }
        const json_t *intent = json_object_get(item, "intent"), *question = json_object_get(item, "question");
        if (!json_is_string(intent) || slo_intent_parse(json_string_value(intent)) < 0) {
            char names[160] = "";
            size_t used = 0;
            for (int k = 0; k < SLO_INTENT__COUNT && used < sizeof names; k++)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", k ? ", " : "",
                                         slo_intent_name((enum slo_intent)k));
            if (json_is_string(intent))
                snprintf(errmsg, errlen, "examples[%zu].intent: unknown intent \"%.32s\"; one of %s", i,
                         json_string_value(intent), names);
            else
                snprintf(errmsg, errlen, "examples[%zu].intent: required, one of %s", i, names);
            goto fail;
        }
        if (!json_is_string(question)) {
            snprintf(errmsg, errlen, "examples[%zu].question: required, a string", i);
            goto fail;
        }
        const char *q = json_string_value(question);
        size_t len = json_string_length(question);
        if (len > SLO_INTENT_QUESTION_MAX) {
            snprintf(errmsg, errlen, "examples[%zu].question: at most %d bytes (got %zu)", i,
                     SLO_INTENT_QUESTION_MAX, len);
            goto fail;
        }
        if (strlen(q) != len) {
            snprintf(errmsg, errlen, "examples[%zu].question: must not contain NUL characters", i);
            goto fail;
        }
        if (!has_word(q)) {
            snprintf(errmsg, errlen, "examples[%zu].question: must contain at least one word", i);
            goto fail;
        }
        /* jansson only hands out valid UTF-8; these are its strings */
        ex[i] = (struct cfg_intent_example){(char *)json_string_value(intent), (char *)q};
    }
    *ret = ex;
    *ret_n = n;
    return true;
fail:
    free(ex);
    return false;
}

enum err intents_admin_put(struct intents_cache *c, struct cfg_tenants *tenants, const char *tenant,
                           const json_t *body, json_t **ret_body, char *errmsg, size_t errlen) {
    struct cfg_intent_example *ex = NULL;
    size_t n = 0;
    if (!parse_examples(body, &ex, &n, errmsg, errlen))
        return ERR_INVALID_FIELD;
    if (c)
        pthread_mutex_lock(&c->put_mu);
    enum err e = cfg_tenant_set_intents(tenants, tenant, ex, n);
    if (e) {
        if (c)
            pthread_mutex_unlock(&c->put_mu);
        free(ex);
        snprintf(errmsg, errlen, "%s", e == ERR_NOT_FOUND ? "no such tenant" : "could not store the examples");
        return e;
    }
    /* retrain now, so the first query after the PUT does not pay for it,
     * and say what it cost */
    intents_cache_invalidate(c, tenant);
    int64_t t0 = clock_us();
    struct slo_intent_model *m = NULL;
    enum err te = train(ex, n, &m);
    double training_ms = (double)(clock_us() - t0) / 1000.0;
    size_t trained = m ? slo_intent_model_examples(m) : slo_intent_model_examples(slo_intent_builtin());
    if (c && !te) {
        pthread_mutex_lock(&c->mu);
        insert(c, tenant, m); /* takes our reference */
        pthread_mutex_unlock(&c->mu);
    } else {
        slo_intent_model_unref(m);
    }
    if (c)
        pthread_mutex_unlock(&c->put_mu);
    json_t *out = json_pack("{s:s, s:o, s:{s:I, s:I, s:f}}", "tenant", tenant, "examples", examples_json(ex, n),
                            "model", "examples", (json_int_t)trained, "builtin_examples",
                            (json_int_t)slo_intent_train_len, "training_ms", te ? 0.0 : training_ms);
    free(ex);
    if (!out) {
        snprintf(errmsg, errlen, "out of memory");
        return ERR_NOMEM;
    }
    *ret_body = out;
    return ERR_OK;
}

enum err intents_admin_get(struct cfg_tenants *tenants, const char *tenant, json_t **ret_body, char *errmsg,
                           size_t errlen) {
    struct cfg_intent_example *ex = NULL;
    size_t n = 0;
    enum err e = cfg_tenant_get_intents(tenants, tenant, &ex, &n);
    if (e) {
        snprintf(errmsg, errlen, "%s", e == ERR_NOT_FOUND ? "no such tenant" : "could not read the examples");
        return e;
    }
    json_t *out = json_pack("{s:s, s:o}", "tenant", tenant, "examples", examples_json(ex, n));
    cfg_intent_examples_free(ex, n);
    if (!out) {
        snprintf(errmsg, errlen, "out of memory");
        return ERR_NOMEM;
    }
    *ret_body = out;
    return ERR_OK;
}
