/* admission.c - the admission rules, first match wins:
 *
 *   1. no capacity                                   shed
 *   2. queue at queue_max                            shed
 *   3. predicted wait >= deadline                    shed
 *   4. low priority and occupancy >= 2               shed
 *   5. wait + extractive time > deadline             shed
 *   6. wait + full service time > deadline           degrade
 *   7. low priority and occupancy >= 1,
 *      normal priority and occupancy >= 2            degrade
 *   8. otherwise                                     admit
 *
 * occupancy = (in_flight + queue_depth) / capacity: 1 means every worker is
 * busy, 2 means one request waits per worker.  High priority is never shed
 * or degraded by occupancy alone, only by rules 1-3, 5 and 6.  Retry-After
 * is the predicted wait rounded up to seconds, 1..60. */
#include "admission.h"

#include <math.h>
#include <stddef.h>

const char *slo_admit_name(enum slo_admit a) {
    static const char *const n[] = {"admit", "degrade", "shed"};
    return (unsigned)a < 3 ? n[a] : "unknown";
}

static int retry_after(double wait_ms) {
    double s = ceil(wait_ms / 1000.0);
    return s < 1 ? 1 : s > SLO_ADMISSION_RETRY_MAX_S ? SLO_ADMISSION_RETRY_MAX_S : (int)s;
}

void slo_admission_decide(const struct slo_admission_input *in, struct slo_admission *ret) {
    struct slo_admission a = {.action = SLO_ADMIT, .reason = "admitted"};
    if (in->capacity <= 0) {
        *ret = (struct slo_admission){.action = SLO_ADMIT_SHED, .retry_after_s = 1, .reason = "no worker capacity"};
        return;
    }
    double service = in->service_ms > 0 ? in->service_ms : SLO_ADMISSION_SERVICE_MS;
    double degraded = in->degraded_service_ms > 0 ? in->degraded_service_ms : SLO_ADMISSION_DEGRADED_MS;
    int busy = (in->in_flight > 0 ? in->in_flight : 0) + (in->queue_depth > 0 ? in->queue_depth : 0);
    int ahead = busy + 1 - in->capacity;
    a.wait_ms = ahead > 0 ? ahead * service / in->capacity : 0;
    double occupancy = (double)busy / in->capacity;
    const char *shed = NULL;
    if (in->queue_max > 0 && in->queue_depth >= in->queue_max)
        shed = "queue full";
    else if (a.wait_ms >= in->deadline_ms)
        shed = "predicted queue wait exceeds the deadline";
    else if (in->priority == SLO_PRIORITY_LOW && occupancy >= 2)
        shed = "low priority shed under load";
    else if (a.wait_ms + degraded > in->deadline_ms)
        shed = "not even an extractive answer fits the deadline";
    if (shed) {
        a.action = SLO_ADMIT_SHED;
        a.retry_after_s = retry_after(a.wait_ms);
        a.reason = shed;
    } else if (a.wait_ms + service > in->deadline_ms) {
        a.action = SLO_ADMIT_DEGRADE;
        a.reason = "full plan would miss the deadline after queueing: extractive";
    } else if (in->priority == SLO_PRIORITY_LOW && occupancy >= 1) {
        /* Only low-priority work degrades on occupancy alone: in slorag a
         * worker holds a request only for its CPU stages (LLM calls wait
         * on the I/O thread), so a burst that fills the worker queue
         * drains in milliseconds; normal work degrades only when the
         * predicted wait says the full plan would miss its deadline. */
        a.action = SLO_ADMIT_DEGRADE;
        a.reason = "degraded under load";
    }
    *ret = a;
}
