/* openai.h - the OpenAI-compatible surface: chat completion requests in,
 * slorag answers out as chat.completion objects or SSE chunk streams.
 *
 * The model name picks the collection and, optionally, the generator tier:
 * "handbook" or "handbook@large".  The last user message is the question.
 * Citations and the decision record ride along in an extra "slorag" field,
 * which OpenAI clients ignore. */
#ifndef SLORAG_OPENAI_H
#define SLORAG_OPENAI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct oa_chat_request {
    char collection[65];
    int tier;          /* enum slo_tier, -1 = default */
    const char *question; /* points into the parsed JSON */
    bool stream;
    bool include_usage; /* stream_options.include_usage */
    int max_tokens;    /* 0 = default */
};

/* Reads a chat completion request.  On failure msg says which field. */
enum err oa_parse_chat(json_t *root, struct oa_chat_request *ret, char *msg, size_t msglen);

/* Turns a /v1/query response body into a chat.completion object (new
 * reference). */
json_t *oa_chat_completion(json_t *answer, const char *model, long created);

/* The same as an SSE stream: a role chunk, content chunks, a final chunk
 * with finish_reason, a usage chunk when asked, then [DONE].  malloc'd. */
char *oa_chat_stream(json_t *answer, const char *model, long created, bool include_usage);

/* A /v1/query answer as slorag's own SSE stream: "plan", "delta" (answer
 * pieces), "citations", then "done" with the whole record.  malloc'd. */
char *slorag_query_stream(json_t *answer);

/* The same streams in pieces, for answers streamed as they are generated
 * (all malloc'd, NULL on out of memory).  OpenAI: open = the role chunk,
 * delta = one content chunk, close = the remaining content (unless the
 * deltas were already sent), the final chunk with the slorag extra, usage
 * when asked, [DONE]; error = an error object then [DONE]. */
char *oa_stream_open(const char *request_id, const char *model, long created);
char *oa_stream_delta(const char *request_id, const char *model, long created, const char *text, size_t len);
char *oa_stream_close(json_t *answer, const char *model, long created, bool include_usage, bool deltas_sent);
char *oa_stream_error(enum err e, const char *message);
/* slorag's own: the "plan" event (from slorag_plan_event's object, or the
 * executor's), "delta", then close = remaining deltas unless sent,
 * "citations", "done"; error = an "error" event with the error body. */
json_t *slorag_plan_event(json_t *answer);
char *slorag_stream_plan(json_t *plan_event);
char *slorag_stream_delta(const char *text, size_t len);
char *slorag_stream_close(json_t *answer, bool deltas_sent);
char *slorag_stream_error(json_t *error_body);

/* OpenAI-style error body: {"error": {"message", "type", "code"}}. */
json_t *oa_error(enum err e, const char *message);

#endif
