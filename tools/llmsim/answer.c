/* answer.c - see answer.h.
 *
 * Passages and sentences are spans into the caller's message text; only
 * the final answer is copied (into the arena).  Question terms are capped
 * at 64 so a sentence's matches fit one bitmask, and passages and sentences
 * are capped too: a prompt past the caps is read up to them.
 *
 * Sentence ends are '.', '!' or '?' followed by white space (closing quotes
 * and brackets may sit in between), or a blank line.  A single newline does
 * not end a sentence: chunked documents wrap lines mid-sentence.  A period
 * after a single letter or a few common abbreviations does not end one
 * either. */
#include "answer.h"
#include "span.h"
#include "terms.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_QTERMS 64
#define MAX_PASSAGES 4096
#define MAX_SENTENCES 65536

struct span {
    const char *p;
    size_t n;
};

struct passage {
    int num;
    struct span text;
};

struct sentence {
    size_t passage; /* index into the passage array */
    struct span text;
};

struct reading {
    struct passage *passages; /* malloc'd, at most MAX_PASSAGES */
    size_t npassages;
    struct sentence *sentences; /* malloc'd, at most MAX_SENTENCES */
    size_t nsentences, sentences_cap;
    char qterms[MAX_QTERMS][SIM_TERM_MAX + 1];
    size_t nqterms;
};

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static struct span trim(struct span s) {
    while (s.n && is_space(s.p[0]))
        s.p++, s.n--;
    while (s.n && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

/* "[N]" with 1-4 digits at the start of a line (after blanks), optionally
 * followed by ':'; *ret_skip is where the passage text starts. */
static bool parse_marker(const char *line, size_t n, int *ret_num, size_t *ret_skip) {
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i >= n || line[i] != '[')
        return false;
    i++;
    int num = 0;
    size_t digits = 0;
    while (i < n && line[i] >= '0' && line[i] <= '9' && digits < 5) {
        num = num * 10 + (line[i] - '0');
        i++, digits++;
    }
    if (digits == 0 || digits > 4 || i >= n || line[i] != ']')
        return false;
    i++;
    if (i < n && line[i] == ':')
        i++;
    *ret_num = num;
    *ret_skip = i;
    return true;
}

/* "Question:" (any case) at the start of a line, after blanks. */
static bool parse_question(const char *line, size_t n, size_t *ret_skip) {
    static const char tag[] = "question:";
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (n - i < sizeof tag - 1 || strncasecmp(line + i, tag, sizeof tag - 1) != 0)
        return false;
    *ret_skip = i + sizeof tag - 1;
    return true;
}

static bool blank(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_space(p[i]))
            return false;
    return true;
}

static void add_passage(struct reading *rd, int num, const char *start, const char *end) {
    if (rd->npassages < MAX_PASSAGES && end >= start)
        rd->passages[rd->npassages++] = (struct passage){num, {start, (size_t)(end - start)}};
}

/* The parts of one message.  Passages go straight into rd; for the last
 * user message the question line and the text before the first passage
 * are reported too. */
struct msg_scan {
    bool has_qline;
    struct span qline;
    struct span before; /* text before the first passage marker (or all of it) */
    size_t first_passage, end_passage; /* this message's passages in rd */
};

static void scan_message(struct reading *rd, const struct sim_msg *m, bool last_user, struct msg_scan *out) {
    const char *s = m->text;
    size_t n = m->len, i = 0;
    const char *open = NULL; /* start of the passage being read */
    int open_num = 0;
    bool seen_marker = false, want_qline = false;
    *out = (struct msg_scan){.before = {s, n}, .first_passage = rd->npassages};
    while (i < n) {
        size_t eol = i;
        while (eol < n && s[eol] != '\n')
            eol++;
        const char *line = s + i;
        size_t len = eol - i, skip;
        int num;
        if (want_qline && !blank(line, len)) {
            out->qline = trim((struct span){line, len});
            want_qline = false;
        }
        if (parse_marker(line, len, &num, &skip)) {
            if (open)
                add_passage(rd, open_num, open, line);
            open = line + skip;
            open_num = num;
            if (!seen_marker)
                out->before.n = (size_t)(line - s);
            seen_marker = true;
        } else if (last_user && parse_question(line, len, &skip)) {
            if (open)
                add_passage(rd, open_num, open, line);
            open = NULL;
            out->has_qline = true;
            out->qline = trim((struct span){line + skip, len - skip});
            want_qline = out->qline.n == 0;
            if (!seen_marker)
                out->before.n = (size_t)(line - s);
            seen_marker = true;
        }
        i = eol + 1;
    }
    if (open)
        add_passage(rd, open_num, open, s + n);
    out->end_passage = rd->npassages;
}

/* A last passage that ends in a paragraph ending with '?' (after a blank
 * line) is taken to hold the question: the prompt put it after the
 * documents without a "Question:" tag. */
static struct span split_trailing_question(struct passage *p) {
    struct span t = trim(p->text);
    if (!t.n || t.p[t.n - 1] != '?')
        return (struct span){NULL, 0};
    for (size_t i = t.n; i-- > 1;) {
        if (t.p[i] != '\n')
            continue;
        size_t j = i;
        while (j > 0 && (t.p[j - 1] == ' ' || t.p[j - 1] == '\t' || t.p[j - 1] == '\r'))
            j--;
        if (j > 0 && t.p[j - 1] == '\n') {
            struct span q = trim((struct span){t.p + i, t.n - i});
            p->text.n = (size_t)(t.p + j - p->text.p);
            return q;
        }
    }
    return (struct span){NULL, 0};
}

static void collect_qterms(struct reading *rd, struct span q) {
    size_t pos = 0;
    char term[SIM_TERM_MAX + 1];
    bool content;
    while (rd->nqterms < MAX_QTERMS && sim_term_next(q.p, q.n, &pos, term, &content)) {
        if (!content)
            continue;
        bool dup = false;
        for (size_t i = 0; i < rd->nqterms && !dup; i++)
            dup = strcmp(rd->qterms[i], term) == 0;
        if (!dup)
            memcpy(rd->qterms[rd->nqterms++], term, sizeof term);
    }
}

static bool is_abbreviation(const char *s, size_t start, size_t dot) {
    static const char *const abbr[] = {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "fig", "approx", "cf"};
    size_t w = dot;
    while (w > start && ((s[w - 1] >= 'a' && s[w - 1] <= 'z') || (s[w - 1] >= 'A' && s[w - 1] <= 'Z')))
        w--;
    size_t len = dot - w;
    if (len == 1)
        return true; /* initials, "e.g.", "i.e." */
    for (size_t i = 0; i < sizeof abbr / sizeof abbr[0]; i++)
        if (strlen(abbr[i]) == len && strncasecmp(s + w, abbr[i], len) == 0)
            return true;
    return false;
}

static int add_sentence(struct reading *rd, size_t passage, const char *p, size_t n) {
    struct span t = trim((struct span){p, n});
    if ((t.n >= 2 && (t.p[0] == '-' || t.p[0] == '*') && t.p[1] == ' '))
        t = trim((struct span){t.p + 1, t.n - 1}); /* a list bullet */
    size_t pos = 0;
    char term[SIM_TERM_MAX + 1];
    bool content;
    if (!sim_term_next(t.p, t.n, &pos, term, &content))
        return 0; /* punctuation only */
    if (rd->nsentences >= MAX_SENTENCES)
        return 0;
    if (rd->nsentences == rd->sentences_cap) {
        size_t cap = rd->sentences_cap ? rd->sentences_cap * 2 : 64;
        struct sentence *ns = realloc(rd->sentences, cap * sizeof *ns);
        if (!ns)
            return -1;
        rd->sentences = ns;
        rd->sentences_cap = cap;
    }
    rd->sentences[rd->nsentences++] = (struct sentence){passage, t};
    return 0;
}

static int split_sentences(struct reading *rd, size_t pi) {
    const char *s = rd->passages[pi].text.p;
    size_t n = rd->passages[pi].text.n, start = 0, i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '.' || c == '!' || c == '?') {
            size_t j = i + 1;
            while (j < n && s[j] && strchr(".!?\"')]", s[j]))
                j++;
            if ((j == n || is_space(s[j])) && !(c == '.' && j == i + 1 && is_abbreviation(s, start, i))) {
                if (add_sentence(rd, pi, s + start, j - start))
                    return -1;
                start = i = j;
                continue;
            }
            i = j;
            continue;
        }
        if (c == '\n') {
            size_t j = i + 1;
            while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r'))
                j++;
            if (j < n && s[j] == '\n') { /* a blank line ends a paragraph */
                if (add_sentence(rd, pi, s + start, i - start))
                    return -1;
                start = i = j;
                continue;
            }
        }
        i++;
    }
    return start < n ? add_sentence(rd, pi, s + start, n - start) : 0;
}

/* Bitmask of the question terms the sentence contains, and its number of
 * content terms. */
static uint64_t sentence_matches(const struct reading *rd, struct span t, size_t *ret_nterms) {
    uint64_t mask = 0;
    size_t pos = 0, nterms = 0;
    char term[SIM_TERM_MAX + 1];
    bool content;
    while (sim_term_next(t.p, t.n, &pos, term, &content)) {
        if (!content)
            continue;
        nterms++;
        for (size_t q = 0; q < rd->nqterms; q++)
            if (strcmp(rd->qterms[q], term) == 0)
                mask |= UINT64_C(1) << q;
    }
    *ret_nterms = nterms;
    return mask;
}

/* Index of the best-supported sentence, or -1 when none covers enough of
 * the question.  Most matched terms wins, then the denser sentence, then
 * the earlier one. */
static long best_sentence(const struct reading *rd, double min_overlap) {
    if (rd->nqterms == 0)
        return -1;
    double need = min_overlap * (double)rd->nqterms - 1e-9;
    long best = -1;
    int best_matches = 0;
    double best_density = 0;
    for (size_t i = 0; i < rd->nsentences; i++) {
        size_t nterms;
        int matches = __builtin_popcountll(sentence_matches(rd, rd->sentences[i].text, &nterms));
        if (matches == 0 || (double)matches < need)
            continue;
        double density = (double)matches / (double)(nterms ? nterms : 1);
        if (matches > best_matches || (matches == best_matches && density > best_density)) {
            best = (long)i;
            best_matches = matches;
            best_density = density;
        }
    }
    return best;
}

/* The sentence a confused reader gives: one from another passage when
 * there is one, else another sentence of the same passage; when nothing
 * fit the question, any sentence.  -1 when there is no candidate. */
static long wrong_sentence(const struct reading *rd, long best, double u) {
    size_t ncand = 0;
    bool other_passages = false;
    for (size_t i = 0; best >= 0 && i < rd->nsentences; i++)
        other_passages = other_passages || rd->sentences[i].passage != rd->sentences[best].passage;
    for (int pass = 0; pass < 2; pass++) {
        size_t k = (size_t)(u * (double)ncand), seen = 0;
        for (size_t i = 0; i < rd->nsentences; i++) {
            bool ok = best < 0 || (other_passages ? rd->sentences[i].passage != rd->sentences[best].passage
                                                  : (long)i != best);
            if (!ok)
                continue;
            if (pass == 1 && seen == k)
                return (long)i;
            seen++;
        }
        ncand = seen;
        if (ncand == 0)
            return -1;
    }
    return -1;
}

/* span_find's test: is this word one of the question's terms? */
static bool sim_qword(void *ud, const char *lower) {
    const struct reading *rd = ud;
    char term[64];
    size_t pos = 0;
    bool content = false;
    if (!sim_term_next(lower, strlen(lower), &pos, term, &content) || !content)
        return false;
    for (size_t q = 0; q < rd->nqterms; q++)
        if (strcmp(rd->qterms[q], term) == 0)
            return true;
    return false;
}

static enum err render(struct arena *a, const struct reading *rd, long si, const char *question, bool spans,
                       struct sim_answer *ans) {
    const struct sentence *s = &rd->sentences[si];
    int num = rd->passages[s->passage].num;
    struct span text = s->text;
    size_t ss, se;
    if (spans && question &&
        span_find(span_question_kind(question), text.p, 0, text.n, sim_qword, (void *)rd, &ss, &se)) {
        text.p += ss;
        text.n = se - ss;
    }
    char *out = arena_alloc(a, text.n + 16);
    if (!out)
        return ERR_NOMEM;
    size_t n = 0;
    bool space = false;
    for (size_t i = 0; i < text.n; i++) {
        if (is_space(text.p[i])) {
            space = true;
            continue;
        }
        if (space && n)
            out[n++] = ' ';
        space = false;
        out[n++] = text.p[i];
    }
    n += (size_t)snprintf(out + n, 16, " [%d]", num);
    ans->text = out;
    ans->len = n;
    ans->cited = num;
    return ERR_OK;
}

static enum err abstain(struct arena *a, struct sim_answer *ans) {
    ans->text = arena_strdup(a, SIM_ABSTAIN_TEXT);
    ans->len = strlen(SIM_ABSTAIN_TEXT);
    ans->cited = 0;
    return ans->text ? ERR_OK : ERR_NOMEM;
}

/* Where the key's gold answer first occurs in the passages: its index in
 * ke->answers and the passage's index in rd; false when none holds one. */
static bool locate_gold(const struct reading *rd, const struct sim_key_entry *ke, size_t *ret_gold,
                        size_t *ret_passage) {
    for (size_t g = 0; g < ke->nanswers; g++)
        for (size_t i = 0; i < rd->npassages; i++)
            if (sim_key_locate(rd->passages[i].text.p, rd->passages[i].text.n, ke->answers[g]) >= 0) {
                *ret_gold = g;
                *ret_passage = i;
                return true;
            }
    return false;
}

/* The gold answer as written in the key, cited with its passage's number. */
static enum err render_gold(struct arena *a, const char *gold, int num, struct sim_answer *ans) {
    size_t n = strlen(gold);
    char *out = arena_alloc(a, n + 16);
    if (!out)
        return ERR_NOMEM;
    memcpy(out, gold, n);
    n += (size_t)snprintf(out + n, 16, " [%d]", num);
    ans->text = out;
    ans->len = n;
    ans->cited = num;
    return ERR_OK;
}

enum err sim_answer_compose(const struct sim_msg *msgs, size_t nmsgs, const struct sim_answer_params *p,
                            struct arena *a, struct sim_answer *ret_answer) {
    struct reading rd = {0};
    rd.passages = malloc(MAX_PASSAGES * sizeof *rd.passages);
    if (!rd.passages)
        return ERR_NOMEM;
    long last_user = -1;
    for (size_t i = 0; i < nmsgs; i++)
        if (strcmp(msgs[i].role, "user") == 0)
            last_user = (long)i;

    struct span question = {NULL, 0};
    for (size_t i = 0; i < nmsgs; i++) {
        const char *role = msgs[i].role;
        if (strcmp(role, "system") != 0 && strcmp(role, "developer") != 0 && strcmp(role, "user") != 0)
            continue;
        struct msg_scan ms;
        scan_message(&rd, &msgs[i], (long)i == last_user, &ms);
        if ((long)i != last_user)
            continue;
        if (ms.has_qline)
            question = ms.qline;
        else if (trim(ms.before).n)
            question = trim(ms.before);
        else if (ms.end_passage > ms.first_passage)
            question = split_trailing_question(&rd.passages[ms.end_passage - 1]);
    }
    if (question.n)
        collect_qterms(&rd, question);

    enum err e = ERR_OK;
    for (size_t i = 0; i < rd.npassages && !e; i++)
        if (split_sentences(&rd, i))
            e = ERR_NOMEM;

    char qbuf[1024] = "";
    if (question.n)
        snprintf(qbuf, sizeof qbuf, "%.*s", (int)(question.n < sizeof qbuf ? question.n : sizeof qbuf - 1),
                 question.p);
    struct sim_answer ans = {0};
    long best = e ? -1 : best_sentence(&rd, p->min_overlap);
    ans.found = best >= 0;
    /* With the question in the key, a correct answer is the gold one as a
     * perfect reader finds it in the passages (key.h); the draw is the same. */
    const struct sim_key_entry *ke = !e && question.n ? sim_key_find(p->key, question.p, question.n) : NULL;
    size_t gold = 0, gold_passage = 0;
    if (ke)
        ans.found = locate_gold(&rd, ke, &gold, &gold_passage);
    if (!e) {
        if (p->u_outcome < p->abstain_rate) {
            ans.outcome = SIM_OUT_ABSTAIN;
            e = abstain(a, &ans);
        } else if (p->u_outcome < p->abstain_rate + p->wrong_rate) {
            long w = wrong_sentence(&rd, best, p->u_pick);
            ans.outcome = w >= 0 ? SIM_OUT_WRONG : SIM_OUT_ABSTAIN;
            e = w >= 0 ? render(a, &rd, w, qbuf, p->spans, &ans) : abstain(a, &ans);
        } else {
            ans.outcome = SIM_OUT_CORRECT;
            if (ke)
                e = ans.found && !ke->impossible
                        ? render_gold(a, ke->answers[gold], rd.passages[gold_passage].num, &ans)
                        : abstain(a, &ans);
            else
                e = best >= 0 ? render(a, &rd, best, qbuf, p->spans, &ans) : abstain(a, &ans);
        }
    }
    free(rd.passages);
    free(rd.sentences);
    if (!e)
        *ret_answer = ans;
    return e;
}
