/* err.h - the one error enum of slorag, with name, HTTP status and message.
 *
 * Every fallible function returns an `enum err`; outputs go through ret_
 * pointers that are left untouched on failure.  The table below is the only
 * place that maps an error to its wire name and HTTP status. */
#ifndef SLORAG_ERR_H
#define SLORAG_ERR_H

/*   symbol               wire name                status  default message */
#define ERR_LIST(X)                                                                        \
    X(OK,                 "ok",                    200, "success")                          \
    X(BAD_JSON,           "invalid_json",          400, "request body is not valid JSON")   \
    X(INVALID_UTF8,       "invalid_utf8",          400, "request body is not valid UTF-8")  \
    X(BAD_REQUEST,        "bad_request",           400, "malformed request")                \
    X(UNAUTHORIZED,       "unauthorized",          401, "missing or invalid credentials")   \
    X(FORBIDDEN,          "forbidden",             403, "not allowed")                      \
    X(NOT_FOUND,          "not_found",             404, "no such resource")                 \
    X(METHOD_NOT_ALLOWED, "method_not_allowed",    405, "method not allowed on this route") \
    X(CONFLICT,           "conflict",              409, "conflicting state")                \
    X(TOO_LARGE,          "payload_too_large",     413, "payload exceeds its limit")        \
    X(HEADER_TOO_LARGE,   "header_too_large",      431, "request head exceeds its limit")   \
    X(UNSUPPORTED_MEDIA,  "unsupported_media_type",415, "unsupported content type")         \
    X(INVALID_FIELD,      "invalid_request",       422, "a field is missing or invalid")    \
    X(RATE_LIMITED,       "rate_limited",          429, "too many requests")                \
    X(BUDGET,             "budget_exhausted",      429, "the tenant's budget is spent")     \
    X(INTERNAL,           "internal_error",        500, "internal error")                   \
    X(NOMEM,              "out_of_memory",         500, "out of memory")                    \
    X(IO,                 "io_error",              500, "input/output error")               \
    X(STORAGE,            "storage_error",         500, "storage error")                    \
    X(INDEX,              "index_error",           500, "vector index error")               \
    X(CONFIG,             "invalid_config",        500, "invalid configuration")            \
    X(CANCELLED,          "client_closed_request", 499, "the client closed the connection") \
    X(BACKEND,            "backend_error",         502, "backend failed")                   \
    X(OVERLOADED,         "overloaded",            503, "server is at capacity, retry later") \
    X(UNAVAILABLE,        "unavailable",           503, "service unavailable")              \
    X(DEADLINE,           "deadline_exceeded",     504, "request deadline exceeded")

enum err {
#define ERR_ENUM(sym, name, status, msg) ERR_##sym,
    ERR_LIST(ERR_ENUM)
#undef ERR_ENUM
    ERR__COUNT
};

const char *err_name(enum err e);
const char *err_message(enum err e);
int err_http_status(enum err e);

#endif
