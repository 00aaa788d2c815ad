/* textcache.c - see textcache.h.
 *
 * TC_SHARDS shards, each a chained hash table over its entries and a
 * doubly linked recency list (most recent first), under its own mutex.
 * An entry is one allocation: its header, then the document id, title and
 * text, each NUL-terminated, back to back, so a hit copies them into the
 * caller's arena with one memcpy. */
#include "textcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define TC_SHARDS 16 /* a power of two */
#define TC_MIN_BUCKETS 64

struct tc_entry {
    struct tc_entry *chain;      /* next in the bucket */
    struct tc_entry *prev, *next; /* recency list */
    int64_t id, collection;
    uint64_t gen;
    int64_t start, end;
    size_t size;      /* bytes charged: the header and the three strings */
    uint32_t ldoc, ltitle, ltext;
    char data[];
};

struct tc_shard {
    pthread_mutex_t mu;
    struct tc_entry **buckets;
    size_t nbuckets, n, bytes;
    struct tc_entry lru; /* sentinel: lru.next most recent, lru.prev least */
    uint64_t hits, misses;
    char pad[64];        /* keeps neighbouring shards' locks off one cache line */
};

struct ret_textcache {
    size_t cap, shard_cap;
    _Atomic uint64_t gen;
    struct tc_shard shard[TC_SHARDS];
};

static uint64_t mix(int64_t id) {
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

struct ret_textcache *ret_textcache_new(size_t cap_bytes) {
    struct ret_textcache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cap = cap_bytes;
    c->shard_cap = cap_bytes / TC_SHARDS;
    atomic_init(&c->gen, 1);
    for (int i = 0; i < TC_SHARDS; i++) {
        struct tc_shard *s = &c->shard[i];
        pthread_mutex_init(&s->mu, NULL);
        s->lru.next = s->lru.prev = &s->lru;
    }
    return c;
}

void ret_textcache_free(struct ret_textcache *c) {
    if (!c)
        return;
    for (int i = 0; i < TC_SHARDS; i++) {
        struct tc_shard *s = &c->shard[i];
        for (struct tc_entry *e = s->lru.next, *nx; e != &s->lru; e = nx) {
            nx = e->next;
            free(e);
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(c);
}

uint64_t ret_textcache_gen(struct ret_textcache *c) {
    return c ? atomic_load_explicit(&c->gen, memory_order_acquire) : 0;
}

void ret_textcache_invalidate(struct ret_textcache *c) {
    if (c)
        atomic_fetch_add_explicit(&c->gen, 1, memory_order_acq_rel);
}

static struct tc_entry **slot_of(struct tc_shard *s, uint64_t h, int64_t id) {
    struct tc_entry **p = &s->buckets[(h / TC_SHARDS) & (s->nbuckets - 1)];
    while (*p && (*p)->id != id)
        p = &(*p)->chain;
    return p;
}

static void lru_unlink(struct tc_entry *e) {
    e->prev->next = e->next;
    e->next->prev = e->prev;
}

static void lru_push_front(struct tc_shard *s, struct tc_entry *e) {
    e->prev = &s->lru;
    e->next = s->lru.next;
    s->lru.next->prev = e;
    s->lru.next = e;
}

/* Unlinks *p (an entry of s) from its bucket and the list and frees it. */
static void drop(struct tc_shard *s, struct tc_entry **p) {
    struct tc_entry *e = *p;
    *p = e->chain;
    lru_unlink(e);
    s->n--;
    s->bytes -= e->size;
    free(e);
}

bool ret_textcache_get(struct ret_textcache *c, int64_t chunk_id, int64_t collection_id, struct arena *a,
                       const char **document_id, const char **title, const char **text, int64_t *start,
                       int64_t *end) {
    if (!c || c->shard_cap == 0)
        return false;
    uint64_t h = mix(chunk_id);
    struct tc_shard *s = &c->shard[h & (TC_SHARDS - 1)];
    uint64_t gen = atomic_load_explicit(&c->gen, memory_order_acquire);
    bool hit = false;
    pthread_mutex_lock(&s->mu);
    struct tc_entry **p = s->buckets ? slot_of(s, h, chunk_id) : NULL;
    struct tc_entry *e = p ? *p : NULL;
    if (e && e->gen != gen) { /* from before an invalidation */
        drop(s, p);
        e = NULL;
    }
    if (e && e->collection == collection_id) {
        size_t n = (size_t)e->ldoc + e->ltitle + e->ltext + 3;
        char *d = arena_alloc(a, n);
        if (d) {
            memcpy(d, e->data, n);
            *document_id = d;
            *title = d + e->ldoc + 1;
            *text = d + e->ldoc + 1 + e->ltitle + 1;
            *start = e->start;
            *end = e->end;
            lru_unlink(e);
            lru_push_front(s, e);
            hit = true;
        }
    }
    if (hit)
        s->hits++;
    else
        s->misses++;
    pthread_mutex_unlock(&s->mu);
    return hit;
}

/* Doubles s's bucket array (or makes the first); false when out of memory
 * (the table then just gets longer chains). */
static bool grow(struct tc_shard *s) {
    size_t nb = s->nbuckets ? s->nbuckets * 2 : TC_MIN_BUCKETS;
    struct tc_entry **b = calloc(nb, sizeof(*b));
    if (!b)
        return false;
    for (struct tc_entry *e = s->lru.next; e != &s->lru; e = e->next) {
        struct tc_entry **p = &b[(mix(e->id) / TC_SHARDS) & (nb - 1)];
        e->chain = *p;
        *p = e;
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
    return true;
}

/* Frees the least recently used entry of s (s holds one). */
static void drop_least_recent(struct tc_shard *s) {
    struct tc_entry *old = s->lru.prev;
    drop(s, slot_of(s, mix(old->id), old->id));
}

void ret_textcache_put(struct ret_textcache *c, uint64_t gen, int64_t chunk_id, int64_t collection_id,
                       const char *document_id, const char *title, const char *text, int64_t start, int64_t end) {
    if (!c || c->shard_cap == 0 || gen != atomic_load_explicit(&c->gen, memory_order_acquire))
        return;
    size_t ldoc = strlen(document_id), ltitle = strlen(title), ltext = strlen(text);
    size_t size = sizeof(struct tc_entry) + ldoc + ltitle + ltext + 3;
    if (size > c->shard_cap / 8 || ldoc > UINT32_MAX || ltitle > UINT32_MAX || ltext > UINT32_MAX)
        return;
    struct tc_entry *e = malloc(size);
    if (!e)
        return;
    *e = (struct tc_entry){.id = chunk_id, .collection = collection_id, .gen = gen, .start = start, .end = end,
                           .size = size, .ldoc = (uint32_t)ldoc, .ltitle = (uint32_t)ltitle, .ltext = (uint32_t)ltext};
    memcpy(e->data, document_id, ldoc + 1);
    memcpy(e->data + ldoc + 1, title, ltitle + 1);
    memcpy(e->data + ldoc + 1 + ltitle + 1, text, ltext + 1);
    uint64_t h = mix(chunk_id);
    struct tc_shard *s = &c->shard[h & (TC_SHARDS - 1)];
    pthread_mutex_lock(&s->mu);
    if (!s->buckets && !grow(s)) {
        pthread_mutex_unlock(&s->mu);
        free(e);
        return;
    }
    struct tc_entry **p = slot_of(s, h, chunk_id);
    if (*p) /* another worker stored it first, or an older copy */
        drop(s, p);
    p = &s->buckets[(h / TC_SHARDS) & (s->nbuckets - 1)];
    e->chain = *p;
    *p = e;
    lru_push_front(s, e);
    s->n++;
    s->bytes += size;
    while (s->bytes > c->shard_cap && s->lru.prev != e)
        drop_least_recent(s);
    /* Entries from before an invalidation are all older than any put
     * since, so they gather at the least recent end, where nothing looks
     * them up again (a replaced chunk's id is new).  Each put frees up to
     * two of them: they leave with the traffic instead of holding memory
     * until the byte bound pushes them out. */
    for (int i = 0; i < 2 && s->lru.prev != e && s->lru.prev->gen != gen; i++)
        drop_least_recent(s);
    if (s->n > s->nbuckets)
        grow(s);
    pthread_mutex_unlock(&s->mu);
}

void ret_textcache_stats(struct ret_textcache *c, struct ret_textcache_stats *ret) {
    *ret = (struct ret_textcache_stats){.cap_bytes = c ? c->cap : 0};
    if (!c)
        return;
    for (int i = 0; i < TC_SHARDS; i++) {
        struct tc_shard *s = &c->shard[i];
        pthread_mutex_lock(&s->mu);
        ret->hits += s->hits;
        ret->misses += s->misses;
        ret->entries += s->n;
        ret->bytes += s->bytes;
        pthread_mutex_unlock(&s->mu);
    }
}
