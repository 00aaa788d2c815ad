/* intent.c - intent classification: a naive Bayes model trained from
 * labelled example questions, and the former hand-written cue table.
 *
 * Features are cheap and binary (present or not): lower-cased word
 * unigrams with a light plural fold, bigrams, the first word and the first
 * two words as positional features, how the question ends (?, !, . or
 * nothing) and a length bucket.  Each is a 64-bit FNV-1a hash of its text
 * in an open-addressing table, so the model is two flat arrays and a
 * lookup is a probe or two.
 *
 * Two decisions that are not obvious:
 * - The class prior is uniform.  The examples are balanced by design, and
 *   a tenant adding twenty comparison examples says how its users phrase
 *   comparisons, not that comparisons became more likely.
 * - Naive Bayes posteriors are overconfident (the features overlap: a
 *   bigram repeats its two words), so the confidence is a softmax of the
 *   log scores divided by a temperature.  INTENT_ALPHA and
 *   INTENT_TEMPERATURE were chosen by 5-fold cross-validation on the
 *   training set (lowest log loss, bench/bench-intent.c); see docs/slo.md. */
#include "intent.h"
#include "text.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INTENT_ALPHA 0.25      /* additive smoothing of feature counts */
#define INTENT_TEMPERATURE 2.5 /* divides log scores before the softmax */
#define TOKENS_MAX 48          /* features come from the first 48 tokens */
#define TOKEN_LEN 24           /* longer words are truncated */
#define FEATURES_MAX (3 * TOKENS_MAX + 4)

static const char *const intent_names[] = {
#define SLO_INTENT_NAME(sym, name) name,
    SLO_INTENT_LIST(SLO_INTENT_NAME)
#undef SLO_INTENT_NAME
};

const char *slo_intent_name(enum slo_intent i) {
    return (unsigned)i < SLO_INTENT__COUNT ? intent_names[i] : "unknown";
}

int slo_intent_parse(const char *name) {
    for (int i = 0; i < SLO_INTENT__COUNT; i++)
        if (strcmp(intent_names[i], name) == 0)
            return i;
    return -1;
}

/* ---- features ---- */

enum feature_kind { F_WORD, F_BIGRAM, F_FIRST, F_FIRST2, F_END, F_LEN };

static const char *const len_buckets[] = {"1", "2", "3-4", "5-7", "8-12", "13+"};

struct feature {
    uint64_t hash;
    unsigned char kind;
    unsigned char a, b; /* token indexes; for F_END the end character, for F_LEN the bucket */
};

struct question {
    char tok[TOKENS_MAX][TOKEN_LEN];
    int ntok;            /* tokens kept for features */
    int words, content;  /* all tokens, non-stopword tokens */
    struct feature f[FEATURES_MAX];
    int nf;
};

/* "lists" -> "list", "differences" -> "difference"; "class", "status",
 * "analysis" and short words stay as they are. */
static void fold_plural(char *w) {
    size_t n = strlen(w);
    if (n >= 4 && w[n - 1] == 's' && w[n - 2] != 's' && w[n - 2] != 'u' && w[n - 2] != 'i')
        w[n - 1] = '\0';
}

static uint64_t fnv_add(uint64_t h, const char *s) {
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void add_feature(struct question *q, unsigned kind, unsigned a, unsigned b, const char *x, const char *y) {
    uint64_t h = 0xcbf29ce484222325ULL;
    h ^= kind + 1;
    h *= 0x100000001b3ULL;
    h = fnv_add(h, x);
    if (y) {
        h ^= 0x1f;
        h *= 0x100000001b3ULL;
        h = fnv_add(h, y);
    }
    h = h ? h : 1; /* 0 marks an empty slot */
    for (int i = 0; i < q->nf; i++)
        if (q->f[i].hash == h)
            return; /* binary features: once per question */
    if (q->nf < FEATURES_MAX)
        q->f[q->nf++] = (struct feature){h, (unsigned char)kind, (unsigned char)a, (unsigned char)b};
}

static void extract(const char *s, struct question *q) {
    size_t n = strlen(s), pos = 0;
    struct text_token t;
    q->ntok = q->words = q->content = q->nf = 0;
    while (text_next_token(s, n, &pos, &t)) {
        char w[TOKEN_LEN];
        text_token_lower(s, &t, w, sizeof w);
        q->words++;
        if (!text_is_stopword(w))
            q->content++;
        if (q->ntok < TOKENS_MAX) {
            if (!text_is_stopword(w)) /* "does", "this", "has" stay whole */
                fold_plural(w);
            memcpy(q->tok[q->ntok++], w, sizeof w);
        }
    }
    if (q->words == 0)
        return;
    for (int i = 0; i < q->ntok; i++) {
        add_feature(q, F_WORD, (unsigned)i, 0, q->tok[i], NULL);
        if (i > 0)
            add_feature(q, F_BIGRAM, (unsigned)i - 1, (unsigned)i, q->tok[i - 1], q->tok[i]);
    }
    add_feature(q, F_FIRST, 0, 0, q->tok[0], NULL);
    if (q->ntok > 1)
        add_feature(q, F_FIRST2, 0, 1, q->tok[0], q->tok[1]);
    char end = 0;
    for (size_t i = n; i > 0 && !end; i--)
        if (s[i - 1] != ' ' && s[i - 1] != '\t' && s[i - 1] != '\n' && s[i - 1] != '\r')
            end = s[i - 1] == '?' || s[i - 1] == '!' || s[i - 1] == '.' ? s[i - 1] : '-';
    char e[2] = {end, '\0'};
    add_feature(q, F_END, (unsigned char)end, 0, e, NULL);
    unsigned bucket = q->words <= 1 ? 0 : q->words == 2 ? 1 : q->words <= 4 ? 2 : q->words <= 7 ? 3
                    : q->words <= 12 ? 4 : 5;
    add_feature(q, F_LEN, bucket, 0, len_buckets[bucket], NULL);
}

/* The feature's text as reported in a cue. */
static int feature_name(const struct question *q, const struct feature *f, char *out, size_t len) {
    switch ((enum feature_kind)f->kind) {
    case F_WORD: return snprintf(out, len, "word=%s", q->tok[f->a]);
    case F_BIGRAM: return snprintf(out, len, "bigram=%s_%s", q->tok[f->a], q->tok[f->b]);
    case F_FIRST: return snprintf(out, len, "first=%s", q->tok[f->a]);
    case F_FIRST2: return snprintf(out, len, "first2=%s_%s", q->tok[f->a], q->tok[f->b]);
    case F_END: return f->a == '-' ? snprintf(out, len, "end=none") : snprintf(out, len, "end=%c", f->a);
    case F_LEN: return snprintf(out, len, "words=%s", len_buckets[f->a]);
    }
    return snprintf(out, len, "?");
}

/* ---- the model ---- */

struct slo_intent_model {
    atomic_int refs;
    size_t examples;
    size_t cap, used;              /* slots (a power of two), slots in use */
    uint64_t *keys;                /* feature hashes; 0 = empty slot */
    float (*w)[SLO_INTENT__COUNT]; /* counts while training, then log P(feature | intent) */
    unsigned present;              /* bit per intent that has examples */
};

static size_t slot_of(const struct slo_intent_model *m, uint64_t h) {
    size_t i = (size_t)h & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != h)
        i = (i + 1) & (m->cap - 1);
    return i;
}

/* Moves the table to cap slots (a power of two, more than in use). */
static bool resize(struct slo_intent_model *m, size_t cap) {
    uint64_t *keys = calloc(cap, sizeof(*keys));
    float(*w)[SLO_INTENT__COUNT] = calloc(cap, sizeof(*w));
    if (!keys || !w) {
        free(keys);
        free(w);
        return false;
    }
    size_t oldcap = m->cap;
    uint64_t *oldkeys = m->keys;
    float(*oldw)[SLO_INTENT__COUNT] = m->w;
    m->cap = cap;
    m->keys = keys;
    m->w = w;
    for (size_t i = 0; i < oldcap; i++) {
        if (!oldkeys[i])
            continue;
        size_t j = slot_of(m, oldkeys[i]);
        m->keys[j] = oldkeys[i];
        memcpy(m->w[j], oldw[i], sizeof m->w[j]);
    }
    free(oldkeys);
    free(oldw);
    return true;
}

static void model_free(struct slo_intent_model *m) {
    free(m->keys);
    free(m->w);
    free(m);
}

/* Adds one example's features with weight; false when out of memory. */
static bool count(struct slo_intent_model *m, const struct question *q, enum slo_intent c, double weight,
                  double *totals) {
    for (int i = 0; i < q->nf; i++) {
        if ((m->used + 1) * 2 > m->cap && !resize(m, m->cap * 2))
            return false;
        size_t s = slot_of(m, q->f[i].hash);
        if (!m->keys[s]) {
            m->keys[s] = q->f[i].hash;
            m->used++;
        }
        m->w[s][c] += (float)weight;
        totals[c] += weight;
    }
    return true;
}

enum err slo_intent_model_train(const struct slo_intent_example *base, size_t nbase,
                                const struct slo_intent_example *extra, size_t nextra,
                                struct slo_intent_model **ret) {
    struct slo_intent_model *m = calloc(1, sizeof(*m));
    struct question *q = malloc(sizeof(*q));
    /* room for about 8 new features per example at half load: no rehash
     * for typical sets */
    size_t cap = 1024;
    while (cap < (nbase + nextra) * 16 && cap < ((size_t)1 << 20))
        cap *= 2;
    if (!m || !q || !resize(m, cap)) {
        free(q);
        if (m)
            model_free(m);
        return ERR_NOMEM;
    }
    double totals[SLO_INTENT__COUNT] = {0};
    for (size_t i = 0; i < nbase + nextra; i++) {
        const struct slo_intent_example *ex = i < nbase ? &base[i] : &extra[i - nbase];
        if ((unsigned)ex->intent >= SLO_INTENT__COUNT || !ex->question)
            continue;
        extract(ex->question, q);
        if (q->words == 0)
            continue;
        if (!count(m, q, ex->intent, i < nbase ? 1.0 : SLO_INTENT_EXTRA_WEIGHT, totals)) {
            free(q);
            model_free(m);
            return ERR_NOMEM;
        }
        m->present |= 1u << ex->intent;
        m->examples++;
    }
    free(q);
    if (m->examples == 0) {
        model_free(m);
        return ERR_INVALID_FIELD;
    }
    /* counts -> smoothed log likelihoods, per intent over the vocabulary;
     * most counts are 0, whose value is one per intent */
    double vocab = (double)m->used, denom[SLO_INTENT__COUNT];
    float unseen[SLO_INTENT__COUNT];
    for (int c = 0; c < SLO_INTENT__COUNT; c++) {
        denom[c] = log(totals[c] + INTENT_ALPHA * vocab);
        unseen[c] = (float)(log(INTENT_ALPHA) - denom[c]);
    }
    for (size_t s = 0; s < m->cap; s++)
        if (m->keys[s])
            for (int c = 0; c < SLO_INTENT__COUNT; c++)
                m->w[s][c] = m->w[s][c] == 0 ? unseen[c] : (float)(log(m->w[s][c] + INTENT_ALPHA) - denom[c]);
    atomic_init(&m->refs, 1);
    *ret = m;
    return ERR_OK;
}

struct slo_intent_model *slo_intent_model_ref(struct slo_intent_model *m) {
    if (m)
        atomic_fetch_add(&m->refs, 1);
    return m;
}

struct slo_intent_model *slo_intent_model_unref(struct slo_intent_model *m) {
    if (m && atomic_fetch_sub(&m->refs, 1) == 1)
        model_free(m);
    return NULL;
}

size_t slo_intent_model_examples(const struct slo_intent_model *m) {
    return m ? m->examples : 0;
}

static struct slo_intent_model *builtin;
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

static void builtin_train(void) {
    if (slo_intent_model_train(slo_intent_train, slo_intent_train_len, NULL, 0, &builtin) != ERR_OK)
        builtin = NULL;
}

struct slo_intent_model *slo_intent_builtin(void) {
    pthread_once(&builtin_once, builtin_train);
    return builtin;
}

/* Names the (up to) two features with the largest log-likelihood ratio
 * for the chosen intent against the runner-up. */
static void explain(const struct slo_intent_model *m, const struct question *q, const size_t *slots, int best,
                    int second, char *cue, size_t len) {
    int top[2] = {-1, -1};
    double gain[2] = {0, 0};
    for (int i = 0; i < q->nf; i++) {
        if (slots[i] == SIZE_MAX)
            continue;
        double g = second < 0 ? m->w[slots[i]][best] : m->w[slots[i]][best] - m->w[slots[i]][second];
        if (top[0] < 0 || g > gain[0]) {
            top[1] = top[0], gain[1] = gain[0];
            top[0] = i, gain[0] = g;
        } else if (top[1] < 0 || g > gain[1]) {
            top[1] = i, gain[1] = g;
        }
    }
    cue[0] = '\0';
    size_t used = 0;
    for (int k = 0; k < 2 && top[k] >= 0 && (k == 0 || gain[k] > 0); k++) {
        if (k > 0 && used + 1 < len)
            cue[used++] = ' ';
        int w = feature_name(q, &q->f[top[k]], cue + used, len - used);
        used = w < 0 ? used : used + (size_t)w < len ? used + (size_t)w : len - 1;
    }
    if (!cue[0])
        snprintf(cue, len, "no known features");
}

void slo_intent_classify_with(const struct slo_intent_model *m, const char *question,
                              struct slo_intent_result *ret) {
    if (!m)
        m = slo_intent_builtin();
    if (!m) {
        slo_intent_classify_cues(question, ret);
        return;
    }
    struct question q;
    extract(question, &q);
    struct slo_intent_result r = {.intent = SLO_INTENT_OUT_OF_SCOPE, .confidence = 1.0,
                                  .content_words = q.content, .question_words = q.words};
    if (q.words == 0) {
        snprintf(r.cue, sizeof r.cue, "no words");
        *ret = r;
        return;
    }
    double score[SLO_INTENT__COUNT] = {0};
    size_t slots[FEATURES_MAX];
    for (int i = 0; i < q.nf; i++) {
        size_t s = slot_of(m, q.f[i].hash);
        slots[i] = m->keys[s] ? s : SIZE_MAX; /* unseen features say nothing */
        if (slots[i] != SIZE_MAX)
            for (int c = 0; c < SLO_INTENT__COUNT; c++)
                score[c] += m->w[s][c];
    }
    int best = -1, second = -1;
    for (int c = 0; c < SLO_INTENT__COUNT; c++) {
        if (!(m->present & (1u << c)))
            continue;
        if (best < 0 || score[c] > score[best]) {
            second = best;
            best = c;
        } else if (second < 0 || score[c] > score[second]) {
            second = c;
        }
    }
    double z = 0;
    for (int c = 0; c < SLO_INTENT__COUNT; c++)
        if (m->present & (1u << c))
            z += exp((score[c] - score[best]) / INTENT_TEMPERATURE);
    r.intent = (enum slo_intent)best;
    r.confidence = 1.0 / z;
    r.low_confidence = r.confidence < SLO_INTENT_MIN_CONFIDENCE;
    explain(m, &q, slots, best, second, r.cue, sizeof r.cue);
    *ret = r;
}

void slo_intent_classify(const char *question, struct slo_intent_result *ret) {
    slo_intent_classify_with(NULL, question, ret);
}

/* ---- the cue table ---- */

struct cue {
    const char *phrase; /* lower case, matched at a word boundary */
    bool at_start;      /* only as the first words of the question */
    enum slo_intent intent;
    double confidence;
};

/* Checked in order; the first match wins. */
static const struct cue cues[] = {
    {"compare", false, SLO_INTENT_COMPARISON, 0.9},
    {"difference between", false, SLO_INTENT_COMPARISON, 0.9},
    {"differences between", false, SLO_INTENT_COMPARISON, 0.9},
    {"versus", false, SLO_INTENT_COMPARISON, 0.8},
    {"vs", false, SLO_INTENT_COMPARISON, 0.7},
    {"summarize", false, SLO_INTENT_SUMMARY, 0.9},
    {"summarise", false, SLO_INTENT_SUMMARY, 0.9},
    {"summary of", false, SLO_INTENT_SUMMARY, 0.9},
    {"overview of", false, SLO_INTENT_SUMMARY, 0.8},
    {"tl dr", false, SLO_INTENT_SUMMARY, 0.8},
    {"list", true, SLO_INTENT_LIST, 0.9},
    {"name all", true, SLO_INTENT_LIST, 0.9},
    {"which are the", true, SLO_INTENT_LIST, 0.7},
    {"what are the", true, SLO_INTENT_LIST, 0.6},
    {"how do i", true, SLO_INTENT_PROCEDURAL, 0.9},
    {"how to", true, SLO_INTENT_PROCEDURAL, 0.9},
    {"how can i", true, SLO_INTENT_PROCEDURAL, 0.9},
    {"how should i", true, SLO_INTENT_PROCEDURAL, 0.85},
    {"steps to", false, SLO_INTENT_PROCEDURAL, 0.8},
    {"why", true, SLO_INTENT_EXPLANATION, 0.85},
    {"explain", false, SLO_INTENT_EXPLANATION, 0.85},
    {"how does", true, SLO_INTENT_EXPLANATION, 0.8},
    {"how do", true, SLO_INTENT_EXPLANATION, 0.7},
    {"what happens", true, SLO_INTENT_EXPLANATION, 0.7},
    {"hello", true, SLO_INTENT_CHITCHAT, 0.9},
    {"hi", true, SLO_INTENT_CHITCHAT, 0.8},
    {"hey", true, SLO_INTENT_CHITCHAT, 0.8},
    {"thanks", true, SLO_INTENT_CHITCHAT, 0.9},
    {"thank you", true, SLO_INTENT_CHITCHAT, 0.9},
    {"who", true, SLO_INTENT_FACTOID, 0.8},
    {"when", true, SLO_INTENT_FACTOID, 0.8},
    {"where", true, SLO_INTENT_FACTOID, 0.8},
    {"how many", true, SLO_INTENT_FACTOID, 0.85},
    {"how much", true, SLO_INTENT_FACTOID, 0.85},
    {"which", true, SLO_INTENT_FACTOID, 0.7},
    {"what", true, SLO_INTENT_FACTOID, 0.6},
    {"is", true, SLO_INTENT_FACTOID, 0.5},
    {"does", true, SLO_INTENT_FACTOID, 0.5},
    {"can", true, SLO_INTENT_FACTOID, 0.5},
};

/* The question's tokens, lower-cased and joined by single spaces, so cue
 * phrases match at word boundaries with a plain substring search. */
static void normalise(const char *q, char *out, size_t outlen) {
    size_t n = strlen(q), pos = 0, used = 0;
    struct text_token t;
    out[0] = ' ';
    used = 1;
    while (text_next_token(q, n, &pos, &t) && used + t.len + 2 < outlen) {
        text_token_lower(q, &t, out + used, outlen - used);
        used += t.len;
        out[used++] = ' ';
    }
    out[used] = '\0';
}

static void set_cue(struct slo_intent_result *r, enum slo_intent intent, double confidence, const char *cue) {
    r->intent = intent;
    r->confidence = confidence;
    snprintf(r->cue, sizeof r->cue, "%s", cue);
}

void slo_intent_classify_cues(const char *question, struct slo_intent_result *ret) {
    char norm[1024];
    normalise(question, norm, sizeof norm);
    struct slo_intent_result r = {0};
    set_cue(&r, SLO_INTENT_FACTOID, 0.3, "default");
    size_t n = strlen(question), pos = 0;
    struct text_token t;
    while (text_next_token(question, n, &pos, &t)) {
        char w[64];
        text_token_lower(question, &t, w, sizeof w);
        r.question_words++;
        if (!text_is_stopword(w))
            r.content_words++;
    }
    for (size_t i = 0; i < sizeof cues / sizeof cues[0]; i++) {
        char pat[64];
        size_t pl = strlen(cues[i].phrase);
        if (pl + 3 > sizeof pat)
            continue;
        pat[0] = ' ';
        memcpy(pat + 1, cues[i].phrase, pl);
        pat[pl + 1] = ' ';
        pat[pl + 2] = '\0';
        const char *hit = strstr(norm, pat);
        if (hit && (!cues[i].at_start || hit == norm)) {
            set_cue(&r, cues[i].intent, cues[i].confidence, cues[i].phrase);
            break;
        }
    }
    if (r.question_words == 0)
        set_cue(&r, SLO_INTENT_OUT_OF_SCOPE, 1.0, "no words");
    else if (r.intent == SLO_INTENT_CHITCHAT && r.content_words > 3)
        set_cue(&r, SLO_INTENT_FACTOID, 0.4, "greeting with content"); /* "hi, how do I reset my password" */
    r.low_confidence = r.confidence < SLO_INTENT_MIN_CONFIDENCE;
    *ret = r;
}
