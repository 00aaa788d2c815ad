/* extractive.c - the built-in generator: answers with the retrieved
 * sentence that best covers the question.
 *
 * Question words (stop words dropped) are stemmed with libstemmer's English
 * Snowball stemmer, as are the passage words, so "configured" in a question
 * matches "configuration" in a passage.  Each candidate sentence is scored by
 * the share of question terms it contains (sentences are cut by the same
 * unit iterator as the chunker, so wrapped lines are joined), weighted by how rare the term is
 * among the retrieved passages; the passage's own coverage and its rank
 * break ties.  Below the plan's confidence floor the agent abstains rather
 * than guess.  It is free and fast, so it is the embedded default tier. */
#include "agent.h"
#include "chunk.h"
#include "span.h"
#include "text.h"

#include <libstemmer.h>

#include "stem.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define EX_MAX_TERMS 32
#define EX_WORD_MAX 64
#define EX_TOP 3           /* sentences the span picker may choose among */
#define EX_SPAN_SLACK 0.8  /* ... when they score at least this share of the best */

struct term {
    char stem[EX_WORD_MAX];
    double weight;
};

struct candidate {
    size_t hit;         /* index into io->hits */
    size_t start, end;  /* byte range inside the hit's text */
    double score;
    double coverage;    /* weighted share of question terms in the sentence */
};

static void stem_word(struct sb_stemmer *st, const char *w, char *out) {
    ret_stem_into(st, w, out, EX_WORD_MAX);
}

/* Where a passage's words stem to question terms: each such token's byte
 * range and the terms it is (a bit each).  One pass over a passage serves
 * the passage's own coverage and every sentence's. */
struct term_ats {
    struct agent_term_at *v;
    size_t n, cap;
    struct agent_term_at local[256];
};

_Static_assert(EX_MAX_TERMS <= 32, "a term is a bit of a uint32_t");

#define EX_GROUP 32 /* words lower-cased and prefetched before any is stemmed */

struct ex_group {
    size_t n;
    size_t start[EX_GROUP], len[EX_GROUP];
    uint32_t hash[EX_GROUP];
    int wlen[EX_GROUP];
    char w[EX_GROUP][EX_WORD_MAX];
};

/* Appends n term words to a; false (and *nomem) without memory. */
static bool ta_append(struct term_ats *a, const struct agent_term_at *v, size_t n, bool *nomem) {
    if (a->n + n > a->cap) {
        size_t cap = a->cap;
        while (cap < a->n + n)
            cap *= 2;
        struct agent_term_at *w = a->v == a->local ? malloc(cap * sizeof(*w)) : realloc(a->v, cap * sizeof(*w));
        if (!w) {
            *nomem = true;
            return false;
        }
        if (a->v == a->local)
            memcpy(w, a->local, sizeof a->local);
        a->v = w;
        a->cap = cap;
    }
    if (n)
        memcpy(a->v + a->n, v, n * sizeof(*v));
    a->n += n;
    return true;
}

/* Stems the group's words (their stem-cache tags were prefetched as they
 * were collected, their slots are now): their terms into *all, their term
 * tokens onto a; false when a could not grow (*nomem set). */
static bool resolve_group(struct sb_stemmer *st, const struct term *terms, size_t nterms, struct ex_group *g,
                          uint32_t *all, struct term_ats *a, bool *nomem) {
    size_t n = g->n;
    g->n = 0;
    for (size_t k = 0; k < n; k++)
        ret_stem_prefetch_slot(g->wlen[k], g->hash[k]);
    for (size_t k = 0; k < n; k++) {
        char s[EX_WORD_MAX];
        ret_stem_into_hashed(st, g->w[k], g->wlen[k], g->hash[k], s, EX_WORD_MAX);
        uint32_t m = 0;
        for (size_t i = 0; i < nterms; i++)
            if (strcmp(terms[i].stem, s) == 0)
                m |= 1u << i;
        *all |= m;
        if (!m || !a)
            continue;
        struct agent_term_at at = {g->start[k], g->start[k] + g->len[k], m};
        if (!ta_append(a, &at, 1, nomem))
            return false;
    }
    return true;
}

/* The terms text[start, end) holds (a bit each); with a, also appends its
 * term tokens there (or sets *nomem). */
static uint32_t passage_terms(struct sb_stemmer *st, const char *text, size_t start, size_t end,
                              const struct term *terms, size_t nterms, struct term_ats *a, bool *nomem) {
    size_t pos = start;
    struct text_token t;
    uint32_t all = 0;
    struct ex_group g;
    g.n = 0;
    while (text_next_token(text, end, &pos, &t)) {
        /* the English stemmer keeps a word's first byte (test-embed.c):
         * a word no term starts like cannot stem to one, and is not even
         * lower-cased */
        char first = (char)text_lower_byte[(unsigned char)text[t.start]];
        bool maybe = false;
        for (size_t i = 0; !maybe && i < nterms; i++)
            maybe = terms[i].stem[0] == first;
        if (!maybe)
            continue;
        text_token_lower(text, &t, g.w[g.n], EX_WORD_MAX);
        g.wlen[g.n] = (int)(t.len < EX_WORD_MAX - 1 ? t.len : EX_WORD_MAX - 1);
        g.hash[g.n] = ret_stem_prefetch(g.w[g.n], g.wlen[g.n]);
        g.start[g.n] = t.start;
        g.len[g.n++] = t.len;
        if (g.n == EX_GROUP && !resolve_group(st, terms, nterms, &g, &all, a, nomem))
            return all;
    }
    resolve_group(st, terms, nterms, &g, &all, a, nomem);
    return all;
}

/* The terms in text[s, e) from its passage's term tokens v[0..n) (sorted
 * by position), as reading the range alone would find them: tokens wholly
 * inside it.  A range that cuts a word is read again on its own, since the
 * cut word's pieces are words of their own there. */
static uint32_t range_terms(struct sb_stemmer *st, const char *text, size_t len, size_t s, size_t e,
                            const struct term *terms, size_t nterms, const struct agent_term_at *v, size_t n) {
    const unsigned char *u = (const unsigned char *)text;
    if ((s > 0 && s < len && text_word_byte[u[s - 1]] && text_word_byte[u[s]]) ||
        (e > 0 && e < len && text_word_byte[u[e - 1]] && text_word_byte[u[e]]))
        return passage_terms(st, text, s, e, terms, nterms, NULL, NULL);
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].start < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t m = 0;
    for (size_t i = lo; i < n && v[i].end <= e; i++)
        m |= v[i].mask;
    return m;
}

static double coverage_of(const struct term *terms, size_t nterms, uint32_t mask) {
    double got = 0, total = 0;
    for (size_t i = 0; i < nterms; i++) {
        total += terms[i].weight;
        if (mask >> i & 1u)
            got += terms[i].weight;
    }
    return total > 0 ? got / total : 0;
}

static size_t question_terms(struct sb_stemmer *st, const char *q, struct term *terms) {
    size_t n = strlen(q), pos = 0, nterms = 0;
    struct text_token t;
    while (nterms < EX_MAX_TERMS && text_next_token(q, n, &pos, &t)) {
        char w[EX_WORD_MAX], s[EX_WORD_MAX];
        text_token_lower(q, &t, w, sizeof w);
        if (text_is_stopword(w))
            continue;
        stem_word(st, w, s);
        bool dup = false;
        for (size_t i = 0; i < nterms; i++)
            dup = dup || strcmp(terms[i].stem, s) == 0;
        if (!dup) {
            memcpy(terms[nterms].stem, s, sizeof s);
            terms[nterms].weight = 1.0;
            nterms++;
        }
    }
    return nterms;
}

struct qword_ctx {
    struct sb_stemmer *st;
    const struct term *terms;
    size_t nterms;
};

/* span_find's test: is this sentence word one of the question's terms? */
static bool is_qword(void *ud, const char *lower) {
    const struct qword_ctx *c = ud;
    if (text_is_stopword(lower))
        return false;
    char s[EX_WORD_MAX];
    stem_word(c->st, lower, s);
    for (size_t i = 0; i < c->nterms; i++)
        if (strcmp(c->terms[i].stem, s) == 0)
            return true;
    return false;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static enum err abstain(struct agent_io *io, const char *why) {
    io->abstained = true;
    io->abstain_reason = why;
    io->answer = NULL;
    io->ncitations = 0;
    io->citations = NULL;
    return ERR_OK;
}

static enum err extractive_run(void *state, struct agent_ctx *ctx, struct agent_io *io) {
    (void)state;
    io->confidence = 0;
    io->abstained = false;
    io->abstain_reason = NULL;
    io->input_tokens = (int)text_count_words(io->question, strlen(io->question));
    io->output_tokens = 0;
    for (size_t h = 0; h < io->nhits; h++)
        io->input_tokens += (int)text_count_words(io->hits[h].text, strlen(io->hits[h].text));
    if (io->nhits == 0)
        return abstain(io, "no passage matched the question");

    struct sb_stemmer *st = sb_stemmer_new("english", "UTF_8");
    if (!st)
        return ERR_NOMEM;
    struct term terms[EX_MAX_TERMS];
    size_t nterms = question_terms(st, io->question, terms);
    if (nterms == 0) {
        sb_stemmer_delete(st);
        return abstain(io, "the question has no content words");
    }

    /* Rarer terms among the retrieved passages say more.  Each passage is
     * read once: where its words are question terms. */
    struct term_ats ta = {.v = ta.local, .cap = sizeof ta.local / sizeof ta.local[0]};
    size_t nh = io->nhits < 64 ? io->nhits : 64;
    uint32_t hit_mask[64];
    size_t hit_first[65];
    double chunk_cov[64] = {0};
    size_t df[EX_MAX_TERMS] = {0};
    bool nomem = false;
    const char *stems[EX_MAX_TERMS];
    for (size_t i = 0; i < nterms; i++)
        stems[i] = terms[i].stem;
    uint64_t signature = agent_terms_signature(stems, nterms);
    for (size_t h = 0; h < nh && !nomem; h++) {
        const char *text = io->hits[h].text;
        hit_first[h] = ta.n;
        /* the reranker read this passage for the same terms: its findings */
        const struct agent_passage_terms *pt = io->pterms ? &io->pterms[h] : NULL;
        if (pt && pt->text == text && pt->signature == signature)
            hit_mask[h] = ta_append(&ta, pt->v, pt->n, &nomem) ? pt->mask : 0;
        else
            hit_mask[h] = passage_terms(st, text, 0, strlen(text), terms, nterms, &ta, &nomem);
        hit_first[h + 1] = ta.n;
        for (size_t i = 0; i < nterms; i++)
            df[i] += hit_mask[h] >> i & 1u;
    }
    if (nomem) {
        if (ta.v != ta.local)
            free(ta.v);
        sb_stemmer_delete(st);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < nterms; i++)
        terms[i].weight = 1.0 + log((1.0 + (double)nh) / (1.0 + (double)df[i]));
    for (size_t h = 0; h < nh; h++)
        chunk_cov[h] = coverage_of(terms, nterms, hit_mask[h]);

    /* the three best sentences: the span picker may prefer the second or
     * third when only it holds the kind of answer asked for */
    struct candidate top[EX_TOP] = {{.score = -1}, {.score = -1}, {.score = -1}};
    for (size_t h = 0; h < nh; h++) {
        const char *text = io->hits[h].text;
        size_t len = strlen(text);
        struct ret_unit_iter it;
        struct ret_unit un;
        ret_units_init(&it, text, len);
        while (ret_units_next(&it, &un)) {
            size_t s = un.start, e = un.end;
            if (text[s] == '#' || text[s] == '`' || un.tokens < 4)
                continue; /* headings, code fences and fragments are not answers */
            while (s < e && (text[s] == '-' || text[s] == '*' || text[s] == '>' || text[s] == '|' || text[s] == ' '))
                s++; /* list and quote markers */
            uint32_t m = range_terms(st, text, len, s, e, terms, nterms, ta.v + hit_first[h],
                                     hit_first[h + 1] - hit_first[h]);
            double cov = coverage_of(terms, nterms, m);
            double score = cov + 0.15 * chunk_cov[h] + 0.05 / (1.0 + (double)h);
            struct candidate c = {h, s, e, score, cov};
            for (int r = 0; r < EX_TOP; r++)
                if (score > top[r].score) {
                    memmove(&top[r + 1], &top[r], (size_t)(EX_TOP - 1 - r) * sizeof top[0]);
                    top[r] = c;
                    break;
                }
        }
    }
    if (ta.v != ta.local)
        free(ta.v);
    struct candidate best = top[0];
    if (best.score < 0) {
        sb_stemmer_delete(st);
        return abstain(io, "no passage contains a usable sentence");
    }

    io->confidence = 0.75 * best.coverage + 0.25 * chunk_cov[best.hit];
    if (io->confidence < io->min_confidence) {
        sb_stemmer_delete(st);
        return abstain(io, "best supporting sentence is below the confidence floor");
    }

    /* The answer: the span the question asks for (a name, a date, a
     * number, a place, a thing) in the best sentence that has one — among
     * the top three, when close enough in score — else the best sentence;
     * the citation is the whole sentence either way. */
    size_t span_s = 0, span_e = 0;
    struct qword_ctx qc = {st, terms, nterms};
    enum span_kind kind = span_question_kind(io->question);
    bool have_span = false;
    for (int r = 0; kind != SPAN_NONE && !have_span && r < EX_TOP; r++) {
        if (top[r].score < 0 || top[r].score < EX_SPAN_SLACK * top[0].score)
            break;
        if (span_find(kind, io->hits[top[r].hit].text, top[r].start, top[r].end, is_qword, &qc, &span_s, &span_e)) {
            have_span = true;
            best = top[r];
        }
    }
    sb_stemmer_delete(st);
    const struct ret_hit *hit = &io->hits[best.hit];
    /* Respect the plan's token limit: cut at a word boundary. */
    size_t end = best.end, words = 0;
    bool in_word = false;
    for (size_t i = best.start; i < best.end; i++) {
        bool sp = is_space(hit->text[i]);
        if (!sp && !in_word && ++words > (size_t)io->max_tokens) {
            end = i;
            while (end > best.start && is_space(hit->text[end - 1]))
                end--;
            break;
        }
        in_word = !sp;
    }
    char *sentence = arena_strndup(ctx->arena, hit->text + best.start, end - best.start);
    char *answer = have_span ? arena_strndup(ctx->arena, hit->text + span_s, span_e - span_s) : sentence;
    struct agent_citation *cit = arena_calloc(ctx->arena, 1, sizeof(*cit));
    if (!sentence || !answer || !cit)
        return ERR_NOMEM;
    cit->hit = hit;
    cit->start = hit->start + (int64_t)best.start;
    cit->end = hit->start + (int64_t)end;
    cit->snippet = sentence;
    io->answer = answer;
    io->citations = cit;
    io->ncitations = 1;
    io->output_tokens = (int)text_count_words(answer, strlen(answer));
    return ERR_OK;
}

const struct agent_ops agent_extractive = {
    .name = "extractive",
    .kind = AGENT_GENERATOR,
    .run = extractive_run,
};
