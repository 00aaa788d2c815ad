/* openai.c - see openai.h.
 *
 * Requests are checked the way the real API checks them: an unknown field
 * is a 400 "unknown_parameter", fields we accept but do not simulate
 * (stop, seed, tools, ...) are ignored, and an unknown model is a 404
 * "model_not_found" reported only once the rest of the request is valid.
 * Message text is copied into the request arena so the JSON tree can be
 * dropped as soon as the request is parsed. */
#include "openai.h"
#include "embed.h"
#include "text.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGES 4096
#define MAX_EMBED_INPUTS 2048

static const char *const chat_fields[] = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stream",
    "stream_options",
    /* accepted and ignored */
    "stop", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "user", "seed",
    "response_format", "tools", "tool_choice", "parallel_tool_calls", "service_tier", "store", "metadata",
    "reasoning_effort", "modalities", "prediction", "audio", "functions", "function_call",
};

static const char *const embed_fields[] = {"model", "input", "encoding_format", "dimensions", "user"};

static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", "function"};

void oai_error_set(struct oai_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

static void invalid(struct oai_error *e, const char *code, const char *param, const char *what) {
    oai_error_set(e, 400, "invalid_request_error", code, param, "Invalid value for '%s': %s", param, what);
}

static bool in_list(const char *key, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, list[i]) == 0)
            return true;
    return false;
}

static bool check_fields(json_t *root, const char *const *list, size_t n, struct oai_error *err) {
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!in_list(key, list, n)) {
            oai_error_set(err, 400, "invalid_request_error", "unknown_parameter", key,
                          "Unrecognized request argument supplied: %.64s", key);
            return false;
        }
    }
    return true;
}

/* The model field: present, a string, and configured. */
static bool find_model(json_t *root, const struct sim_cfg *cfg, const struct sim_model **ret_model,
                       struct oai_error *err) {
    json_t *m = json_object_get(root, "model");
    if (!m) {
        oai_error_set(err, 400, "invalid_request_error", "missing_required_parameter", "model",
                      "you must provide a model parameter");
        return false;
    }
    if (!json_is_string(m)) {
        invalid(err, "invalid_type", "model", "expected a string");
        return false;
    }
    const struct sim_model *model = sim_cfg_model(cfg, json_string_value(m));
    if (!model) {
        oai_error_set(err, 404, "invalid_request_error", "model_not_found", "model",
                      "The model `%.64s` does not exist or you do not have access to it.", json_string_value(m));
        return false;
    }
    *ret_model = model;
    return true;
}

/* Optional number in [lo, hi]; null counts as absent. */
static bool opt_number(json_t *root, const char *key, double lo, double hi, bool integer, double *out,
                       struct oai_error *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return true;
    if (integer ? !json_is_integer(v) : !json_is_number(v)) {
        invalid(err, "invalid_type", key, integer ? "expected an integer" : "expected a number");
        return false;
    }
    double d = json_number_value(v);
    if (d < lo || d > hi) {
        char what[96];
        snprintf(what, sizeof what, "must be between %g and %g", lo, hi);
        invalid(err, "invalid_value", key, what);
        return false;
    }
    *out = d;
    return true;
}

static bool opt_bool(json_t *obj, const char *key, const char *param, bool *out, struct oai_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v)) {
        invalid(err, "invalid_type", param, "expected a boolean");
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* Message content: a string, an array of parts (text parts joined by
 * newlines, other kinds skipped), or null where the role allows it. */
static bool read_content(json_t *content, const char *role, size_t idx, struct arena *a, struct sim_msg *out,
                         struct oai_error *err) {
    char param[80];
    snprintf(param, sizeof param, "messages[%zu].content", idx);
    if (!content || json_is_null(content)) {
        if (strcmp(role, "assistant") && strcmp(role, "tool") && strcmp(role, "function")) {
            invalid(err, "invalid_type", param, "expected a string or an array of content parts");
            return false;
        }
        out->text = "";
        out->len = 0;
        return true;
    }
    if (json_is_string(content)) {
        out->len = json_string_length(content);
        out->text = arena_strndup(a, json_string_value(content), out->len);
        if (!out->text)
            goto nomem;
        return true;
    }
    if (!json_is_array(content)) {
        invalid(err, "invalid_type", param, "expected a string or an array of content parts");
        return false;
    }
    size_t total = 0, i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *type = json_object_get(part, "type");
        if (!json_is_object(part) || !json_is_string(type)) {
            snprintf(param, sizeof param, "messages[%zu].content[%zu]", idx, i);
            invalid(err, "invalid_type", param, "expected an object with a string 'type'");
            return false;
        }
        if (strcmp(json_string_value(type), "text") != 0)
            continue;
        json_t *text = json_object_get(part, "text");
        if (!json_is_string(text)) {
            snprintf(param, sizeof param, "messages[%zu].content[%zu].text", idx, i);
            invalid(err, "invalid_type", param, "expected a string");
            return false;
        }
        total += json_string_length(text) + 1;
    }
    char *buf = arena_alloc(a, total + 1);
    if (!buf)
        goto nomem;
    size_t n = 0;
    json_array_foreach(content, i, part) {
        if (strcmp(json_string_value(json_object_get(part, "type")), "text") != 0)
            continue;
        json_t *text = json_object_get(part, "text");
        if (n)
            buf[n++] = '\n';
        memcpy(buf + n, json_string_value(text), json_string_length(text));
        n += json_string_length(text);
    }
    buf[n] = '\0';
    out->text = buf;
    out->len = n;
    return true;
nomem:
    oai_error_set(err, 500, "server_error", "out_of_memory", NULL, "request too large to hold in memory");
    return false;
}

static bool read_messages(json_t *arr, struct arena *a, struct oai_chat_req *req, struct oai_error *err) {
    if (!arr) {
        oai_error_set(err, 400, "invalid_request_error", "missing_required_parameter", "messages",
                      "Missing required parameter: 'messages'.");
        return false;
    }
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > MAX_MESSAGES) {
        invalid(err, json_is_array(arr) ? "invalid_value" : "invalid_type", "messages",
                "expected an array of 1 to 4096 messages");
        return false;
    }
    req->nmsgs = json_array_size(arr);
    req->msgs = arena_calloc(a, req->nmsgs, sizeof *req->msgs);
    if (!req->msgs) {
        oai_error_set(err, 500, "server_error", "out_of_memory", NULL, "request too large to hold in memory");
        return false;
    }
    size_t i;
    json_t *m;
    json_array_foreach(arr, i, m) {
        char param[48];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(m)) {
            invalid(err, "invalid_type", param, "expected an object");
            return false;
        }
        json_t *role = json_object_get(m, "role");
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!json_is_string(role) || !in_list(json_string_value(role), roles, ARRAY_SIZE(roles))) {
            invalid(err, "invalid_value", param,
                    "expected one of 'system', 'developer', 'user', 'assistant', 'tool', 'function'");
            return false;
        }
        for (size_t r = 0; r < ARRAY_SIZE(roles); r++)
            if (strcmp(roles[r], json_string_value(role)) == 0)
                req->msgs[i].role = roles[r]; /* static, outlives the JSON tree */
        if (!read_content(json_object_get(m, "content"), req->msgs[i].role, i, a, &req->msgs[i], err))
            return false;
        req->prompt_tokens += text_count_words(req->msgs[i].text, req->msgs[i].len);
    }
    return true;
}

bool oai_parse_chat(json_t *root, const struct sim_cfg *cfg, struct arena *a, struct oai_chat_req *ret_req,
                    struct oai_error *ret_err) {
    struct oai_chat_req req = {0};
    if (!check_fields(root, chat_fields, ARRAY_SIZE(chat_fields), ret_err))
        return false;
    json_t *model = json_object_get(root, "model");
    if (!model) {
        oai_error_set(ret_err, 400, "invalid_request_error", "missing_required_parameter", "model",
                      "you must provide a model parameter");
        return false;
    }
    if (!read_messages(json_object_get(root, "messages"), a, &req, ret_err))
        return false;
    double d = 0, ignored;
    if (!opt_number(root, "max_tokens", 1, 1000000, true, &d, ret_err) ||
        !opt_number(root, "max_completion_tokens", 1, 1000000, true, &d, ret_err))
        return false;
    req.max_tokens = (long)d;
    if (!opt_number(root, "temperature", 0, 2, false, &ignored, ret_err) ||
        !opt_number(root, "top_p", 0, 1, false, &ignored, ret_err) ||
        !opt_number(root, "n", 1, 1, true, &ignored, ret_err) ||
        !opt_bool(root, "stream", "stream", &req.stream, ret_err))
        return false;
    json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so)) {
        if (!req.stream) {
            invalid(ret_err, "invalid_value", "stream_options", "only allowed when 'stream' is true");
            return false;
        }
        if (!json_is_object(so)) {
            invalid(ret_err, "invalid_type", "stream_options", "expected an object");
            return false;
        }
        const char *key;
        json_t *val;
        json_object_foreach(so, key, val) {
            if (strcmp(key, "include_usage") != 0) {
                oai_error_set(ret_err, 400, "invalid_request_error", "unknown_parameter", "stream_options",
                              "Unrecognized stream option: %.64s", key);
                return false;
            }
        }
        if (!opt_bool(so, "include_usage", "stream_options.include_usage", &req.include_usage, ret_err))
            return false;
    }
    if (!find_model(root, cfg, &req.model, ret_err))
        return false;
    *ret_req = req;
    return true;
}

bool oai_parse_embeddings(json_t *root, const struct sim_cfg *cfg, struct arena *a, struct oai_embed_req *ret_req,
                          struct oai_error *ret_err) {
    struct oai_embed_req req = {.dim = (size_t)cfg->embedding_dim};
    if (!check_fields(root, embed_fields, ARRAY_SIZE(embed_fields), ret_err))
        return false;
    if (!json_object_get(root, "model")) {
        oai_error_set(ret_err, 400, "invalid_request_error", "missing_required_parameter", "model",
                      "you must provide a model parameter");
        return false;
    }
    json_t *input = json_object_get(root, "input");
    if (!input) {
        oai_error_set(ret_err, 400, "invalid_request_error", "missing_required_parameter", "input",
                      "Missing required parameter: 'input'.");
        return false;
    }
    bool single = json_is_string(input);
    if (!single && (!json_is_array(input) || json_array_size(input) == 0 ||
                    json_array_size(input) > MAX_EMBED_INPUTS)) {
        invalid(ret_err, "invalid_type", "input", "expected a string or an array of 1 to 2048 strings");
        return false;
    }
    req.ninputs = single ? 1 : json_array_size(input);
    req.texts = arena_calloc(a, req.ninputs, sizeof *req.texts);
    req.lens = arena_calloc(a, req.ninputs, sizeof *req.lens);
    if (!req.texts || !req.lens)
        goto nomem;
    for (size_t i = 0; i < req.ninputs; i++) {
        json_t *s = single ? input : json_array_get(input, i);
        char param[32];
        snprintf(param, sizeof param, single ? "input" : "input[%zu]", i);
        if (!json_is_string(s)) {
            invalid(ret_err, "invalid_type", param,
                    "expected a string (token arrays are not supported by the simulator)");
            return false;
        }
        if (json_string_length(s) == 0) {
            invalid(ret_err, "invalid_value", param, "must not be empty");
            return false;
        }
        req.lens[i] = json_string_length(s);
        req.texts[i] = arena_strndup(a, json_string_value(s), req.lens[i]);
        if (!req.texts[i])
            goto nomem;
        req.prompt_tokens += text_count_words(req.texts[i], req.lens[i]);
    }
    json_t *fmt = json_object_get(root, "encoding_format");
    if (fmt && !json_is_null(fmt)) {
        if (!json_is_string(fmt) ||
            (strcmp(json_string_value(fmt), "float") && strcmp(json_string_value(fmt), "base64"))) {
            invalid(ret_err, "invalid_value", "encoding_format", "expected 'float' or 'base64'");
            return false;
        }
        req.base64 = strcmp(json_string_value(fmt), "base64") == 0;
    }
    double dim = (double)cfg->embedding_dim;
    if (!opt_number(root, "dimensions", 1, (double)cfg->embedding_dim, true, &dim, ret_err))
        return false;
    req.dim = (size_t)dim;
    json_t *user = json_object_get(root, "user");
    if (user && !json_is_string(user)) {
        invalid(ret_err, "invalid_type", "user", "expected a string");
        return false;
    }
    if (!find_model(root, cfg, &req.model, ret_err))
        return false;
    *ret_req = req;
    return true;
nomem:
    oai_error_set(ret_err, 500, "server_error", "out_of_memory", NULL, "request too large to hold in memory");
    return false;
}

enum err oai_completion_init(struct oai_completion *c, const char *text, size_t len, long max_tokens,
                             struct arena *a) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] != ' ' && (i == 0 || text[i - 1] == ' '))
            n++;
    size_t *ends = arena_calloc(a, n ? n : 1, sizeof *ends);
    if (!ends)
        return ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 1; i <= len && k < n; i++)
        if (i == len || (text[i] == ' ' && text[i - 1] != ' '))
            ends[k++] = i;
    c->content = text;
    c->piece_end = ends;
    c->npieces = k;
    c->finish_reason = "stop";
    if (max_tokens > 0 && c->npieces > (size_t)max_tokens) {
        c->npieces = (size_t)max_tokens;
        c->finish_reason = "length";
    }
    c->len = c->npieces ? ends[c->npieces - 1] : 0;
    return ERR_OK;
}

enum err oai_write_error(const struct oai_error *e, struct buf *out) {
    enum err r = buf_puts(out, "{\"error\":{\"message\":");
    if (!r)
        r = buf_json_str(out, e->message, strlen(e->message));
    if (!r)
        r = buf_printf(out, ",\"type\":\"%s\",\"param\":", e->type);
    if (!r)
        r = e->param[0] ? buf_json_str(out, e->param, strlen(e->param)) : buf_puts(out, "null");
    if (!r)
        r = buf_puts(out, ",\"code\":");
    if (!r)
        r = e->code ? buf_json_str(out, e->code, strlen(e->code)) : buf_puts(out, "null");
    if (!r)
        r = buf_puts(out, "}}");
    return r;
}

static enum err write_head(const struct oai_completion *c, const char *object, struct buf *out) {
    enum err r = buf_printf(out, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":", c->id, object,
                            c->created);
    if (!r)
        r = buf_json_str(out, c->model, strlen(c->model));
    return r;
}

static enum err write_usage(const struct oai_completion *c, struct buf *out) {
    return buf_printf(out, "\"usage\":{\"prompt_tokens\":%zu,\"completion_tokens\":%zu,\"total_tokens\":%zu}",
                      c->prompt_tokens, c->npieces, c->prompt_tokens + c->npieces);
}

enum err oai_write_completion(const struct oai_completion *c, struct buf *out) {
    enum err r = write_head(c, "chat.completion", out);
    if (!r)
        r = buf_puts(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (!r)
        r = buf_json_str(out, c->content, c->len);
    if (!r)
        r = buf_printf(out, "},\"logprobs\":null,\"finish_reason\":\"%s\"}],", c->finish_reason);
    if (!r)
        r = write_usage(c, out);
    if (!r)
        r = buf_puts(out, "}");
    return r;
}

enum err oai_write_event(const struct oai_completion *c, enum oai_event ev, size_t piece, bool include_usage,
                         struct buf *out) {
    if (ev == OAI_EV_DONE)
        return buf_puts(out, "data: [DONE]\n\n");
    enum err r = buf_puts(out, "data: ");
    if (!r)
        r = write_head(c, "chat.completion.chunk", out);
    switch (ev) {
    case OAI_EV_ROLE:
        if (!r)
            r = buf_puts(out, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                              "\"logprobs\":null,\"finish_reason\":null}]");
        break;
    case OAI_EV_PIECE: {
        size_t start = piece ? c->piece_end[piece - 1] : 0;
        if (!r)
            r = buf_puts(out, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
        if (!r)
            r = buf_json_str(out, c->content + start, c->piece_end[piece] - start);
        if (!r)
            r = buf_puts(out, "},\"logprobs\":null,\"finish_reason\":null}]");
        break;
    }
    case OAI_EV_FINISH:
        if (!r)
            r = buf_printf(out, ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}]",
                           c->finish_reason);
        break;
    case OAI_EV_USAGE:
        if (!r)
            r = buf_puts(out, ",\"choices\":[],");
        if (!r)
            r = write_usage(c, out);
        break;
    case OAI_EV_DONE:
        break;
    }
    /* With include_usage every chunk carries "usage", null until the last. */
    if (!r && include_usage && ev != OAI_EV_USAGE)
        r = buf_puts(out, ",\"usage\":null");
    if (!r)
        r = buf_puts(out, "}\n\n");
    return r;
}

static enum err write_floats(const float *v, size_t dim, struct buf *out) {
    enum err r = buf_append(out, "[", 1);
    char num[32];
    for (size_t i = 0; i < dim && !r; i++) {
        /* 9 significant digits read back as the same float32 */
        int n = snprintf(num, sizeof num, "%s%.9g", i ? "," : "", (double)v[i]);
        r = buf_append(out, num, (size_t)n);
    }
    if (!r)
        r = buf_append(out, "]", 1);
    return r;
}

enum err oai_write_embeddings(const struct oai_embed_req *q, struct buf *out) {
    float *v = malloc(q->dim * sizeof *v);
    if (!v)
        return ERR_NOMEM;
    enum err r = buf_puts(out, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < q->ninputs && !r; i++) {
        /* "dimensions" hashes into fewer buckets rather than cutting the
         * vector: a prefix of a hashed vector may well be all zeros. */
        sim_embed(q->texts[i], q->lens[i], v, q->dim);
        r = buf_printf(out, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        if (!r && q->base64) {
            r = buf_append(out, "\"", 1);
            if (!r)
                r = sim_embed_base64(v, q->dim, out);
            if (!r)
                r = buf_append(out, "\"", 1);
        } else if (!r) {
            r = write_floats(v, q->dim, out);
        }
        if (!r)
            r = buf_append(out, "}", 1);
    }
    free(v);
    if (!r)
        r = buf_puts(out, "],\"model\":");
    if (!r)
        r = buf_json_str(out, q->model->name, strlen(q->model->name));
    if (!r)
        r = buf_printf(out, ",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}", q->prompt_tokens,
                       q->prompt_tokens);
    return r;
}

enum err oai_write_model(const struct sim_model *m, long created, struct buf *out) {
    enum err r = buf_puts(out, "{\"id\":");
    if (!r)
        r = buf_json_str(out, m->name, strlen(m->name));
    if (!r)
        r = buf_printf(out, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"slorag-llmsim\"}", created);
    return r;
}

enum err oai_write_models(const struct sim_cfg *cfg, long created, struct buf *out) {
    enum err r = buf_puts(out, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < cfg->nmodels && !r; i++) {
        if (i)
            r = buf_append(out, ",", 1);
        if (!r)
            r = oai_write_model(&cfg->models[i], created, out);
    }
    if (!r)
        r = buf_puts(out, "]}");
    return r;
}
