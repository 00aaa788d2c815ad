/* intent.h - query intent taxonomy and the built-in, trained classifier.
 *
 * The classifier is a naive Bayes model over cheap features of the
 * question, trained from labelled example questions: the built-in set
 * (slo/data/intents-train.tsv, compiled into the binary) and, per tenant,
 * the tenant's own examples.  Training a few hundred examples takes well
 * under a millisecond; classifying takes a few microseconds.  See
 * docs/slo.md, "Intents". */
#ifndef SLORAG_INTENT_H
#define SLORAG_INTENT_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define SLO_INTENT_LIST(X) \
    X(FACTOID, "factoid")         \
    X(EXPLANATION, "explanation") \
    X(PROCEDURAL, "procedural")   \
    X(COMPARISON, "comparison")   \
    X(LIST, "list")               \
    X(SUMMARY, "summary")         \
    X(CHITCHAT, "chitchat")       \
    X(OUT_OF_SCOPE, "out_of_scope")

enum slo_intent {
#define SLO_INTENT_ENUM(sym, name) SLO_INTENT_##sym,
    SLO_INTENT_LIST(SLO_INTENT_ENUM)
#undef SLO_INTENT_ENUM
    SLO_INTENT__COUNT
};

/* Below this confidence the caller should not trust the intent for
 * anything that matters: the executor plans with the tenant's default
 * profile instead of the intent's override. */
#define SLO_INTENT_MIN_CONFIDENCE 0.5
/* A tenant's own example counts as this many built-in ones: a tenant
 * adds a few examples of its users' phrasing to several hundred generic
 * ones, and those few must be able to move the decision. */
#define SLO_INTENT_EXTRA_WEIGHT 4.0
/* Limits on a tenant's examples (the admin API enforces them). */
#define SLO_INTENT_EXAMPLES_MAX 500
#define SLO_INTENT_QUESTION_MAX 512
#define SLO_INTENT_CUE_MAX 64

struct slo_intent_result {
    enum slo_intent intent;
    double confidence;   /* 0..1: the posterior of the chosen intent */
    bool low_confidence; /* confidence < SLO_INTENT_MIN_CONFIDENCE */
    int content_words;   /* non-stopword tokens: a cheap feature the planner reads */
    int question_words;  /* all tokens */
    /* The features that weighed most for the chosen intent against the
     * runner-up, e.g. "bigram=do_i word=i"; or "no words". */
    char cue[SLO_INTENT_CUE_MAX];
};

/* One labelled question; the question is borrowed. */
struct slo_intent_example {
    enum slo_intent intent;
    const char *question;
};

/* The built-in examples, compiled from slo/data/intents-train.tsv. */
extern const struct slo_intent_example slo_intent_train[];
extern const size_t slo_intent_train_len;

/* A trained model: immutable once trained, shared by reference count. */
struct slo_intent_model;

const char *slo_intent_name(enum slo_intent i);
/* Returns -1 for an unknown name. */
int slo_intent_parse(const char *name);

/* Trains on base (weight 1 each) plus extra (weight SLO_INTENT_EXTRA_WEIGHT
 * each); either may be empty.  Examples with an out-of-range intent or no
 * words are skipped.  Deterministic: the same examples in the same order
 * give the same model.  ERR_NOMEM, or ERR_INVALID_FIELD when no example
 * was usable. */
enum err slo_intent_model_train(const struct slo_intent_example *base, size_t nbase,
                                const struct slo_intent_example *extra, size_t nextra,
                                struct slo_intent_model **ret);
struct slo_intent_model *slo_intent_model_ref(struct slo_intent_model *m);
/* NULL-safe; frees the model with its last reference; returns NULL. */
struct slo_intent_model *slo_intent_model_unref(struct slo_intent_model *m);
/* Examples the model was trained on (base + extra, usable ones). */
size_t slo_intent_model_examples(const struct slo_intent_model *m);

/* The model trained on the built-in examples, trained on first use and
 * kept for the life of the process (never unref it).  NULL only when that
 * training ran out of memory. */
struct slo_intent_model *slo_intent_builtin(void);

/* Classifies with m (NULL: the built-in model; when that is unavailable,
 * the cue table below).  An empty question (no words) is out_of_scope
 * with confidence 1. */
void slo_intent_classify_with(const struct slo_intent_model *m, const char *question,
                              struct slo_intent_result *ret);
/* The same with the built-in model. */
void slo_intent_classify(const char *question, struct slo_intent_result *ret);
/* The former hand-written cue table: leading interrogatives and cue
 * phrases, first match wins.  Kept as the fallback and as the baseline
 * the benchmark compares against. */
void slo_intent_classify_cues(const char *question, struct slo_intent_result *ret);

#endif
