/* admission.h - admit, degrade or shed a request before it queues.
 *
 * A pure function of the queue and the request: the predicted wait for a
 * worker is (requests ahead of this one beyond capacity) x service time /
 * capacity.  A request whose wait alone would eat its deadline is never
 * admitted; one whose full plan would not fit after the wait, but an
 * extractive answer would, is degraded; low-priority work is degraded and
 * shed first as the system fills.  Sheds carry a Retry-After. */
#ifndef SLORAG_SLO_ADMISSION_H
#define SLORAG_SLO_ADMISSION_H

enum slo_admit { SLO_ADMIT, SLO_ADMIT_DEGRADE, SLO_ADMIT_SHED };
enum slo_priority { SLO_PRIORITY_LOW, SLO_PRIORITY_NORMAL, SLO_PRIORITY_HIGH };

#define SLO_ADMISSION_SERVICE_MS 1000.0 /* used when service_ms is unknown (<= 0) */
#define SLO_ADMISSION_DEGRADED_MS 100.0 /* used when degraded_service_ms is unknown */
#define SLO_ADMISSION_RETRY_MAX_S 60

struct slo_admission_input {
    int queue_depth;            /* requests waiting for a worker */
    int in_flight;              /* requests running */
    int capacity;               /* workers (concurrent requests) */
    int queue_max;              /* queue bound; 0 = unbounded */
    double service_ms;          /* mean time a request holds a worker */
    double degraded_service_ms; /* the same for an extractive answer */
    int deadline_ms;            /* this request's */
    enum slo_priority priority;
};

struct slo_admission {
    enum slo_admit action;
    double wait_ms;    /* predicted wait for a worker */
    int retry_after_s; /* sheds: 1..SLO_ADMISSION_RETRY_MAX_S; else 0 */
    const char *reason; /* static */
};

const char *slo_admit_name(enum slo_admit a);
void slo_admission_decide(const struct slo_admission_input *in, struct slo_admission *ret);

#endif
