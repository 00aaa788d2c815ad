/* aggregate.c - see aggregate.h. */
#include "aggregate.h"

#include <string.h>

static int votes_for(const char *const *answers, int n, int i, double agree_at, agent_similarity_fn similar) {
    int v = 0;
    for (int k = 0; k < n; k++)
        v += answers[k] && (strcmp(answers[i], answers[k]) == 0 || similar(answers[i], answers[k]) >= agree_at);
    return v;
}

void agent_aggregate(const char *const *answers, const double *confidence, int n, bool vote, double agree_at,
                     agent_similarity_fn similar, struct agent_agg_result *ret) {
    struct agent_agg_result r = {.best = -1};
    int best_votes = 0;
    for (int i = 0; i < n; i++) {
        if (!answers[i])
            continue;
        r.ok++;
        int v = votes_for(answers, n, i, agree_at, similar);
        if (v > r.agreeing)
            r.agreeing = v;
        bool better = r.best < 0 || (vote ? v > best_votes || (v == best_votes && confidence[i] > confidence[r.best])
                                          : confidence[i] > confidence[r.best]);
        if (better) {
            r.best = i;
            best_votes = v;
        }
    }
    r.agreement = r.ok ? (double)r.agreeing / r.ok : 0;
    *ret = r;
}
