/* sse.h - reading an OpenAI-style chat completion stream (Server-Sent
 * Events) as it arrives.
 *
 * Events end at a blank line (LF LF, CR LF CR LF or CR CR: the three line
 * endings SSE allows); an event's "data:" lines are joined with LF.  Data
 * "[DONE]" ends the stream; any other data is a JSON chunk whose
 * choices[0].delta.content is handed to on_content and whose "usage" (sent
 * last with stream_options.include_usage) is kept.  Chunks that are not
 * JSON, comments (":...") and other fields are skipped: a stream that
 * never says [DONE] is the caller's error to report. */
#ifndef SLORAG_SSE_H
#define SLORAG_SSE_H

#include <stdbool.h>
#include <stddef.h>

struct sse_reader {
    size_t pos;                /* bytes of the stream consumed: complete events only */
    bool done;                 /* [DONE] seen */
    int prompt_tokens, completion_tokens; /* from a usage chunk, 0 = none */
    void (*on_content)(void *ud, const char *text, size_t len);
    void *ud;
};

/* Reads every complete event in buf[r->pos, len); the rest waits for more
 * bytes.  buf is not modified and need not be NUL-terminated. */
void sse_read(struct sse_reader *r, const char *buf, size_t len);

#endif
