/* terms.h - the words the answer and embedding models compare.
 *
 * A term is a word token from common/text.h, lower-cased, with a plural or
 * third-person "s" folded away ("opens" and "open" match).  Stop words are
 * recognised before folding, so "is" and "has" stay stop words. */
#ifndef SLORAG_LLMSIM_TERMS_H
#define SLORAG_LLMSIM_TERMS_H

#include <stdbool.h>
#include <stddef.h>

#define SIM_TERM_MAX 48 /* longer words are truncated; a buffer holds this plus NUL */

/* Scans the next term at or after *pos into out[SIM_TERM_MAX + 1]; sets
 * *ret_content to whether it carries meaning (not a stop word).  Returns
 * false at the end of the text. */
bool sim_term_next(const char *s, size_t n, size_t *pos, char *out, bool *ret_content);

#endif
