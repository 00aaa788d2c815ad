/* llm.c - prompt building and answer reading for LLM generators (see llm.h).
 *
 * The confidence signal is a grounding check, not the model's own opinion:
 * an answer whose words mostly come from the passages it cites is probably
 * supported by them; one that cites nothing, or whose words are not in its
 * cited passages, is not.  The planner uses it to decide whether to
 * escalate. */
#include "llm.h"
#include "buf.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LLM_MAX_PASSAGE_BYTES 4000
#define LLM_SNIPPET_BYTES 300

static const char system_prompt[] =
    "You answer questions using only the numbered passages you are given. "
    "Answer in one or two sentences and cite the passages you used with their numbers in square brackets, "
    "like [2]. If the passages do not contain the answer, reply exactly: " AGENT_LLM_ABSTAIN;

/* Largest prefix of s[0..n) that ends on a UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t n) {
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

enum err agent_llm_prompt(const struct agent_io *io, struct arena *a, const char **ret_system, const char **ret_user) {
    struct buf b;
    buf_init(&b, 1u << 20);
    enum err e = buf_puts(&b, "Passages:\n");
    for (size_t i = 0; !e && i < io->nhits; i++) {
        const char *t = io->hits[i].text;
        size_t n = strlen(t);
        if (n > LLM_MAX_PASSAGE_BYTES)
            n = utf8_cut(t, LLM_MAX_PASSAGE_BYTES);
        /* one line per passage: newlines inside become spaces */
        e = buf_printf(&b, "[%zu] ", i + 1);
        for (size_t j = 0; !e && j < n; j++) {
            char c = t[j] == '\n' || t[j] == '\r' ? ' ' : t[j];
            e = buf_append(&b, &c, 1);
        }
        if (!e)
            e = buf_puts(&b, "\n");
    }
    if (!e)
        e = buf_printf(&b, "\nQuestion: %s\nAnswer:", io->question);
    if (e) {
        buf_done(&b);
        return e;
    }
    const char *user = arena_strndup(a, b.data, b.len);
    buf_done(&b);
    if (!user)
        return ERR_NOMEM;
    *ret_system = system_prompt;
    *ret_user = user;
    return ERR_OK;
}

static bool contains_word(const char *text, const char *word) {
    size_t n = strlen(text), pos = 0;
    struct text_token t;
    while (text_next_token(text, n, &pos, &t)) {
        char w[64];
        text_token_lower(text, &t, w, sizeof w);
        if (strcmp(w, word) == 0)
            return true;
    }
    return false;
}

enum err agent_llm_read_answer(const char *answer, struct agent_io *io, struct arena *a) {
    io->abstained = false;
    io->abstain_reason = NULL;
    io->citations = NULL;
    io->ncitations = 0;
    io->confidence = 0;
    size_t alen = strlen(answer);
    while (alen && (answer[alen - 1] == ' ' || answer[alen - 1] == '\n'))
        alen--;
    size_t start = 0;
    while (start < alen && (answer[start] == ' ' || answer[start] == '\n'))
        start++;
    if (start == alen || strcasestr(answer, "cannot answer from the documents")) {
        io->abstained = true;
        io->abstain_reason = start == alen ? "the model returned an empty answer" : "the model found no support in the passages";
        io->answer = NULL;
        return ERR_OK;
    }
    char *text = arena_strndup(a, answer + start, alen - start);
    if (!text)
        return ERR_NOMEM;
    io->answer = text;

    /* citations: [n], in order of first appearance, each once */
    bool *cited = arena_calloc(a, io->nhits + 1, sizeof(bool));
    struct agent_citation *cits = arena_calloc(a, io->nhits + 1, sizeof(*cits));
    if (!cited || !cits)
        return ERR_NOMEM;
    size_t ncits = 0;
    for (const char *p = text; (p = strchr(p, '[')); p++) {
        char *end;
        long n = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end != ']' || n < 1 || (size_t)n > io->nhits || cited[n])
            continue;
        cited[n] = true;
        const struct ret_hit *h = &io->hits[n - 1];
        size_t sl = strlen(h->text);
        if (sl > LLM_SNIPPET_BYTES)
            sl = utf8_cut(h->text, LLM_SNIPPET_BYTES);
        cits[ncits++] = (struct agent_citation){.hit = h, .start = h->start, .end = h->end,
                                                .snippet = arena_strndup(a, h->text, sl)};
    }
    io->citations = cits;
    io->ncitations = ncits;

    /* grounding: content words of the answer present in the cited passages */
    size_t words = 0, grounded = 0, pos = 0, n = strlen(text);
    struct text_token t;
    while (text_next_token(text, n, &pos, &t)) {
        char w[64];
        text_token_lower(text, &t, w, sizeof w);
        if (text_is_stopword(w) || (w[0] >= '0' && w[0] <= '9' && t.len <= 2))
            continue; /* stop words and citation numbers */
        words++;
        for (size_t i = 0; i < ncits; i++)
            if (contains_word(cits[i].hit->text, w)) {
                grounded++;
                break;
            }
    }
    io->confidence = words ? (double)grounded / (double)words : 0;
    if (ncits == 0)
        io->confidence *= 0.5; /* an uncited answer is at best half trusted */
    io->output_tokens = (int)text_count_words(text, strlen(text));
    return ERR_OK;
}

static const char judge_system[] =
    "You judge candidate answers to a question. Pick the candidate that answers the question most directly and "
    "is best supported; ignore candidates that refuse to answer unless all do. Reply with its number in square "
    "brackets, like [2], and nothing else.";

#define LLM_JUDGE_CANDIDATE_BYTES 2000

enum err agent_llm_judge_prompt(const char *question, const char *const *candidates, size_t n, struct arena *a,
                                const char **ret_system, const char **ret_user) {
    struct buf b;
    buf_init(&b, 1u << 20);
    enum err e = buf_puts(&b, "Candidates:\n");
    for (size_t i = 0; !e && i < n; i++) {
        const char *t = candidates[i] ? candidates[i] : "";
        size_t len = strlen(t);
        if (len > LLM_JUDGE_CANDIDATE_BYTES)
            len = utf8_cut(t, LLM_JUDGE_CANDIDATE_BYTES);
        e = buf_printf(&b, "[%zu] ", i + 1);
        for (size_t j = 0; !e && j < len; j++) {
            char c = t[j] == '\n' || t[j] == '\r' ? ' ' : t[j];
            e = buf_append(&b, &c, 1);
        }
        if (!e)
            e = buf_puts(&b, "\n");
    }
    if (!e)
        e = buf_printf(&b, "\nQuestion: %s\nBest candidate:", question);
    if (e) {
        buf_done(&b);
        return e;
    }
    const char *user = arena_strndup(a, b.data, b.len);
    buf_done(&b);
    if (!user)
        return ERR_NOMEM;
    *ret_system = judge_system;
    *ret_user = user;
    return ERR_OK;
}

int agent_llm_judge_pick(const char *reply, size_t n) {
    if (!reply)
        return -1;
    for (const char *p = reply; (p = strchr(p, '[')); p++) {
        char *end;
        long k = strtol(p + 1, &end, 10);
        if (end != p + 1 && *end == ']' && k >= 1 && (size_t)k <= n)
            return (int)k - 1;
    }
    for (const char *p = reply; *p; p++) {
        if (*p < '0' || *p > '9' || (p > reply && p[-1] >= '0' && p[-1] <= '9'))
            continue;
        char *end;
        long k = strtol(p, &end, 10);
        if (k >= 1 && (size_t)k <= n)
            return (int)k - 1;
        p = end - 1;
    }
    return -1;
}
