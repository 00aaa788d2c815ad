/* Unit tests for slo/space.c: the size of the space, stable indexes and
 * keys, canonical key parsing, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "space.h"

static void test_indexes_and_keys(void **state) {
    (void)state;
    assert_int_equal(SLO_SPACE_SIZE, 774);
    size_t longest = 0;
    static char keys[SLO_SPACE_SIZE][SLO_KEY_MAX];
    for (int i = 0; i < SLO_SPACE_SIZE; i++) {
        struct slo_config c;
        assert_true(slo_space_config(i, &c));
        assert_int_equal(slo_space_index(&c), i);
        int n = slo_space_key(i, keys[i], sizeof keys[i]);
        assert_true(n > 0 && (size_t)n == strlen(keys[i]));
        if ((size_t)n > longest)
            longest = (size_t)n;
        assert_int_equal(slo_space_find(keys[i]), i);
        for (int j = 0; j < i; j++)
            if (strcmp(keys[i], keys[j]) == 0)
                fail_msg("index %d and %d share key %s", i, j, keys[i]);
        /* aggregation iff replicas; extractive has no tokens */
        assert_true((c.replicas == 1) == (c.aggregate == SLO_AGG_NONE));
        assert_true((c.tier == SLO_TIER_EXTRACTIVE) == (c.max_tokens == 0));
        assert_true(c.tier != SLO_TIER_EXTRACTIVE || c.replicas == 1);
    }
    assert_int_equal(longest, strlen("lexical/k8/rerank/medium/x3/confidence/t1024"));
    assert_true(longest < SLO_KEY_MAX);
    assert_false(slo_space_config(-1, &(struct slo_config){0}));
    assert_false(slo_space_config(SLO_SPACE_SIZE, &(struct slo_config){0}));
    char small[8];
    assert_int_equal(slo_space_key(0, small, sizeof small), -1);

    /* indexes are part of persisted state's meaning: pin a few */
    static const struct {
        const char *key;
        int index;
    } pinned[] = {
        {"lexical/k3/extractive", 0},
        {"lexical/k3/small/t256", 1},
        {"lexical/k3/small/x2/vote/t256", 2},
        {"lexical/k3/small/x3/confidence/t256", 5},
        {"lexical/k3/small/x2/judge/t256", 6},
        {"lexical/k3/small/t1024", 8},
        {"lexical/k3/large/x3/confidence/t1024", 40},
        {"lexical/k3/rerank/extractive", 43},
        {"hybrid/k5/medium/x3/vote/t256", 620},
        {"hybrid/k8/rerank/large/x3/confidence/t1024", 771},
        {"hybrid/k8/rerank/large/x3/judge/t1024", 773},
    };
    for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; i++) {
        char key[SLO_KEY_MAX];
        slo_space_key(pinned[i].index, key, sizeof key);
        assert_string_equal(key, pinned[i].key);
        assert_int_equal(slo_space_find(pinned[i].key), pinned[i].index);
    }

    static const char *const bad[] = {
        "", "hybrid", "hybrid/k5", "hybrid/k5/medium", "hybrid/k4/extractive", "hybrid/k05/extractive",
        "Hybrid/k5/extractive", "hybrid/k5/extractive/t256", "hybrid/k5/medium/x1/none/t256",
        "hybrid/k5/medium/t256/x3/vote", "hybrid/k5/medium/x3/t256", "hybrid/k5/medium/x4/vote/t256",
        "hybrid/k5/medium/x3/majority/t256", "hybrid/k5/medium/t512", "hybrid/k5/rerank", "hybrid/k5/rerank/rerank/small/t256",
        "hybrid/k5/medium/t256/", "/hybrid/k5/medium/t256", "hybrid//k5/medium/t256", "hybrid/k5/huge/t256",
        "hybrid/k5/medium/x3/vote/t256/extra/parts/here",
        "a-very-long-key-that-does-not-fit-in-the-buffer-at-all/k5/medium/t256",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (slo_space_find(bad[i]) != -1)
            fail_msg("\"%s\" was accepted", bad[i]);
    assert_int_equal(slo_space_find(NULL), -1);
    /* configurations outside the space */
    assert_int_equal(slo_space_index(&(struct slo_config){.retriever = SLO_RETRIEVER_HYBRID, .k = 4,
                                                          .tier = SLO_TIER_EXTRACTIVE, .replicas = 1}),
                     -1);
    assert_int_equal(slo_space_index(&(struct slo_config){.retriever = SLO_RETRIEVER_HYBRID, .k = 5,
                                                          .tier = SLO_TIER_SMALL, .replicas = 2,
                                                          .aggregate = SLO_AGG_NONE, .max_tokens = 256}),
                     -1);
    assert_int_equal(slo_space_index(&(struct slo_config){.retriever = SLO_RETRIEVER_HYBRID, .k = 5,
                                                          .tier = SLO_TIER_EXTRACTIVE, .replicas = 3,
                                                          .aggregate = SLO_AGG_VOTE}),
                     -1);
}

static void test_limits(void **state) {
    (void)state;
    struct slo_space_limits lim = slo_space_limits_all();
    static int idx[SLO_SPACE_SIZE];
    assert_int_equal(slo_space_enumerate(&lim, idx, SLO_SPACE_SIZE), SLO_SPACE_SIZE);
    for (int i = 0; i < SLO_SPACE_SIZE; i++)
        assert_int_equal(idx[i], i);

    /* extractive + small, no reranker, 2 replicas, 256 tokens, k up to 5:
     * 3 retrievers x 2 k x (1 + 1 tier x 1 token level x (x1, x2 vote, x2 conf, x2 judge)) */
    lim = (struct slo_space_limits){.tiers = SLO_TIER_BIT(SLO_TIER_EXTRACTIVE) | SLO_TIER_BIT(SLO_TIER_SMALL),
                                    .retrievers = 0x7,
                                    .reranker = false,
                                    .max_replicas = 2,
                                    .max_tokens = 256,
                                    .max_k = 5};
    size_t n = slo_space_enumerate(&lim, idx, SLO_SPACE_SIZE);
    assert_int_equal(n, 3 * 2 * (1 + 4));
    for (size_t i = 0; i < n; i++) {
        struct slo_config c;
        slo_space_config(idx[i], &c);
        assert_true(c.tier <= SLO_TIER_SMALL && !c.rerank && c.replicas <= 2 && c.k <= 5);
        assert_true(c.max_tokens <= 256);
        assert_true(i == 0 || idx[i] > idx[i - 1]);
    }
    assert_int_equal(slo_space_enumerate(&lim, idx, 3), n); /* counts past max */

    /* a cap below the smallest level keeps that level (the plan clips) */
    lim.max_k = 2;
    lim.max_tokens = 100;
    n = slo_space_enumerate(&lim, idx, SLO_SPACE_SIZE);
    assert_int_equal(n, 3 * 1 * (1 + 4));
    lim.retrievers = 1u << SLO_RETRIEVER_DENSE;
    assert_int_equal(slo_space_enumerate(&lim, idx, SLO_SPACE_SIZE), 1 + 4);
    lim.tiers = 0;
    assert_int_equal(slo_space_enumerate(&lim, idx, SLO_SPACE_SIZE), 0);
    /* 1024 tokens need a cap above 256 */
    lim = slo_space_limits_all();
    lim.max_tokens = 256;
    assert_false(slo_space_allowed(&lim, slo_space_find("hybrid/k5/small/t1024")));
    lim.max_tokens = 257;
    assert_true(slo_space_allowed(&lim, slo_space_find("hybrid/k5/small/t1024")));
    assert_false(slo_space_allowed(&lim, SLO_SPACE_SIZE));
    lim.max_replicas = 0; /* counts as 1: single calls stay allowed */
    assert_true(slo_space_allowed(&lim, slo_space_find("hybrid/k5/small/t256")));
    assert_false(slo_space_allowed(&lim, slo_space_find("hybrid/k5/small/x2/vote/t256")));

    /* applying a configuration to a plan */
    struct slo_plan p = {.deadline_ms = 1234, .reason = "kept"};
    struct slo_config c;
    slo_space_config(slo_space_find("dense/k8/rerank/large/x3/vote/t1024"), &c);
    slo_space_apply(&c, 512, &p);
    assert_int_equal(p.retriever, SLO_RETRIEVER_DENSE);
    assert_int_equal(p.k, 8);
    assert_true(p.rerank);
    assert_int_equal(p.tier, SLO_TIER_LARGE);
    assert_int_equal(p.replicas, 3);
    assert_int_equal(p.aggregate, SLO_AGG_VOTE);
    assert_int_equal(p.max_tokens, 512);
    assert_int_equal(p.deadline_ms, 1234);
    assert_string_equal(p.reason, "kept");
    slo_space_config(slo_space_find("lexical/k3/extractive"), &c);
    slo_space_apply(&c, 300, &p);
    assert_int_equal(p.max_tokens, 300);
    assert_int_equal(p.replicas, 1);
    assert_int_equal(p.aggregate, SLO_AGG_NONE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_indexes_and_keys),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests_name("slo-space", tests, NULL, NULL);
}
