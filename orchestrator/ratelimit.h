/* ratelimit.h - per-tenant token buckets: requests per second and LLM
 * tokens per minute.  In memory, so limits are per process (documented). */
#ifndef SLORAG_RATELIMIT_H
#define SLORAG_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct rl_table;

struct rl_table *rl_new(void);
struct rl_table *rl_free(struct rl_table *t);

/* Takes one request from the tenant's bucket (capacity: one second's worth,
 * at least 1).  rps <= 0 means unlimited.  On refusal *ret_retry_s says when
 * to come back. */
bool rl_take_request(struct rl_table *t, const char *tenant, double rps, int64_t now_us, int *ret_retry_s);
/* False when the tenant's token bucket is empty (tpm <= 0: unlimited). */
bool rl_tokens_available(struct rl_table *t, const char *tenant, double tpm, int64_t now_us, int *ret_retry_s);
/* Debits tokens actually used (the bucket may go negative: the next
 * requests wait until it refills). */
void rl_spend_tokens(struct rl_table *t, const char *tenant, double tpm, double tokens, int64_t now_us);

#endif
