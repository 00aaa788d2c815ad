/* bench-retrieval.c - retrieval benchmark: ingestion, query latency, dense
 * search against raw FAISS, approximate-index recall, memory, disk, start-up
 * and concurrency, over a synthetic corpus run through the real engine.
 *
 * The corpus is generated from a seeded PRNG, so a (seed, dim, sizes) triple
 * always produces the same documents: sentences of English function words
 * and pseudo-words drawn from a Zipf-Mandelbrot distribution, each document
 * leaning towards one of a few dozen topics, with some inflected forms so the
 * stemmers have work to do.  Sizes are reached incrementally in one data
 * directory: ingest up to the first size, measure, restart the engine, keep
 * ingesting up to the next size, and so on.
 *
 * "Raw FAISS" is a second Flat index built from the embeddings the engine
 * stored in SQLite and searched through ret_vindex_search_faiss (a one-line
 * wrapper over faiss_Index_search; slorag's own dense path scans a single
 * query over a Flat index with its own AVX2 loop, see vindex.c); it is timed
 * interleaved with the engine's dense search so machine noise hits both
 * alike.
 *
 * Start-up is timed in a fresh process (this program re-executed with
 * --probe-startup), once after dropping the data directory's files from the
 * page cache and once warm, so its time and memory are a new server's, not
 * whatever this process has touched. */
#include "embed.h"
#include "engine.h"
#include "text.h"
#include "util.h"
#include "vindex.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_K 10
#define BENCH_MAX_SIZES 4
#define BENCH_READERS 32 /* SQLite reader connections: one per concurrent thread */
#define BENCH_THREADS 32 /* default for --threads */
#define BENCH_WARMUP 30
#define BENCH_VOCAB 4000
#define BENCH_TOPICS 48
#define BENCH_TOPIC_WORDS 120
#define BENCH_DOC_MAX (256 * 1024)
#define BENCH_MAX_NPROBE 8
#define BENCH_JSON_MAX (64 * 1024)

/* Engine settings: the configuration defaults (config/config.c). */
#define BENCH_CHUNK_TOKENS 160
#define BENCH_CHUNK_OVERLAP 24
#define BENCH_FACTORY "Flat"
#define BENCH_SAVE_INTERVAL_MS 2000

/* ---- small helpers ---- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("[bench] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void check(enum err e, const char *what) {
    if (e == ERR_OK)
        return;
    fprintf(stderr, "bench-retrieval: %s: %s (%s)\n", what, err_message(e), ret_vindex_last_error());
    exit(1);
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "bench-retrieval: out of memory\n");
        exit(1);
    }
    return p;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of v[0..n) (p in 0..1); sorts a copy. */
static double percentile(const double *v, size_t n, double p) {
    if (n == 0)
        return 0;
    double *s = xcalloc(n, sizeof(*s));
    memcpy(s, v, n * sizeof(*s));
    qsort(s, n, sizeof(*s), cmp_double);
    size_t r = (size_t)ceil(p * (double)n);
    double x = s[r ? r - 1 : 0];
    free(s);
    return x;
}

static double mean(const double *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return n ? s / (double)n : 0;
}

/* Growable array of timings. */
struct samples {
    double *v;
    size_t n, cap;
};

static void samples_add(struct samples *s, double x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        if (!s->v) {
            fprintf(stderr, "bench-retrieval: out of memory\n");
            exit(1);
        }
    }
    s->v[s->n++] = x;
}

static long rss_kb(void) {
    malloc_trim(0); /* hand freed heap back first, so RSS means live memory */
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* ---- PRNG: xoshiro256**, seeded through splitmix64 ---- */

struct rng {
    uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(struct rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static double rng_unit(struct rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }
static size_t rng_below(struct rng *r, size_t n) { return (size_t)(rng_unit(r) * (double)n); }
static size_t rng_range(struct rng *r, size_t lo, size_t hi) { return lo + rng_below(r, hi - lo + 1); }

/* ---- the synthetic language ---- */

/* Cumulative weights of a Zipf-Mandelbrot law p(r) ~ 1/(r+q)^s. */
struct zipf {
    double *cdf;
    size_t n;
};

static void zipf_init(struct zipf *z, size_t n, double s, double q) {
    z->cdf = xcalloc(n, sizeof(double));
    z->n = n;
    double acc = 0;
    for (size_t r = 0; r < n; r++)
        z->cdf[r] = acc += 1.0 / pow((double)r + 1.0 + q, s);
    for (size_t r = 0; r < n; r++)
        z->cdf[r] /= acc;
}

static size_t zipf_draw(const struct zipf *z, struct rng *r) {
    double u = rng_unit(r);
    size_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (z->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Function words keep sentences looking like English; the engine drops
 * them, as it would in real text. */
static const char *const function_words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "was", "on", "be",
    "by", "this", "are", "from", "or", "at", "which", "an", "but", "not", "have", "its", "into",
};

struct language {
    char words[BENCH_VOCAB][16];
    struct zipf global, topic_law, function_law;
    uint16_t topics[BENCH_TOPICS][BENCH_TOPIC_WORDS]; /* vocabulary indexes */
};

static bool vocab_has(const struct language *l, size_t n, const char *w) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(l->words[i], w) == 0)
            return true;
    return false;
}

static void language_init(struct language *l, struct rng *r) {
    static const char *const onset[] = {"b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r",
                                        "s", "t", "v", "w", "z", "br", "cr", "dr", "fl", "gr", "pl",
                                        "pr", "st", "tr", "sh", "ch", "th", "qu"};
    static const char *const vowel[] = {"a", "e", "i", "o", "u", "ai", "ea", "ou", "io", "y"};
    static const char *const coda[] = {"", "", "", "", "n", "r", "l", "m", "nd", "st", "x", "k"};
    size_t n = 0;
    while (n < BENCH_VOCAB) {
        char w[16] = "";
        size_t syl = rng_range(r, 2, 3);
        for (size_t i = 0; i < syl; i++) {
            strcat(w, onset[rng_below(r, ARRAY_SIZE(onset))]);
            strcat(w, vowel[rng_below(r, ARRAY_SIZE(vowel))]);
        }
        strcat(w, coda[rng_below(r, ARRAY_SIZE(coda))]);
        if (strlen(w) < 4 || text_is_stopword(w) || vocab_has(l, n, w))
            continue;
        memcpy(l->words[n++], w, sizeof w);
    }
    /* q=8 flattens the head: the commonest content word is about 1.5% of
     * content tokens, as in real prose once stop words are gone. */
    zipf_init(&l->global, BENCH_VOCAB, 1.05, 8.0);
    zipf_init(&l->topic_law, BENCH_TOPIC_WORDS, 1.0, 2.0);
    zipf_init(&l->function_law, ARRAY_SIZE(function_words), 1.0, 1.0);
    for (size_t t = 0; t < BENCH_TOPICS; t++)
        for (size_t i = 0; i < BENCH_TOPIC_WORDS; i++)
            l->topics[t][i] = (uint16_t)rng_range(r, 50, BENCH_VOCAB - 1);
}

struct doc_buf {
    char *p;
    size_t len;
};

static void put_str(struct doc_buf *b, const char *s) {
    size_t n = strlen(s);
    if (b->len + n + 1 > BENCH_DOC_MAX)
        return; /* documents are far below the cap; truncate rather than grow */
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static void put_word(struct doc_buf *b, const struct language *l, struct rng *r, size_t topic, bool first) {
    char w[24];
    if (rng_unit(r) < 0.30) {
        snprintf(w, sizeof w, "%s", function_words[zipf_draw(&l->function_law, r)]);
    } else {
        size_t idx = rng_unit(r) < 0.35 ? l->topics[topic][zipf_draw(&l->topic_law, r)] : zipf_draw(&l->global, r);
        double m = rng_unit(r);
        const char *suffix = m < 0.12 ? "s" : m < 0.17 ? "ed" : m < 0.22 ? "ing" : "";
        snprintf(w, sizeof w, "%s%s", l->words[idx], suffix);
    }
    if (first)
        w[0] = (char)(w[0] - 'a' + 'A');
    put_str(b, w);
}

/* One document of 400..2400 words in paragraphs of 2..6 sentences. */
static void make_document(const struct language *l, struct rng *r, struct doc_buf *b) {
    b->len = 0;
    b->p[0] = '\0';
    size_t topic = rng_below(r, BENCH_TOPICS);
    size_t target = rng_range(r, 400, 2400), words = 0;
    while (words < target) {
        if (b->len)
            put_str(b, "\n\n");
        size_t sentences = rng_range(r, 2, 6);
        for (size_t s = 0; s < sentences; s++) {
            size_t len = rng_range(r, 6, 22);
            for (size_t i = 0; i < len; i++) {
                if (i)
                    put_str(b, rng_unit(r) < 0.06 ? ", " : " ");
                put_word(b, l, r, topic, i == 0);
            }
            put_str(b, s + 1 < sentences ? ". " : ".");
            words += len;
        }
    }
}

/* ---- the data directory ---- */

struct bench_dir {
    char root[4096], db[4200], index[4200];
    bool keep;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}

static void dir_remove(const struct bench_dir *d) {
    if (!d->keep && d->root[0])
        nftw(d->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int64_t disk_total;
static int disk_add(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    if (flag == FTW_F)
        disk_total += st->st_size;
    return 0;
}

static int64_t disk_bytes(const char *path) {
    disk_total = 0;
    nftw(path, disk_add, 16, FTW_PHYS);
    return disk_total;
}

static int evict_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    if (flag != FTW_F)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    return 0;
}

/* Drops our own files from the page cache (no root needed, nobody else's
 * cache touched), so a "cold" start-up reads from the disk. */
static void evict_page_cache(const char *root) { nftw(root, evict_entry, 16, FTW_PHYS); }

/* The index file of the only collection, for timing a bare load. */
static bool find_index_file(const char *dir, char *out, size_t n) {
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    for (struct dirent *de; !found && (de = readdir(d));) {
        size_t l = strlen(de->d_name);
        if (l > 6 && strcmp(de->d_name + l - 6, ".faiss") == 0) {
            snprintf(out, n, "%s/%s", dir, de->d_name);
            found = true;
        }
    }
    closedir(d);
    return found;
}

/* ---- results ---- */

struct mode_figures {
    double p50, p99, mean, found; /* ms; found = share of queries whose source chunk is in the top 10 */
};

struct ivf_figures {
    int nprobe;
    double recall, recall_ties, p50, p99;
};

struct startup_figures {
    double store_ms, engine_ms, total_ms;
    double count_ms, load_ms; /* the two parts that grow with the collection, timed alone after start-up */
    long rss_before, rss_after; /* VmRSS of the fresh process around the open */
    double lex_ready_ms;        /* from the end of the open to the lexical index ready */
    long rss_lex;               /* VmRSS then */
    struct ret_startup_report rep;
};

struct size_figures {
    long target;
    int64_t chunks, docs;
    double text_mb;
    /* ingestion from the previous size to this one */
    int64_t ingest_chunks;
    double ingest_mb, ingest_s, ingest_mb_s, ingest_chunks_s, put_p50, put_p99, put_max;
    struct mode_figures mode[4]; /* lexical, dense, hybrid, and lexical through FTS5 alone */
    size_t lex_bytes;            /* the in-memory lexical index */
    /* dense vs raw FAISS */
    double dense_p50, raw_p50, embed_p50, fill_p50, rest_p50, ratio, ratio_pq, agree, raw_p99, dense_p99;
    /* the quantized scan vs the exact own scan (k = 10 and 50) */
    double sq_p50[2], exact_p50[2], sq_ratio[2], sq_recall[2]; /* the default: by dimension for sparse queries */
    double rows_p50[2], rows_ratio[2], rows_recall[2];        /* the 8-bit copy read by rows */
    size_t sq_bytes;
    /* approximate index */
    int nlist;
    double train_s, add_s, flat_batch_ms;
    struct ivf_figures ivf[BENCH_MAX_NPROBE];
    int nivf;
    double hnsw_build_s;
    struct ivf_figures hnsw[BENCH_MAX_NPROBE]; /* nprobe holds efSearch */
    int nhnsw;
    /* memory and disk */
    long rss_before, rss_after;
    double rss_per_chunk, rss_open_per_chunk;
    int64_t disk_db, disk_index;
    double disk_per_chunk;
    /* start-up, each in a fresh process */
    double close_ms;
    struct startup_figures cold, warm, warm_small; /* warm_small: 4 KiB pages (SLORAG_HUGEPAGES=0) */
    /* concurrency */
    int conc_queries;
    struct conc_figures {
        int threads;
        double qps, p50, p99;
    } conc_engine[2], conc_raw[2]; /* 1 thread, then --threads */
};

/* ---- the engine under test ---- */

struct bench {
    struct bench_dir dir;
    struct ret_store *store;
    struct ret_engine *eng;
    int64_t cid;
    int dim;
    uint64_t seed;
    int nqueries, threads;
    int ann;  /* 0: no approximate-index sweeps; 1: IVF; 2: IVF and HNSW */
    int conc_queries; /* 0: max(2 x queries, 1024) */
    struct language *lang;
    struct rng corpus_rng;
    struct doc_buf doc;
    int64_t docs, chunks;
    double text_bytes;
};

static struct ret_engine_opts engine_opts(const struct bench *b) {
    return (struct ret_engine_opts){
        .index_dir = b->dir.index,
        .index_factory = BENCH_FACTORY,
        .dim = b->dim,
        .save_interval_ms = BENCH_SAVE_INTERVAL_MS,
        .chunk = {BENCH_CHUNK_TOKENS, BENCH_CHUNK_OVERLAP},
        .lexical_index = true,
    };
}

/* Waits for the collection's in-memory lexical index (built in the
 * background at open); returns the ms waited. */
static double wait_lexical(struct bench *b) {
    double t0 = now_ms();
    for (;;) {
        struct ret_index_info info;
        check(ret_engine_index_info(b->eng, b->cid, &info), "index info");
        if (info.lexical_ready)
            return now_ms() - t0;
        usleep(1000);
    }
}

static void bench_open(struct bench *b, struct startup_figures *ret_fig) {
    struct startup_figures f = {0};
    double t0 = now_ms();
    check(ret_store_open(b->dir.db, BENCH_READERS, &b->store), "open store");
    double t1 = now_ms();
    struct ret_engine_opts o = engine_opts(b);
    check(ret_engine_open(b->store, &o, &f.rep, &b->eng), "open engine");
    double t2 = now_ms();
    f.store_ms = t1 - t0;
    f.engine_ms = t2 - t1;
    f.total_ms = t2 - t0;
    check(ret_collection_ensure(b->store, "default", "bench", &b->cid), "create collection");
    if (ret_fig)
        *ret_fig = f;
}

static double bench_close(struct bench *b) {
    double t0 = now_ms();
    b->eng = ret_engine_free(b->eng); /* saves the index if dirty */
    b->store = ret_store_free(b->store);
    return now_ms() - t0;
}

static void ingest_to(struct bench *b, long target, struct size_figures *f) {
    struct samples put = {0};
    int64_t c0 = b->chunks;
    double bytes0 = b->text_bytes, busy = 0, last_note = now_ms(), wall0 = now_ms();
    while (b->chunks < target) {
        make_document(b->lang, &b->corpus_rng, &b->doc);
        char ext_id[32], title[48];
        snprintf(ext_id, sizeof ext_id, "doc-%07lld", (long long)b->docs);
        snprintf(title, sizeof title, "Synthetic document %lld", (long long)b->docs);
        struct ret_doc_in d = {.ext_id = ext_id, .title = title, .text = b->doc.p, .text_len = b->doc.len};
        struct ret_change c;
        double t0 = now_ms();
        check(ret_engine_put(b->eng, b->cid, &d, &c), "put document");
        double dt = now_ms() - t0;
        busy += dt;
        samples_add(&put, dt);
        b->chunks += (int64_t)c.nchunks;
        ret_change_done(&c);
        b->docs++;
        b->text_bytes += (double)b->doc.len;
        if (now_ms() - last_note > 5000) {
            last_note = now_ms();
            progress("ingest: %lld/%ld chunks, %.2f MB/s", (long long)b->chunks, target,
                     (b->text_bytes - bytes0) / 1e6 / (busy / 1e3));
        }
    }
    check(ret_engine_flush(b->eng), "flush index");
    f->ingest_chunks = b->chunks - c0;
    f->ingest_mb = (b->text_bytes - bytes0) / 1e6;
    f->ingest_s = busy / 1e3;
    f->ingest_mb_s = f->ingest_mb / f->ingest_s;
    f->ingest_chunks_s = (double)f->ingest_chunks / f->ingest_s;
    f->put_p50 = percentile(put.v, put.n, 0.50);
    f->put_p99 = percentile(put.v, put.n, 0.99);
    f->put_max = percentile(put.v, put.n, 1.0);
    progress("ingest: %lld chunks in %.1f s (wall %.1f s)", (long long)f->ingest_chunks, f->ingest_s,
             (now_ms() - wall0) / 1e3);
    free(put.v);
}

/* ---- queries ---- */

struct query {
    char text[160];
    int64_t source; /* the chunk it was taken from */
};

/* 3..5 consecutive content words of random chunks. */
static struct query *make_queries(struct bench *b, int n, struct rng *r) {
    struct query *q = xcalloc((size_t)n, sizeof(*q));
    struct arena *a = arena_new(0);
    int made = 0;
    for (long tries = 0; made < n; tries++) {
        if (tries > 100L * n) {
            fprintf(stderr, "bench-retrieval: too few chunks with 3 content words to draw queries from\n");
            exit(1);
        }
        struct ret_hit h = {.chunk_id = 1 + (int64_t)rng_below(r, (size_t)b->chunks)};
        check(ret_store_fill_hits(b->store, b->cid, &h, 1, a), "read chunk");
        if (h.chunk_id < 0)
            continue;
        struct text_token toks[512];
        size_t nt = 0, pos = 0, len = strlen(h.text);
        struct text_token t;
        while (nt < ARRAY_SIZE(toks) && text_next_token(h.text, len, &pos, &t)) {
            char w[64];
            text_token_lower(h.text, &t, w, sizeof w);
            if (!text_is_stopword(w))
                toks[nt++] = t;
        }
        size_t want = rng_range(r, 3, 5);
        if (nt < want)
            continue;
        size_t start = rng_below(r, nt - want + 1), used = 0;
        for (size_t i = 0; i < want; i++) {
            char w[64];
            text_token_lower(h.text, &toks[start + i], w, sizeof w);
            used += (size_t)snprintf(q[made].text + used, sizeof q[made].text - used, "%s%s", i ? " " : "", w);
            if (used >= sizeof q[made].text)
                break;
        }
        q[made].source = h.chunk_id;
        made++;
    }
    arena_free(a);
    return q;
}

#define MODE_FTS5 3 /* lexical through FTS5 alone (ret_search_lexical), for comparison */

static double timed_search(struct bench *b, const char *text, int mode, int64_t *ret_ids, size_t *ret_n) {
    struct arena *a = arena_new(0);
    struct ret_scored *res = NULL;
    struct ret_hit *hits = NULL;
    size_t n = 0;
    double t0 = now_ms();
    if (mode == MODE_FTS5)
        check(ret_search_lexical(b->store, b->cid, text, BENCH_K, a, &hits, &n), "FTS5 search");
    else
        check(ret_engine_search(b->eng, b->cid, text, BENCH_K, (enum ret_mode)mode, a, &res, &n, NULL), "search");
    double dt = now_ms() - t0;
    for (size_t i = 0; ret_ids && i < n && i < BENCH_K; i++)
        ret_ids[i] = hits ? hits[i].chunk_id : res[i].hit.chunk_id;
    if (ret_n)
        *ret_n = n;
    arena_free(a);
    return dt;
}

static bool contains(const int64_t *ids, size_t n, int64_t id) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* Lexical, dense and hybrid, rotating which goes first for each query. */
static void measure_modes(struct bench *b, const struct query *q, int nq, struct size_figures *f) {
    for (int i = 0; i < BENCH_WARMUP && i < nq; i++)
        for (int m = 0; m < 4; m++)
            timed_search(b, q[i].text, m, NULL, NULL);
    double *lat[4];
    int found[4] = {0};
    for (int m = 0; m < 4; m++)
        lat[m] = xcalloc((size_t)nq, sizeof(double));
    for (int i = 0; i < nq; i++) {
        for (int j = 0; j < 4; j++) {
            int m = (i + j) % 4;
            int64_t ids[BENCH_K];
            size_t n = 0;
            lat[m][i] = timed_search(b, q[i].text, m, ids, &n);
            found[m] += contains(ids, n, q[i].source);
        }
    }
    for (int m = 0; m < 4; m++) {
        f->mode[m] = (struct mode_figures){
            .p50 = percentile(lat[m], (size_t)nq, 0.50),
            .p99 = percentile(lat[m], (size_t)nq, 0.99),
            .mean = mean(lat[m], (size_t)nq),
            .found = (double)found[m] / nq,
        };
        free(lat[m]);
    }
}

/* ---- dense search vs raw FAISS ---- */

struct vectors {
    int dim;
    int64_t *ids;
    float *v;
    size_t n, cap;
};

static enum err collect_vectors(void *ud, const int64_t *ids, const float *vecs, size_t n) {
    struct vectors *c = ud;
    if (c->n + n > c->cap)
        return ERR_INTERNAL;
    memcpy(c->ids + c->n, ids, n * sizeof(*ids));
    memcpy(c->v + c->n * (size_t)c->dim, vecs, n * (size_t)c->dim * sizeof(float));
    c->n += n;
    return ERR_OK;
}

struct raw_times {
    double embed, faiss, fill;
};

/* The same work as the engine's dense path, one step at a time: embed the
 * query, search the raw index, fill the hits from SQLite. */
static struct raw_times raw_dense(struct bench *b, struct ret_embedder *emb, const struct ret_vindex *raw,
                                  const char *text, float *qvec, int64_t *ids) {
    struct raw_times t;
    float scores[BENCH_K];
    size_t len = strlen(text);
    double t0 = now_ms();
    check(ret_embed(emb, &text, &len, 1, qvec), "embed query");
    double t1 = now_ms();
    check(ret_vindex_search_faiss(raw, 1, qvec, BENCH_K, scores, ids), "raw search");
    double t2 = now_ms();
    struct arena *a = arena_new(0);
    struct ret_hit hits[BENCH_K];
    size_t n = 0;
    for (; n < BENCH_K && ids[n] >= 0; n++)
        hits[n] = (struct ret_hit){.chunk_id = ids[n], .score = scores[n]};
    double t3 = now_ms();
    check(ret_store_fill_hits(b->store, b->cid, hits, n, a), "fill hits");
    double t4 = now_ms();
    arena_free(a);
    t.embed = t1 - t0;
    t.faiss = t2 - t1;
    t.fill = t4 - t3;
    return t;
}

static size_t overlap(const int64_t *a, const int64_t *b, size_t n) {
    size_t same = 0;
    for (size_t i = 0; i < n; i++)
        same += a[i] >= 0 && contains(b, n, a[i]);
    return same;
}

static void measure_dense_vs_raw(struct bench *b, const struct query *q, int nq, const struct ret_vindex *raw,
                                 float *qvecs, struct size_figures *f) {
    struct ret_embedder *emb = NULL;
    check(ret_embedder_builtin_new(b->dim, &emb), "embedder");
    int64_t ids[BENCH_K], eids[BENCH_K];
    for (int i = 0; i < BENCH_WARMUP && i < nq; i++) {
        timed_search(b, q[i].text, RET_MODE_DENSE, NULL, NULL);
        raw_dense(b, emb, raw, q[i].text, qvecs, ids);
    }
    double *dense = xcalloc((size_t)nq, sizeof(double)), *faiss = xcalloc((size_t)nq, sizeof(double));
    double *embed = xcalloc((size_t)nq, sizeof(double)), *fill = xcalloc((size_t)nq, sizeof(double));
    double *ratio = xcalloc((size_t)nq, sizeof(double)), *rest = xcalloc((size_t)nq, sizeof(double));
    size_t agree = 0, total = 0;
    for (int i = 0; i < nq; i++) {
        float *qv = qvecs + (size_t)i * (size_t)b->dim;
        struct raw_times rt;
        size_t n = 0;
        for (size_t j = 0; j < BENCH_K; j++)
            eids[j] = -1;
        if (i % 2 == 0) {
            dense[i] = timed_search(b, q[i].text, RET_MODE_DENSE, eids, &n);
            rt = raw_dense(b, emb, raw, q[i].text, qv, ids);
        } else {
            rt = raw_dense(b, emb, raw, q[i].text, qv, ids);
            dense[i] = timed_search(b, q[i].text, RET_MODE_DENSE, eids, &n);
        }
        faiss[i] = rt.faiss;
        embed[i] = rt.embed;
        fill[i] = rt.fill;
        ratio[i] = dense[i] / rt.faiss;
        rest[i] = dense[i] - rt.embed - rt.fill; /* slorag's search (its own scan for Flat) and the rest */
        agree += overlap(ids, eids, BENCH_K);
        for (size_t j = 0; j < BENCH_K; j++)
            total += ids[j] >= 0;
    }
    f->dense_p50 = percentile(dense, (size_t)nq, 0.5);
    f->dense_p99 = percentile(dense, (size_t)nq, 0.99);
    f->raw_p50 = percentile(faiss, (size_t)nq, 0.5);
    f->raw_p99 = percentile(faiss, (size_t)nq, 0.99);
    f->embed_p50 = percentile(embed, (size_t)nq, 0.5);
    f->fill_p50 = percentile(fill, (size_t)nq, 0.5);
    f->rest_p50 = percentile(rest, (size_t)nq, 0.5); /* paired, so it need not be the difference of medians */
    f->ratio = f->dense_p50 / f->raw_p50;
    f->ratio_pq = percentile(ratio, (size_t)nq, 0.5);
    f->agree = total ? (double)agree / (double)total : 0;
    free(dense), free(faiss), free(embed), free(fill), free(ratio), free(rest);
    ret_embedder_free(emb);
}

/* The 8-bit scan with exact re-scoring (vindex.c, "quantized scan"), as
 * it runs by default (the built-in embedder's queries are sparse: read by
 * dimension) and read by rows, vs the exact own scan of every vector, on
 * the same Flat index and query vectors, the three in turn query by query
 * (the order rotating): time, and the share of the exact top k found. */
static void measure_quantized(const struct ret_vindex *raw, const float *qvecs, int nq, int dim,
                              struct size_figures *f) {
    static const int ks[2] = {10, 50};
    enum { DEFAULT, ROWS, EXACT };
    for (int ki = 0; ki < 2; ki++) {
        int k = ks[ki];
        double *t[3], *ratio[2];
        for (int m = 0; m < 3; m++)
            t[m] = xcalloc((size_t)nq, sizeof(double));
        for (int m = 0; m < 2; m++)
            ratio[m] = xcalloc((size_t)nq, sizeof(double));
        float *sc = xcalloc((size_t)k, sizeof(float));
        int64_t *got[3];
        for (int m = 0; m < 3; m++)
            got[m] = xcalloc((size_t)k, sizeof(int64_t));
        size_t found[2] = {0, 0}, want = 0;
        for (int i = 0; i < nq; i++) {
            const float *q = qvecs + (size_t)i * (size_t)dim;
            for (int pass = 0; pass < 3; pass++) {
                int m = (pass + i) % 3;
                ret_vindex_set_quantized_min(m == EXACT ? 0 : RET_VINDEX_QUANTIZED_MIN);
                ret_vindex_set_sparse_scan(m == DEFAULT);
                double t0 = now_ms();
                check(ret_vindex_search(raw, 1, q, k, sc, got[m]), "search");
                t[m][i] = now_ms() - t0;
            }
            for (int m = 0; m < 2; m++) {
                ratio[m][i] = t[m][i] / t[EXACT][i];
                found[m] += overlap(got[EXACT], got[m], (size_t)k);
            }
            for (int j = 0; j < k; j++)
                want += got[EXACT][j] >= 0;
        }
        ret_vindex_set_quantized_min(RET_VINDEX_QUANTIZED_MIN);
        ret_vindex_set_sparse_scan(true);
        f->sq_p50[ki] = percentile(t[DEFAULT], (size_t)nq, 0.5);
        f->rows_p50[ki] = percentile(t[ROWS], (size_t)nq, 0.5);
        f->exact_p50[ki] = percentile(t[EXACT], (size_t)nq, 0.5);
        f->sq_ratio[ki] = percentile(ratio[DEFAULT], (size_t)nq, 0.5);
        f->rows_ratio[ki] = percentile(ratio[ROWS], (size_t)nq, 0.5);
        f->sq_recall[ki] = want ? (double)found[DEFAULT] / (double)want : 0;
        f->rows_recall[ki] = want ? (double)found[ROWS] / (double)want : 0;
        for (int m = 0; m < 3; m++)
            free(t[m]), free(got[m]);
        free(ratio[0]), free(ratio[1]), free(sc);
    }
    f->sq_bytes = ret_vindex_quantized_bytes(raw);
}

/* ---- approximate index recall ---- */

/* Times single-query searches of an approximate index for each value of
 * one search parameter and measures recall@10 against the exact results
 * (es, ei).  Returns the number of figures written. */
static int sweep(struct bench *b, struct ret_vindex *ann, const char *param, const int *values, int nvalues,
                 int max_value, const float *qvecs, int nq, const float *es, const int64_t *ei,
                 struct ivf_figures *out) {
    float *as = xcalloc((size_t)nq * BENCH_K, sizeof(float));
    int64_t *ai = xcalloc((size_t)nq * BENCH_K, sizeof(int64_t));
    double *lat = xcalloc((size_t)nq, sizeof(double));
    int nout = 0;
    for (int p = 0; p < nvalues && values[p] <= max_value; p++) {
        check(ret_vindex_set_param(ann, param, values[p]), "set search parameter");
        for (int i = 0; i < BENCH_WARMUP && i < nq; i++)
            check(ret_vindex_search(ann, 1, qvecs + (size_t)i * (size_t)b->dim, BENCH_K, as, ai), "ANN search");
        for (int i = 0; i < nq; i++) {
            size_t off = (size_t)i * BENCH_K;
            double s0 = now_ms();
            check(ret_vindex_search(ann, 1, qvecs + (size_t)i * (size_t)b->dim, BENCH_K, as + off, ai + off),
                  "ANN search");
            lat[i] = now_ms() - s0;
        }
        /* recall: ids of the exact top 10 found; "ties" also credits a hit
         * whose score equals the exact 10th score (a different chunk with
         * the same similarity is an equally good answer). */
        double hits = 0, tie_hits = 0, want = 0;
        for (int i = 0; i < nq; i++) {
            size_t off = (size_t)i * BENCH_K, nexact = 0;
            for (size_t j = 0; j < BENCH_K; j++)
                nexact += ei[off + j] >= 0;
            if (nexact == 0)
                continue;
            float kth = es[off + nexact - 1];
            size_t strict = overlap(ai + off, ei + off, BENCH_K), ties = 0;
            for (size_t j = 0; j < BENCH_K; j++)
                ties += ai[off + j] >= 0 && as[off + j] >= kth - 1e-5f;
            hits += (double)strict;
            tie_hits += (double)(ties < nexact ? ties : nexact);
            want += (double)nexact;
        }
        out[nout++] = (struct ivf_figures){
            .nprobe = values[p],
            .recall = hits / want,
            .recall_ties = tie_hits / want,
            .p50 = percentile(lat, (size_t)nq, 0.5),
            .p99 = percentile(lat, (size_t)nq, 0.99),
        };
    }
    free(lat), free(as), free(ai);
    return nout;
}

static void measure_ivf(struct bench *b, const struct vectors *vec, const struct ret_vindex *flat, const float *qvecs,
                        int nq, struct size_figures *f) {
    float *es = xcalloc((size_t)nq * BENCH_K, sizeof(float));
    int64_t *ei = xcalloc((size_t)nq * BENCH_K, sizeof(int64_t));
    double t0 = now_ms();
    check(ret_vindex_search_faiss(flat, (size_t)nq, qvecs, BENCH_K, es, ei), "exact search");
    f->flat_batch_ms = (now_ms() - t0) / nq;

    /* the engine's rules (retrieval/engine.c make_ann): 4 sqrt(n) lists, at
     * most n/39, trained on 48 evenly spaced vectors per list */
    f->nlist = ret_ann_nlist(vec->n);
    char factory[64];
    snprintf(factory, sizeof factory, "IVF%d,Flat", f->nlist);
    struct ret_vindex *ivf = NULL;
    check(ret_vindex_new(b->dim, factory, &ivf), "IVF index");
    size_t nt = (size_t)f->nlist * 48 < vec->n ? (size_t)f->nlist * 48 : vec->n, dim = (size_t)b->dim;
    float *sample = xcalloc(nt * dim, sizeof(float));
    for (size_t i = 0; i < nt; i++)
        memcpy(sample + i * dim, vec->v + (i * vec->n / nt) * dim, dim * sizeof(float));
    progress("training %s on %zu of %zu vectors", factory, nt, vec->n);
    t0 = now_ms();
    check(ret_vindex_train(ivf, nt, sample), "IVF train");
    free(sample);
    double t1 = now_ms();
    check(ret_vindex_add(ivf, vec->n, vec->v, vec->ids), "IVF add");
    f->train_s = (t1 - t0) / 1e3;
    f->add_s = (now_ms() - t1) / 1e3;

    /* nprobe as a share of the lists, per mille (the engine's default: 400) */
    static const int permille[BENCH_MAX_NPROBE] = {16, 31, 63, 125, 250, 333, 400, 500};
    int nprobes[BENCH_MAX_NPROBE], np = 0;
    for (int i = 0; i < BENCH_MAX_NPROBE; i++)
        if ((f->nlist * permille[i] + 999) / 1000 >= 1)
            nprobes[np++] = (f->nlist * permille[i] + 999) / 1000;
    f->nivf = sweep(b, ivf, "nprobe", nprobes, np, f->nlist, qvecs, nq, es, ei, f->ivf);
    ret_vindex_free(ivf);

    if (b->ann < 2) {
        f->nhnsw = 0;
        free(es), free(ei);
        return;
    }
    /* HNSW needs no training; efSearch is its search-time knob */
    struct ret_vindex *hnsw = NULL;
    check(ret_vindex_new(b->dim, "HNSW32", &hnsw), "HNSW index");
    progress("building HNSW32 over %zu vectors", vec->n);
    t0 = now_ms();
    check(ret_vindex_add(hnsw, vec->n, vec->v, vec->ids), "HNSW add");
    f->hnsw_build_s = (now_ms() - t0) / 1e3;
    static const int efs[BENCH_MAX_NPROBE] = {16, 32, 64, 128, 256, 512};
    f->nhnsw = sweep(b, hnsw, "efSearch", efs, 6, 1 << 30, qvecs, nq, es, ei, f->hnsw);
    ret_vindex_free(hnsw);
    free(es), free(ei);
}

/* ---- concurrency ---- */

struct conc {
    struct bench *b;
    const struct query *q;
    const struct ret_vindex *raw; /* NULL: engine dense search; else raw FAISS on qvecs */
    const float *qvecs;
    int nq, total;
    int next; /* atomic */
    double *lat;
    pthread_barrier_t start;
};

static void *conc_main(void *arg) {
    struct conc *c = arg;
    float scores[BENCH_K];
    int64_t ids[BENCH_K];
    pthread_barrier_wait(&c->start);
    for (;;) {
        int i = __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED);
        if (i >= c->total)
            break;
        if (!c->raw) {
            c->lat[i] = timed_search(c->b, c->q[i % c->nq].text, RET_MODE_DENSE, NULL, NULL);
        } else {
            double t0 = now_ms();
            check(ret_vindex_search_faiss(c->raw, 1, c->qvecs + (size_t)(i % c->nq) * (size_t)c->b->dim, BENCH_K, scores,
                                    ids),
                  "raw search");
            c->lat[i] = now_ms() - t0;
        }
    }
    return NULL;
}

/* Throughput and latency with nthreads issuing single queries at once. */
static struct conc_figures run_concurrent(struct bench *b, const struct query *q, const struct ret_vindex *raw,
                                          const float *qvecs, int nq, int total, int nthreads) {
    struct conc c = {.b = b, .q = q, .raw = raw, .qvecs = qvecs, .nq = nq, .total = total};
    c.lat = xcalloc((size_t)total, sizeof(double));
    pthread_barrier_init(&c.start, NULL, (unsigned)nthreads + 1);
    pthread_t *th = xcalloc((size_t)nthreads, sizeof(*th));
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, conc_main, &c) != 0) {
            fprintf(stderr, "bench-retrieval: cannot start threads\n");
            exit(1);
        }
    pthread_barrier_wait(&c.start);
    double t0 = now_ms();
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    double wall = now_ms() - t0;
    struct conc_figures f = {
        .threads = nthreads,
        .qps = total / (wall / 1e3),
        .p50 = percentile(c.lat, (size_t)total, 0.5),
        .p99 = percentile(c.lat, (size_t)total, 0.99),
    };
    pthread_barrier_destroy(&c.start);
    free(th);
    free(c.lat);
    return f;
}

/* ---- start-up, measured in a fresh process ---- */

/* Child side of startup_probe(): opens the store and the engine on a
 * populated data directory, then times the two parts of start-up that grow
 * with the collection on their own, and prints one line of figures. */
static int probe_main(const char *root, int dim) {
    static struct bench b;
    b.dim = dim;
    snprintf(b.dir.root, sizeof b.dir.root, "%s", root);
    snprintf(b.dir.db, sizeof b.dir.db, "%s/slorag.db", root);
    snprintf(b.dir.index, sizeof b.dir.index, "%s/index", root);
    b.dir.keep = true;
    struct startup_figures f = {0};
    long before = rss_kb();
    bench_open(&b, &f);
    double opened = now_ms();
    f.rss_after = rss_kb();
    f.rss_before = before;
    int64_t count = 0;
    double t0 = now_ms();
    check(ret_collection_chunk_count(b.store, b.cid, &count), "chunk count");
    f.count_ms = now_ms() - t0;
    char path[4400];
    if (find_index_file(b.dir.index, path, sizeof path)) {
        struct ret_vindex *vi = NULL;
        t0 = now_ms();
        check(ret_vindex_load(path, &vi), "load index");
        f.load_ms = now_ms() - t0;
        ret_vindex_free(vi);
    }
    wait_lexical(&b);
    f.lex_ready_ms = now_ms() - opened;
    f.rss_lex = rss_kb();
    printf("%.3f %.3f %.3f %.3f %ld %ld %zu %zu %zu %lld %.3f %ld\n", f.store_ms, f.engine_ms, f.count_ms, f.load_ms,
           f.rss_before, f.rss_after, f.rep.collections, f.rep.loaded, f.rep.rebuilt, (long long)f.rep.vectors,
           f.lex_ready_ms, f.rss_lex);
    bench_close(&b);
    return 0;
}

/* Runs this program again with --probe-startup: a real start-up is a new
 * process, and its memory must not include what this one has touched. */
static void startup_probe(struct bench *b, struct startup_figures *ret_fig, bool huge_pages) {
    int fd[2];
    if (pipe(fd) != 0) {
        perror("bench-retrieval: pipe");
        exit(1);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench-retrieval: fork");
        exit(1);
    }
    if (pid == 0) {
        char dim[16];
        snprintf(dim, sizeof dim, "%d", b->dim);
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        if (!huge_pages) {
            unsetenv("GLIBC_TUNABLES");
            setenv("SLORAG_HUGEPAGES", "0", 1);
        }
        execl("/proc/self/exe", "bench-retrieval", "--probe-startup", b->dir.root, "--dim", dim, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char line[512];
    size_t got = 0;
    for (ssize_t r; got < sizeof line - 1 && (r = read(fd[0], line + got, sizeof line - 1 - got)) != 0;) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        got += (size_t)r;
    }
    line[got] = '\0';
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    struct startup_figures f = {0};
    long long vectors = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        sscanf(line, "%lf %lf %lf %lf %ld %ld %zu %zu %zu %lld %lf %ld", &f.store_ms, &f.engine_ms, &f.count_ms,
               &f.load_ms, &f.rss_before, &f.rss_after, &f.rep.collections, &f.rep.loaded, &f.rep.rebuilt, &vectors,
               &f.lex_ready_ms, &f.rss_lex) != 12) {
        fprintf(stderr, "bench-retrieval: the start-up probe failed\n");
        exit(1);
    }
    f.rep.vectors = vectors;
    f.total_ms = f.store_ms + f.engine_ms;
    *ret_fig = f;
}

/* ---- one size ---- */

static void run_size(struct bench *b, long target, struct size_figures *f) {
    f->target = target;
    f->rss_before = rss_kb();
    progress("=== %ld chunks: ingesting from %lld", target, (long long)b->chunks);
    ingest_to(b, target, f);
    f->rss_after = rss_kb();
    f->chunks = b->chunks;
    f->docs = b->docs;
    f->text_mb = b->text_bytes / 1e6;
    f->rss_per_chunk = (double)(f->rss_after - f->rss_before) * 1024.0 / (double)f->ingest_chunks;

    struct rng qr;
    rng_seed(&qr, b->seed ^ 0x5eedULL ^ (uint64_t)target);
    int nq = b->nqueries;
    struct query *q = make_queries(b, nq, &qr);

    progress("latency: %d queries x 3 modes", nq);
    progress("waiting for the lexical index");
    wait_lexical(b);
    struct ret_index_info info;
    check(ret_engine_index_info(b->eng, b->cid, &info), "index info");
    f->lex_bytes = info.lexical_bytes;
    measure_modes(b, q, nq, f);

    progress("dense vs raw FAISS");
    struct vectors vec = {.dim = b->dim, .cap = (size_t)b->chunks};
    vec.ids = xcalloc(vec.cap, sizeof(int64_t));
    vec.v = xcalloc(vec.cap * (size_t)b->dim, sizeof(float));
    size_t skipped = 0;
    check(ret_store_embeddings(b->store, b->cid, b->dim, collect_vectors, &vec, &skipped), "read embeddings");
    struct ret_vindex *raw = NULL;
    check(ret_vindex_new(b->dim, "Flat", &raw), "raw index");
    check(ret_vindex_add(raw, vec.n, vec.v, vec.ids), "raw add");
    float *qvecs = xcalloc((size_t)nq * (size_t)b->dim, sizeof(float));
    measure_dense_vs_raw(b, q, nq, raw, qvecs, f);
    progress("quantized scan vs exact scan");
    measure_quantized(raw, qvecs, nq, b->dim, f);

    if (b->ann)
        measure_ivf(b, &vec, raw, qvecs, nq, f);
    free(vec.ids), free(vec.v);

    f->conc_queries = b->conc_queries ? b->conc_queries : nq * 2 > 1024 ? nq * 2 : 1024;
    progress("concurrency: %d dense queries on 1 and %d threads, engine then raw FAISS", f->conc_queries, b->threads);
    const int threads[2] = {1, b->threads};
    for (int i = 0; i < 2; i++) {
        /* Readers are handed out last-in first-out, so until now one SQLite
         * connection did all the work; give the others a few queries so the
         * timed run is not their first. */
        run_concurrent(b, q, NULL, NULL, nq, 8 * threads[i], threads[i]);
        f->conc_engine[i] = run_concurrent(b, q, NULL, NULL, nq, f->conc_queries, threads[i]);
        f->conc_raw[i] = run_concurrent(b, q, raw, qvecs, nq, f->conc_queries, threads[i]);
    }
    ret_vindex_free(raw);
    free(qvecs);
    free(q);

    progress("restart");
    f->close_ms = bench_close(b);
    f->disk_index = disk_bytes(b->dir.index);
    f->disk_db = disk_bytes(b->dir.root) - f->disk_index; /* slorag.db and any -wal/-shm left */
    f->disk_per_chunk = (double)(f->disk_db + f->disk_index) / (double)b->chunks;

    evict_page_cache(b->dir.root);
    startup_probe(b, &f->cold, true);
    startup_probe(b, &f->warm, true);
    startup_probe(b, &f->warm_small, false);
    f->rss_open_per_chunk = (double)(f->warm.rss_after - f->warm.rss_before) * 1024.0 / (double)b->chunks;
    bench_open(b, NULL);
}

/* ---- report ---- */

static const char *mode_label(int m) {
    return m == MODE_FTS5 ? "fts5" : ret_mode_name((enum ret_mode)m);
}

static void print_size(const struct bench *b, const struct size_figures *f) {
    printf("\n== %lld chunks (%lld documents, %.1f MB of text) ==\n", (long long)f->chunks, (long long)f->docs,
           f->text_mb);
    printf("ingestion, built-in embedder (%lld new chunks, %.1f MB):\n", (long long)f->ingest_chunks, f->ingest_mb);
    printf("  %.2f MB/s of text, %.0f chunks/s (%.1f s inside ret_engine_put)\n", f->ingest_mb_s,
           f->ingest_chunks_s, f->ingest_s);
    printf("  per document: p50 %.2f ms, p99 %.2f ms, max %.1f ms\n", f->put_p50, f->put_p99, f->put_max);
    printf("query latency, ret_engine_search k=%d, %d queries:\n", BENCH_K, b->nqueries);
    printf("  %-8s %9s %9s %9s %14s\n", "mode", "p50 ms", "p99 ms", "mean ms", "source in top");
    for (int m = 0; m < 4; m++)
        printf("  %-8s %9.3f %9.3f %9.3f %13.1f%%\n", mode_label(m), f->mode[m].p50, f->mode[m].p99,
               f->mode[m].mean, 100 * f->mode[m].found);
    printf("  (lexical and hybrid use the in-memory index, %.1f MB = %.0f bytes per chunk; fts5 = the same\n"
           "   query through SQLite FTS5 alone)\n",
           f->lex_bytes / 1e6, (double)f->lex_bytes / (double)f->chunks);
    printf("dense search vs raw FAISS (Flat, nq=1), interleaved, medians of %d queries:\n", b->nqueries);
    printf("  slorag dense   %8.3f ms  (p99 %.3f ms)\n", f->dense_p50, f->dense_p99);
    printf("  raw FAISS      %8.3f ms  (p99 %.3f ms; faiss_Index_search, this FAISS build's own scan)\n", f->raw_p50,
           f->raw_p99);
    printf("  ratio          %8.2fx  (median of per-query ratios %.2fx)\n", f->ratio, f->ratio_pq);
    printf("  slorag dense = embed %.3f ms + SQLite fill %.3f ms + search and the rest %.3f ms (medians)\n",
           f->embed_p50, f->fill_p50, f->rest_p50);
    printf("  top-%d agreement between slorag dense and raw FAISS: %.1f%%\n", BENCH_K, 100 * f->agree);
    printf("quantized scan (8-bit candidates, exact re-scoring) vs exact own scan, in turn, %d queries:\n",
           b->nqueries);
    for (int ki = 0; ki < 2; ki++) {
        printf("  k=%-3d by dimension %7.3f ms  by rows %7.3f ms  exact %7.3f ms\n", ki ? 50 : 10, f->sq_p50[ki],
               f->rows_p50[ki], f->exact_p50[ki]);
        printf("        per-query ratio to exact %.2fx / %.2fx  recall@k %.4f / %.4f\n", f->sq_ratio[ki],
               f->rows_ratio[ki], f->sq_recall[ki], f->rows_recall[ki]);
    }
    printf("  (\"by dimension\": the default for sparse queries, the built-in embedder's; the 8-bit copies:\n"
           "   %.1f MB beside FAISS's %.1f MB of floats; used from %d vectors on)\n",
           f->sq_bytes / 1e6, (double)f->chunks * b->dim * 4 / 1e6, RET_VINDEX_QUANTIZED_MIN);
    if (b->ann) {
    printf("approximate index IVF%d,Flat vs exact Flat (train %.1f s, add %.1f s):\n", f->nlist, f->train_s,
           f->add_s);
    printf("  %-7s %10s %14s %9s %9s\n", "nprobe", "recall@10", "(ties equal)", "p50 ms", "p99 ms");
    for (int i = 0; i < f->nivf; i++)
        printf("  %-7d %10.3f %14.3f %9.3f %9.3f\n", f->ivf[i].nprobe, f->ivf[i].recall, f->ivf[i].recall_ties,
               f->ivf[i].p50, f->ivf[i].p99);
    if (f->nhnsw) {
        printf("approximate index HNSW32 vs exact Flat (build %.1f s):\n", f->hnsw_build_s);
        printf("  %-7s %10s %14s %9s %9s\n", "efSearch", "recall@10", "(ties equal)", "p50 ms", "p99 ms");
    }
    for (int i = 0; i < f->nhnsw; i++)
        printf("  %-7d %10.3f %14.3f %9.3f %9.3f\n", f->hnsw[i].nprobe, f->hnsw[i].recall, f->hnsw[i].recall_ties,
               f->hnsw[i].p50, f->hnsw[i].p99);
    printf("  Flat: %.3f ms per query single, %.3f ms per query in one batch of %d\n", f->raw_p50, f->flat_batch_ms,
           b->nqueries);
    }
    printf("memory (VmRSS):\n");
    printf("  %.1f MB before this ingest, %.1f MB after: %.0f bytes per chunk added\n", f->rss_before / 1024.0,
           f->rss_after / 1024.0, f->rss_per_chunk);
    printf("  fresh process: %.1f MB before start-up, %.1f MB after: %.0f bytes per chunk\n",
           f->warm.rss_before / 1024.0, f->warm.rss_after / 1024.0, f->rss_open_per_chunk);
    printf("disk: SQLite %.1f MB + index %.1f MB = %.0f bytes per chunk\n", f->disk_db / 1e6, f->disk_index / 1e6,
           f->disk_per_chunk);
    printf("start-up in a fresh process (ret_store_open + ret_engine_open, %d readers; close before it %.1f ms):\n",
           BENCH_READERS, f->close_ms);
    const struct startup_figures *s[3] = {&f->cold, &f->warm, &f->warm_small};
    static const char *const sname[3] = {"cold", "warm", "warm, 4 KiB pages"};
    for (int i = 0; i < 3; i++) {
        printf("  %-17s %8.1f ms (store %.1f ms, engine %.1f ms): collections %zu, loaded %zu, rebuilt %zu, "
               "vectors %lld\n",
               sname[i], s[i]->total_ms, s[i]->store_ms, s[i]->engine_ms, s[i]->rep.collections,
               s[i]->rep.loaded, s[i]->rep.rebuilt, (long long)s[i]->rep.vectors);
        printf("       then alone, files now cached: chunk count query %.1f ms, index file load %.1f ms\n", s[i]->count_ms,
               s[i]->load_ms);
        printf("       in-memory lexical index ready %.1f ms after the open (built in the background; FTS5\n"
               "       answers until then), VmRSS then %.1f MB\n",
               s[i]->lex_ready_ms, s[i]->rss_lex / 1024.0);
    }
    printf("concurrency, %d dense queries at once from N threads:\n", f->conc_queries);
    printf("  %-8s %14s %9s %9s %18s %9s %9s\n", "threads", "slorag q/s", "p50 ms", "p99 ms", "raw FAISS q/s",
           "p50 ms", "p99 ms");
    for (int i = 0; i < 2; i++)
        printf("  %-8d %14.1f %9.2f %9.2f %18.1f %9.2f %9.2f\n", f->conc_engine[i].threads, f->conc_engine[i].qps,
               f->conc_engine[i].p50, f->conc_engine[i].p99, f->conc_raw[i].qps, f->conc_raw[i].p50,
               f->conc_raw[i].p99);
    fflush(stdout);
}

struct json {
    char buf[BENCH_JSON_MAX];
    size_t len;
};

static void jp(struct json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jp(struct json *j, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(j->buf + j->len, sizeof j->buf - j->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        j->len = j->len + (size_t)n < sizeof j->buf ? j->len + (size_t)n : sizeof j->buf - 1;
}

static void print_json(const struct bench *b, const char *cpu, long nproc, const struct size_figures *fs, int n) {
    static struct json j;
    j.len = 0;
    jp(&j, "{\"bench\":\"retrieval\",\"seed\":%llu,\"dim\":%d,\"queries\":%d,\"k\":%d,\"factory\":\"%s\","
           "\"chunk_tokens\":%d,\"chunk_overlap\":%d,\"threads\":%d,\"nproc\":%ld,\"cpu\":\"%s\",\"sizes\":[",
       (unsigned long long)b->seed, b->dim, b->nqueries, BENCH_K, BENCH_FACTORY, BENCH_CHUNK_TOKENS,
       BENCH_CHUNK_OVERLAP, b->threads, nproc, cpu);
    for (int i = 0; i < n; i++) {
        const struct size_figures *f = &fs[i];
        jp(&j, "%s{\"chunks\":%lld,\"documents\":%lld,\"text_mb\":%.2f,", i ? "," : "", (long long)f->chunks,
           (long long)f->docs, f->text_mb);
        jp(&j, "\"ingest\":{\"chunks\":%lld,\"mb\":%.2f,\"seconds\":%.2f,\"mb_per_s\":%.3f,\"chunks_per_s\":%.1f,"
               "\"put_p50_ms\":%.3f,\"put_p99_ms\":%.3f,\"put_max_ms\":%.1f},",
           (long long)f->ingest_chunks, f->ingest_mb, f->ingest_s, f->ingest_mb_s, f->ingest_chunks_s, f->put_p50,
           f->put_p99, f->put_max);
        jp(&j, "\"latency_ms\":{");
        for (int m = 0; m < 4; m++)
            jp(&j, "%s\"%s\":{\"p50\":%.3f,\"p99\":%.3f,\"mean\":%.3f,\"source_in_top\":%.3f}", m ? "," : "",
               mode_label(m), f->mode[m].p50, f->mode[m].p99, f->mode[m].mean, f->mode[m].found);
        jp(&j, ",\"lexical_index_bytes\":%zu", f->lex_bytes);
        jp(&j, "},\"dense_vs_raw\":{\"dense_p50_ms\":%.4f,\"raw_faiss_p50_ms\":%.4f,\"ratio\":%.3f,"
               "\"ratio_per_query_p50\":%.3f,\"embed_p50_ms\":%.4f,\"fill_p50_ms\":%.4f,\"search_rest_p50_ms\":%.4f,"
               "\"agreement\":%.4f},",
           f->dense_p50, f->raw_p50, f->ratio, f->ratio_pq, f->embed_p50, f->fill_p50, f->rest_p50, f->agree);
        jp(&j, "\"quantized_scan\":{\"bytes\":%zu,\"runs\":[", f->sq_bytes);
        for (int ki = 0; ki < 2; ki++)
            jp(&j,
               "%s{\"k\":%d,\"p50_ms\":%.4f,\"exact_p50_ms\":%.4f,\"ratio_per_query_p50\":%.3f,\"recall\":%.4f,"
               "\"rows_p50_ms\":%.4f,\"rows_ratio_per_query_p50\":%.3f,\"rows_recall\":%.4f}",
               ki ? "," : "", ki ? 50 : 10, f->sq_p50[ki], f->exact_p50[ki], f->sq_ratio[ki], f->sq_recall[ki],
               f->rows_p50[ki], f->rows_ratio[ki], f->rows_recall[ki]);
        jp(&j, "]},");
        jp(&j, "\"ivf\":{\"nlist\":%d,\"train_s\":%.2f,\"add_s\":%.2f,\"runs\":[", f->nlist, f->train_s, f->add_s);
        for (int p = 0; p < f->nivf; p++)
            jp(&j, "%s{\"nprobe\":%d,\"recall10\":%.4f,\"recall10_ties\":%.4f,\"p50_ms\":%.4f,\"p99_ms\":%.4f}",
               p ? "," : "", f->ivf[p].nprobe, f->ivf[p].recall, f->ivf[p].recall_ties, f->ivf[p].p50,
               f->ivf[p].p99);
        jp(&j, "]},\"hnsw\":{\"factory\":\"HNSW32\",\"build_s\":%.2f,\"runs\":[", f->hnsw_build_s);
        for (int p = 0; p < f->nhnsw; p++)
            jp(&j, "%s{\"efSearch\":%d,\"recall10\":%.4f,\"recall10_ties\":%.4f,\"p50_ms\":%.4f,\"p99_ms\":%.4f}",
               p ? "," : "", f->hnsw[p].nprobe, f->hnsw[p].recall, f->hnsw[p].recall_ties, f->hnsw[p].p50,
               f->hnsw[p].p99);
        jp(&j, "]},\"memory\":{\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"bytes_per_chunk_added\":%.0f,"
               "\"fresh_rss_before_kb\":%ld,\"fresh_rss_after_kb\":%ld,\"fresh_bytes_per_chunk\":%.0f},",
           f->rss_before, f->rss_after, f->rss_per_chunk, f->warm.rss_before, f->warm.rss_after,
           f->rss_open_per_chunk);
        jp(&j, "\"disk\":{\"sqlite_bytes\":%lld,\"index_bytes\":%lld,\"bytes_per_chunk\":%.0f},",
           (long long)f->disk_db, (long long)f->disk_index, f->disk_per_chunk);
        jp(&j, "\"startup_ms\":{\"close\":%.1f,\"cold\":%.1f,\"cold_store\":%.1f,\"cold_engine\":%.1f,"
               "\"cold_chunk_count\":%.1f,\"cold_index_load\":%.1f,\"warm\":%.1f,\"warm_store\":%.1f,"
               "\"warm_engine\":%.1f,\"warm_chunk_count\":%.1f,\"warm_index_load\":%.1f,"
               "\"warm_4k_pages\":%.1f,\"warm_4k_pages_index_load\":%.1f,\"loaded\":%zu,\"rebuilt\":%zu,"
               "\"cold_lexical_ready\":%.1f,\"warm_lexical_ready\":%.1f,\"warm_rss_lexical_ready_kb\":%ld},",
           f->close_ms, f->cold.total_ms, f->cold.store_ms, f->cold.engine_ms, f->cold.count_ms, f->cold.load_ms,
           f->warm.total_ms, f->warm.store_ms, f->warm.engine_ms, f->warm.count_ms, f->warm.load_ms,
           f->warm_small.total_ms, f->warm_small.load_ms,
           f->cold.rep.loaded, f->cold.rep.rebuilt, f->cold.lex_ready_ms, f->warm.lex_ready_ms, f->warm.rss_lex);
        jp(&j, "\"concurrency\":{\"queries\":%d,\"runs\":[", f->conc_queries);
        for (int c = 0; c < 2; c++)
            jp(&j, "%s{\"threads\":%d,\"qps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"raw_qps\":%.1f,"
                   "\"raw_p50_ms\":%.3f,\"raw_p99_ms\":%.3f}",
               c ? "," : "", f->conc_engine[c].threads, f->conc_engine[c].qps, f->conc_engine[c].p50,
               f->conc_engine[c].p99, f->conc_raw[c].qps, f->conc_raw[c].p50, f->conc_raw[c].p99);
        jp(&j, "]}}");
    }
    jp(&j, "]}");
    puts(j.buf);
}

/* ---- main ---- */

static void cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            v[strcspn(v, "\n\"\\")] = '\0';
            snprintf(out, n, "%s", v);
            break;
        }
    }
    fclose(f);
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static int parse_sizes(const char *s, long *out) {
    int n = 0;
    char *end;
    while (*s && n < BENCH_MAX_SIZES) {
        long v = strtol(s, &end, 10);
        if (end == s || v < 100 || v > 10000000)
            return -1;
        out[n++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    if (*s)
        return -1;
    qsort(out, (size_t)n, sizeof(*out), cmp_long);
    return n;
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench-retrieval [--sizes N,N,...] [--queries N] [--seed N] [--dim D] [--threads N]\n"
               "                       [--keep DIR] [--ann none|ivf|all] [--conc-queries N]\n"
               "  --sizes    chunk counts to measure at, ascending (default 10000,100000; at most %d)\n"
               "  --queries  queries per measurement (default 500)\n"
               "  --seed     corpus and query seed (default 42)\n"
               "  --dim      built-in embedder dimension (default 256)\n"
               "  --threads  threads in the concurrency test (default %d, at most %d)\n"
               "  --keep     data directory to create and keep (default: a temporary one, removed)\n"
               "  --ann      approximate-index sweeps: none, ivf (default) or all (IVF and HNSW32)\n"
               "  --conc-queries  queries per concurrency run (default: max(2 x queries, 1024))\n"
               "  SLORAG_HUGEPAGES=0 in the environment: 4 KiB pages throughout (see docs/benchmarks.md)\n",
            BENCH_MAX_SIZES, BENCH_THREADS, BENCH_READERS);
}

static struct bench_dir *cleanup_dir;
static void cleanup(void) {
    if (cleanup_dir)
        dir_remove(cleanup_dir);
}

int main(int argc, char **argv) {
    util_restart_with_huge_pages(argv); /* as slorag itself does */
    static struct bench b;
    long sizes[BENCH_MAX_SIZES] = {10000, 100000};
    int nsizes = 2;
    b.seed = 42;
    b.dim = 256;
    b.nqueries = 500;
    b.threads = BENCH_THREADS;
    b.ann = 1;
    const char *keep = NULL, *probe = NULL;
    static const struct option opts[] = {
        {"sizes", required_argument, NULL, 's'}, {"queries", required_argument, NULL, 'q'},
        {"seed", required_argument, NULL, 'S'},  {"dim", required_argument, NULL, 'd'},
        {"keep", required_argument, NULL, 'k'},  {"help", no_argument, NULL, 'h'},
        {"threads", required_argument, NULL, 't'}, {"ann", required_argument, NULL, 'a'},
        {"conc-queries", required_argument, NULL, 'c'},
        {"probe-startup", required_argument, NULL, 'P'}, /* internal: see startup_probe() */
        {0},
    };
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 's':
            nsizes = parse_sizes(optarg, sizes);
            if (nsizes < 1) {
                fprintf(stderr, "bench-retrieval: --sizes wants up to %d counts in 100..10000000\n",
                        BENCH_MAX_SIZES);
                return 2;
            }
            break;
        case 'q':
            b.nqueries = atoi(optarg);
            if (b.nqueries < 10 || b.nqueries > 100000) {
                fprintf(stderr, "bench-retrieval: --queries wants 10..100000\n");
                return 2;
            }
            break;
        case 'S':
            b.seed = strtoull(optarg, NULL, 10);
            break;
        case 'd':
            b.dim = atoi(optarg);
            if (b.dim < 16 || b.dim > 4096) {
                fprintf(stderr, "bench-retrieval: --dim wants 16..4096\n");
                return 2;
            }
            break;
        case 'k':
            keep = optarg;
            break;
        case 't':
            b.threads = atoi(optarg);
            if (b.threads < 1 || b.threads > BENCH_READERS) {
                fprintf(stderr, "bench-retrieval: --threads wants 1..%d\n", BENCH_READERS);
                return 2;
            }
            break;
        case 'P':
            probe = optarg;
            break;
        case 'c':
            b.conc_queries = atoi(optarg);
            if (b.conc_queries < 32 || b.conc_queries > 1000000) {
                fprintf(stderr, "bench-retrieval: --conc-queries wants 32..1000000\n");
                return 2;
            }
            break;
        case 'a':
            b.ann = strcmp(optarg, "none") == 0 ? 0 : strcmp(optarg, "ivf") == 0 ? 1 : strcmp(optarg, "all") == 0 ? 2 : -1;
            if (b.ann < 0) {
                fprintf(stderr, "bench-retrieval: --ann wants none, ivf or all\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (probe)
        return probe_main(probe, b.dim);

    if (keep) {
        if (mkdir(keep, 0750) != 0) {
            fprintf(stderr, "bench-retrieval: --keep %s: %s (it must not exist yet)\n", keep, strerror(errno));
            return 2;
        }
        snprintf(b.dir.root, sizeof b.dir.root, "%s", keep);
        b.dir.keep = true;
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(b.dir.root, sizeof b.dir.root, "%s/slorag-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(b.dir.root)) {
            fprintf(stderr, "bench-retrieval: cannot create a temporary directory: %s\n", strerror(errno));
            return 1;
        }
        cleanup_dir = &b.dir;
        atexit(cleanup);
    }
    snprintf(b.dir.db, sizeof b.dir.db, "%s/slorag.db", b.dir.root);
    snprintf(b.dir.index, sizeof b.dir.index, "%s/index", b.dir.root);

    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);

    struct rng lr;
    rng_seed(&lr, b.seed);
    b.lang = xcalloc(1, sizeof(*b.lang));
    language_init(b.lang, &lr);
    rng_seed(&b.corpus_rng, b.seed ^ 0xc0ffeeULL);
    b.doc.p = xcalloc(BENCH_DOC_MAX, 1);

    printf("slorag retrieval benchmark\n");
    printf("  machine: %ld CPUs, %s\n", nproc, cpu);
    const char *tun = getenv("GLIBC_TUNABLES");
    printf("  memory: %s\n", tun && strstr(tun, "hugetlb=1") ? "malloc asks for transparent huge pages (as slorag does)"
                                                              : "4 KiB pages (SLORAG_HUGEPAGES=0)");
    printf("  seed %llu, dim %d, %d queries, k=%d, index %s, chunks of %d words with %d overlap, %d threads\n",
           (unsigned long long)b.seed, b.dim, b.nqueries, BENCH_K, BENCH_FACTORY, BENCH_CHUNK_TOKENS,
           BENCH_CHUNK_OVERLAP, b.threads);
    printf("  data dir: %s (%s)\n", b.dir.root, b.dir.keep ? "kept" : "removed at exit");
    fflush(stdout);

    double t0 = now_ms();
    bench_open(&b, NULL);
    struct size_figures *figs = xcalloc((size_t)nsizes, sizeof(*figs));
    for (int i = 0; i < nsizes; i++) {
        run_size(&b, sizes[i], &figs[i]);
        print_size(&b, &figs[i]);
        progress("size %ld done, %.0f s so far", sizes[i], (now_ms() - t0) / 1e3);
    }
    bench_close(&b);
    printf("\ntotal run time %.0f s\n", (now_ms() - t0) / 1e3);
    print_json(&b, cpu, nproc, figs, nsizes);
    free(figs);
    free(b.doc.p);
    free(b.lang->global.cdf), free(b.lang->topic_law.cdf), free(b.lang->function_law.cdf);
    free(b.lang);
    return 0;
}
