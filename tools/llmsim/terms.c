/* terms.c - see terms.h. */
#include "terms.h"
#include "text.h"

#include <string.h>

/* "-ies" -> "-y", "-ches/-shes/-xes/-zes/-sses" -> drop "es", else a
 * final "s" unless the word ends in "ss", "us" or "is". */
static void fold_suffix(char *w) {
    size_t n = strlen(w);
    if (n > 4 && strcmp(w + n - 3, "ies") == 0) {
        w[n - 3] = 'y';
        w[n - 2] = '\0';
        return;
    }
    if (n > 4 && w[n - 2] == 'e' && w[n - 1] == 's' &&
        ((w[n - 3] == 'h' && (w[n - 4] == 'c' || w[n - 4] == 's')) || w[n - 3] == 'x' || w[n - 3] == 'z' ||
         (w[n - 3] == 's' && w[n - 4] == 's'))) {
        w[n - 2] = '\0';
        return;
    }
    if (n > 3 && w[n - 1] == 's' && w[n - 2] != 's' && w[n - 2] != 'u' && w[n - 2] != 'i')
        w[n - 1] = '\0';
}

bool sim_term_next(const char *s, size_t n, size_t *pos, char *out, bool *ret_content) {
    struct text_token tok;
    if (!text_next_token(s, n, pos, &tok))
        return false;
    text_token_lower(s, &tok, out, SIM_TERM_MAX + 1);
    bool content = !text_is_stopword(out);
    if (content)
        fold_suffix(out);
    *ret_content = content;
    return true;
}
