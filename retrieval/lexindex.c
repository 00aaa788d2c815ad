/* lexindex.c - in-memory BM25 with MaxScore (see lexindex.h).
 *
 * Layout: chunks get dense internal numbers in the order they are added,
 * so every postings list is appended to in ascending order and stays
 * sorted.  A removed chunk is only marked dead (its length leaves the
 * totals at once) until compaction renumbers the live ones.  Each term
 * keeps the largest term frequency and the shortest chunk length it has
 * seen: f(max tf, min length) bounds the term's contribution to any chunk
 * (BM25's per-term score grows with tf and shrinks with length), which is
 * all MaxScore needs. */
#include "lexindex.h"
#include "util.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define BM25_K1 1.2
#define BM25_B 0.75
#define MAX_QUERY_TERMS 64

struct term {
    uint32_t *docs; /* internal numbers, ascending */
    uint16_t *tfs;
    uint32_t n, cap;
    uint32_t str;    /* offset of the term in the string pool */
    uint16_t max_tf;
    uint32_t min_len;
};

struct ret_lexindex {
    /* dictionary: open addressing over term numbers + 1 (0 = empty) */
    struct term *terms;
    uint32_t nterms, terms_cap;
    uint32_t *dict;
    size_t dict_cap; /* power of two */
    char *pool;
    size_t pool_len, pool_cap;

    /* chunks by internal number */
    int64_t *ids;
    uint32_t *lens;
    uint8_t *dead;
    uint32_t ndocs, docs_cap, ndead;
    uint64_t total_len; /* over live chunks */

    /* chunk id -> internal number + 1, linear probing (0 = empty) */
    int64_t *map_keys;
    uint32_t *map_vals;
    size_t map_cap, map_n;
};

/* ---- token lists ---- */

enum err ret_lex_tokens_add(struct ret_lex_tokens *t, const char *tok, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b)
            return ERR_NOMEM;
        t->buf = b;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, tok, n);
    t->buf[t->len + n] = '\0';
    t->len += n + 1;
    t->ntok++;
    return ERR_OK;
}

void ret_lex_tokens_clear(struct ret_lex_tokens *t) {
    t->len = 0;
    t->ntok = 0;
}

void ret_lex_tokens_done(struct ret_lex_tokens *t) {
    free(t->buf);
    *t = (struct ret_lex_tokens){0};
}

/* ---- hashing ---- */

static uint64_t hash_str(const char *s, size_t n) {
    uint64_t h = util_fnv64(UTIL_FNV64_BASIS, s, n);
    return h ^ (h >> 29);
}

static uint64_t hash_id(int64_t id) {
    uint64_t x = (uint64_t)id;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* ---- dictionary ---- */

static const char *term_str(const struct ret_lexindex *li, uint32_t t) {
    return li->pool + li->terms[t].str;
}

/* The term's number, or UINT32_MAX when absent. */
static uint32_t dict_find(const struct ret_lexindex *li, const char *s, size_t n, size_t *ret_slot) {
    size_t mask = li->dict_cap - 1, i = hash_str(s, n) & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t v = li->dict[i];
        if (v == 0) {
            if (ret_slot)
                *ret_slot = i;
            return UINT32_MAX;
        }
        const char *ts = term_str(li, v - 1);
        if (strncmp(ts, s, n) == 0 && ts[n] == '\0')
            return v - 1;
    }
}

/* Enters every term of li into d, an empty table of cap (a power of two)
 * slots. */
static void dict_fill(const struct ret_lexindex *li, uint32_t *d, size_t cap) {
    for (uint32_t t = 0; t < li->nterms; t++) {
        const char *s = term_str(li, t);
        size_t i = hash_str(s, strlen(s)) & (cap - 1);
        while (d[i])
            i = (i + 1) & (cap - 1);
        d[i] = t + 1;
    }
}

static enum err dict_grow(struct ret_lexindex *li) {
    size_t cap = li->dict_cap * 2;
    uint32_t *d = calloc(cap, sizeof(*d));
    if (!d)
        return ERR_NOMEM;
    dict_fill(li, d, cap);
    free(li->dict);
    li->dict = d;
    li->dict_cap = cap;
    return ERR_OK;
}

/* The term's number, added when new. */
static enum err dict_intern(struct ret_lexindex *li, const char *s, size_t n, uint32_t *ret) {
    size_t slot;
    uint32_t t = dict_find(li, s, n, &slot);
    if (t != UINT32_MAX) {
        *ret = t;
        return ERR_OK;
    }
    if ((size_t)(li->nterms + 1) * 2 > li->dict_cap) {
        if (dict_grow(li))
            return ERR_NOMEM;
        dict_find(li, s, n, &slot);
    }
    if (li->nterms == li->terms_cap) {
        uint32_t cap = li->terms_cap ? li->terms_cap * 2 : 1024;
        struct term *nt = realloc(li->terms, cap * sizeof(*nt));
        if (!nt)
            return ERR_NOMEM;
        li->terms = nt;
        li->terms_cap = cap;
    }
    if (li->pool_len + n + 1 > li->pool_cap) {
        size_t cap = li->pool_cap ? li->pool_cap * 2 : 16384;
        while (cap < li->pool_len + n + 1)
            cap *= 2;
        char *p = realloc(li->pool, cap);
        if (!p)
            return ERR_NOMEM;
        li->pool = p;
        li->pool_cap = cap;
    }
    if (li->pool_len + n + 1 > UINT32_MAX)
        return ERR_NOMEM;
    memcpy(li->pool + li->pool_len, s, n);
    li->pool[li->pool_len + n] = '\0';
    t = li->nterms++;
    li->terms[t] = (struct term){.str = (uint32_t)li->pool_len, .min_len = UINT32_MAX};
    li->pool_len += n + 1;
    li->dict[slot] = t + 1;
    *ret = t;
    return ERR_OK;
}

/* ---- chunk id map ---- */

static uint32_t map_get(const struct ret_lexindex *li, int64_t id) {
    size_t mask = li->map_cap - 1;
    for (size_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
        if (li->map_vals[i] == 0)
            return UINT32_MAX;
        if (li->map_keys[i] == id)
            return li->map_vals[i] - 1;
    }
}

static void map_put_raw(int64_t *keys, uint32_t *vals, size_t cap, int64_t id, uint32_t v) {
    size_t i = hash_id(id) & (cap - 1);
    while (vals[i])
        i = (i + 1) & (cap - 1);
    keys[i] = id;
    vals[i] = v + 1;
}

static enum err map_put(struct ret_lexindex *li, int64_t id, uint32_t v) {
    if ((li->map_n + 1) * 2 > li->map_cap) {
        size_t cap = li->map_cap * 2;
        int64_t *k = malloc(cap * sizeof(*k));
        uint32_t *vs = calloc(cap, sizeof(*vs));
        if (!k || !vs) {
            free(k);
            free(vs);
            return ERR_NOMEM;
        }
        for (size_t i = 0; i < li->map_cap; i++)
            if (li->map_vals[i])
                map_put_raw(k, vs, cap, li->map_keys[i], li->map_vals[i] - 1);
        free(li->map_keys);
        free(li->map_vals);
        li->map_keys = k;
        li->map_vals = vs;
        li->map_cap = cap;
    }
    map_put_raw(li->map_keys, li->map_vals, li->map_cap, id, v);
    li->map_n++;
    return ERR_OK;
}

/* Linear probing deletion by shifting back the entries after the hole. */
static void map_del(struct ret_lexindex *li, int64_t id) {
    size_t mask = li->map_cap - 1, i = hash_id(id) & mask;
    for (;; i = (i + 1) & mask) {
        if (li->map_vals[i] == 0)
            return;
        if (li->map_keys[i] == id)
            break;
    }
    li->map_vals[i] = 0;
    li->map_n--;
    for (size_t j = (i + 1) & mask; li->map_vals[j]; j = (j + 1) & mask) {
        size_t home = hash_id(li->map_keys[j]) & mask;
        /* move j into the hole i when its home is not in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            li->map_keys[i] = li->map_keys[j];
            li->map_vals[i] = li->map_vals[j];
            li->map_vals[j] = 0;
            i = j;
        }
    }
}

/* ---- life ---- */

enum err ret_lexindex_new(struct ret_lexindex **ret) {
    struct ret_lexindex *li = calloc(1, sizeof(*li));
    if (!li)
        return ERR_NOMEM;
    li->dict_cap = 1024;
    li->map_cap = 1024;
    li->dict = calloc(li->dict_cap, sizeof(*li->dict));
    li->map_keys = malloc(li->map_cap * sizeof(*li->map_keys));
    li->map_vals = calloc(li->map_cap, sizeof(*li->map_vals));
    if (!li->dict || !li->map_keys || !li->map_vals) {
        ret_lexindex_free(li);
        return ERR_NOMEM;
    }
    *ret = li;
    return ERR_OK;
}

struct ret_lexindex *ret_lexindex_free(struct ret_lexindex *li) {
    if (!li)
        return NULL;
    for (uint32_t t = 0; t < li->nterms; t++) {
        free(li->terms[t].docs);
        free(li->terms[t].tfs);
    }
    free(li->terms);
    free(li->dict);
    free(li->pool);
    free(li->ids);
    free(li->lens);
    free(li->dead);
    free(li->map_keys);
    free(li->map_vals);
    free(li);
    return NULL;
}

int64_t ret_lexindex_chunks(const struct ret_lexindex *li) {
    return (int64_t)li->ndocs - li->ndead;
}

size_t ret_lexindex_bytes(const struct ret_lexindex *li) {
    size_t b = sizeof(*li) + li->terms_cap * sizeof(struct term) + li->dict_cap * sizeof(uint32_t) + li->pool_cap +
               li->docs_cap * (sizeof(int64_t) + sizeof(uint32_t) + 1) +
               li->map_cap * (sizeof(int64_t) + sizeof(uint32_t));
    for (uint32_t t = 0; t < li->nterms; t++)
        b += li->terms[t].cap * (sizeof(uint32_t) + sizeof(uint16_t));
    return b;
}

/* ---- changes ---- */

static enum err posting_add(struct term *t, uint32_t doc, uint32_t tf, uint32_t len) {
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? (t->cap < 64 ? t->cap * 4 : t->cap + t->cap / 2) : 2;
        uint32_t *d = realloc(t->docs, cap * sizeof(*d));
        if (!d)
            return ERR_NOMEM;
        t->docs = d;
        uint16_t *f = realloc(t->tfs, cap * sizeof(*f));
        if (!f)
            return ERR_NOMEM;
        t->tfs = f;
        t->cap = cap;
    }
    if (tf > UINT16_MAX)
        tf = UINT16_MAX; /* a chunk is a few hundred tokens: never reached */
    t->docs[t->n] = doc;
    t->tfs[t->n] = (uint16_t)tf;
    t->n++;
    if (tf > t->max_tf)
        t->max_tf = (uint16_t)tf;
    if (len < t->min_len)
        t->min_len = len;
    return ERR_OK;
}

static int cmp_u32(const void *x, const void *y) {
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

enum err ret_lexindex_add(struct ret_lexindex *li, int64_t chunk_id, const struct ret_lex_tokens *toks) {
    if (map_get(li, chunk_id) != UINT32_MAX)
        return ERR_OK;
    if (li->ndocs == UINT32_MAX - 1)
        return ERR_NOMEM;
    if (li->ndocs == li->docs_cap) {
        uint32_t cap = li->docs_cap ? li->docs_cap * 2 : 1024;
        int64_t *ids = realloc(li->ids, cap * sizeof(*ids));
        if (!ids)
            return ERR_NOMEM;
        li->ids = ids;
        uint32_t *lens = realloc(li->lens, cap * sizeof(*lens));
        if (!lens)
            return ERR_NOMEM;
        li->lens = lens;
        uint8_t *dead = realloc(li->dead, cap);
        if (!dead)
            return ERR_NOMEM;
        li->dead = dead;
        li->docs_cap = cap;
    }
    /* the chunk's term numbers, sorted, then counted */
    uint32_t stack[512], *tn = stack;
    if (toks->ntok > 512 && !(tn = malloc(toks->ntok * sizeof(*tn))))
        return ERR_NOMEM;
    enum err e = ERR_OK;
    size_t off = 0;
    for (uint32_t i = 0; !e && i < toks->ntok; i++) {
        size_t n = strlen(toks->buf + off);
        e = dict_intern(li, toks->buf + off, n, &tn[i]);
        off += n + 1;
    }
    if (!e) {
        qsort(tn, toks->ntok, sizeof(*tn), cmp_u32);
        uint32_t doc = li->ndocs;
        for (uint32_t i = 0; !e && i < toks->ntok;) {
            uint32_t j = i;
            while (j < toks->ntok && tn[j] == tn[i])
                j++;
            e = posting_add(&li->terms[tn[i]], doc, j - i, toks->ntok);
            i = j;
        }
        if (!e)
            e = map_put(li, chunk_id, doc);
        if (e) {
            /* undo the postings already appended for doc */
            for (uint32_t i = 0; i < toks->ntok; i++) {
                struct term *t = &li->terms[tn[i]];
                if (t->n && t->docs[t->n - 1] == doc)
                    t->n--;
            }
        } else {
            li->ids[doc] = chunk_id;
            li->lens[doc] = toks->ntok;
            li->dead[doc] = 0;
            li->ndocs++;
            li->total_len += toks->ntok;
        }
    }
    if (tn != stack)
        free(tn);
    return e;
}

/* Drops the terms no chunk holds any more (compaction emptied their
 * postings) and rebuilds the string pool and the dictionary from the rest:
 * without it, a churn of documents with tokens of their own (numbers,
 * codes, dates) grew the dictionary for as long as the process ran.  A
 * kept term's postings shrink too when compaction left them mostly
 * unused.  Term numbers change; nothing outside holds them. */
static void drop_empty_terms(struct ret_lexindex *li) {
    uint32_t kept = 0;
    size_t pool = 0;
    for (uint32_t t = 0; t < li->nterms; t++)
        if (li->terms[t].n) {
            kept++;
            pool += strlen(term_str(li, t)) + 1;
        }
    if (kept == li->nterms)
        return;
    size_t cap = 1024, pool_cap = 16384;
    while ((size_t)(kept + 1) * 2 > cap)
        cap *= 2;
    while (pool_cap < pool)
        pool_cap *= 2;
    uint32_t *dict = calloc(cap, sizeof(*dict));
    char *p = malloc(pool_cap);
    if (!dict || !p) {
        free(dict);
        free(p);
        return; /* stays as it is: still correct, only larger */
    }
    uint32_t w = 0;
    size_t len = 0;
    for (uint32_t t = 0; t < li->nterms; t++) {
        struct term tm = li->terms[t];
        if (!tm.n) {
            free(tm.docs);
            free(tm.tfs);
            continue;
        }
        size_t n = strlen(term_str(li, t)) + 1; /* from the old pool, freed below */
        memcpy(p + len, term_str(li, t), n);
        tm.str = (uint32_t)len;
        len += n;
        if (tm.cap > 64 && tm.n < tm.cap / 4) {
            uint32_t c = tm.n * 2;
            uint32_t *d = realloc(tm.docs, c * sizeof(*d));
            if (d) {
                tm.docs = d;
                tm.cap = c; /* tfs holds at least as many, shrunk or not */
                uint16_t *f = realloc(tm.tfs, c * sizeof(*f));
                if (f)
                    tm.tfs = f;
            }
        }
        li->terms[w++] = tm;
    }
    free(li->pool);
    li->pool = p;
    li->pool_len = len;
    li->pool_cap = pool_cap;
    li->nterms = w;
    dict_fill(li, dict, cap);
    free(li->dict);
    li->dict = dict;
    li->dict_cap = cap;
}

/* Renumbers the live chunks densely and drops dead postings, and the
 * terms left without any. */
static void compact(struct ret_lexindex *li) {
    uint32_t *renum = malloc((size_t)li->ndocs * sizeof(*renum));
    if (!renum)
        return; /* stays as it is: still correct, only larger */
    uint32_t live = 0;
    for (uint32_t d = 0; d < li->ndocs; d++) {
        renum[d] = li->dead[d] ? UINT32_MAX : live;
        if (!li->dead[d]) {
            li->ids[live] = li->ids[d];
            li->lens[live] = li->lens[d];
            li->dead[live] = 0;
            live++;
        }
    }
    for (uint32_t t = 0; t < li->nterms; t++) {
        struct term *tm = &li->terms[t];
        uint32_t w = 0;
        for (uint32_t i = 0; i < tm->n; i++)
            if (renum[tm->docs[i]] != UINT32_MAX) {
                tm->docs[w] = renum[tm->docs[i]];
                tm->tfs[w] = tm->tfs[i];
                w++;
            }
        tm->n = w;
    }
    for (size_t i = 0; i < li->map_cap; i++)
        if (li->map_vals[i])
            li->map_vals[i] = renum[li->map_vals[i] - 1] + 1;
    free(renum);
    li->ndocs = live;
    li->ndead = 0;
    drop_empty_terms(li);
}

enum err ret_lexindex_remove(struct ret_lexindex *li, const int64_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t d = map_get(li, ids[i]);
        if (d == UINT32_MAX)
            continue;
        map_del(li, ids[i]);
        li->dead[d] = 1;
        li->ndead++;
        li->total_len -= li->lens[d];
    }
    if (li->ndead >= 1024 && li->ndead * 4 >= li->ndocs)
        compact(li);
    return ERR_OK;
}

/* ---- search ---- */

struct qterm {
    const struct term *t;
    double idf;   /* times how often the query repeats the term */
    double bound; /* largest contribution to any chunk */
    uint32_t pos; /* cursor into the postings */
};

/* BM25's contribution of one term: FTS5's formula, term by term. */
static inline double contrib(double idf, uint32_t tf, uint32_t len, double avgdl) {
    double f = (double)tf;
    return idf * (f * (BM25_K1 + 1.0)) / (f + BM25_K1 * (1.0 - BM25_B + BM25_B * (double)len / avgdl));
}

/* The first position >= from whose doc is >= doc (galloping). */
static uint32_t seek(const struct term *t, uint32_t from, uint32_t doc) {
    if (from >= t->n || t->docs[from] >= doc)
        return from;
    uint32_t step = 1, lo = from, hi = from + 1;
    while (hi < t->n && t->docs[hi] < doc) {
        lo = hi;
        step *= 2;
        hi = lo + step;
    }
    if (hi > t->n)
        hi = t->n;
    /* docs[lo] < doc; the answer is in (lo, hi] */
    while (lo + 1 < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->docs[mid] < doc)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

struct hit {
    double score;
    int64_t id;
};

/* Worse first: a lower score, or the same score and a larger chunk id. */
static inline bool worse(const struct hit *a, const struct hit *b) {
    return a->score < b->score || (a->score == b->score && a->id > b->id);
}

static void heap_down(struct hit *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && worse(&h[l], &h[m]))
            m = l;
        if (l + 1 < n && worse(&h[l + 1], &h[m]))
            m = l + 1;
        if (m == i)
            return;
        struct hit x = h[i];
        h[i] = h[m];
        h[m] = x;
        i = m;
    }
}

static void heap_up(struct hit *h, size_t i) {
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(&h[i], &h[p]))
            return;
        struct hit x = h[i];
        h[i] = h[p];
        h[p] = x;
        i = p;
    }
}

static int cmp_qterm_bound(const void *x, const void *y) {
    const struct qterm *a = x, *b = y;
    return a->bound < b->bound ? -1 : a->bound > b->bound;
}

static int cmp_hit_best(const void *x, const void *y) {
    const struct hit *a = x, *b = y;
    return worse(b, a) ? -1 : worse(a, b) ? 1 : 0;
}

enum err ret_lexindex_search(const struct ret_lexindex *li, const char *const *terms, size_t nterms, int k,
                             int64_t *ids, double *scores, size_t *ret_n) {
    *ret_n = 0;
    uint32_t live = li->ndocs - li->ndead;
    if (k < 1 || live == 0 || nterms == 0)
        return ERR_OK;
    if (nterms > MAX_QUERY_TERMS)
        nterms = MAX_QUERY_TERMS;
    double avgdl = (double)li->total_len / (double)live;
    if (avgdl <= 0)
        avgdl = 1; /* every live chunk empty: nothing matches anyway */

    /* resolve the terms, merging repeats (FTS5 sums a repeated phrase) */
    struct qterm q[MAX_QUERY_TERMS];
    uint32_t rep[MAX_QUERY_TERMS];
    size_t nq = 0;
    for (size_t i = 0; i < nterms; i++) {
        uint32_t t = dict_find(li, terms[i], strlen(terms[i]), NULL);
        if (t == UINT32_MAX || li->terms[t].n == 0)
            continue;
        size_t j = 0;
        while (j < nq && q[j].t != &li->terms[t])
            j++;
        if (j == nq) {
            q[nq] = (struct qterm){.t = &li->terms[t]};
            rep[nq++] = 0;
        }
        rep[j]++;
    }
    for (size_t i = 0; i < nq; i++) {
        const struct term *t = q[i].t;
        uint32_t df = t->n;
        if (li->ndead)
            for (uint32_t p = 0; p < t->n; p++)
                df -= li->dead[t->docs[p]];
        double idf = log(((double)live - (double)df + 0.5) / ((double)df + 0.5));
        if (idf <= 0.0)
            idf = 1e-6;
        q[i].idf = idf * rep[i];
        /* a little over the exact bound, so rounding never prunes a
         * chunk that belongs in the top k */
        q[i].bound = df ? contrib(q[i].idf, t->max_tf, t->min_len, avgdl) * (1.0 + 1e-9) : 0.0;
    }
    /* MaxScore: terms by ascending bound; terms [0, ess) are
     * non-essential: together they cannot lift a chunk above the k-th */
    qsort(q, nq, sizeof(*q), cmp_qterm_bound);
    double prefix[MAX_QUERY_TERMS]; /* prefix[i] = bound of terms 0..i */
    for (size_t i = 0; i < nq; i++)
        prefix[i] = q[i].bound + (i ? prefix[i - 1] : 0.0);

    struct hit *heap = malloc((size_t)k * sizeof(*heap));
    if (!heap)
        return ERR_NOMEM;
    size_t nh = 0, ess = 0;
    double theta = -1.0; /* the k-th score once the heap is full */
    for (;;) {
        uint32_t d = UINT32_MAX;
        for (size_t i = ess; i < nq; i++)
            if (q[i].pos < q[i].t->n && q[i].t->docs[q[i].pos] < d)
                d = q[i].t->docs[q[i].pos];
        if (d == UINT32_MAX)
            break;
        double s = 0.0;
        uint32_t len = li->lens[d];
        for (size_t i = ess; i < nq; i++) {
            const struct term *t = q[i].t;
            if (q[i].pos < t->n && t->docs[q[i].pos] == d) {
                s += contrib(q[i].idf, t->tfs[q[i].pos], len, avgdl);
                q[i].pos++;
            }
        }
        if (li->dead[d])
            continue;
        bool pruned = false;
        for (size_t i = ess; i-- > 0;) {
            if (nh == (size_t)k && s + prefix[i] <= theta) {
                pruned = true;
                break;
            }
            q[i].pos = seek(q[i].t, q[i].pos, d);
            if (q[i].pos < q[i].t->n && q[i].t->docs[q[i].pos] == d)
                s += contrib(q[i].idf, q[i].t->tfs[q[i].pos], len, avgdl);
        }
        if (pruned)
            continue;
        struct hit h = {s, li->ids[d]};
        if (nh < (size_t)k) {
            heap[nh] = h;
            heap_up(heap, nh++);
        } else if (worse(&heap[0], &h)) {
            heap[0] = h;
            heap_down(heap, nh, 0);
        } else {
            continue;
        }
        if (nh == (size_t)k) {
            theta = heap[0].score;
            while (ess < nq && prefix[ess] <= theta)
                ess++;
        }
    }
    qsort(heap, nh, sizeof(*heap), cmp_hit_best);
    for (size_t i = 0; i < nh; i++) {
        ids[i] = heap[i].id;
        scores[i] = heap[i].score;
    }
    *ret_n = nh;
    free(heap);
    return ERR_OK;
}
