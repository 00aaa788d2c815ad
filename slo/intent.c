/* intent.c - a cue-based intent classifier.
 *
 * The foundation classifier: leading interrogatives and cue phrases decide
 * the intent, with a confidence that reflects how specific the cue is.  It
 * needs no model files and runs in microseconds. */
#include "intent.h"
#include "text.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

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

void slo_intent_classify(const char *question, struct slo_intent_result *ret) {
    char norm[1024];
    normalise(question, norm, sizeof norm);
    struct slo_intent_result r = {SLO_INTENT_FACTOID, 0.3, 0, 0, "default"};
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
            r.intent = cues[i].intent;
            r.confidence = cues[i].confidence;
            r.cue = cues[i].phrase;
            break;
        }
    }
    if (r.question_words == 0) {
        r.intent = SLO_INTENT_OUT_OF_SCOPE;
        r.confidence = 1.0;
        r.cue = "no words";
    } else if (r.intent == SLO_INTENT_CHITCHAT && r.content_words > 3) {
        /* "hi, how do I reset my password" is not chit-chat */
        r.intent = SLO_INTENT_FACTOID;
        r.confidence = 0.4;
        r.cue = "greeting with content";
    }
    *ret = r;
}
