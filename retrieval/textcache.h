/* textcache.h - the texts of recently returned chunks, kept in memory.
 *
 * Every answer reads the text, title and document id of each hit it
 * returns (ret_store_fill_hits): about a dozen point lookups in SQLite a
 * query, each a join of two B-tree searches.  Under load that was the
 * largest single cost of a query after the searches themselves (perf:
 * 18% of the server's CPU at 10k chunks).  This cache answers the chunks
 * asked for recently from memory and sends only the others to SQLite.
 *
 * Bounded in bytes (least recently used entries go first), sharded by
 * chunk id so that workers rarely meet on a lock, and invalidated as a
 * whole by a generation: the store bumps it after every commit that can
 * delete or replace a chunk (a chunk's row is never updated in place, but
 * its id may be reused after a delete).  An entry read from a snapshot
 * older than the last bump is never stored: ret_textcache_put takes the
 * generation read before that snapshot began. */
#ifndef SLORAG_TEXTCACHE_H
#define SLORAG_TEXTCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

struct ret_textcache;

struct ret_textcache_stats {
    uint64_t hits, misses;
    size_t entries, bytes, cap_bytes;
};

/* cap_bytes 0: a cache that holds nothing (every get misses). */
struct ret_textcache *ret_textcache_new(size_t cap_bytes);
void ret_textcache_free(struct ret_textcache *c);

/* The generation to pass to ret_textcache_put: read it before the read
 * transaction whose rows will be stored begins. */
uint64_t ret_textcache_gen(struct ret_textcache *c);
/* Forgets every entry (lazily: they stop matching).  Call after a commit
 * that deleted or replaced chunks. */
void ret_textcache_invalidate(struct ret_textcache *c);

/* On a hit, copies the entry's strings into a and sets the out fields;
 * false on a miss (or a allocation failure: the caller reads SQLite). */
bool ret_textcache_get(struct ret_textcache *c, int64_t chunk_id, int64_t collection_id, struct arena *a,
                       const char **document_id, const char **title, const char **text, int64_t *start,
                       int64_t *end);
/* Stores a row read under a snapshot that began after gen was read; does
 * nothing when the cache was invalidated since, or the row alone exceeds
 * an eighth of a shard's share of the capacity. */
void ret_textcache_put(struct ret_textcache *c, uint64_t gen, int64_t chunk_id, int64_t collection_id,
                       const char *document_id, const char *title, const char *text, int64_t start, int64_t end);

void ret_textcache_stats(struct ret_textcache *c, struct ret_textcache_stats *ret);

#endif
