/* fuzz-chunk.c - the chunker and the sentence-unit iterator: every span is
 * inside the text, non-empty, within the token budget, in order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    int max = 4 + (size ? data[0] % 60 : 0), overlap = max / 3;
    struct ret_chunk_span *sp = NULL;
    size_t n = 0;
    if (ret_chunk_text(text, size, max, overlap, &sp, &n) == ERR_OK) {
        for (size_t i = 0; i < n; i++) {
            if (sp[i].start >= sp[i].end || sp[i].end > size || sp[i].tokens > (size_t)max ||
                sp[i].tokens != text_count_words(text + sp[i].start, sp[i].end - sp[i].start))
                abort();
            if (i && sp[i].start < sp[i - 1].start)
                abort();
        }
        free(sp);
    }
    struct ret_unit_iter it;
    struct ret_unit u;
    size_t last_end = 0;
    ret_units_init(&it, text, size);
    while (ret_units_next(&it, &u)) {
        if (u.start >= u.end || u.end > size || u.start < last_end)
            abort();
        last_end = u.end;
    }
    size_t pos = 0;
    struct text_token t;
    while (text_next_token(text, size, &pos, &t))
        if (t.start + t.len > size || t.len == 0)
            abort();
    return 0;
}
