/* key.h - an answer key: the simulator's tiers as readers of known
 * accuracy.
 *
 * Without a key a tier's "correct" outcome is what the simulator's own
 * reader finds (answer.c), so every tier is capped by that reader.  With
 * one (the config's "answer_key": a SQuAD v1.1/v2.0 file), a question the
 * key holds is answered as a model that reads perfectly would answer it
 * from the passages it was sent: the gold answer when one of them holds it,
 * an abstention when none does or the question is unanswerable.  The
 * tier's wrong_rate and abstain_rate then set its accuracy; retrieval
 * still decides whether the answer is in the context at all.  Questions
 * the key does not hold go to the reader as before.
 *
 * Lookup is by the question text with ASCII case folded and white space
 * runs collapsed. */
#ifndef SLORAG_LLMSIM_KEY_H
#define SLORAG_LLMSIM_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define SIM_KEY_MAX_ENTRIES 200000
#define SIM_KEY_MAX_ANSWERS 8

struct sim_key_entry {
    char *question; /* normalised; owned */
    char *answers[SIM_KEY_MAX_ANSWERS]; /* as written in the file; owned */
    size_t nanswers;
    bool impossible; /* v2.0 is_impossible, or no answers */
    size_t order;    /* position in the file: of equal questions the first wins */
};

struct sim_key;

/* Loads a SQuAD-format file.  On failure writes a message naming the file
 * and the offending path and returns ERR_CONFIG (or ERR_NOMEM). */
enum err sim_key_load(const char *path, char *errbuf, size_t errlen, struct sim_key **ret_key);
struct sim_key *sim_key_free(struct sim_key *k); /* NULL-safe, returns NULL */
size_t sim_key_count(const struct sim_key *k);

/* The entry for question text q (n bytes, any case and spacing), or NULL. */
const struct sim_key_entry *sim_key_find(const struct sim_key *k, const char *q, size_t n);

/* Where needle (NUL-terminated) occurs in hay[0, n), ASCII case folded and
 * any run of white space matching any other; -1 when it does not. */
long sim_key_locate(const char *hay, size_t n, const char *needle);

#endif
