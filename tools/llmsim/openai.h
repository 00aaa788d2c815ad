/* openai.h - the OpenAI wire format: request validation and response text.
 *
 * Parsers read a jansson object into plain structs whose strings live in
 * the request's arena, or fill an oai_error with the status, type, code,
 * param and message OpenAI would send.  Writers append JSON text to a
 * capped struct buf.  Nothing here knows about time or connections. */
#ifndef SLORAG_LLMSIM_OPENAI_H
#define SLORAG_LLMSIM_OPENAI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "answer.h"
#include "arena.h"
#include "buf.h"
#include "config.h"
#include "err.h"

struct oai_error {
    int status;
    const char *type;  /* "invalid_request_error", "server_error", "requests" */
    const char *code;  /* NULL is sent as null */
    char param[96];    /* "" is sent as null */
    char message[320];
};

void oai_error_set(struct oai_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
enum err oai_write_error(const struct oai_error *e, struct buf *out);

struct oai_chat_req {
    const struct sim_model *model;
    struct sim_msg *msgs; /* arena */
    size_t nmsgs;
    bool stream, include_usage;
    long max_tokens;      /* 0: no limit */
    size_t prompt_tokens; /* whitespace-separated words over all message text */
};

struct oai_embed_req {
    const struct sim_model *model;
    const char **texts;   /* arena, ninputs entries */
    size_t *lens;
    size_t ninputs;
    bool base64;
    size_t dim;           /* "dimensions", else the configured embedding_dim */
    size_t prompt_tokens;
};

bool oai_parse_chat(json_t *root, const struct sim_cfg *cfg, struct arena *a, struct oai_chat_req *ret_req,
                    struct oai_error *ret_err);
bool oai_parse_embeddings(json_t *root, const struct sim_cfg *cfg, struct arena *a, struct oai_embed_req *ret_req,
                          struct oai_error *ret_err);

/* A chat completion ready to send, whole or as a stream of pieces. */
struct oai_completion {
    char id[40];            /* "chatcmpl-..." */
    long created;           /* Unix seconds */
    const char *model;
    const char *content;    /* the answer, cut to max_tokens pieces */
    size_t len;
    size_t *piece_end;      /* arena; piece i is content[piece_end[i-1] .. piece_end[i]) */
    size_t npieces;         /* completion tokens */
    const char *finish_reason; /* "stop" or "length" */
    size_t prompt_tokens;
};

/* Splits text into pieces (a word with the white space before it) and cuts
 * it to max_tokens pieces when max_tokens > 0. */
enum err oai_completion_init(struct oai_completion *c, const char *text, size_t len, long max_tokens,
                             struct arena *a);

enum err oai_write_completion(const struct oai_completion *c, struct buf *out);

enum oai_event {
    OAI_EV_ROLE,    /* first chunk: delta {"role":"assistant","content":""} */
    OAI_EV_PIECE,   /* delta {"content": piece} */
    OAI_EV_FINISH,  /* empty delta with finish_reason */
    OAI_EV_USAGE,   /* choices [] and usage (stream_options.include_usage) */
    OAI_EV_DONE,    /* data: [DONE] */
};

/* Appends one server-sent event, "data: ...\n\n". */
enum err oai_write_event(const struct oai_completion *c, enum oai_event ev, size_t piece, bool include_usage,
                         struct buf *out);

enum err oai_write_embeddings(const struct oai_embed_req *r, struct buf *out);
enum err oai_write_models(const struct sim_cfg *cfg, long created, struct buf *out);
enum err oai_write_model(const struct sim_model *m, long created, struct buf *out);

#endif
