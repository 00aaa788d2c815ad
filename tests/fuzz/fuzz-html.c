/* fuzz-html.c - HTML to text: never longer than twice the input plus a
 * little, never crashes on malformed markup. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = NULL, *title = NULL;
    size_t len = 0;
    if (ret_html_to_text((const char *)data, size, &text, &len, &title) == ERR_OK) {
        if (!text || text[len] != '\0' || len > 2 * size + 16)
            abort();
        free(text);
        free(title);
    }
    return 0;
}
