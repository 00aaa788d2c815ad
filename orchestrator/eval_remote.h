/* eval_remote.h - `slorag eval --url`: a running slorag over HTTP. */
#ifndef SLORAG_EVAL_REMOTE_H
#define SLORAG_EVAL_REMOTE_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct eval_remote {
    CURL *curl;
    char base[512];       /* "http://host:port", no trailing slash */
    char auth[600];       /* "Authorization: Bearer ...", or "" (open mode) */
    char collection[32];  /* the scratch collection */
    bool created;
};

/* Uploads every paragraph of articles into a new scratch collection.
 * Returns an exit status (0, 1, or 2 for a bad URL), with a message. */
int eval_remote_open(const char *url, const char *api_key, json_t *articles, struct eval_remote *r, size_t *ret_paras);
/* One question through POST /v1/query; *ret_body is the response (new
 * reference) on ERR_OK, else errbuf says what the server or the network said. */
enum err eval_remote_query(struct eval_remote *r, const char *question, const char *tier, const char *mode,
                           json_t **ret_body, char *errbuf, size_t errlen);
/* Deletes the scratch collection and frees the handle. */
void eval_remote_close(struct eval_remote *r);

#endif
