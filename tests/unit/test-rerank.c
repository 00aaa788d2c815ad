/* Unit tests for the built-in reranker (agents/rerank.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <string.h>

#include "agent.h"

/* First-stage order as BM25 might give it: the first passage repeats the
 * question's words far apart, the third holds them together as a phrase. */
static const char *const texts[] = {
    "Harbour fees are listed on the board. The office also sells maps. Renewal of permits happens at the town hall "
    "and a mooring can be booked there too.",
    "The lighthouse keeper lives on the eastern cliff and answers emergencies on public holidays.",
    "To renew a mooring permit, bring the old permit to the harbour office before the end of March.",
    "Ferries to Caldra leave every two hours from pier four.",
};

static void make_hits(struct ret_hit *hits, struct ret_scored *scored, size_t n) {
    for (size_t i = 0; i < n; i++) {
        hits[i] = (struct ret_hit){.chunk_id = (int64_t)i + 1, .document_id = "d", .title = "t",
                                   .text = texts[i], .score = 1.0 - 0.1 * (double)i};
        scored[i] = (struct ret_scored){.hit = hits[i], .fused_score = hits[i].score, .lexical_rank = (int)i + 1};
    }
}

static void test_rerank_prefers_the_passage_that_answers(void **state) {
    (void)state;
    struct arena *a = arena_new(0);
    struct agent_ctx ctx = {.arena = a};
    struct ret_hit hits[4];
    struct ret_scored scored[4];
    make_hits(hits, scored, 4);
    struct agent_io io = {.question = "How do I renew a mooring permit at the harbour office?", .k = 3,
                          .hits = hits, .nhits = 4, .scored = scored};
    assert_int_equal(agent_rerank.run(NULL, &ctx, &io), ERR_OK);
    assert_int_equal(io.nhits, 3);
    assert_int_equal(io.hits[0].chunk_id, 3);
    /* hits and the per-retriever detail keep the same order */
    for (size_t i = 0; i < io.nhits; i++)
        assert_int_equal(io.scored[i].hit.chunk_id, io.hits[i].chunk_id);
    assert_true(io.rerank.top_changed);
    assert_int_equal(io.rerank.candidates, 4);
    assert_int_equal(io.rerank.kept, 3);
    assert_true(io.rerank.moved >= 2);
    assert_true(io.rerank.displacement > 0);
    /* the ferry passage shares no word with the question: it is cut */
    for (size_t i = 0; i < io.nhits; i++)
        assert_int_not_equal(io.hits[i].chunk_id, 4);
    /* the caller's arrays are not modified: the agent writes new ones */
    assert_int_equal(hits[0].chunk_id, 1);
    arena_free(a);
}

static void test_rerank_keeps_a_good_order(void **state) {
    (void)state;
    struct arena *a = arena_new(0);
    struct agent_ctx ctx = {.arena = a};
    struct ret_hit hits[4];
    struct ret_scored scored[4];
    make_hits(hits, scored, 4);
    /* the right passage is already first */
    struct agent_io io = {.question = "Where does the lighthouse keeper live?", .k = 4, .hits = hits + 1,
                          .nhits = 3, .scored = scored + 1};
    assert_int_equal(agent_rerank.run(NULL, &ctx, &io), ERR_OK);
    assert_int_equal(io.nhits, 3);
    assert_int_equal(io.hits[0].chunk_id, 2);
    assert_false(io.rerank.top_changed);
    arena_free(a);
}

static void test_rerank_edges(void **state) {
    (void)state;
    struct arena *a = arena_new(0);
    struct agent_ctx ctx = {.arena = a};
    struct agent_io io = {.question = "anything", .k = 5};
    assert_int_equal(agent_rerank.run(NULL, &ctx, &io), ERR_OK);
    assert_int_equal(io.nhits, 0);
    assert_int_equal(io.rerank.kept, 0);

    /* a question of stop words only: the first-stage order stands */
    struct ret_hit hits[4];
    struct ret_scored scored[4];
    make_hits(hits, scored, 4);
    io = (struct agent_io){.question = "what is it?", .k = 2, .hits = hits, .nhits = 4, .scored = scored};
    assert_int_equal(agent_rerank.run(NULL, &ctx, &io), ERR_OK);
    assert_int_equal(io.nhits, 2);
    assert_int_equal(io.hits[0].chunk_id, 1);
    assert_int_equal(io.hits[1].chunk_id, 2);
    assert_int_equal(io.rerank.moved, 0);
    assert_ptr_equal(agent_find("rerank"), &agent_rerank);
    assert_true(agent_rerank.kind & AGENT_RERANKER);
    arena_free(a);
}

/* The reranker hands the extractive reader where each kept passage's
 * words are question terms (agent_io.pterms), stop words included ("being"
 * stems as "beings" does); the reader's answer from them is the one it
 * finds reading the passages itself. */
static void test_rerank_terms_feed_the_reader(void **state) {
    (void)state;
    static const char *const t[] = {
        "Strange beings live in the caves under the old harbour wall, a guide says.",
        "Being a harbour town, Caldra counts its boats every spring; the beings in the caves are counted in 1921.",
        "The caves were mapped in 1887 by a surveyor from the harbour office.",
        "Ferries to Caldra leave every two hours from pier four.",
    };
    static const char *const questions[] = {
        "When were the beings in the caves counted?",
        "Who mapped the caves under the harbour?",
        "How often do ferries leave for Caldra?",
    };
    for (size_t qi = 0; qi < sizeof questions / sizeof questions[0]; qi++) {
        struct arena *a = arena_new(0);
        struct agent_ctx ctx = {.arena = a};
        struct ret_hit hits[4];
        for (size_t i = 0; i < 4; i++)
            hits[i] = (struct ret_hit){.chunk_id = (int64_t)i + 1, .document_id = "d", .title = "t", .text = t[i],
                                       .score = 1.0 - 0.1 * (double)i};
        struct agent_io io = {.question = questions[qi], .k = 3, .hits = hits, .nhits = 4};
        assert_int_equal(agent_rerank.run(NULL, &ctx, &io), ERR_OK);
        assert_non_null(io.pterms);
        for (size_t i = 0; i < io.nhits; i++)
            assert_ptr_equal(io.pterms[i].text, io.hits[i].text);
        if (qi == 0) { /* "Being" and "beings" in the second passage are both the term "be" */
            const struct agent_passage_terms *pt = NULL;
            for (size_t i = 0; i < io.nhits; i++)
                if (io.hits[i].chunk_id == 2)
                    pt = &io.pterms[i];
            assert_non_null(pt);
            bool stop = false, content = false;
            for (size_t k = 0; k < pt->n; k++) {
                stop = stop || (pt->v[k].start == 0 && pt->v[k].end == 5);
                content = content || strncmp(t[1] + pt->v[k].start, "beings", 6) == 0;
            }
            assert_true(stop);
            assert_true(content);
        }
        struct agent_io alone = io;
        alone.pterms = NULL;
        assert_int_equal(agent_extractive.run(NULL, &ctx, &io), ERR_OK);
        assert_int_equal(agent_extractive.run(NULL, &ctx, &alone), ERR_OK);
        assert_int_equal(io.abstained, alone.abstained);
        assert_true(io.confidence == alone.confidence);
        if (!io.abstained) {
            assert_string_equal(io.answer, alone.answer);
            assert_int_equal(io.ncitations, alone.ncitations);
            for (size_t i = 0; i < io.ncitations; i++) {
                assert_int_equal(io.citations[i].start, alone.citations[i].start);
                assert_int_equal(io.citations[i].end, alone.citations[i].end);
                assert_string_equal(io.citations[i].snippet, alone.citations[i].snippet);
            }
        }
        arena_free(a);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rerank_prefers_the_passage_that_answers),
        cmocka_unit_test(test_rerank_keeps_a_good_order),
        cmocka_unit_test(test_rerank_edges),
        cmocka_unit_test(test_rerank_terms_feed_the_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
