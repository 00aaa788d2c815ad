/* profile.h - a tenant's service level objectives.
 *
 * JSON shape (every key optional; missing ones take the built-in defaults):
 *
 *   {"default": {"quality_min": 0.7, "cost_max": 0.002, "latency_p95_ms": 3000,
 *                "deadline_ms": 8000, "priorities": ["latency", "quality", "cost"]},
 *    "intents": {"factoid": {"latency_p95_ms": 1500}},
 *    "budget":  {"per_day": 5.0, "per_month": 100.0, "when_spent": "degrade"}}
 *
 * An intent override names only the keys it changes; the rest come from
 * "default".  docs/slo.md lists every key with its range. */
#ifndef SLORAG_SLO_PROFILE_H
#define SLORAG_SLO_PROFILE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "intent.h"

/* The three objectives, in the order used for bitmasks (1u << obj). */
enum slo_objective { SLO_OBJ_QUALITY, SLO_OBJ_COST, SLO_OBJ_LATENCY, SLO_OBJ__COUNT };

#define SLO_MS_MAX 600000 /* latency and deadline upper bound: 10 minutes */

struct slo_objectives {
    double quality_min; /* 0..1: predicted answer quality must reach it */
    double cost_max;    /* >= 0: currency units per query */
    int latency_p95_ms; /* 1..SLO_MS_MAX: predicted p95 latency must stay under it */
    int deadline_ms;    /* latency_p95_ms..SLO_MS_MAX: hard per-request deadline */
    enum slo_objective priorities[SLO_OBJ__COUNT]; /* highest first; a permutation */
};

enum slo_when_spent { SLO_SPENT_REFUSE, SLO_SPENT_DEGRADE };

struct slo_budget {
    double per_day;   /* currency units per UTC day; 0 = unlimited */
    double per_month; /* per UTC calendar month; 0 = unlimited */
    enum slo_when_spent when_spent;
};

/* Bits of struct slo_override.set: which keys an intent override names. */
enum {
    SLO_KEY_QUALITY_MIN = 1u << 0,
    SLO_KEY_COST_MAX = 1u << 1,
    SLO_KEY_LATENCY_P95 = 1u << 2,
    SLO_KEY_DEADLINE = 1u << 3,
    SLO_KEY_PRIORITIES = 1u << 4,
};

struct slo_override {
    unsigned set;              /* SLO_KEY_* bits; 0 = no override */
    struct slo_objectives obj; /* only the fields named in set are meaningful */
};

struct slo_profile {
    struct slo_objectives def;
    struct slo_override intents[SLO_INTENT__COUNT];
    struct slo_budget budget;
};

/* A per-request tightening: quality_min < 0, cost_max < 0, latency_p95_ms
 * <= 0 and deadline_ms <= 0 mean "not given". */
struct slo_tightening {
    double quality_min;
    double cost_max;
    int latency_p95_ms;
    int deadline_ms;
};
#define SLO_TIGHTENING_NONE ((struct slo_tightening){-1.0, -1.0, 0, 0})

const char *slo_objective_name(enum slo_objective o);
int slo_objective_parse(const char *name); /* -1 when unknown */
const char *slo_when_spent_name(enum slo_when_spent w);

/* Built-in defaults: quality_min 0.7, cost_max 0.002, latency_p95_ms 3000,
 * deadline_ms 8000, priorities [latency, quality, cost], no intent
 * overrides, unlimited budget, when_spent degrade. */
void slo_profile_defaults(struct slo_profile *ret);

/* Parses j (NULL = defaults).  On failure returns ERR_INVALID_FIELD, writes
 * a path-qualified message ("budget.when_spent: must be \"refuse\" or
 * \"degrade\"") into errbuf and leaves *ret untouched. */
enum err slo_profile_parse(const json_t *j, char *errbuf, size_t errlen, struct slo_profile *ret);
/* The same from JSON text (NULL = defaults); ERR_BAD_JSON for bad syntax. */
enum err slo_profile_parse_text(const char *text, char *errbuf, size_t errlen, struct slo_profile *ret);
/* Every default key, the keys each override names, the budget.  NULL on
 * allocation failure.  Parsing the result gives back an equal profile. */
json_t *slo_profile_to_json(const struct slo_profile *p);

/* The objectives for one intent: the override's keys over the defaults. */
void slo_profile_resolve(const struct slo_profile *p, enum slo_intent intent, struct slo_objectives *ret);

/* Parses a request's "slo" object (keys quality_min, cost_max,
 * latency_p95_ms, deadline_ms; errors prefixed "slo.").  Values outside the
 * profile ranges are errors; looser-than-profile values are not (tighten
 * ignores them). */
enum err slo_tightening_parse(const json_t *j, char *errbuf, size_t errlen, struct slo_tightening *ret);
/* Applies t to o: may raise quality_min, lower cost_max, latency_p95_ms
 * and deadline_ms, never the reverse.  A deadline below the latency target
 * pulls the target down with it.  Returns the SLO_KEY_* bits that changed. */
unsigned slo_objectives_tighten(struct slo_objectives *o, const struct slo_tightening *t);

#endif
