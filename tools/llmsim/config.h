/* config.h - the simulator's JSON configuration: global settings and the
 * model tiers with their latency, answer-quality and fault parameters.
 * See docs/llmsim.md for every key and its range. */
#ifndef SLORAG_LLMSIM_CONFIG_H
#define SLORAG_LLMSIM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "key.h"

/* Per-request outcomes other than a normal answer, in the order their
 * probabilities are stacked on one draw.  ERROR is the model's error_rate;
 * the rest are the keys of its "faults" object. */
#define SIM_FAULT_LIST(X)                                                        \
    X(ERROR, "error_rate")                                                       \
    X(HTTP500, "http500")                                                        \
    X(HTTP429, "http429")                                                        \
    X(TIMEOUT, "timeout")                                                        \
    X(MALFORMED, "malformed")                                                    \
    X(STALL, "stall")                                                            \
    X(DROP, "drop")

enum sim_fault {
    SIM_FAULT_NONE,
#define SIM_FAULT_ENUM(sym, key) SIM_FAULT_##sym,
    SIM_FAULT_LIST(SIM_FAULT_ENUM)
#undef SIM_FAULT_ENUM
    SIM_FAULT__COUNT
};

#define SIM_MODEL_NAME_MAX 64

struct sim_model {
    char name[SIM_MODEL_NAME_MAX + 1];
    double ttft_ms;       /* time to first token */
    double ms_per_token;  /* time between tokens */
    double jitter;        /* latencies are scaled by a factor in [1-jitter, 1+jitter] */
    int max_concurrency;  /* requests served at once; the rest wait in FIFO order */
    double wrong_rate;    /* answer from the wrong passage */
    double abstain_rate;  /* abstain although the answer is there */
    int spans;            /* 1: answer with the span the question asks for (agents/span.c), not the sentence */
    double fault_p[SIM_FAULT__COUNT]; /* [SIM_FAULT_NONE] unused */
};

struct sim_cfg {
    char listen_host[64];
    int listen_port;
    uint64_t seed;
    int embedding_dim;
    long max_body_bytes;
    int hang_ms;          /* cap on timeout and stall faults: the connection is closed then */
    double min_overlap;   /* share of question terms an answer sentence must contain */
    int max_connections;
    size_t nmodels;
    struct sim_model *models; /* owned */
    struct sim_key *key;      /* "answer_key" (key.h), NULL without one; owned */
};

/* Loads and validates the file.  On failure writes a message naming the
 * offending path ("models[1].ttft_ms: must be >= 0") and returns
 * ERR_CONFIG (or ERR_NOMEM). */
enum err sim_cfg_load(const char *path, char *errbuf, size_t errlen, struct sim_cfg **ret_cfg);
struct sim_cfg *sim_cfg_free(struct sim_cfg *c);

/* Applies a --listen value; false (with a message) when it is not HOST:PORT. */
bool sim_cfg_set_listen(struct sim_cfg *c, const char *hostport, char *errbuf, size_t errlen);

const struct sim_model *sim_cfg_model(const struct sim_cfg *c, const char *name);
const char *sim_fault_name(enum sim_fault f);
/* The outcome a uniform draw u in [0,1) selects for model m. */
enum sim_fault sim_fault_draw(const struct sim_model *m, double u);

#endif
