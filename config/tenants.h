/* tenants.h - tenants and their API keys, stored in SQLite.
 *
 * A key is shown once, at creation: "sk-<key id>-<secret>", 16 hex digits
 * of id and 48 of secret from the kernel's CSPRNG (libsodium).  Only a
 * BLAKE2b-256 hash of the whole key is stored; authentication looks the
 * row up by key id and compares hashes in constant time.  Keys have 192
 * bits of entropy, so a fast hash is enough (no password stretching). */
#ifndef SLORAG_TENANTS_H
#define SLORAG_TENANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CFG_TENANT_ID_MAX 64
#define CFG_KEY_ID_LEN 16
#define CFG_KEY_LEN (3 + CFG_KEY_ID_LEN + 1 + 48) /* "sk-" id "-" secret */

struct cfg_tenants;

struct cfg_tenant {
    char id[CFG_TENANT_ID_MAX + 1];
    int64_t created_at;
    int keys;            /* active keys */
    char *profile;       /* JSON text or NULL; malloc'd, free with cfg_tenant_done */
    double rate_rps;     /* requests per second, 0 = unlimited */
    double tokens_per_min; /* LLM tokens per minute, 0 = unlimited */
};

/* One of a tenant's labelled intent examples, as stored: the intent by
 * name (config/ knows nothing of slo/; the caller validates names). */
struct cfg_intent_example {
    char *intent;   /* malloc'd when returned by cfg_tenant_get_intents */
    char *question; /* malloc'd when returned by cfg_tenant_get_intents */
};

struct cfg_key_info {
    char key_id[CFG_KEY_ID_LEN + 1];
    int64_t created_at;
    int64_t revoked_at; /* 0 = active */
};

enum err cfg_tenants_open(const char *db_path, struct cfg_tenants **ret_t);
struct cfg_tenants *cfg_tenants_free(struct cfg_tenants *t);

/* True for 1..64 of [a-z0-9_-], starting with a letter or digit. */
bool cfg_tenant_id_valid(const char *id);
int64_t cfg_tenants_count(struct cfg_tenants *t);

/* ERR_CONFLICT when it exists.  Writes the first key (CFG_KEY_LEN+1 bytes). */
enum err cfg_tenant_create(struct cfg_tenants *t, const char *id, char *ret_key, char *ret_key_id);
enum err cfg_tenant_get(struct cfg_tenants *t, const char *id, struct cfg_tenant *ret);
void cfg_tenant_done(struct cfg_tenant *tn);
/* Array of ids (malloc'd strings in a malloc'd array). */
enum err cfg_tenant_list(struct cfg_tenants *t, char ***ret_ids, size_t *ret_n);
void cfg_tenant_list_free(char **ids, size_t n);
/* Deletes the tenant and its keys (its data is the caller's to remove). */
enum err cfg_tenant_delete(struct cfg_tenants *t, const char *id);
enum err cfg_tenant_set_profile(struct cfg_tenants *t, const char *id, const char *profile_json);
enum err cfg_tenant_set_limits(struct cfg_tenants *t, const char *id, double rate_rps, double tokens_per_min);

/* Replaces the tenant's intent examples with ex[0..n) in one transaction
 * (n = 0 clears them); ERR_NOT_FOUND for an unknown tenant.  The examples
 * go with the tenant when it is deleted. */
enum err cfg_tenant_set_intents(struct cfg_tenants *t, const char *id, const struct cfg_intent_example *ex,
                                size_t n);
/* The tenant's intent examples in the order they were set (possibly none:
 * *ret NULL, *ret_n 0); ERR_NOT_FOUND for an unknown tenant. */
enum err cfg_tenant_get_intents(struct cfg_tenants *t, const char *id, struct cfg_intent_example **ret,
                                size_t *ret_n);
void cfg_intent_examples_free(struct cfg_intent_example *v, size_t n);

enum err cfg_key_issue(struct cfg_tenants *t, const char *tenant_id, char *ret_key, char *ret_key_id);
/* ERR_NOT_FOUND when the tenant has no such active key. */
enum err cfg_key_revoke(struct cfg_tenants *t, const char *tenant_id, const char *key_id);
enum err cfg_key_list(struct cfg_tenants *t, const char *tenant_id, struct cfg_key_info **ret, size_t *ret_n);

/* Maps a presented key to its tenant id (ret_tenant: CFG_TENANT_ID_MAX+1
 * bytes) and, when ret_rps/ret_tpm are not NULL, the tenant's rate limits.
 * ERR_UNAUTHORIZED for a malformed, unknown or revoked key. */
enum err cfg_key_authenticate(struct cfg_tenants *t, const char *key, char *ret_tenant, double *ret_rps,
                              double *ret_tpm);

/* Constant-time equality of two NUL-terminated secrets. */
bool cfg_secret_equal(const char *a, const char *b);

#endif
