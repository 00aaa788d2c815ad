/* stem.h - Snowball stems through a per-thread cache.
 *
 * The extractive reader, the reranker and the built-in embedder stem every
 * word of every passage they read, the same few thousand words query after
 * query: Snowball took 28% of the server's CPU under bench/overhead.sh's
 * load.  Each thread keeps a cache of recent words and their stems, four
 * slots a set (a direct-mapped one missed ~15% of the words of
 * bench/instructions.sh's 6,000-word corpus, each miss ~2,200
 * instructions; test-embed.c measures both); a miss asks the caller's
 * stemmer. */
#ifndef SLORAG_STEM_H
#define SLORAG_STEM_H

#include <libstemmer.h>
#include <stddef.h>
#include <stdint.h>

/* The stem of w (wlen bytes): *ret points to the stem's bytes (valid until
 * the next call on this thread) and its length is returned; -1 when the
 * stemmer fails (out of memory). */
int ret_stem(struct sb_stemmer *st, const char *w, int wlen, const char **ret);
/* The stem of the NUL-terminated word w into out (outlen bytes, always
 * NUL-terminated); w itself, cut to fit, when the stemmer fails or the
 * stem does not fit.  Returns the length written. */
size_t ret_stem_into(struct sb_stemmer *st, const char *w, char *out, size_t outlen);
/* Prefetching for a reader that stems a group of words: a passage's
 * words are scattered over a cache of a megabyte that the rest of a query
 * pushes out of the CPU's caches, so each lookup was a wait on memory
 * (most of ret_stem's time under load).  ret_stem_prefetch starts loading
 * the line of w's set's tags and returns w's hash; once the group's tags
 * are on their way, ret_stem_prefetch_slot starts loading the slot whose
 * tag matches (if one does); then the lookups find both in the CPU's
 * cache.  The group waits on memory twice, not twice a word.  No effect on
 * results. */
uint32_t ret_stem_prefetch(const char *w, int wlen);
void ret_stem_prefetch_slot(int wlen, uint32_t h);
/* ret_stem and ret_stem_into for a word whose hash ret_stem_prefetch has
 * already returned (h), so that it is not computed twice. */
int ret_stem_hashed(struct sb_stemmer *st, const char *w, int wlen, uint32_t h, const char **ret);
size_t ret_stem_into_hashed(struct sb_stemmer *st, const char *w, int wlen, uint32_t h, char *out, size_t outlen);
/* Words this thread has sent to the stemmer (cache misses) so far. */
unsigned ret_stem_misses(void);

#endif
