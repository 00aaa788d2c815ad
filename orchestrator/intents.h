/* intents.h - per-tenant intent classifiers: the built-in examples plus a
 * tenant's own (stored by config/tenants.c), trained when first needed and
 * cached; and the admin API behind /v1/admin/tenants/{id}/intents. */
#ifndef SLORAG_INTENTS_H
#define SLORAG_INTENTS_H

#include <jansson.h>
#include <stddef.h>

#include "err.h"
#include "intent.h"
#include "tenants.h"

/* Tenants whose models are kept; the least recently used goes first. */
#define INTENTS_CACHE_SLOTS 64

struct intents_cache;

/* NULL when out of memory; every function below accepts a NULL cache and
 * then works without one (the built-in model for every query). */
struct intents_cache *intents_cache_new(struct cfg_tenants *tenants);
struct intents_cache *intents_cache_free(struct intents_cache *c);

/* The model for tenant's questions, with one reference for the caller
 * (slo_intent_model_unref), or NULL for the built-in model: the tenant
 * has no examples of its own, does not exist, or they could not be read. */
struct slo_intent_model *intents_cache_get(struct intents_cache *c, const char *tenant);
/* Forgets the tenant's model (its examples changed, or it was deleted). */
void intents_cache_invalidate(struct intents_cache *c, const char *tenant);

/* PUT: validates body ({"examples": [{"intent", "question"}, ...]}),
 * replaces the tenant's examples, retrains its model and answers with the
 * stored set.  ERR_INVALID_FIELD with a path-qualified message,
 * ERR_NOT_FOUND for an unknown tenant. */
enum err intents_admin_put(struct intents_cache *c, struct cfg_tenants *tenants, const char *tenant,
                           const json_t *body, json_t **ret_body, char *errmsg, size_t errlen);
/* GET: the tenant's examples. */
enum err intents_admin_get(struct cfg_tenants *tenants, const char *tenant, json_t **ret_body, char *errmsg,
                           size_t errlen);

#endif
