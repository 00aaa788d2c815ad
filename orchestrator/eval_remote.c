/* eval_remote.c - `slorag eval --url`: the dataset against a running
 * slorag over its HTTP API (see eval.h).
 *
 * The paragraphs go into a scratch collection of the tenant whose key is
 * given ("eval-" and 8 random hex digits), uploaded in JSON batches through
 * POST /v1/collections/{name}/documents; every question is a POST
 * /v1/query; the collection is deleted at the end, whatever happened.
 * Only the public API is used, so what is measured is what a client of
 * that server gets: its planner, its tenant's profile, its backends. */
#include "eval_remote.h"
#include "util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REMOTE_BATCH_BYTES (512u << 10) /* well under the default 1 MiB body cap */

struct sink {
    char *data;
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    struct sink *s = ud;
    size_t len = size * n;
    if (s->len + len > (64u << 20))
        return 0;
    char *nd = realloc(s->data, s->len + len + 1);
    if (!nd)
        return 0;
    memcpy(nd + s->len, p, len);
    s->data = nd;
    s->len += len;
    nd[s->len] = '\0';
    return len;
}

/* One request; returns the parsed body (or NULL) and the status (0 when
 * there was no HTTP answer, with curl's message in errbuf). */
static json_t *call(struct eval_remote *r, const char *method, const char *path, const char *body, long *ret_status,
                    char *errbuf, size_t errlen) {
    char url[1024];
    snprintf(url, sizeof url, "%s%s", r->base, path);
    struct sink s = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (r->auth[0])
        h = curl_slist_append(h, r->auth);
    curl_easy_reset(r->curl);
    curl_easy_setopt(r->curl, CURLOPT_URL, url);
    curl_easy_setopt(r->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, h);
    if (body)
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS, 120000L);
    curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(r->curl);
    curl_slist_free_all(h);
    *ret_status = 0;
    if (rc != CURLE_OK) {
        snprintf(errbuf, errlen, "%s %s: %s", method, path, curl_easy_strerror(rc));
        free(s.data);
        return NULL;
    }
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, ret_status);
    json_t *j = s.data ? json_loads(s.data, 0, NULL) : NULL;
    if (*ret_status != 200 && *ret_status != 201) {
        const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        snprintf(errbuf, errlen, "%s %s: HTTP %ld: %s", method, path, *ret_status, msg ? msg : "(no JSON error)");
    }
    free(s.data);
    return j;
}

static int upload(struct eval_remote *r, json_t *batch, char *errbuf, size_t errlen) {
    char *body = json_dumps(batch, JSON_COMPACT);
    char path[128];
    snprintf(path, sizeof path, "/v1/collections/%s/documents", r->collection);
    long st;
    st = 0;
    json_t *j = body ? call(r, "POST", path, body, &st, errbuf, errlen) : NULL;
    free(body);
    json_decref(j);
    if (st == 200 || st == 201)
        r->created = true; /* delete it at close, whatever happens next */
    return st == 201 || st == 200 ? 0 : 1;
}

int eval_remote_open(const char *url, const char *api_key, json_t *articles, struct eval_remote *r, size_t *ret_paras) {
    memset(r, 0, sizeof *r);
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        ul--;
    if (ul == 0 || ul >= sizeof r->base || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
        fprintf(stderr, "slorag eval: --url must be an http:// or https:// base URL\n");
        return 2;
    }
    memcpy(r->base, url, ul);
    r->base[ul] = '\0';
    if (api_key && *api_key)
        snprintf(r->auth, sizeof r->auth, "Authorization: Bearer %s", api_key);
    char hex[9];
    util_random_hex(hex, 4);
    snprintf(r->collection, sizeof r->collection, "eval-%s", hex);
    r->curl = curl_easy_init();
    if (!r->curl)
        return 1;
    char err[512] = "";
    json_t *batch = json_array();
    size_t bytes = 0, paras = 0;
    int rc = 0;
    for (size_t a = 0; !rc && a < json_array_size(articles); a++) {
        json_t *art = json_array_get(articles, a);
        json_t *ps = json_object_get(art, "paragraphs");
        for (size_t p = 0; !rc && p < json_array_size(ps); p++) {
            const char *ctx = json_string_value(json_object_get(json_array_get(ps, p), "context"));
            if (!ctx || !*ctx)
                continue;
            char id[48];
            snprintf(id, sizeof id, "a%zu.p%zu", a, p);
            const char *title = json_string_value(json_object_get(art, "title"));
            json_array_append_new(batch, json_pack("{s:s, s:s, s:s}", "id", id, "title", title ? title : id, "text", ctx));
            bytes += strlen(ctx) + 64;
            paras++;
            if (bytes >= REMOTE_BATCH_BYTES) {
                rc = upload(r, batch, err, sizeof err);
                json_array_clear(batch);
                bytes = 0;
            }
        }
    }
    if (!rc && json_array_size(batch))
        rc = upload(r, batch, err, sizeof err);
    json_decref(batch);
    if (rc) {
        fprintf(stderr, "slorag eval: uploading the paragraphs to %s failed: %s\n", r->base, err);
        eval_remote_close(r);
        return 1;
    }
    *ret_paras = paras;
    return 0;
}

enum err eval_remote_query(struct eval_remote *r, const char *question, const char *tier, const char *mode,
                           json_t **ret_body, char *errbuf, size_t errlen) {
    json_t *req = json_pack("{s:s, s:s}", "question", question, "collection", r->collection);
    if (tier)
        json_object_set_new(req, "tier", json_string(tier));
    if (mode)
        json_object_set_new(req, "mode", json_string(mode));
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        return ERR_NOMEM;
    long st;
    json_t *j = call(r, "POST", "/v1/query", body, &st, errbuf, errlen);
    free(body);
    if (st != 200 || !j) {
        json_decref(j);
        return st == 0 ? ERR_IO : ERR_BACKEND;
    }
    *ret_body = j;
    return ERR_OK;
}

void eval_remote_close(struct eval_remote *r) {
    if (r->curl && r->created) {
        char path[128], err[512];
        long st;
        snprintf(path, sizeof path, "/v1/collections/%s", r->collection);
        json_decref(call(r, "DELETE", path, NULL, &st, err, sizeof err));
        if (st != 200 && st != 204 && st != 404)
            fprintf(stderr, "slorag eval: could not delete the scratch collection %s: %s\n", r->collection, err);
    }
    if (r->curl)
        curl_easy_cleanup(r->curl);
    r->curl = NULL;
}
