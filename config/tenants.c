/* tenants.c - tenant and API key store (see tenants.h).
 *
 * Its own SQLite connection on the service's database file, serialised by
 * a mutex: tenant operations are rare and authentication is one indexed
 * lookup, so one connection is plenty.  Every statement runs in autocommit
 * mode or an explicit transaction, so a revoked key is refused by the very
 * next request. */
#include "tenants.h"
#include "sqlkept.h"

#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cfg_tenants {
    sqlite3 *db;
    pthread_mutex_t mu;
    /* the lookups every request makes, prepared once (under mu) */
    sqlite3_stmt *get_st, *auth_st, *count_st;
};

static void release(sqlite3_stmt *st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS tenants("
    "  id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, profile TEXT,"
    "  rate_rps REAL NOT NULL DEFAULT 0, tokens_per_min REAL NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS api_keys("
    "  key_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    "  hash BLOB NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON api_keys(tenant_id);"
    /* added after the first release: IF NOT EXISTS makes opening an older
     * database the migration */
    "CREATE TABLE IF NOT EXISTS tenant_intent_examples("
    "  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
    "  ordinal INTEGER NOT NULL, intent TEXT NOT NULL, question TEXT NOT NULL,"
    "  PRIMARY KEY(tenant_id, ordinal));";

enum err cfg_tenants_open(const char *db_path, struct cfg_tenants **ret_t) {
    if (sodium_init() < 0)
        return ERR_INTERNAL;
    struct cfg_tenants *t = calloc(1, sizeof(*t));
    if (!t)
        return ERR_NOMEM;
    if (sqlite3_open_v2(db_path, &t->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(t->db, 5000) != SQLITE_OK ||
        sqlite3_exec(t->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_exec(t->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(t->db);
        free(t);
        return ERR_STORAGE;
    }
    pthread_mutex_init(&t->mu, NULL);
    *ret_t = t;
    return ERR_OK;
}

struct cfg_tenants *cfg_tenants_free(struct cfg_tenants *t) {
    if (t) {
        sqlite3_finalize(t->get_st);
        sqlite3_finalize(t->auth_st);
        sqlite3_finalize(t->count_st);
        sqlite3_close(t->db);
        pthread_mutex_destroy(&t->mu);
        free(t);
    }
    return NULL;
}

bool cfg_tenant_id_valid(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > CFG_TENANT_ID_MAX || id[0] == '-' || id[0] == '_')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

bool cfg_secret_equal(const char *a, const char *b) {
    /* hash both to fixed length first, so the comparison time does not
     * depend on where or whether the lengths differ */
    unsigned char ha[32], hb[32];
    crypto_generichash(ha, sizeof ha, (const unsigned char *)a, strlen(a), NULL, 0);
    crypto_generichash(hb, sizeof hb, (const unsigned char *)b, strlen(b), NULL, 0);
    return sodium_memcmp(ha, hb, sizeof ha) == 0;
}

static void new_key(char *ret_key, char *ret_key_id, unsigned char hash[32]) {
    unsigned char raw[8 + 24];
    randombytes_buf(raw, sizeof raw);
    char id[CFG_KEY_ID_LEN + 1], secret[49];
    sodium_bin2hex(id, sizeof id, raw, 8);
    sodium_bin2hex(secret, sizeof secret, raw + 8, 24);
    snprintf(ret_key, CFG_KEY_LEN + 1, "sk-%s-%s", id, secret);
    memcpy(ret_key_id, id, sizeof id);
    crypto_generichash(hash, 32, (const unsigned char *)ret_key, strlen(ret_key), NULL, 0);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(secret, sizeof secret);
}

static enum err insert_key(sqlite3 *db, const char *tenant, char *ret_key, char *ret_key_id) {
    unsigned char hash[32];
    new_key(ret_key, ret_key_id, hash);
    sqlite3_stmt *st = NULL;
    enum err e = ERR_STORAGE;
    if (sqlite3_prepare_v2(db, "INSERT INTO api_keys(key_id, tenant_id, hash, created_at) VALUES (?1,?2,?3,?4)", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, ret_key_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, tenant, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, hash, sizeof hash, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
        if (sqlite3_step(st) == SQLITE_DONE)
            e = ERR_OK;
    }
    sqlite3_finalize(st);
    return e;
}

static enum err tenant_exists(sqlite3 *db, const char *id) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM tenants WHERE id=?1", -1, &st, NULL) != SQLITE_OK)
        return ERR_STORAGE;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? ERR_OK : rc == SQLITE_DONE ? ERR_NOT_FOUND : ERR_STORAGE;
}

int64_t cfg_tenants_count(struct cfg_tenants *t) {
    pthread_mutex_lock(&t->mu);
    /* asked on every request in open mode (no admin key): kept prepared */
    sqlite3_stmt *st = sql_kept(t->db, &t->count_st, "SELECT count(*) FROM tenants");
    int64_t n = -1;
    if (st && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    if (st)
        release(st);
    pthread_mutex_unlock(&t->mu);
    return n;
}

enum err cfg_tenant_create(struct cfg_tenants *t, const char *id, char *ret_key, char *ret_key_id) {
    if (!cfg_tenant_id_valid(id))
        return ERR_INVALID_FIELD;
    pthread_mutex_lock(&t->mu);
    enum err e = sqlite3_exec(t->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? ERR_OK : ERR_STORAGE;
    if (!e) {
        e = tenant_exists(t->db, id);
        e = e == ERR_OK ? ERR_CONFLICT : e == ERR_NOT_FOUND ? ERR_OK : e;
        if (!e) {
            sqlite3_stmt *st = NULL;
            e = ERR_STORAGE;
            if (sqlite3_prepare_v2(t->db, "INSERT INTO tenants(id, created_at) VALUES (?1, ?2)", -1, &st, NULL) ==
                SQLITE_OK) {
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
                if (sqlite3_step(st) == SQLITE_DONE)
                    e = ERR_OK;
            }
            sqlite3_finalize(st);
        }
        if (!e)
            e = insert_key(t->db, id, ret_key, ret_key_id);
        if (!e && sqlite3_exec(t->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            e = ERR_STORAGE;
        if (e)
            sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&t->mu);
    return e;
}

enum err cfg_tenant_get(struct cfg_tenants *t, const char *id, struct cfg_tenant *ret) {
    pthread_mutex_lock(&t->mu);
    enum err e = ERR_STORAGE;
    sqlite3_stmt *st = sql_kept(t->db, &t->get_st,
                            "SELECT id, created_at, profile, rate_rps, tokens_per_min,"
                            " (SELECT count(*) FROM api_keys k WHERE k.tenant_id = tenants.id AND k.revoked_at = 0)"
                            " FROM tenants WHERE id=?1");
    if (st) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            struct cfg_tenant tn = {0};
            snprintf(tn.id, sizeof tn.id, "%s", (const char *)sqlite3_column_text(st, 0));
            tn.created_at = sqlite3_column_int64(st, 1);
            const unsigned char *p = sqlite3_column_text(st, 2);
            tn.profile = p ? strdup((const char *)p) : NULL;
            tn.rate_rps = sqlite3_column_double(st, 3);
            tn.tokens_per_min = sqlite3_column_double(st, 4);
            tn.keys = sqlite3_column_int(st, 5);
            e = p && !tn.profile ? ERR_NOMEM : ERR_OK;
            if (!e)
                *ret = tn;
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
        release(st);
    }
    pthread_mutex_unlock(&t->mu);
    return e;
}

void cfg_tenant_done(struct cfg_tenant *tn) {
    free(tn->profile);
    tn->profile = NULL;
}

enum err cfg_tenant_list(struct cfg_tenants *t, char ***ret_ids, size_t *ret_n) {
    pthread_mutex_lock(&t->mu);
    sqlite3_stmt *st = NULL;
    enum err e = ERR_STORAGE;
    char **ids = NULL;
    size_t n = 0, cap = 0;
    if (sqlite3_prepare_v2(t->db, "SELECT id FROM tenants ORDER BY id", -1, &st, NULL) == SQLITE_OK) {
        e = ERR_OK;
        while (!e && sqlite3_step(st) == SQLITE_ROW) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                char **v = realloc(ids, cap * sizeof(*v));
                if (!v) {
                    e = ERR_NOMEM;
                    break;
                }
                ids = v;
            }
            ids[n] = strdup((const char *)sqlite3_column_text(st, 0));
            e = ids[n] ? ERR_OK : ERR_NOMEM;
            n += ids[n] != NULL;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&t->mu);
    if (e) {
        cfg_tenant_list_free(ids, n);
        return e;
    }
    *ret_ids = ids;
    *ret_n = n;
    return ERR_OK;
}

void cfg_tenant_list_free(char **ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* Runs one statement: ?1 = id, then ?2 = text (when given) or the numbers
 * x, y as ?2, ?3 — only as many as the statement has.  ERR_NOT_FOUND when
 * it changed no row. */
static enum err change(struct cfg_tenants *t, const char *sql, const char *id, const char *text, double x, double y) {
    pthread_mutex_lock(&t->mu);
    sqlite3_stmt *st = NULL;
    enum err e = ERR_STORAGE;
    if (sqlite3_prepare_v2(t->db, sql, -1, &st, NULL) == SQLITE_OK) {
        int params = sqlite3_bind_parameter_count(st);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (params >= 2 && text)
            sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
        else if (params >= 2)
            sqlite3_bind_double(st, 2, x);
        if (params >= 3)
            sqlite3_bind_double(st, 3, y);
        if (sqlite3_step(st) == SQLITE_DONE)
            e = sqlite3_changes(t->db) > 0 ? ERR_OK : ERR_NOT_FOUND;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&t->mu);
    return e;
}

enum err cfg_tenant_delete(struct cfg_tenants *t, const char *id) {
    return change(t, "DELETE FROM tenants WHERE id=?1", id, NULL, 0, 0);
}

enum err cfg_tenant_set_profile(struct cfg_tenants *t, const char *id, const char *profile_json) {
    return change(t, "UPDATE tenants SET profile=?2 WHERE id=?1", id, profile_json, 0, 0);
}

enum err cfg_tenant_set_limits(struct cfg_tenants *t, const char *id, double rate_rps, double tokens_per_min) {
    return change(t, "UPDATE tenants SET rate_rps=?2, tokens_per_min=?3 WHERE id=?1", id, NULL, rate_rps,
                  tokens_per_min);
}

enum err cfg_tenant_set_intents(struct cfg_tenants *t, const char *id, const struct cfg_intent_example *ex,
                                size_t n) {
    pthread_mutex_lock(&t->mu);
    enum err e = sqlite3_exec(t->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? ERR_OK : ERR_STORAGE;
    if (!e) {
        e = tenant_exists(t->db, id);
        sqlite3_stmt *del = NULL, *ins = NULL;
        if (!e && (sqlite3_prepare_v2(t->db, "DELETE FROM tenant_intent_examples WHERE tenant_id=?1", -1, &del,
                                      NULL) != SQLITE_OK ||
                   sqlite3_prepare_v2(t->db,
                                      "INSERT INTO tenant_intent_examples(tenant_id, ordinal, intent, question)"
                                      " VALUES (?1, ?2, ?3, ?4)",
                                      -1, &ins, NULL) != SQLITE_OK))
            e = ERR_STORAGE;
        if (!e) {
            sqlite3_bind_text(del, 1, id, -1, SQLITE_STATIC);
            e = sqlite3_step(del) == SQLITE_DONE ? ERR_OK : ERR_STORAGE;
        }
        for (size_t i = 0; !e && i < n; i++) {
            sqlite3_reset(ins);
            sqlite3_bind_text(ins, 1, id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 2, (sqlite3_int64)i);
            sqlite3_bind_text(ins, 3, ex[i].intent, -1, SQLITE_STATIC);
            sqlite3_bind_text(ins, 4, ex[i].question, -1, SQLITE_STATIC);
            e = sqlite3_step(ins) == SQLITE_DONE ? ERR_OK : ERR_STORAGE;
        }
        sqlite3_finalize(del);
        sqlite3_finalize(ins);
        if (!e && sqlite3_exec(t->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            e = ERR_STORAGE;
        if (e)
            sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&t->mu);
    return e;
}

enum err cfg_tenant_get_intents(struct cfg_tenants *t, const char *id, struct cfg_intent_example **ret,
                                size_t *ret_n) {
    pthread_mutex_lock(&t->mu);
    sqlite3_stmt *st = NULL;
    enum err e = tenant_exists(t->db, id);
    struct cfg_intent_example *v = NULL;
    size_t n = 0, cap = 0;
    if (!e && sqlite3_prepare_v2(t->db,
                                 "SELECT intent, question FROM tenant_intent_examples WHERE tenant_id=?1"
                                 " ORDER BY ordinal",
                                 -1, &st, NULL) != SQLITE_OK)
        e = ERR_STORAGE;
    if (!e) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int rc;
        while (!e && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                struct cfg_intent_example *nv = realloc(v, cap * sizeof(*nv));
                if (!nv) {
                    e = ERR_NOMEM;
                    break;
                }
                v = nv;
            }
            v[n].intent = strdup((const char *)sqlite3_column_text(st, 0));
            v[n].question = strdup((const char *)sqlite3_column_text(st, 1));
            n++;
            if (!v[n - 1].intent || !v[n - 1].question)
                e = ERR_NOMEM;
        }
        if (!e && rc != SQLITE_DONE)
            e = ERR_STORAGE;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&t->mu);
    if (e) {
        cfg_intent_examples_free(v, n);
        return e;
    }
    *ret = v;
    *ret_n = n;
    return ERR_OK;
}

void cfg_intent_examples_free(struct cfg_intent_example *v, size_t n) {
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].intent);
        free(v[i].question);
    }
    free(v);
}

enum err cfg_key_issue(struct cfg_tenants *t, const char *tenant_id, char *ret_key, char *ret_key_id) {
    pthread_mutex_lock(&t->mu);
    enum err e = tenant_exists(t->db, tenant_id);
    if (!e)
        e = insert_key(t->db, tenant_id, ret_key, ret_key_id);
    pthread_mutex_unlock(&t->mu);
    return e;
}

enum err cfg_key_revoke(struct cfg_tenants *t, const char *tenant_id, const char *key_id) {
    pthread_mutex_lock(&t->mu);
    sqlite3_stmt *st = NULL;
    enum err e = ERR_STORAGE;
    if (sqlite3_prepare_v2(t->db,
                           "UPDATE api_keys SET revoked_at=?3 WHERE tenant_id=?1 AND key_id=?2 AND revoked_at=0", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, tenant_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, key_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
        if (sqlite3_step(st) == SQLITE_DONE)
            e = sqlite3_changes(t->db) > 0 ? ERR_OK : ERR_NOT_FOUND;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&t->mu);
    return e;
}

enum err cfg_key_list(struct cfg_tenants *t, const char *tenant_id, struct cfg_key_info **ret, size_t *ret_n) {
    pthread_mutex_lock(&t->mu);
    sqlite3_stmt *st = NULL;
    enum err e = tenant_exists(t->db, tenant_id);
    struct cfg_key_info *v = NULL;
    size_t n = 0, cap = 0;
    if (!e && sqlite3_prepare_v2(t->db,
                                 "SELECT key_id, created_at, revoked_at FROM api_keys WHERE tenant_id=?1"
                                 " ORDER BY created_at, key_id",
                                 -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, tenant_id, -1, SQLITE_STATIC);
        while (!e && sqlite3_step(st) == SQLITE_ROW) {
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                struct cfg_key_info *nv = realloc(v, cap * sizeof(*nv));
                if (!nv) {
                    e = ERR_NOMEM;
                    break;
                }
                v = nv;
            }
            snprintf(v[n].key_id, sizeof v[n].key_id, "%s", (const char *)sqlite3_column_text(st, 0));
            v[n].created_at = sqlite3_column_int64(st, 1);
            v[n].revoked_at = sqlite3_column_int64(st, 2);
            n++;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&t->mu);
    if (e) {
        free(v);
        return e;
    }
    *ret = v;
    *ret_n = n;
    return ERR_OK;
}

enum err cfg_key_authenticate(struct cfg_tenants *t, const char *key, char *ret_tenant, double *ret_rps,
                              double *ret_tpm) {
    /* shape: sk-<16 hex>-<48 hex> */
    if (strlen(key) != CFG_KEY_LEN || strncmp(key, "sk-", 3) != 0 || key[3 + CFG_KEY_ID_LEN] != '-')
        return ERR_UNAUTHORIZED;
    char key_id[CFG_KEY_ID_LEN + 1];
    memcpy(key_id, key + 3, CFG_KEY_ID_LEN);
    key_id[CFG_KEY_ID_LEN] = '\0';
    unsigned char hash[32];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)key, strlen(key), NULL, 0);
    pthread_mutex_lock(&t->mu);
    enum err e = ERR_STORAGE;
    sqlite3_stmt *st = sql_kept(t->db, &t->auth_st,
                            "SELECT k.tenant_id, k.hash, t.rate_rps, t.tokens_per_min FROM api_keys k"
                            " JOIN tenants t ON t.id = k.tenant_id WHERE k.key_id=?1 AND k.revoked_at=0");
    if (st) {
        sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        e = ERR_UNAUTHORIZED;
        if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == (int)sizeof hash &&
            sodium_memcmp(sqlite3_column_blob(st, 1), hash, sizeof hash) == 0) {
            snprintf(ret_tenant, CFG_TENANT_ID_MAX + 1, "%s", (const char *)sqlite3_column_text(st, 0));
            if (ret_rps)
                *ret_rps = sqlite3_column_double(st, 2);
            if (ret_tpm)
                *ret_tpm = sqlite3_column_double(st, 3);
            e = ERR_OK;
        } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            e = ERR_STORAGE;
        }
        release(st);
    }
    pthread_mutex_unlock(&t->mu);
    return e;
}
