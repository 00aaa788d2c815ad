/* rerank.c - the built-in reranker.
 *
 * The first-stage retrievers score a passage by term statistics (BM25) or
 * by one embedding; neither sees *where* the question's words fall in the
 * passage.  This agent rescores each candidate with features of the pair
 * (question, passage) that do:
 *
 *   coverage   share of the question's content stems the passage contains,
 *              each weighted by its rarity among the candidates (IDF);
 *   proximity  how tightly the matched stems cluster: matched / the width
 *              (in words) of the smallest window that holds all of them;
 *   phrase     share of the question's adjacent stem pairs that also stand
 *              next to each other in the passage (stop words skipped);
 *   prior      the first-stage rank, so ties keep the retrievers' order.
 *
 * It keeps the io->k best of the candidates it was given (the executor
 * retrieves more than it needs when the plan reranks) and reports how much
 * it changed the order.  Pure computation: microseconds per passage, no
 * model files. */
#include "agent.h"
#include "text.h"

#include <libstemmer.h>

#include "stem.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RR_MAX_TERMS 32
#define RR_MAX_CANDIDATES 64
#define RR_WORD_MAX 64
#define RR_MAX_WORDS 1024 /* per passage: chunks are a few hundred */

#define RR_W_COVERAGE 0.45
#define RR_W_PROXIMITY 0.15
#define RR_W_PHRASE 0.15
#define RR_W_PRIOR 0.25

struct rr_terms {
    char stem[RR_MAX_TERMS][RR_WORD_MAX];
    double weight[RR_MAX_TERMS];
    size_t n;
    /* adjacent pairs in question order, as term indexes */
    int pair[RR_MAX_TERMS][2];
    size_t npairs;
    /* first bytes of the stems: the English Snowball stemmer only ever
     * changes a word's ending, so a word whose first byte starts no stem
     * cannot stem to one, and is not stemmed at all */
    bool first[256];
};

struct rr_item {
    size_t old;  /* first-stage rank, 0-based */
    double score;
};

static void stem(struct sb_stemmer *st, const char *w, char *out) {
    ret_stem_into(st, w, out, RR_WORD_MAX);
}

/* Reads the next content word of s as a stem; false at the end. */
static bool next_stem(struct sb_stemmer *st, const char *s, size_t n, size_t *pos, char *out) {
    struct text_token t;
    while (text_next_token(s, n, pos, &t)) {
        char w[RR_WORD_MAX];
        text_token_lower(s, &t, w, sizeof w);
        if (text_is_stopword(w))
            continue;
        stem(st, w, out);
        return true;
    }
    return false;
}

static int term_index(const struct rr_terms *q, const char *s) {
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->stem[i], s) == 0)
            return (int)i;
    return -1;
}

static void question_terms(struct sb_stemmer *st, const char *question, struct rr_terms *q) {
    size_t n = strlen(question), pos = 0;
    char s[RR_WORD_MAX];
    int prev = -1;
    q->n = q->npairs = 0;
    memset(q->first, 0, sizeof q->first);
    while (next_stem(st, question, n, &pos, s)) {
        int i = term_index(q, s);
        if (i < 0 && q->n < RR_MAX_TERMS) {
            i = (int)q->n;
            memcpy(q->stem[q->n], s, sizeof s);
            q->first[(unsigned char)s[0]] = true;
            q->weight[q->n++] = 1.0;
        }
        if (i >= 0 && prev >= 0 && prev != i && q->npairs < RR_MAX_TERMS) {
            q->pair[q->npairs][0] = prev;
            q->pair[q->npairs][1] = i;
            q->npairs++;
        }
        prev = i;
    }
}

#define RR_GROUP 32 /* words lower-cased and prefetched before any is stemmed */

#define RR_NO_SEQ ((size_t)-1) /* a stop word's: it has no place in seq */

struct rr_group {
    size_t n;
    size_t at[RR_GROUP]; /* the word's place in seq, or RR_NO_SEQ */
    size_t start[RR_GROUP], end[RR_GROUP];
    uint32_t hash[RR_GROUP];
    int len[RR_GROUP];
    char w[RR_GROUP][RR_WORD_MAX];
};

/* A passage's words that are question terms, stop words included: what
 * the extractive reader reads a passage for (agent_io.pterms). */
struct rr_marks {
    struct agent_term_at *v;
    size_t n, cap;
    uint32_t mask;
    bool failed; /* out of memory, or the passage was not read to its end */
};

static void mark(struct rr_marks *m, size_t start, size_t end, int term) {
    if (m->failed)
        return;
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        struct agent_term_at *v = realloc(m->v, cap * sizeof(*v));
        if (!v) {
            m->failed = true;
            return;
        }
        m->v = v;
        m->cap = cap;
    }
    m->v[m->n++] = (struct agent_term_at){start, end, 1u << term};
    m->mask |= 1u << term;
}

/* Stems the group's words (their cache tags were prefetched as they were
 * collected, their slots are now): their term indexes into seq (stop
 * words have no place there), the terms among them into m. */
static void resolve_group(struct sb_stemmer *st, const struct rr_terms *q, struct rr_group *g, int *seq,
                          struct rr_marks *m) {
    for (size_t i = 0; i < g->n; i++)
        ret_stem_prefetch_slot(g->len[i], g->hash[i]);
    for (size_t i = 0; i < g->n; i++) {
        char s[RR_WORD_MAX];
        ret_stem_into_hashed(st, g->w[i], g->len[i], g->hash[i], s, RR_WORD_MAX);
        int term = term_index(q, s);
        if (g->at[i] != RR_NO_SEQ)
            seq[g->at[i]] = term;
        if (term >= 0)
            mark(m, g->start[i], g->end[i], term);
    }
    g->n = 0;
}

/* The passage as a sequence of term indexes (-1 for words not in the
 * question), at most max long; returns its length.  Its words that are
 * terms go to m (reset here), stop words too. */
static size_t passage_terms(struct sb_stemmer *st, const char *text, const struct rr_terms *q, int *seq, size_t max,
                            struct rr_marks *m) {
    size_t n = strlen(text), pos = 0, len = 0;
    struct text_token t;
    struct rr_group g;
    g.n = 0;
    m->n = 0;
    m->mask = 0;
    m->failed = false;
    while (len < max && text_next_token(text, n, &pos, &t)) {
        bool stop = text_is_stopword_n(text + t.start, t.len);
        if (!q->first[text_lower_byte[(unsigned char)text[t.start]]]) {
            if (!stop)
                seq[len++] = -1; /* lower-cased and stemmed only when it may be a term */
            continue;
        }
        text_token_lower(text, &t, g.w[g.n], RR_WORD_MAX);
        g.len[g.n] = (int)(t.len < RR_WORD_MAX - 1 ? t.len : RR_WORD_MAX - 1);
        g.hash[g.n] = ret_stem_prefetch(g.w[g.n], g.len[g.n]);
        g.start[g.n] = t.start;
        g.end[g.n] = t.start + t.len;
        g.at[g.n++] = stop ? RR_NO_SEQ : len++;
        if (g.n == RR_GROUP)
            resolve_group(st, q, &g, seq, m);
    }
    resolve_group(st, q, &g, seq, m);
    if (len == max && text_next_token(text, n, &pos, &t))
        m->failed = true; /* cut short: the reader reads it itself */
    return len;
}

/* The smallest window of seq holding every distinct term that occurs in
 * seq at all; returns its width, or 0 when no term occurs. */
static size_t min_window(const int *seq, size_t len, size_t need) {
    int count[RR_MAX_TERMS] = {0};
    size_t have = 0, best = 0, lo = 0;
    for (size_t hi = 0; hi < len; hi++) {
        if (seq[hi] >= 0 && count[seq[hi]]++ == 0)
            have++;
        while (have == need && lo <= hi) {
            size_t w = hi - lo + 1;
            if (best == 0 || w < best)
                best = w;
            if (seq[lo] >= 0 && --count[seq[lo]] == 0)
                have--;
            lo++;
        }
    }
    return best;
}

static double score_passage(const struct rr_terms *q, const int *seq, size_t len, size_t rank, size_t ncand) {
    bool seen[RR_MAX_TERMS] = {false};
    size_t distinct = 0;
    for (size_t i = 0; i < len; i++)
        if (seq[i] >= 0 && !seen[seq[i]]) {
            seen[seq[i]] = true;
            distinct++;
        }
    double got = 0, total = 0;
    for (size_t i = 0; i < q->n; i++) {
        total += q->weight[i];
        got += seen[i] ? q->weight[i] : 0;
    }
    double coverage = total > 0 ? got / total : 0;

    double proximity = 0;
    if (distinct == 1)
        proximity = 1;
    else if (distinct > 1) {
        size_t w = min_window(seq, len, distinct);
        proximity = w ? (double)distinct / (double)w : 0;
    }
    /* proximity only means something for the words that matched */
    proximity *= coverage;

    double phrase = 0;
    if (q->npairs > 0) {
        size_t hits = 0;
        for (size_t p = 0; p < q->npairs; p++)
            for (size_t i = 0; i + 1 < len; i++)
                if (seq[i] == q->pair[p][0] && seq[i + 1] == q->pair[p][1]) {
                    hits++;
                    break;
                }
        phrase = (double)hits / (double)q->npairs;
    }
    double prior = ncand > 1 ? 1.0 - (double)rank / (double)ncand : 1.0;
    return RR_W_COVERAGE * coverage + RR_W_PROXIMITY * proximity + RR_W_PHRASE * phrase + RR_W_PRIOR * prior;
}

static int by_score(const void *a, const void *b) {
    const struct rr_item *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->old < y->old ? -1 : x->old > y->old; /* stable: first-stage order breaks ties */
}

static enum err rerank_run(void *state, struct agent_ctx *ctx, struct agent_io *io) {
    (void)state;
    size_t ncand = io->nhits < RR_MAX_CANDIDATES ? io->nhits : RR_MAX_CANDIDATES;
    size_t keep = io->k > 0 && (size_t)io->k < ncand ? (size_t)io->k : ncand;
    io->rerank = (struct agent_rerank_report){.candidates = (int)io->nhits, .kept = (int)keep};
    if (ncand == 0)
        return ERR_OK;

    struct sb_stemmer *st = sb_stemmer_new("english", "UTF_8");
    struct rr_terms *q = malloc(sizeof(*q));
    int *seq = malloc(sizeof(int) * RR_MAX_WORDS * ncand);
    size_t *lens = malloc(sizeof(size_t) * ncand);
    struct rr_item *items = malloc(sizeof(*items) * ncand);
    enum err e = ERR_OK;
    if (!st || !q || !seq || !lens || !items) {
        e = ERR_NOMEM;
        goto out;
    }
    question_terms(st, io->question, q);
    const char *stems[RR_MAX_TERMS];
    for (size_t i = 0; i < q->n; i++)
        stems[i] = q->stem[i];
    uint64_t signature = agent_terms_signature(stems, q->n);
    /* each candidate's term words, for the extractive reader (in the
     * request's arena; NULL entries: not kept) */
    struct agent_passage_terms *pt = arena_calloc(ctx->arena, ncand, sizeof(*pt));
    struct rr_marks m = {0};
    for (size_t h = 0; h < ncand; h++) {
        lens[h] = passage_terms(st, io->hits[h].text, q, seq + h * RR_MAX_WORDS, RR_MAX_WORDS, &m);
        struct agent_term_at *v = pt && !m.failed ? arena_alloc(ctx->arena, (m.n ? m.n : 1) * sizeof(*v)) : NULL;
        if (v) {
            if (m.n)
                memcpy(v, m.v, m.n * sizeof(*v));
            pt[h] = (struct agent_passage_terms){io->hits[h].text, signature, v, m.n, m.mask};
        }
    }
    free(m.v);

    /* document frequency among the candidates */
    for (size_t i = 0; i < q->n; i++) {
        size_t df = 0;
        for (size_t h = 0; h < ncand; h++)
            for (size_t k = 0; k < lens[h]; k++)
                if (seq[h * RR_MAX_WORDS + k] == (int)i) {
                    df++;
                    break;
                }
        q->weight[i] = 1.0 + log((1.0 + (double)ncand) / (1.0 + (double)df));
    }
    for (size_t h = 0; h < ncand; h++)
        items[h] = (struct rr_item){h, score_passage(q, seq + h * RR_MAX_WORDS, lens[h], h, ncand)};
    qsort(items, ncand, sizeof(*items), by_score);

    /* reorder hits (and the per-retriever detail, kept in the same order) */
    struct ret_hit *hits = arena_calloc(ctx->arena, keep + 1, sizeof(*hits));
    struct ret_scored *scored = io->scored ? arena_calloc(ctx->arena, keep + 1, sizeof(*scored)) : NULL;
    struct agent_passage_terms *kept_pt = pt ? arena_calloc(ctx->arena, keep + 1, sizeof(*kept_pt)) : NULL;
    if (!hits || (io->scored && !scored)) {
        e = ERR_NOMEM;
        goto out;
    }
    double moved_sum = 0;
    int moved = 0;
    for (size_t i = 0; i < keep; i++) {
        size_t old = items[i].old;
        hits[i] = io->hits[old];
        hits[i].score = items[i].score;
        if (scored)
            scored[i] = io->scored[old];
        if (kept_pt)
            kept_pt[i] = pt[old];
        if (old != i) {
            moved++;
            moved_sum += fabs((double)old - (double)i);
        }
    }
    io->rerank.moved = moved;
    io->rerank.top_changed = items[0].old != 0;
    io->rerank.displacement = keep ? moved_sum / (double)keep : 0;
    io->rerank.top_score = items[0].score;
    io->hits = hits;
    io->nhits = keep;
    io->pterms = kept_pt; /* the reader checks each entry's text against its hit */
    if (scored)
        io->scored = scored;
out:
    free(items);
    free(lens);
    free(seq);
    free(q);
    if (st)
        sb_stemmer_delete(st);
    return e;
}

const struct agent_ops agent_rerank = {
    .name = "rerank",
    .kind = AGENT_RERANKER,
    .run = rerank_run,
};
