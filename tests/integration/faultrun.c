/* faultrun.c - see faultrun.h.
 *
 * Each request's question carries a serial number, so the simulators,
 * whose fault draws are a function of the request's content, give every
 * request a fresh draw.  The baseline is read after a warm-up under the
 * same load rather than at start-up: the first requests grow caches (curl's
 * connections, SQLite's pages, the worker threads' arenas) that are meant
 * to stay. */
#include "faultrun.h"
#include "daemon.h"
#include "err.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SIM_DIM 64
#define SIM_HANG_MS 5000 /* a hung simulator request is closed after this */
#define FAULTS "{\"http500\": 0.08, \"timeout\": 0.04, \"malformed\": 0.04, \"stall\": 0.04, \"drop\": 0.04}"

struct run {
    const struct faultrun_opts *o;
    struct daemon d;
    char emb_dir[128], llm_dir[128];
    pid_t emb_pid, llm_pid;
    int emb_port, llm_port;
    int slack_ms;
    atomic_bool stop, counting;
    atomic_long serial;     /* numbers the questions */
    atomic_uint clients_started;
    /* the report's counters, while clients run */
    atomic_long requests, answered, precise, bad, late, late_committing, lexical_fb, tier_fb, emb_errors, max_us;
    atomic_long by_status[600];
    pthread_mutex_t mu; /* first_bad */
    char first_bad[1024];
};

static const char *const questions[] = {
    "How tall is the lighthouse?",
    "When is the fish market held?",
    "When does the harbour office open?",
    "How much does a ferry ticket cost?",
    "Which fish arrives in late summer?",
    "When was the harbour founded?",
};

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the simulators ---- */

static bool sim_up(const char *dir, const char *config, int port, pid_t *ret_pid, int *ret_port) {
    if (port == 0)
        return sim_start(dir, config, NULL, ret_pid, ret_port);
    /* again on the port it had: its config file is still there */
    char cfg[192], log[192], listen[32];
    snprintf(cfg, sizeof cfg, "%s/llmsim.json", dir);
    snprintf(log, sizeof log, "%s/llmsim.log", dir);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    char *argv[] = {getenv("SLORAG_LLMSIM_BIN"), "--config", cfg, "--listen", listen, NULL};
    return argv[0] && proc_start_ready(argv, log, ret_pid, ret_port) && *ret_port == port;
}

static bool emb_start(struct run *r) {
    static const char cfg[] = "{\"seed\": 12, \"embedding_dim\": 64, \"hang_ms\": 5000, \"models\": ["
                              "{\"name\": \"emb-clean\", \"max_concurrency\": 64},"
                              "{\"name\": \"emb\", \"max_concurrency\": 64, \"faults\": " FAULTS "}]}";
    int port = r->emb_port;
    return sim_up(r->emb_dir, cfg, port, &r->emb_pid, &r->emb_port);
}

static void emb_stop(struct run *r) {
    if (r->emb_pid > 0)
        proc_stop(r->emb_pid, SIGTERM, 10000);
    r->emb_pid = 0;
}

/* ---- the daemon ---- */

static bool write_config(struct run *r, const char *emb_model) {
    char path[160];
    snprintf(path, sizeof path, "%s/config.json", r->d.dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    /* The embedder keeps its default timeouts (2 s to connect, 30 s per
     * request): the deadline, not the embedder's own timeout, must bound a
     * query.  Calibrated priors make the planner pick hybrid retrieval
     * for the extractive tier, so planner-chosen queries need dense. */
    fprintf(f,
            "{\"server\": {\"workers\": 2},"
            " \"query\": {\"deadline_ms\": %d, \"calibration\": \"%s/prefer-hybrid.json\"},"
            " \"backends\": [{\"name\": \"sim\", \"tier\": \"small\", \"url\": \"http://127.0.0.1:%d\", \"model\": \"small\","
            "  \"max_retries\": 1, \"breaker_failures\": 5, \"breaker_cooldown_ms\": 1000}],"
            " \"embedder\": {\"kind\": \"http\", \"url\": \"http://127.0.0.1:%d\", \"model\": \"%s\", \"dimension\": %d,"
            "  \"batch\": 8}}",
            r->o->deadline_ms, r->d.dir, r->llm_port, r->emb_port, emb_model, SIM_DIM);
    fclose(f);
    snprintf(path, sizeof path, "%s/prefer-hybrid.json", r->d.dir);
    f = fopen(path, "w");
    if (!f)
        return false;
    fputs("{\"configs\": {\"hybrid/k8/rerank/extractive\": {\"*\": {\"quality\": 0.95, \"n\": 200}}}}", f);
    fclose(f);
    return true;
}

struct tcp_sock {
    unsigned long inode;
    unsigned lport, rport, state;
};

/* The process's IPv4 TCP sockets (its network namespace's, that is). */
static size_t tcp_socks(pid_t pid, struct tcp_sock *out, size_t max) {
    char p[64], line[512];
    snprintf(p, sizeof p, "/proc/%d/net/tcp", (int)pid);
    FILE *f = fopen(p, "r");
    size_t n = 0;
    if (!f)
        return 0;
    if (!fgets(line, sizeof line, f)) { /* the header */
        fclose(f);
        return 0;
    }
    while (n < max && fgets(line, sizeof line, f)) {
        unsigned lip, lport, rip, rport, st;
        unsigned long inode;
        if (sscanf(line, " %*d: %x:%x %x:%x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &lip, &lport, &rip, &rport, &st,
                   &inode) == 6)
            out[n++] = (struct tcp_sock){.inode = inode, .lport = lport, .rport = rport, .state = st};
    }
    fclose(f);
    return n;
}

/* The inodes of the process's Unix sockets. */
static size_t unix_socks(pid_t pid, unsigned long *out, size_t max) {
    char p[64], line[512];
    snprintf(p, sizeof p, "/proc/%d/net/unix", (int)pid);
    FILE *f = fopen(p, "r");
    size_t n = 0;
    if (!f)
        return 0;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return 0;
    }
    while (n < max && fgets(line, sizeof line, f))
        if (sscanf(line, "%*s %*x %*x %*x %*x %*x %lu", &out[n]) == 1)
            n++;
    fclose(f);
    return n;
}

static void read_state(struct run *r, struct faultrun_state *s) {
    memset(s, 0, sizeof(*s));
    pid_t pid = r->d.pid;
    s->rss_kb = proc_status_field(pid, "VmRSS:");
    s->threads = proc_status_field(pid, "Threads:");
    static struct tcp_sock socks[8192];
    size_t nsocks = tcp_socks(pid, socks, sizeof socks / sizeof socks[0]);
    static unsigned long unixes[8192];
    size_t nunix = unix_socks(pid, unixes, sizeof unixes / sizeof unixes[0]);
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(p);
    for (struct dirent *de; dir && (de = readdir(dir));) {
        if (de->d_name[0] == '.')
            continue;
        char link[320], target[256];
        snprintf(link, sizeof link, "%s/%s", p, de->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n < 0)
            continue; /* closed meanwhile */
        target[n] = '\0';
        s->fds.total++;
        unsigned long inode;
        if (sscanf(target, "socket:[%lu]", &inode) != 1) {
            if (target[0] == '/')
                s->fds.files++;
            else
                s->fds.other++;
            continue;
        }
        const struct tcp_sock *t = NULL;
        for (size_t i = 0; i < nsocks && !t; i++)
            t = socks[i].inode == inode ? &socks[i] : NULL;
        bool is_unix = false;
        for (size_t i = 0; i < nunix && !is_unix; i++)
            is_unix = unixes[i] == inode;
        if (is_unix)
            s->fds.unix_sockets++;
        else if (!t)
            s->fds.sockets_other++;
        else if (t->state == 0x0A)
            s->fds.listeners++;
        else if ((int)t->lport == r->d.port)
            s->fds.clients++;
        else if ((int)t->rport == r->llm_port)
            s->fds.llm++;
        else if ((int)t->rport == r->emb_port)
            s->fds.embedder++;
        else
            s->fds.sockets_other++;
    }
    if (dir)
        closedir(dir);
}

/* Waits (up to 30 s) until the daemon serves no request but the asking
 * one, then a little longer for connections to close. */
static void settle(struct run *r) {
    for (int i = 0; i < 300; i++) {
        struct http_resp m;
        http_do(&r->d, "GET", "/metrics", NULL, NULL, 0, &m);
        double in_flight = m.body ? metric_sample(m.body, "slorag_http_in_flight") : -1;
        bool idle = in_flight >= 0 && in_flight <= 1.0;
        http_resp_done(&m);
        if (idle)
            break;
        sleep_ms(100);
    }
    sleep_ms(1500);
}

/* ---- the clients ---- */

static void note_bad(struct run *r, const char *what, const char *path, long status, double ms, const char *body) {
    pthread_mutex_lock(&r->mu);
    if (!r->first_bad[0])
        snprintf(r->first_bad, sizeof r->first_bad, "%s: %s -> %ld after %.0f ms: %.900s", what, path, status, ms,
                 body ? body : "");
    if (getenv("FAULTRUN_VERBOSE"))
        fprintf(stderr, "faultrun: %s: %s -> %ld after %.0f ms: %s\n", what, path, status, ms, body ? body : "");
    pthread_mutex_unlock(&r->mu);
}

static bool has_stage(json_t *arr, const char *stage) {
    size_t i;
    json_t *ev;
    json_array_foreach(arr, i, ev) {
        const char *s = json_string_value(json_object_get(ev, "stage"));
        if (s && strcmp(s, stage) == 0)
            return true;
    }
    return false;
}

static bool code_fits(const char *code, long status) {
    for (int e = 1; code && e < ERR__COUNT; e++)
        if (strcmp(err_name((enum err)e), code) == 0)
            return err_http_status((enum err)e) == status;
    return false;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    return fwrite(p, size, n, ud) * size;
}

/* Judges one response; counts only when the run is counting. */
static void judge(struct run *r, const char *path, long status, double ms, const char *body) {
    if (!atomic_load(&r->counting))
        return;
    atomic_fetch_add(&r->requests, 1);
    if (status > 0 && status < 600)
        atomic_fetch_add(&r->by_status[status], 1);
    long us = (long)(ms * 1000), prev = atomic_load(&r->max_us);
    while (us > prev && !atomic_compare_exchange_weak(&r->max_us, &prev, us))
        ;
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    if (ms > r->o->deadline_ms + r->slack_ms) {
        atomic_fetch_add(&r->late, 1);
        /* slorag's own clock stops when the answer is ready; the response
         * then waits for the ledger row's commit */
        double total = json_number_value(json_object_get(json_object_get(j, "timings"), "total_ms"));
        atomic_fetch_add(&r->late_committing, status == 200 && total > 0 && total <= r->o->deadline_ms);
        note_bad(r, "late", path, status, ms, body);
    }
    json_t *err = json_object_get(j, "error");
    if (status == 200 && json_is_object(j) && !err) {
        atomic_fetch_add(&r->answered, 1);
        json_t *dec = json_object_get(j, "decision");
        atomic_fetch_add(&r->lexical_fb, has_stage(json_object_get(dec, "skipped"), "dense"));
        atomic_fetch_add(&r->tier_fb, has_stage(json_object_get(dec, "expanded"), "fallback"));
    } else if ((status == 502 || status == 503 || status == 504) && json_is_object(err) &&
               code_fits(json_string_value(json_object_get(err, "code")), status) &&
               json_string_length(json_object_get(err, "message")) > 0 &&
               json_string_length(json_object_get(err, "request_id")) > 0) {
        atomic_fetch_add(&r->precise, 1);
        atomic_fetch_add(&r->emb_errors,
                         strstr(json_string_value(json_object_get(err, "message")), "embedding backend") != NULL);
    } else {
        atomic_fetch_add(&r->bad, 1);
        note_bad(r, status ? "not a 200 or a precise 502/503/504 error" : "no response", path, status, ms, body);
    }
    json_decref(j);
}

static void *client(void *arg) {
    struct run *r = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    unsigned seed = atomic_fetch_add(&r->clients_started, 1) * 2654435761u + 1;
    while (!atomic_load(&r->stop)) {
        long n = atomic_fetch_add(&r->serial, 1);
        const char *q = questions[n % (long)(sizeof questions / sizeof questions[0])];
        int kind = (int)(rand_r(&seed) % 20);
        const char *path = "/v1/query";
        char body[512];
        int dl = r->o->deadline_ms;
        if (kind < 7) /* the planner picks hybrid retrieval; extractive answer */
            snprintf(body, sizeof body, "{\"question\": \"%s #%ld\", \"tier\": \"extractive\", \"deadline_ms\": %d}", q, n, dl);
        else if (kind < 13) /* dense asked for, and an LLM answer */
            snprintf(body, sizeof body, "{\"question\": \"%s #%ld\", \"tier\": \"small\", \"mode\": \"hybrid\", \"deadline_ms\": %d}",
                     q, n, dl);
        else if (kind < 17) { /* retrieval alone */
            path = "/v1/retrieve";
            snprintf(body, sizeof body, "{\"question\": \"%s #%ld\", \"mode\": \"dense\", \"deadline_ms\": %d}", q, n, dl);
        } else /* an LLM answer over lexical search */
            snprintf(body, sizeof body, "{\"question\": \"%s #%ld\", \"tier\": \"small\", \"mode\": \"lexical\", \"deadline_ms\": %d}",
                     q, n, dl);
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", r->d.port, path);
        char *out = NULL;
        size_t outlen = 0;
        FILE *mem = open_memstream(&out, &outlen);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(dl + 20000));
        int64_t t0 = now_us();
        long status = 0;
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        double ms = (double)(now_us() - t0) / 1000.0;
        fclose(mem);
        judge(r, path, status, ms, out);
        free(out);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

/* Runs the clients for secs seconds; the run's own timeline (the
 * embedder's outage, samples) only when timeline is set. */
static void load(struct run *r, int secs, bool timeline) {
    const struct faultrun_opts *o = r->o;
    pthread_t th[64];
    int n = o->clients < 1 ? 1 : o->clients > 64 ? 64 : o->clients;
    atomic_store(&r->stop, false);
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, client, r);
    for (int t = 0; t < secs; t++) {
        if (timeline && o->down_for_s > 0 && t == o->down_from_s)
            emb_stop(r);
        if (timeline && o->down_for_s > 0 && t == o->down_from_s + o->down_for_s && !emb_start(r))
            note_bad(r, "setup", "the embedding simulator did not start again", 0, 0, NULL);
        sleep_ms(1000);
        if (timeline && o->on_sample && o->sample_every_s > 0 && (t + 1) % o->sample_every_s == 0) {
            struct faultrun_state s;
            read_state(r, &s);
            o->on_sample(o->ud, t + 1, s.rss_kb, s.threads, s.fds.total, atomic_load(&r->requests),
                         atomic_load(&r->late), atomic_load(&r->bad));
        }
    }
    for (int extra = 0; timeline && extra < o->until_each_fault_s; extra++) {
        if (atomic_load(&r->lexical_fb) > 0 && atomic_load(&r->tier_fb) > 0 && atomic_load(&r->emb_errors) > 0)
            break;
        sleep_ms(1000);
    }
    atomic_store(&r->stop, true);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    if (r->emb_pid == 0 && !emb_start(r))
        note_bad(r, "setup", "the embedding simulator did not start again", 0, 0, NULL);
}

static bool setup(struct run *r, char *why, size_t whylen) {
    daemon_prepare(&r->d, NULL);
    snprintf(r->emb_dir, sizeof r->emb_dir, "%s/sim-emb", r->d.dir);
    snprintf(r->llm_dir, sizeof r->llm_dir, "%s/sim-llm", r->d.dir);
    if (mkdir(r->emb_dir, 0750) != 0 || mkdir(r->llm_dir, 0750) != 0) {
        snprintf(why, whylen, "mkdir: %s", strerror(errno));
        return false;
    }
    static const char llm_cfg[] = "{\"seed\": 11, \"hang_ms\": 5000, \"models\": ["
                                  "{\"name\": \"small\", \"ttft_ms\": 20, \"ms_per_token\": 1, \"max_concurrency\": 16,"
                                  " \"faults\": " FAULTS "}]}";
    if (!sim_start(r->llm_dir, llm_cfg, NULL, &r->llm_pid, &r->llm_port) || !emb_start(r)) {
        snprintf(why, whylen, "a simulator did not start (SLORAG_LLMSIM_BIN)");
        return false;
    }
    /* ingest through the same simulator's fault-free model: same vectors */
    if (!write_config(r, "emb-clean") || daemon_ingest(&r->d, "default", r->o->docs) != 0) {
        daemon_dump_log(&r->d);
        snprintf(why, whylen, "slorag ingest failed");
        return false;
    }
    if (!write_config(r, "emb") || !daemon_start(&r->d)) {
        daemon_dump_log(&r->d);
        snprintf(why, whylen, "the daemon did not start");
        return false;
    }
    return true;
}

bool faultrun(const struct faultrun_opts *o, int slack_ms, struct faultrun_report *ret) {
    static struct run r; /* big (the status table) and one at a time */
    memset(&r, 0, sizeof r);
    memset(ret, 0, sizeof(*ret));
    r.o = o;
    r.slack_ms = slack_ms;
    pthread_mutex_init(&r.mu, NULL);
    ret->slack_ms = slack_ms;
    if (!setup(&r, ret->first_bad, sizeof ret->first_bad)) {
        proc_stop(r.llm_pid, SIGTERM, 10000);
        emb_stop(&r);
        daemon_cleanup(&r.d);
        pthread_mutex_destroy(&r.mu);
        return false;
    }
    ret->started = true;
    load(&r, o->warmup_s, false);
    settle(&r);
    read_state(&r, &ret->before);
    atomic_store(&r.counting, true);
    load(&r, o->seconds, true);
    atomic_store(&r.counting, false);
    settle(&r);
    read_state(&r, &ret->after);

    ret->requests = atomic_load(&r.requests);
    for (int s = 0; s < 600; s++)
        ret->by_status[s] = atomic_load(&r.by_status[s]);
    ret->answered = atomic_load(&r.answered);
    ret->precise_errors = atomic_load(&r.precise);
    ret->bad = atomic_load(&r.bad);
    ret->late = atomic_load(&r.late);
    ret->late_committing = atomic_load(&r.late_committing);
    ret->lexical_fallbacks = atomic_load(&r.lexical_fb);
    ret->tier_fallbacks = atomic_load(&r.tier_fb);
    ret->embedder_errors = atomic_load(&r.emb_errors);
    ret->max_ms = (double)atomic_load(&r.max_us) / 1000.0;
    memcpy(ret->first_bad, r.first_bad, sizeof ret->first_bad);
    ret->daemon_exit = daemon_stop(&r.d, SIGTERM, 15000);
    if (ret->daemon_exit != 0)
        daemon_dump_log(&r.d);
    proc_stop(r.llm_pid, SIGTERM, 10000);
    emb_stop(&r);
    daemon_cleanup(&r.d);
    pthread_mutex_destroy(&r.mu);
    return true;
}
