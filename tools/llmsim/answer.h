/* answer.h - the simulator's answer model: an extractive reader that can be
 * told to err.
 *
 * Passages are lines starting "[N] " in system, developer or user messages;
 * the question is a "Question:" line of the last user message, else that
 * message's text outside its passages.  The answer is the passage sentence
 * that covers the most question terms, followed by " [N]", or the fixed
 * abstention when no sentence covers enough of them.  With an answer key
 * entry for the question (key.h) a correct outcome is the gold answer, as
 * found in a passage, instead. */
#ifndef SLORAG_LLMSIM_ANSWER_H
#define SLORAG_LLMSIM_ANSWER_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "err.h"
#include "key.h"

#define SIM_ABSTAIN_TEXT "I cannot answer from the documents."

enum sim_outcome {
    SIM_OUT_CORRECT, /* what the reader found: the best sentence, or the abstention when none fits */
    SIM_OUT_WRONG,   /* a sentence from another passage (or any sentence when none fits) */
    SIM_OUT_ABSTAIN, /* abstained although told to answer */
};

struct sim_msg {
    const char *role; /* "system", "developer", "user", "assistant", "tool" */
    const char *text; /* not NUL-terminated; owned by the caller */
    size_t len;
};

struct sim_answer_params {
    double min_overlap;  /* share of question terms a sentence must contain, 0..1 */
    double abstain_rate; /* probability of abstaining regardless */
    double wrong_rate;   /* probability of answering from the wrong place */
    double u_outcome;    /* uniform draw in [0,1) deciding abstain/wrong/correct */
    double u_pick;       /* uniform draw in [0,1) choosing the wrong sentence */
    bool spans;          /* answer with the span the question asks for, when the sentence has one */
    const struct sim_key *key; /* the answer key, or NULL */
};

struct sim_answer {
    char *text;   /* in the caller's arena, NUL-terminated */
    size_t len;
    int cited;    /* passage number cited, 0 for an abstention */
    bool found;   /* the reader found a supporting sentence (keyed: a passage holds the gold answer) */
    enum sim_outcome outcome;
};

/* Composes the answer for a conversation.  Allocates from a only. */
enum err sim_answer_compose(const struct sim_msg *msgs, size_t nmsgs, const struct sim_answer_params *p,
                            struct arena *a, struct sim_answer *ret_answer);

#endif
