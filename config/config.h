/* config.h - the service configuration as an immutable, ref-counted snapshot.
 *
 * Sources, later ones winning: built-in defaults, a JSON file, environment
 * variables (SLORAG_*), command-line flags.  Unknown keys and bad values fail
 * with a path-qualified message such as "server.workers: must be >= 1".
 * A reload builds a new snapshot and swaps one pointer in a cfg_slot; a
 * request keeps the snapshot it started with until it ends. */
#ifndef SLORAG_CONFIG_H
#define SLORAG_CONFIG_H

#include <stdatomic.h>
#include <pthread.h>
#include <stddef.h>

#include "err.h"

#define CFG_MAX_BACKENDS 16

/* One OpenAI-compatible LLM endpoint (llama.cpp server, Ollama, vLLM). */
struct cfg_backend {
    char name[32];
    char url[256];        /* base URL, e.g. http://127.0.0.1:8081 */
    char model[128];
    char api_key_env[64]; /* name of the environment variable holding the key, or "" */
    char tier[16];        /* small | medium | large */
    double price_in_per_1k;  /* currency units per 1000 input tokens */
    double price_out_per_1k; /* per 1000 output tokens */
    double price_per_second; /* per second of backend time */
    int max_concurrency;
    int connect_timeout_ms;
    int first_token_timeout_ms;
    int timeout_ms;          /* total per call */
    int max_retries;
    int breaker_failures;    /* consecutive failures that open the breaker */
    int breaker_cooldown_ms; /* open -> half-open after this long */
};

struct cfg {
    atomic_int refs;

    char listen_host[64];
    int listen_port;
    char *data_dir;  /* owned */
    char admin_key[129]; /* "" = admin API disabled */
    char dashboard_key[129]; /* read-only key for /v1/stats and the dashboard; "" = none */
    int log_level;   /* enum log_level */

    struct {
        int workers;              /* CPU worker threads */
        int queue_max;            /* jobs waiting for a worker before 503 */
        long max_body_bytes;
        long max_header_bytes;    /* per-connection memory for headers */
        long max_upload_bytes;    /* body cap for document uploads */
        int max_connections;
        int connection_timeout_s; /* idle connection timeout */
        int drain_timeout_ms;     /* SIGTERM: wait this long for in-flight */
    } server;

    struct {
        int deadline_ms;          /* default per-request deadline */
        int default_k;
        int max_k;
        long max_question_bytes;
        double min_confidence;    /* extractive answers below abstain */
        char default_tier[16];    /* auto (the SLO planner decides) | extractive | small | medium | large */
        char calibration[512];    /* priors file written by `slorag eval --calibrate`, "" = built-in priors */
        double explore_rate;      /* SLO planner exploration, 0..0.2 */
        int max_tokens;           /* generation limit per answer */
    } query;

    struct cfg_backend backends[CFG_MAX_BACKENDS];
    int nbackends;

    struct {
        int chunk_tokens;
        int chunk_overlap_tokens;
        long max_document_bytes;
        int embedding_dim;          /* built-in embedder */
        char index_factory[64];     /* FAISS index-factory string */
        int index_save_interval_ms; /* how often changed indexes are written */
        char default_mode[16];      /* lexical | dense | hybrid */
        int max_batch_documents;    /* documents per upload request */
        long ann_threshold;         /* vectors from which a collection gets an approximate index; 0 = never */
        char ann_factory[64];       /* its FAISS factory string; {nlist} = 4*sqrt(n) */
        int ann_nprobe;             /* IVF lists searched per query; 0 = 40% */
        long quantized_scan_min;    /* vectors from which an exact index is scanned in 8 bits first; 0 = never */
        int lexical_index;          /* 1: in-memory BM25 index beside FTS5 (lexindex.h); 0: FTS5 only */
        int text_cache_mb;          /* memory for returned chunks' texts (textcache.h); 0 = none */
    } retrieval;

    /* The text embedder behind dense retrieval; changes apply after a restart. */
    struct {
        char kind[16];           /* builtin (retrieval.embedding_dim) | http */
        char url[256];           /* http: base URL; /v1/embeddings is appended */
        char model[128];
        char api_key_env[64];    /* name of the environment variable holding the key, or "" */
        char encoding[16];       /* float | base64 */
        int batch;               /* texts per request */
        int connect_timeout_ms;
        int timeout_ms;          /* per request */
        int dimension;           /* expected; 0 = learned at start-up from one probe request */
    } embedder;

    struct {
        int retention_days;         /* usage rows kept this many days (never this month's); 0 = all */
    } ledger;
};

struct cfg_overrides {
    const char *listen;    /* "host:port" or NULL */
    const char *data_dir;
    const char *log_level;
};

#define CFG_ADMIN_KEY_MIN 16

/* path may be NULL (defaults + env + overrides).  On failure writes a
 * message into errbuf and leaves *ret_cfg untouched. */
enum err cfg_load(const char *path, const struct cfg_overrides *ov, char *errbuf, size_t errlen,
                  struct cfg **ret_cfg);
/* The same from JSON text instead of a file (environment applies, no
 * overrides): for tests and fuzzers. */
enum err cfg_load_text(const char *text, size_t len, char *errbuf, size_t errlen, struct cfg **ret_cfg);
struct cfg *cfg_ref(struct cfg *c);
struct cfg *cfg_unref(struct cfg *c); /* NULL-safe, returns NULL */

/* The current snapshot, swappable at runtime. */
struct cfg_slot {
    pthread_mutex_t mu;
    struct cfg *cur; /* one reference owned by the slot */
};

void cfg_slot_init(struct cfg_slot *s, struct cfg *c); /* takes the reference */
struct cfg *cfg_slot_get(struct cfg_slot *s);          /* returns a new reference */
void cfg_slot_swap(struct cfg_slot *s, struct cfg *c); /* takes the reference */
void cfg_slot_done(struct cfg_slot *s);

#endif
