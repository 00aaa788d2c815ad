/* fuzz-openai.c - decoding OpenAI chat requests and encoding answers: any
 * JSON either parses into a request with a question or fails with a
 * message; the SSE encoding of any answer ends with [DONE]. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openai.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *root = json_loadb((const char *)data, size, 0, NULL);
    if (!root)
        return 0;
    struct oa_chat_request r;
    char msg[256] = "";
    if (oa_parse_chat(root, &r, msg, sizeof msg) == ERR_OK) {
        if (!r.question || !r.collection[0])
            abort();
    } else if (!msg[0]) {
        abort();
    }
    /* the same document as a slorag answer body */
    char *sse = oa_chat_stream(root, "m", 1, true);
    if (sse) {
        size_t n = strlen(sse);
        if (n < 14 || strcmp(sse + n - 14, "data: [DONE]\n\n") != 0)
            abort();
        free(sse);
    }
    json_decref(oa_chat_completion(root, "m", 1));
    json_decref(root);
    return 0;
}
