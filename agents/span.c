/* span.c - see span.h. */
#include "span.h"
#include "text.h"
#include "util.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SPAN_MAX_TOKENS 96
#define SPAN_MAX_WORDS 6 /* a thing or place answer is a short phrase */

struct tok {
    size_t s, e;     /* byte range */
    char w[32];      /* lower-cased */
    bool q;          /* one of the question's terms */
    bool stop, cap, num, month, day, year, prep;
    bool comma_after; /* punctuation follows before the next token */
};

static bool in_list(const char *w, const char *const *list) {
    for (; *list; list++)
        if (strcmp(w, *list) == 0)
            return true;
    return false;
}

static const char *const numbers[] = {
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty",
    "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "hundreds", "thousand", "thousands",
    "million", "millions", "billion", "half", "dozen", "dozens", "several", "once", "twice",
    /* ordinals: "the ninth of March" */
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
    "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth",
    "twentieth", "thirtieth", NULL};
static const char *const months[] = {"january", "february", "march", "april", "may", "june", "july", "august",
                                     "september", "october", "november", "december", "spring", "summer",
                                     "autumn", "winter", NULL};
static const char *const days[] = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
                                   "weekday", "weekdays", "weekend", "weekends", "morning", "evening", "noon",
                                   "midnight", "night", "daily", "weekly", "monthly", "yearly", NULL};
static const char *const preps[] = {"in", "at", "on", "near", "from", "to", "into", "inside", "outside", "behind",
                                    "beside", "along", "across", "under", "above", "by", NULL};

/* The four word lists as one set: each word with the lists it is on, so
 * a passage token is classified by one hash lookup instead of a strcmp
 * against every word of every list (about 110 a token; span_find was 5%
 * of a query's instructions).  Built on first use. */
enum { WORD_NUM = 1, WORD_MONTH = 2, WORD_DAY = 4, WORD_PREP = 8 };
#define WORD_SLOTS 256 /* a power of two, over twice the words */

static struct {
    const char *w;
    unsigned char cls;
} word_set[WORD_SLOTS];
static pthread_once_t word_once = PTHREAD_ONCE_INIT;

static unsigned word_slot(const char *w) {
    return util_fnv32(UTIL_FNV32_BASIS, w, strlen(w)) & (WORD_SLOTS - 1);
}

static void word_add(const char *const *list, unsigned char cls) {
    for (; *list; list++) {
        unsigned j = word_slot(*list);
        while (word_set[j].w && strcmp(word_set[j].w, *list) != 0)
            j = (j + 1) & (WORD_SLOTS - 1);
        word_set[j].w = *list;
        word_set[j].cls |= cls;
    }
}

static void word_build(void) {
    word_add(numbers, WORD_NUM);
    word_add(months, WORD_MONTH);
    word_add(days, WORD_DAY);
    word_add(preps, WORD_PREP);
}

/* The lists w is on (WORD_* bits), 0 for none. */
static unsigned word_class(const char *w) {
    pthread_once(&word_once, word_build);
    for (unsigned j = word_slot(w); word_set[j].w; j = (j + 1) & (WORD_SLOTS - 1))
        if (strcmp(word_set[j].w, w) == 0)
            return word_set[j].cls;
    return 0;
}

enum span_kind span_question_kind(const char *q) {
    char w[3][32] = {"", "", ""};
    size_t n = strlen(q), pos = 0;
    struct text_token t;
    for (int i = 0; i < 3 && text_next_token(q, n, &pos, &t); i++)
        text_token_lower(q, &t, w[i], sizeof w[i]);
    if (!strcmp(w[0], "who") || !strcmp(w[0], "whom") || !strcmp(w[0], "whose"))
        return SPAN_PERSON;
    if (!strcmp(w[0], "when"))
        return SPAN_TIME;
    if (!strcmp(w[0], "where"))
        return SPAN_PLACE;
    if (!strcmp(w[0], "how")) {
        static const char *const q_how[] = {"many", "much", "long", "far", "often", "tall", "old", "big", "high",
                                            "deep", "wide", "large", "heavy", "fast", NULL};
        return in_list(w[1], q_how) ? SPAN_QUANTITY : SPAN_NONE;
    }
    if (!strcmp(w[0], "what") || !strcmp(w[0], "which") || !strcmp(w[0], "name")) {
        static const char *const q_time[] = {"year", "years", "time", "day", "days", "month", "date", "season", NULL};
        if (in_list(w[1], q_time) || (!strcmp(w[1], "day") && w[2][0]))
            return SPAN_TIME;
        if (!strcmp(w[1], "percentage") || !strcmp(w[1], "number"))
            return SPAN_QUANTITY;
        return SPAN_THING;
    }
    /* "In which year ...", "On which days ...", "From which direction ..." */
    if (in_list(w[0], preps) && (!strcmp(w[1], "which") || !strcmp(w[1], "what"))) {
        static const char *const q_time[] = {"year", "years", "day", "days", "month", "season", "century", NULL};
        return in_list(w[2], q_time) ? SPAN_TIME : SPAN_THING;
    }
    return SPAN_NONE;
}

static size_t tokenize(const char *text, size_t start, size_t end, span_qword_fn is_qword, void *ud,
                       struct tok *toks) {
    size_t n = 0, pos = start;
    struct text_token t;
    while (n < SPAN_MAX_TOKENS && text_next_token(text, end, &pos, &t)) {
        struct tok *k = &toks[n];
        memset(k, 0, sizeof *k);
        k->s = t.start;
        k->e = t.start + t.len;
        text_token_lower(text, &t, k->w, sizeof k->w);
        k->q = is_qword(ud, k->w);
        k->stop = text_is_stopword(k->w);
        k->cap = isupper((unsigned char)text[t.start]) != 0;
        bool digits = isdigit((unsigned char)text[t.start]) != 0;
        unsigned cls = word_class(k->w);
        k->num = digits || (cls & WORD_NUM);
        k->year = digits && t.len == 4;
        k->month = (cls & WORD_MONTH) != 0;
        k->day = (cls & WORD_DAY) != 0;
        k->prep = (cls & WORD_PREP) != 0;
        /* punctuation (other than a hyphen or apostrophe) before the next word */
        for (size_t i = k->e; i < end && !isalnum((unsigned char)text[i]) && (unsigned char)text[i] < 0x80; i++)
            if (text[i] != ' ' && text[i] != '-' && text[i] != '\'' && text[i] != '\n')
                k->comma_after = true;
        n++;
    }
    return n;
}

/* Distance in tokens from [a, b] to the nearest question term. */
static size_t distance_to_question(const struct tok *toks, size_t n, size_t a, size_t b) {
    size_t best = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        if (!toks[i].q)
            continue;
        size_t d = i < a ? a - i : i > b ? i - b : 0;
        if (d < best)
            best = d;
    }
    return best;
}

struct cand {
    size_t a, b; /* token range, inclusive */
    bool ok;
    size_t dist;
};

static void consider(struct cand *best, const struct tok *toks, size_t n, size_t a, size_t b) {
    for (size_t i = a; i <= b; i++)
        if (toks[i].q)
            return; /* the answer is not the question's own words */
    size_t d = distance_to_question(toks, n, a, b);
    if (!best->ok || d < best->dist)
        *best = (struct cand){a, b, true, d};
}

static bool timeish(const struct tok *k) {
    return k->year || k->month || k->day;
}

bool span_find(enum span_kind kind, const char *text, size_t start, size_t end, span_qword_fn is_qword, void *ud,
               size_t *ret_start, size_t *ret_end) {
    struct tok toks[SPAN_MAX_TOKENS];
    size_t n = tokenize(text, start, end, is_qword, ud, toks);
    if (kind == SPAN_NONE || n == 0)
        return false;
    struct cand best = {0};
    size_t i = 0;
    switch (kind) {
    case SPAN_PERSON:
        /* runs of capitalised words ("Captain Ysolde Marr"), "of" allowed
         * inside; the sentence's first word only when the run goes on */
        while (i < n) {
            if (!toks[i].cap || toks[i].num || (i == 0 && !(n > 1 && toks[1].cap))) {
                i++;
                continue;
            }
            size_t a = i;
            while (i + 1 < n && !toks[i].comma_after &&
                   (toks[i + 1].cap || (!strcmp(toks[i + 1].w, "of") && i + 2 < n && toks[i + 2].cap)))
                i++;
            consider(&best, toks, n, a, i);
            i++;
        }
        if (!best.ok) /* "the lighthouse keeper": the noun phrase after a question term */
            goto thing;
        break;
    case SPAN_TIME:
        while (i < n) {
            /* "seven in the morning", "six o'clock", "3 May" */
            bool t = timeish(&toks[i]) ||
                     (toks[i].num && i + 1 < n &&
                      (timeish(&toks[i + 1]) || !strcmp(toks[i + 1].w, "o") ||
                       (i + 3 < n && !strcmp(toks[i + 1].w, "in") && !strcmp(toks[i + 2].w, "the") &&
                        timeish(&toks[i + 3]))));
            if (!t) {
                i++;
                continue;
            }
            size_t a = i;
            /* "seven in the morning", "Tuesday and Friday", "late summer", "March 1911" */
            if (a > 0 && !toks[a - 1].q && !toks[a - 1].stop && !toks[a - 1].cap && !toks[a - 1].comma_after &&
                (toks[i].month || toks[i].day) && !toks[a - 1].prep)
                a--;
            else if (a > 1 && toks[a].month && !strcmp(toks[a - 1].w, "of") && toks[a - 2].num)
                a -= 2; /* "the ninth of March" */
            for (;;) {
                if (i + 1 >= n || toks[i].comma_after)
                    break;
                if (timeish(&toks[i + 1]) || (toks[i + 1].num && toks[i].num))
                    i++;
                else if (!strcmp(toks[i + 1].w, "and") && i + 2 < n && timeish(&toks[i + 2]))
                    i += 2; /* "Tuesday and Friday" */
                else if (!strcmp(toks[i + 1].w, "in") && i + 3 < n && !strcmp(toks[i + 2].w, "the") &&
                         timeish(&toks[i + 3]))
                    i += 3; /* "seven in the morning" */
                else
                    break;
            }
            consider(&best, toks, n, a, i);
            i++;
        }
        if (!best.ok) /* "launched at high tide": the phrase after at/on/in/during */
            goto place;
        break;
    case SPAN_QUANTITY:
        while (i < n) {
            if (!toks[i].num) {
                i++;
                continue;
            }
            size_t a = i;
            if (a > 0 && (!strcmp(toks[a - 1].w, "every") || !strcmp(toks[a - 1].w, "about") ||
                          !strcmp(toks[a - 1].w, "over") || !strcmp(toks[a - 1].w, "under")))
                a--;
            while (i + 1 < n && toks[i + 1].num && !toks[i].comma_after)
                i++;
            /* the unit: up to two words that are not the question's */
            for (int u = 0; u < 1 && i + 1 < n && !toks[i].comma_after && !toks[i + 1].stop && !toks[i + 1].q &&
                            !toks[i + 1].num;
                 u++)
                i++;
            consider(&best, toks, n, a, i);
            i++;
        }
        break;
    case SPAN_PLACE:
    place:
        /* the phrase after a preposition: "on the eastern cliff", "from pier four" */
        i = 0;
        while (i < n) {
            if (!toks[i].prep || i + 1 >= n) {
                i++;
                continue;
            }
            size_t a = i + 1;
            if (a < n && !strcmp(toks[a].w, "the"))
                a++;
            if (a >= n || toks[i].comma_after) {
                i++;
                continue;
            }
            size_t b = a;
            while (b + 1 < n && b - a + 1 < SPAN_MAX_WORDS && !toks[b].comma_after && !toks[b + 1].prep &&
                   (!toks[b + 1].stop || !strcmp(toks[b + 1].w, "of")) && !toks[b + 1].q)
                b++;
            /* the preposition belongs to the answer: "on the eastern cliff" */
            if (!toks[a].stop && !toks[a].q)
                consider(&best, toks, n, i, b);
            i++;
        }
        break;
    case SPAN_THING:
    thing:
        if (kind == SPAN_PERSON) {
            /* "founded ... by salt traders from the north": the agent */
            for (size_t k = 0; k + 1 < n; k++)
                if (!strcmp(toks[k].w, "by") && !toks[k].comma_after) {
                    size_t a = k + 1, b = a;
                    while (b + 1 < n && b - a + 1 < SPAN_MAX_WORDS && !toks[b].comma_after && !toks[b + 1].q &&
                           (!toks[b + 1].stop || toks[b + 1].prep || !strcmp(toks[b + 1].w, "the")))
                        b++;
                    if (!toks[a].q && !toks[a].num)
                        consider(&best, toks, n, a, b);
                }
            if (best.ok)
                break;
        }
        /* The words after a question term, up to a preposition, a
         * conjunction or punctuation ("using oak from the forests" -> "oak");
         * the last term first: the answer tends to follow the verb.  A
         * verb-like word right after the term ("occupies the ...") is
         * skipped.  When nothing follows, the words just before a term
         * ("tuna arrives", "paper lanterns are floated"). */
        for (size_t k = n; k-- > 0;) {
            if (!toks[k].q || toks[k].comma_after)
                continue;
            size_t a = k + 1;
            while (a < n && (toks[a].q || (toks[a].stop && !toks[a].num)))
                a++;
            if (a + 1 < n && !toks[a].cap && !toks[a].num && strlen(toks[a].w) > 3 &&
                (toks[a].w[strlen(toks[a].w) - 1] == 's' || !strcmp(toks[a].w + strlen(toks[a].w) - 2, "ed")) &&
                (!strcmp(toks[a + 1].w, "the") || !strcmp(toks[a + 1].w, "a") || !strcmp(toks[a + 1].w, "an") ||
                 toks[a + 1].cap || toks[a + 1].q)) {
                a++;
                while (a < n && (toks[a].q || (toks[a].stop && !toks[a].num) || toks[a].prep))
                    a++;
            }
            if (a >= n)
                continue;
            size_t b = a;
            while (b + 1 < n && b - a + 1 < SPAN_MAX_WORDS && !toks[b].comma_after && !toks[b + 1].stop &&
                   !toks[b + 1].q && !toks[b + 1].prep)
                b++;
            struct cand before = best;
            consider(&best, toks, n, a, b);
            if (best.ok && !before.ok)
                break; /* the last term's phrase wins */
        }
        if (!best.ok)
            for (size_t k = n; k-- > 1;) {
                if (!toks[k].q)
                    continue;
                size_t b = k;
                while (b > 0 && toks[b - 1].stop && !toks[b - 1].comma_after)
                    b--;
                if (b == 0 || toks[b - 1].q || toks[b - 1].comma_after || toks[b - 1].num)
                    continue;
                size_t e = b - 1, a = e;
                while (a > 0 && e - a + 1 < 3 && !toks[a - 1].stop && !toks[a - 1].q && !toks[a - 1].comma_after)
                    a--;
                if (a == 0 && toks[0].cap && e > 0)
                    a = 1; /* not the sentence's capitalised first word alone */
                consider(&best, toks, n, a, e);
                if (best.ok)
                    break;
            }
        break;
    case SPAN_NONE:
        break;
    }
    if (!best.ok)
        return false;
    *ret_start = toks[best.a].s;
    *ret_end = toks[best.b].e;
    return true;
}
