/* intent.h - query intent taxonomy and the built-in classifier. */
#ifndef SLORAG_INTENT_H
#define SLORAG_INTENT_H

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

struct slo_intent_result {
    enum slo_intent intent;
    double confidence;  /* 0..1 */
    int content_words;  /* non-stopword tokens: a cheap feature the planner reads */
    int question_words; /* all tokens */
    const char *cue;    /* the cue that decided it, static string */
};

const char *slo_intent_name(enum slo_intent i);
/* Returns -1 for an unknown name. */
int slo_intent_parse(const char *name);
void slo_intent_classify(const char *question, struct slo_intent_result *ret);

#endif
