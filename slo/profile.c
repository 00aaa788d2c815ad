/* profile.c - parsing, serialising and resolving SLO profiles.
 *
 * Parsing is strict in the nginx way: an unknown key, an unknown intent
 * name or an out-of-range value fails with the JSON path of the offending
 * value.  An intent override is checked after merging with the defaults,
 * so "intents.factoid.latency_p95_ms: must be <= deadline_ms (8000)" names
 * the inherited deadline it conflicts with.  The parse works on a copy
 * and writes *ret only on success. */
#include "profile.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *slo_objective_name(enum slo_objective o) {
    static const char *const n[] = {"quality", "cost", "latency"};
    return (unsigned)o < SLO_OBJ__COUNT ? n[o] : "unknown";
}

int slo_objective_parse(const char *name) {
    for (int i = 0; i < SLO_OBJ__COUNT; i++)
        if (strcmp(name, slo_objective_name((enum slo_objective)i)) == 0)
            return i;
    return -1;
}

const char *slo_when_spent_name(enum slo_when_spent w) {
    return w == SLO_SPENT_REFUSE ? "refuse" : "degrade";
}

void slo_profile_defaults(struct slo_profile *ret) {
    *ret = (struct slo_profile){
        .def = {.quality_min = 0.7,
                .cost_max = 0.002,
                .latency_p95_ms = 3000,
                .deadline_ms = 8000,
                .priorities = {SLO_OBJ_LATENCY, SLO_OBJ_QUALITY, SLO_OBJ_COST}},
        .budget = {.per_day = 0, .per_month = 0, .when_spent = SLO_SPENT_DEGRADE},
    };
}

static enum err fail(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum err fail(char *errbuf, size_t errlen, const char *fmt, ...) {
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return ERR_INVALID_FIELD;
}

static bool get_number(const json_t *v, double *ret) {
    if (!json_is_number(v))
        return false;
    double d = json_number_value(v);
    if (!isfinite(d))
        return false;
    *ret = d;
    return true;
}

/* Milliseconds: an integral number in 1..SLO_MS_MAX (2000.0 is accepted). */
static bool get_ms(const json_t *v, int *ret) {
    double d;
    if (!get_number(v, &d) || d < 1 || d > SLO_MS_MAX || d != floor(d))
        return false;
    *ret = (int)d;
    return true;
}

static enum err parse_priorities(const json_t *v, const char *path, char *errbuf, size_t errlen,
                                 enum slo_objective *ret) {
    if (!json_is_array(v) || json_array_size(v) != SLO_OBJ__COUNT)
        return fail(errbuf, errlen, "%s.priorities: must be an array listing \"quality\", \"cost\" and \"latency\" once each",
                    path);
    enum slo_objective p[SLO_OBJ__COUNT];
    unsigned seen = 0;
    for (size_t i = 0; i < SLO_OBJ__COUNT; i++) {
        const json_t *e = json_array_get(v, i);
        int o = json_is_string(e) ? slo_objective_parse(json_string_value(e)) : -1;
        if (o < 0)
            return fail(errbuf, errlen, "%s.priorities[%zu]: must be \"quality\", \"cost\" or \"latency\"", path, i);
        if (seen & (1u << o))
            return fail(errbuf, errlen, "%s.priorities[%zu]: \"%s\" is listed twice", path, i,
                        slo_objective_name((enum slo_objective)o));
        seen |= 1u << o;
        p[i] = (enum slo_objective)o;
    }
    memcpy(ret, p, sizeof p);
    return ERR_OK;
}

/* Parses one objectives object into *o (which holds the inherited values)
 * and records the keys it names in *ret_set. */
static enum err parse_objectives(const json_t *j, const char *path, char *errbuf, size_t errlen,
                                 struct slo_objectives *o, unsigned *ret_set) {
    if (!json_is_object(j))
        return fail(errbuf, errlen, "%s: must be an object", path);
    unsigned set = 0;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)j, key, v) {
        if (strcmp(key, "quality_min") == 0) {
            if (!get_number(v, &o->quality_min) || o->quality_min < 0 || o->quality_min > 1)
                return fail(errbuf, errlen, "%s.quality_min: must be a number in 0..1", path);
            set |= SLO_KEY_QUALITY_MIN;
        } else if (strcmp(key, "cost_max") == 0) {
            if (!get_number(v, &o->cost_max) || o->cost_max < 0)
                return fail(errbuf, errlen, "%s.cost_max: must be a number >= 0", path);
            set |= SLO_KEY_COST_MAX;
        } else if (strcmp(key, "latency_p95_ms") == 0) {
            if (!get_ms(v, &o->latency_p95_ms))
                return fail(errbuf, errlen, "%s.latency_p95_ms: must be an integer in 1..%d", path, SLO_MS_MAX);
            set |= SLO_KEY_LATENCY_P95;
        } else if (strcmp(key, "deadline_ms") == 0) {
            if (!get_ms(v, &o->deadline_ms))
                return fail(errbuf, errlen, "%s.deadline_ms: must be an integer in 1..%d", path, SLO_MS_MAX);
            set |= SLO_KEY_DEADLINE;
        } else if (strcmp(key, "priorities") == 0) {
            enum err e = parse_priorities(v, path, errbuf, errlen, o->priorities);
            if (e != ERR_OK)
                return e;
            set |= SLO_KEY_PRIORITIES;
        } else {
            return fail(errbuf, errlen, "%s.%s: unknown key", path, key);
        }
    }
    /* The cross-key rule is reported on the key this level set: the
     * latency target when it names one, else its deadline. */
    if (o->latency_p95_ms > o->deadline_ms) {
        if ((set & SLO_KEY_LATENCY_P95) || !(set & SLO_KEY_DEADLINE))
            return fail(errbuf, errlen, "%s.latency_p95_ms: must be <= deadline_ms (%d)", path, o->deadline_ms);
        return fail(errbuf, errlen, "%s.deadline_ms: must be >= latency_p95_ms (%d)", path, o->latency_p95_ms);
    }
    *ret_set = set;
    return ERR_OK;
}

static enum err parse_budget(const json_t *j, char *errbuf, size_t errlen, struct slo_budget *b) {
    if (!json_is_object(j))
        return fail(errbuf, errlen, "budget: must be an object");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)j, key, v) {
        if (strcmp(key, "per_day") == 0) {
            if (!get_number(v, &b->per_day) || b->per_day < 0)
                return fail(errbuf, errlen, "budget.per_day: must be a number >= 0 (0 = unlimited)");
        } else if (strcmp(key, "per_month") == 0) {
            if (!get_number(v, &b->per_month) || b->per_month < 0)
                return fail(errbuf, errlen, "budget.per_month: must be a number >= 0 (0 = unlimited)");
        } else if (strcmp(key, "when_spent") == 0) {
            const char *s = json_is_string(v) ? json_string_value(v) : "";
            if (strcmp(s, "refuse") == 0)
                b->when_spent = SLO_SPENT_REFUSE;
            else if (strcmp(s, "degrade") == 0)
                b->when_spent = SLO_SPENT_DEGRADE;
            else
                return fail(errbuf, errlen, "budget.when_spent: must be \"refuse\" or \"degrade\"");
        } else {
            return fail(errbuf, errlen, "budget.%s: unknown key", key);
        }
    }
    return ERR_OK;
}

enum err slo_profile_parse(const json_t *j, char *errbuf, size_t errlen, struct slo_profile *ret) {
    struct slo_profile p;
    slo_profile_defaults(&p);
    if (!j) {
        *ret = p;
        return ERR_OK;
    }
    if (!json_is_object(j))
        return fail(errbuf, errlen, "profile: must be an object");
    const json_t *def = json_object_get(j, "default"), *intents = json_object_get(j, "intents"),
                 *budget = json_object_get(j, "budget");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)j, key, v) {
        if (strcmp(key, "default") && strcmp(key, "intents") && strcmp(key, "budget"))
            return fail(errbuf, errlen, "%s: unknown key", key);
    }
    enum err e;
    unsigned set;
    /* Defaults first: the overrides inherit from them. */
    if (def && (e = parse_objectives(def, "default", errbuf, errlen, &p.def, &set)) != ERR_OK)
        return e;
    if (intents) {
        if (!json_is_object(intents))
            return fail(errbuf, errlen, "intents: must be an object");
        json_object_foreach((json_t *)intents, key, v) {
            int i = slo_intent_parse(key);
            if (i < 0)
                return fail(errbuf, errlen, "intents.%s: unknown intent", key);
            char path[64];
            snprintf(path, sizeof path, "intents.%s", key);
            struct slo_objectives o = p.def;
            if ((e = parse_objectives(v, path, errbuf, errlen, &o, &set)) != ERR_OK)
                return e;
            p.intents[i] = (struct slo_override){.set = set, .obj = o};
        }
    }
    if (budget && (e = parse_budget(budget, errbuf, errlen, &p.budget)) != ERR_OK)
        return e;
    *ret = p;
    return ERR_OK;
}

enum err slo_profile_parse_text(const char *text, char *errbuf, size_t errlen, struct slo_profile *ret) {
    if (!text)
        return slo_profile_parse(NULL, errbuf, errlen, ret);
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "profile: invalid JSON at line %d: %s", jerr.line, jerr.text);
        return ERR_BAD_JSON;
    }
    enum err e = slo_profile_parse(j, errbuf, errlen, ret);
    json_decref(j);
    return e;
}

static json_t *priorities_json(const enum slo_objective *p) {
    return json_pack("[sss]", slo_objective_name(p[0]), slo_objective_name(p[1]), slo_objective_name(p[2]));
}

/* All keys in set, from o.  NULL on allocation failure. */
static json_t *objectives_json(const struct slo_objectives *o, unsigned set) {
    json_t *j = json_object();
    if (!j)
        return NULL;
    int bad = 0;
    if (set & SLO_KEY_QUALITY_MIN)
        bad |= json_object_set_new(j, "quality_min", json_real(o->quality_min));
    if (set & SLO_KEY_COST_MAX)
        bad |= json_object_set_new(j, "cost_max", json_real(o->cost_max));
    if (set & SLO_KEY_LATENCY_P95)
        bad |= json_object_set_new(j, "latency_p95_ms", json_integer(o->latency_p95_ms));
    if (set & SLO_KEY_DEADLINE)
        bad |= json_object_set_new(j, "deadline_ms", json_integer(o->deadline_ms));
    if (set & SLO_KEY_PRIORITIES)
        bad |= json_object_set_new(j, "priorities", priorities_json(o->priorities));
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_t *slo_profile_to_json(const struct slo_profile *p) {
    const unsigned all = SLO_KEY_QUALITY_MIN | SLO_KEY_COST_MAX | SLO_KEY_LATENCY_P95 | SLO_KEY_DEADLINE |
                         SLO_KEY_PRIORITIES;
    json_t *intents = json_object();
    int bad = !intents;
    for (int i = 0; i < SLO_INTENT__COUNT && !bad; i++)
        if (p->intents[i].set)
            bad |= json_object_set_new(intents, slo_intent_name((enum slo_intent)i),
                                       objectives_json(&p->intents[i].obj, p->intents[i].set));
    json_t *j = bad ? NULL
                    : json_pack("{s:o, s:o, s:{s:f, s:f, s:s}}", "default", objectives_json(&p->def, all), "intents",
                                intents, "budget", "per_day", p->budget.per_day, "per_month", p->budget.per_month,
                                "when_spent", slo_when_spent_name(p->budget.when_spent));
    if (!j && bad)
        json_decref(intents);
    return j;
}

void slo_profile_resolve(const struct slo_profile *p, enum slo_intent intent, struct slo_objectives *ret) {
    struct slo_objectives o = p->def;
    if ((unsigned)intent < SLO_INTENT__COUNT) {
        const struct slo_override *ov = &p->intents[intent];
        if (ov->set & SLO_KEY_QUALITY_MIN)
            o.quality_min = ov->obj.quality_min;
        if (ov->set & SLO_KEY_COST_MAX)
            o.cost_max = ov->obj.cost_max;
        if (ov->set & SLO_KEY_LATENCY_P95)
            o.latency_p95_ms = ov->obj.latency_p95_ms;
        if (ov->set & SLO_KEY_DEADLINE)
            o.deadline_ms = ov->obj.deadline_ms;
        if (ov->set & SLO_KEY_PRIORITIES)
            memcpy(o.priorities, ov->obj.priorities, sizeof o.priorities);
    }
    *ret = o;
}

enum err slo_tightening_parse(const json_t *j, char *errbuf, size_t errlen, struct slo_tightening *ret) {
    struct slo_tightening t = SLO_TIGHTENING_NONE;
    if (!json_is_object(j))
        return fail(errbuf, errlen, "slo: must be an object");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)j, key, v) {
        if (strcmp(key, "quality_min") == 0) {
            if (!get_number(v, &t.quality_min) || t.quality_min < 0 || t.quality_min > 1)
                return fail(errbuf, errlen, "slo.quality_min: must be a number in 0..1");
        } else if (strcmp(key, "cost_max") == 0) {
            if (!get_number(v, &t.cost_max) || t.cost_max < 0)
                return fail(errbuf, errlen, "slo.cost_max: must be a number >= 0");
        } else if (strcmp(key, "latency_p95_ms") == 0) {
            if (!get_ms(v, &t.latency_p95_ms))
                return fail(errbuf, errlen, "slo.latency_p95_ms: must be an integer in 1..%d", SLO_MS_MAX);
        } else if (strcmp(key, "deadline_ms") == 0) {
            if (!get_ms(v, &t.deadline_ms))
                return fail(errbuf, errlen, "slo.deadline_ms: must be an integer in 1..%d", SLO_MS_MAX);
        } else {
            return fail(errbuf, errlen, "slo.%s: unknown key", key);
        }
    }
    *ret = t;
    return ERR_OK;
}

unsigned slo_objectives_tighten(struct slo_objectives *o, const struct slo_tightening *t) {
    unsigned changed = 0;
    if (t->quality_min >= 0 && t->quality_min <= 1 && t->quality_min > o->quality_min) {
        o->quality_min = t->quality_min;
        changed |= SLO_KEY_QUALITY_MIN;
    }
    if (t->cost_max >= 0 && t->cost_max < o->cost_max) {
        o->cost_max = t->cost_max;
        changed |= SLO_KEY_COST_MAX;
    }
    if (t->deadline_ms > 0 && t->deadline_ms < o->deadline_ms) {
        o->deadline_ms = t->deadline_ms;
        changed |= SLO_KEY_DEADLINE;
    }
    if (t->latency_p95_ms > 0 && t->latency_p95_ms < o->latency_p95_ms) {
        o->latency_p95_ms = t->latency_p95_ms;
        changed |= SLO_KEY_LATENCY_P95;
    }
    if (o->latency_p95_ms > o->deadline_ms) {
        o->latency_p95_ms = o->deadline_ms;
        changed |= SLO_KEY_LATENCY_P95;
    }
    return changed;
}
