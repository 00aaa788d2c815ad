/* openai.c - OpenAI wire format for slorag answers (see openai.h).
 *
 * Streaming is wire-compatible but not incremental: slorag produces the
 * whole answer (an LLM call is not streamed through yet), then sends it as
 * a burst of chunks, split on word boundaries, so SSE clients work
 * unchanged. */
#include "openai.h"
#include "buf.h"
#include "plan.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OA_ABSTAIN_TEXT "I cannot answer from the documents."

enum err oa_parse_chat(json_t *root, struct oa_chat_request *ret, char *msg, size_t msglen) {
    struct oa_chat_request r = {.tier = -1};
    json_t *model = json_object_get(root, "model");
    if (!json_is_string(model) || json_string_length(model) == 0 || json_string_length(model) > 100) {
        snprintf(msg, msglen, "model: required; a collection name, optionally with @tier (\"handbook@large\")");
        return ERR_INVALID_FIELD;
    }
    const char *m = json_string_value(model);
    const char *at = strchr(m, '@');
    size_t cl = at ? (size_t)(at - m) : strlen(m);
    if (cl == 0 || cl >= sizeof r.collection) {
        snprintf(msg, msglen, "model: the collection part must be 1-64 characters");
        return ERR_INVALID_FIELD;
    }
    memcpy(r.collection, m, cl);
    r.collection[cl] = '\0';
    if (at) {
        r.tier = slo_tier_parse(at + 1);
        if (r.tier < 0) {
            snprintf(msg, msglen, "model: unknown tier \"%.20s\"; use extractive, small, medium or large", at + 1);
            return ERR_INVALID_FIELD;
        }
    }
    json_t *msgs = json_object_get(root, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        snprintf(msg, msglen, "messages: required, a non-empty array");
        return ERR_INVALID_FIELD;
    }
    /* the last user message is the question */
    for (size_t i = json_array_size(msgs); i-- > 0;) {
        json_t *mm = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(mm, "role"));
        if (!json_is_object(mm) || !role) {
            snprintf(msg, msglen, "messages[%zu]: must be an object with a string \"role\"", i);
            return ERR_INVALID_FIELD;
        }
        if (strcmp(role, "user") != 0)
            continue;
        json_t *content = json_object_get(mm, "content");
        if (json_is_string(content)) {
            r.question = json_string_value(content);
        } else if (json_is_array(content)) {
            /* content parts: take the last text part */
            for (size_t k = json_array_size(content); k-- > 0 && !r.question;) {
                json_t *part = json_array_get(content, k);
                const char *type = json_string_value(json_object_get(part, "type"));
                if (type && strcmp(type, "text") == 0 && json_is_string(json_object_get(part, "text")))
                    r.question = json_string_value(json_object_get(part, "text"));
            }
        }
        if (!r.question) {
            snprintf(msg, msglen, "messages[%zu].content: must be a string or an array with a text part", i);
            return ERR_INVALID_FIELD;
        }
        break;
    }
    if (!r.question) {
        snprintf(msg, msglen, "messages: no message with role \"user\"");
        return ERR_INVALID_FIELD;
    }
    json_t *stream = json_object_get(root, "stream");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream)) {
        snprintf(msg, msglen, "stream: must be a boolean");
        return ERR_INVALID_FIELD;
    }
    r.stream = json_is_true(stream);
    r.include_usage = json_is_true(json_object_get(json_object_get(root, "stream_options"), "include_usage"));
    json_t *mt = json_object_get(root, "max_tokens");
    if (!mt)
        mt = json_object_get(root, "max_completion_tokens");
    if (mt && !json_is_null(mt)) {
        if (!json_is_integer(mt) || json_integer_value(mt) < 1 || json_integer_value(mt) > 32768) {
            snprintf(msg, msglen, "max_tokens: must be an integer in 1..32768");
            return ERR_INVALID_FIELD;
        }
        r.max_tokens = (int)json_integer_value(mt);
    }
    *ret = r;
    return ERR_OK;
}

static const char *answer_text(json_t *answer) {
    const char *a = json_string_value(json_object_get(answer, "answer"));
    return a ? a : OA_ABSTAIN_TEXT;
}

static json_t *extra(json_t *answer) {
    return json_pack("{s:O?, s:O?, s:O?, s:O?}", "request_id", json_object_get(answer, "request_id"), "citations",
                     json_object_get(answer, "citations"), "decision", json_object_get(answer, "decision"),
                     "abstained", json_object_get(answer, "abstained"));
}

static json_t *usage_of(json_t *answer) {
    json_t *u = json_object_get(answer, "usage");
    json_int_t in = json_integer_value(json_object_get(u, "input_tokens"));
    json_int_t out = json_integer_value(json_object_get(u, "output_tokens"));
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", in, "completion_tokens", out, "total_tokens", in + out);
}

static void completion_id(json_t *answer, char *out, size_t n) {
    const char *rid = json_string_value(json_object_get(answer, "request_id"));
    snprintf(out, n, "chatcmpl-%s", rid ? rid : "0");
}

json_t *oa_chat_completion(json_t *answer, const char *model, long created) {
    char id[64];
    completion_id(answer, id, sizeof id);
    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:o, s:o}", "id", id, "object",
                     "chat.completion", "created", (json_int_t)created, "model", model, "choices", "index", 0,
                     "message", "role", "assistant", "content", answer_text(answer), "finish_reason", "stop", "usage",
                     usage_of(answer), "slorag", extra(answer));
}

static enum err sse(struct buf *b, json_t *ev) {
    char *s = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!s)
        return ERR_NOMEM;
    enum err e = buf_printf(b, "data: %s\n\n", s);
    free(s);
    return e;
}

static json_t *chunk(const char *id, const char *model, long created, json_t *delta, const char *finish) {
    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:s?}]}", "id", id, "object", "chat.completion.chunk",
                     "created", (json_int_t)created, "model", model, "choices", "index", 0, "delta", delta,
                     "finish_reason", finish);
}

static char *finish_buf(struct buf *b, enum err e) {
    if (e) {
        buf_done(b);
        return NULL;
    }
    return buf_steal(b);
}

/* Content in pieces of a few words, split after spaces (UTF-8 safe);
 * piece_fn appends one piece's event. */
static enum err split_text(struct buf *b, const char *text, enum err (*piece_fn)(struct buf *, json_t *, void *),
                           void *ud) {
    size_t n = text ? strlen(text) : 0, start = 0, words = 0;
    enum err e = ERR_OK;
    for (size_t i = 0; !e && text && i <= n; i++) {
        if (i == n || (text[i] == ' ' && ++words % 4 == 0)) {
            size_t end = i == n ? n : i + 1;
            if (end > start) {
                json_t *piece = json_stringn(text + start, end - start);
                e = piece ? piece_fn(b, piece, ud) : ERR_NOMEM;
            }
            start = end;
        }
    }
    return e;
}

struct oa_piece_ctx {
    const char *id, *model;
    long created;
};

static enum err oa_piece(struct buf *b, json_t *piece, void *ud) {
    const struct oa_piece_ctx *c = ud;
    return sse(b, chunk(c->id, c->model, c->created, json_pack("{s:o}", "content", piece), NULL));
}

char *oa_stream_open(const char *request_id, const char *model, long created) {
    char id[64];
    snprintf(id, sizeof id, "chatcmpl-%s", request_id ? request_id : "0");
    struct buf b;
    buf_init(&b, 1u << 20);
    enum err e = sse(&b, chunk(id, model, created, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL));
    return finish_buf(&b, e);
}

char *oa_stream_delta(const char *request_id, const char *model, long created, const char *text, size_t len) {
    char id[64];
    snprintf(id, sizeof id, "chatcmpl-%s", request_id ? request_id : "0");
    struct buf b;
    buf_init(&b, 1u << 20);
    json_t *piece = json_stringn(text, len);
    enum err e = piece ? sse(&b, chunk(id, model, created, json_pack("{s:o}", "content", piece), NULL)) : ERR_NOMEM;
    return finish_buf(&b, e);
}

char *oa_stream_close(json_t *answer, const char *model, long created, bool include_usage, bool deltas_sent) {
    char id[64];
    completion_id(answer, id, sizeof id);
    struct buf b;
    buf_init(&b, 16u << 20);
    struct oa_piece_ctx pc = {id, model, created};
    enum err e = deltas_sent ? ERR_OK : split_text(&b, answer_text(answer), oa_piece, &pc);
    if (!e) {
        json_t *last = chunk(id, model, created, json_object(), "stop");
        json_object_set_new(last, "slorag", extra(answer));
        e = sse(&b, last);
    }
    if (!e && include_usage)
        e = sse(&b, json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", id, "object", "chat.completion.chunk", "created",
                              (json_int_t)created, "model", model, "choices", "usage", usage_of(answer)));
    if (!e)
        e = buf_puts(&b, "data: [DONE]\n\n");
    return finish_buf(&b, e);
}

char *oa_stream_error(enum err err, const char *message) {
    struct buf b;
    buf_init(&b, 1u << 20);
    enum err e = sse(&b, oa_error(err, message));
    if (!e)
        e = buf_puts(&b, "data: [DONE]\n\n");
    return finish_buf(&b, e);
}

static char *concat_free(char *a, char *b) {
    if (!a || !b) {
        free(a);
        free(b);
        return NULL;
    }
    size_t la = strlen(a), lb = strlen(b);
    char *out = realloc(a, la + lb + 1);
    if (!out) {
        free(a);
        free(b);
        return NULL;
    }
    memcpy(out + la, b, lb + 1);
    free(b);
    return out;
}

char *oa_chat_stream(json_t *answer, const char *model, long created, bool include_usage) {
    return concat_free(oa_stream_open(json_string_value(json_object_get(answer, "request_id")), model, created),
                       oa_stream_close(answer, model, created, include_usage, false));
}

static enum err named_event(struct buf *b, const char *name, json_t *data) {
    char *s = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if (!s)
        return ERR_NOMEM;
    enum err e = buf_printf(b, "event: %s\ndata: %s\n\n", name, s);
    free(s);
    return e;
}

static enum err query_piece(struct buf *b, json_t *piece, void *ud) {
    (void)ud;
    return named_event(b, "delta", json_pack("{s:o}", "text", piece));
}

char *slorag_stream_plan(json_t *plan_event) {
    struct buf b;
    buf_init(&b, 1u << 20);
    return finish_buf(&b, named_event(&b, "plan", json_incref(plan_event)));
}

char *slorag_stream_delta(const char *text, size_t len) {
    struct buf b;
    buf_init(&b, 1u << 20);
    json_t *piece = json_stringn(text, len);
    return finish_buf(&b, piece ? query_piece(&b, piece, NULL) : ERR_NOMEM);
}

char *slorag_stream_close(json_t *answer, bool deltas_sent) {
    struct buf b;
    buf_init(&b, 16u << 20);
    enum err e = deltas_sent ? ERR_OK
                             : split_text(&b, json_string_value(json_object_get(answer, "answer")), query_piece, NULL);
    if (!e)
        e = named_event(&b, "citations", json_pack("{s:O?}", "citations", json_object_get(answer, "citations")));
    if (!e)
        e = named_event(&b, "done", json_incref(answer));
    return finish_buf(&b, e);
}

char *slorag_stream_error(json_t *error_body) {
    struct buf b;
    buf_init(&b, 1u << 20);
    return finish_buf(&b, named_event(&b, "error", json_incref(error_body)));
}

json_t *slorag_plan_event(json_t *answer) {
    json_t *d = json_object_get(answer, "decision");
    return json_pack("{s:O?, s:O?, s:O?}", "request_id", json_object_get(answer, "request_id"), "intent",
                     json_object_get(d, "intent"), "plan", json_object_get(d, "plan"));
}

char *slorag_query_stream(json_t *answer) {
    json_t *ev = slorag_plan_event(answer);
    char *open = ev ? slorag_stream_plan(ev) : NULL;
    json_decref(ev);
    return concat_free(open, slorag_stream_close(answer, false));
}

json_t *oa_error(enum err e, const char *message) {
    const char *type = err_http_status(e) >= 500 ? "server_error"
                       : e == ERR_UNAUTHORIZED   ? "authentication_error"
                       : e == ERR_RATE_LIMITED   ? "rate_limit_error"
                       : e == ERR_NOT_FOUND      ? "not_found_error"
                                                 : "invalid_request_error";
    return json_pack("{s:{s:s, s:s, s:s}}", "error", "message", message && *message ? message : err_message(e), "type",
                     type, "code", err_name(e));
}
