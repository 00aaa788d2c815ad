/* bench-soak.c - a bounded soak: the real daemon and simulator on loopback,
 * mixed traffic (queries on every tier, retrievals, document replaces and
 * deletes), backend faults, and config reloads, for a fixed time.  Every
 * 10 s it samples the daemon's RSS, threads and open fds; at the end it
 * prints the series and the count of unexpected responses.
 *
 * With --faults it runs the fault run instead (tests/integration/faultrun.h):
 * the LLM backend and the HTTP embedder both inject faults, the embedder is
 * down for a sixth of the run, every request is timed against its deadline,
 * and the daemon's descriptors, threads and RSS after a warm-up are
 * compared with those after the run.
 *
 *   bench-soak --slorag PATH --llmsim PATH [--seconds 600] [--clients 4]
 *              [--faults [--deadline-ms 1500]]
 */
#include <curl/curl.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../tests/integration/daemon.h"
#include "../tests/integration/faultrun.h"

static struct daemon D;
static atomic_bool stop;
static atomic_long n_ok, n_fallback, n_unexpected;
static atomic_long by_status[600];

static void request(CURL *c, const char *method, const char *path, const char *body, long *ret_status, int *ret_fallback) {
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", D.port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    fclose(mem);
    *ret_status = status;
    *ret_fallback = buf && strstr(buf, "\"stage\":\"fallback\"") != NULL;
    free(buf);
    curl_slist_free_all(h);
}

/* Two gauges of /metrics, in MB (-1 when not found): memory held by
 * design (the text cache, up to retrieval.text_cache_mb; SQLite's page
 * caches), read beside RSS. */
static void held_mb(double *ret_text_cache, double *ret_sqlite) {
    struct http_resp r;
    http_do(&D, "GET", "/metrics", NULL, NULL, 0, &r);
    const char *name[2] = {"slorag_text_cache_bytes", "slorag_sqlite_memory_bytes"};
    double *out[2] = {ret_text_cache, ret_sqlite};
    for (int i = 0; i < 2; i++) {
        double v = r.status == 200 && r.body ? metric_sample(r.body, name[i]) : -1;
        *out[i] = v < 0 ? -1 : v / (1024.0 * 1024.0);
    }
    http_resp_done(&r);
}

static void *client(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
    CURL *c = curl_easy_init();
    static const char *const tiers[] = {"extractive", "small", "medium"};
    while (!atomic_load(&stop)) {
        int kind = rand_r(&seed) % 10;
        char path[128], body[512];
        const char *method = "POST";
        long want = 200;
        if (kind < 6) {
            snprintf(path, sizeof path, "/v1/query");
            snprintf(body, sizeof body, "{\"question\": \"When does the harbour office open?\", \"tier\": \"%s\"}",
                     tiers[rand_r(&seed) % 3]);
        } else if (kind < 8) {
            snprintf(path, sizeof path, "/v1/retrieve");
            snprintf(body, sizeof body, "{\"question\": \"ferry ticket price\", \"mode\": \"hybrid\"}");
        } else if (kind < 9) {
            int d = rand_r(&seed) % 50;
            snprintf(path, sizeof path, "/v1/collections/default/documents");
            snprintf(body, sizeof body,
                     "[{\"id\": \"soak-%d\", \"text\": \"Soak document %d: the tide table changes every week %d.\"}]", d,
                     d, rand_r(&seed));
            want = 201;
        } else {
            snprintf(path, sizeof path, "/v1/collections/default/documents/soak-%d", rand_r(&seed) % 50);
            method = "DELETE";
            body[0] = '\0';
            want = -1; /* 200 or 404 */
        }
        long status = 0;
        int fallback = 0;
        request(c, method, path, body[0] ? body : NULL, &status, &fallback);
        if (status > 0 && status < 600)
            atomic_fetch_add(&by_status[status], 1);
        bool ok = want == -1 ? (status == 200 || status == 404) : status == want;
        if (ok) {
            atomic_fetch_add(&n_ok, 1);
            atomic_fetch_add(&n_fallback, fallback);
        } else {
            atomic_fetch_add(&n_unexpected, 1);
        }
    }
    curl_easy_cleanup(c);
    return NULL;
}

static int fd_count(pid_t pid) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(p);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void print_sample(void *ud, int t, long rss_kb, long threads, int fds, long requests, long late, long bad) {
    (void)ud;
    printf("%6d %8.1f %8ld %6d %10ld %6ld %6ld\n", t, rss_kb / 1024.0, threads, fds, requests, late, bad);
    fflush(stdout);
}

static void print_state(const char *when, const struct faultrun_state *s) {
    printf("%-18s rss %6.1f MB  threads %3ld  fds %3d = files %d + other %d + listeners %d + clients %d"
           " + to the LLM %d + to the embedder %d + unix %d + other sockets %d\n",
           when, s->rss_kb / 1024.0, s->threads, s->fds.total, s->fds.files, s->fds.other, s->fds.listeners,
           s->fds.clients, s->fds.llm, s->fds.embedder, s->fds.unix_sockets, s->fds.sockets_other);
}

static int fault_run(int seconds, int clients, int deadline_ms) {
    struct faultrun_opts o = {
        .docs = "tests/data/docs",
        .warmup_s = 15,
        .seconds = seconds,
        .clients = clients,
        .deadline_ms = deadline_ms,
        .down_from_s = seconds / 3,
        .down_for_s = seconds / 6 > 5 ? seconds / 6 : 5,
        .sample_every_s = 10,
        .on_sample = print_sample,
    };
    static struct faultrun_report rep;
    printf("fault run: %d s after a %d s warm-up, %d clients, deadline %d ms; the embedder is down from %d s to %d s\n",
           seconds, o.warmup_s, clients, deadline_ms, o.down_from_s, o.down_from_s + o.down_for_s);
    printf("%6s %8s %8s %6s %10s %6s %6s\n", "t(s)", "rss(MB)", "threads", "fds", "requests", "late", "bad");
    if (!faultrun(&o, 250, &rep)) {
        fprintf(stderr, "fault run: setup failed: %s\n", rep.first_bad);
        return 1;
    }
    printf("requests %ld: answered %ld (after a lexical fallback %ld, by the extractive tier after the LLM failed %ld),"
           " precise errors %ld (naming the embedding backend %ld), bad %ld, late (> deadline + %d ms) %ld"
           " (answered within the deadline, then waiting for the ledger's commit: %ld); slowest %.0f ms\n",
           rep.requests, rep.answered, rep.lexical_fallbacks, rep.tier_fallbacks, rep.precise_errors,
           rep.embedder_errors, rep.bad, rep.slack_ms, rep.late, rep.late_committing, rep.max_ms);
    printf("statuses:");
    for (int s = 0; s < 600; s++)
        if (rep.by_status[s])
            printf(" %d=%ld", s, rep.by_status[s]);
    printf("\n");
    if (rep.first_bad[0])
        printf("first bad or late: %s\n", rep.first_bad);
    print_state("after the warm-up:", &rep.before);
    print_state("after the run:", &rep.after);
    printf("daemon exit status %d\n", rep.daemon_exit);
    return rep.bad == 0 && rep.late == 0 && rep.daemon_exit == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *slorag = NULL, *sim = NULL;
    int seconds = 600, clients = 4, deadline_ms = 1500;
    bool faults = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--faults"))
            faults = true;
        else if (i + 1 >= argc)
            break;
        else if (!strcmp(argv[i], "--slorag"))
            slorag = argv[++i];
        else if (!strcmp(argv[i], "--llmsim"))
            sim = argv[++i];
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--clients"))
            clients = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--deadline-ms"))
            deadline_ms = atoi(argv[++i]);
    }
    if (!slorag || !sim || clients < 1 || clients > 64 || seconds < 1 || deadline_ms < 1) {
        fprintf(stderr, "usage: bench-soak --slorag PATH --llmsim PATH [--seconds N] [--clients N]"
                        " [--faults [--deadline-ms N]]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setenv("SLORAG_BIN", slorag, 1);
    if (faults) {
        setenv("SLORAG_LLMSIM_BIN", sim, 1);
        int rc = fault_run(seconds, clients, deadline_ms);
        curl_global_cleanup();
        return rc;
    }
    daemon_prepare(&D, NULL);
    char cfg[128];
    pid_t sim_pid;
    int sim_port;
    if (!sim_start(D.dir,
                   "{\"models\": ["
                   "{\"name\": \"small\", \"ttft_ms\": 20, \"ms_per_token\": 1, \"max_concurrency\": 16, \"wrong_rate\": 0.2,"
                   " \"faults\": {\"http500\": 0.05, \"drop\": 0.02, \"malformed\": 0.02}},"
                   "{\"name\": \"medium\", \"ttft_ms\": 80, \"ms_per_token\": 2, \"max_concurrency\": 8,"
                   " \"faults\": {\"http429\": 0.03}}]}",
                   sim, &sim_pid, &sim_port)) {
        fprintf(stderr, "simulator did not start\n");
        return 1;
    }
    snprintf(cfg, sizeof cfg, "%s/config.json", D.dir);
    FILE *f = fopen(cfg, "w");
    fprintf(f,
            "{\"backends\": [{\"name\": \"s\", \"tier\": \"small\", \"url\": \"http://127.0.0.1:%d\", \"model\": \"small\","
            " \"max_retries\": 1, \"breaker_failures\": 20, \"breaker_cooldown_ms\": 500},"
            "{\"name\": \"m\", \"tier\": \"medium\", \"url\": \"http://127.0.0.1:%d\", \"model\": \"medium\"}]}",
            sim_port, sim_port);
    fclose(f);
    if (daemon_ingest(&D, "default", "tests/data/docs") != 0 || !daemon_start(&D)) {
        daemon_dump_log(&D);
        return 1;
    }
    pthread_t th[64];
    for (int i = 0; i < clients; i++)
        pthread_create(&th[i], NULL, client, (void *)(uintptr_t)(i + 1));
    /* rss = anon (the heap, thread stacks) + file (the binary, libraries
     * and the mapped SQLite store) + shmem; textc and sqlite (MB) are the
     * text cache's and SQLite's shares of the heap, from /metrics */
    printf("%6s %8s %8s %8s %8s %8s %8s %6s %6s %10s %10s\n", "t(s)", "rss(MB)", "anon", "file", "textc", "sqlite",
           "threads", "fds", "reloads", "requests", "unexpected");
    int reloads = 0;
    for (int t = 0; t <= seconds; t += 10) {
        if (t > 0) {
            for (int s = 0; s < 10; s++) {
                sleep(1);
                if ((t + s) % 15 == 0) {
                    kill(D.pid, SIGHUP);
                    reloads++;
                }
            }
        }
        double textc, sql;
        held_mb(&textc, &sql);
        printf("%6d %8.1f %8.1f %8.1f %8.2f %8.2f %8ld %6d %6d %10ld %10ld\n", t,
               proc_status_field(D.pid, "VmRSS:") / 1024.0, proc_status_field(D.pid, "RssAnon:") / 1024.0,
               proc_status_field(D.pid, "RssFile:") / 1024.0, textc, sql, proc_status_field(D.pid, "Threads:"),
               fd_count(D.pid), reloads,
               atomic_load(&n_ok) + atomic_load(&n_unexpected), atomic_load(&n_unexpected));
        fflush(stdout);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    printf("requests %ld: expected %ld (of which %ld answered by the fallback tier), unexpected %ld\n",
           atomic_load(&n_ok) + atomic_load(&n_unexpected), atomic_load(&n_ok), atomic_load(&n_fallback),
           atomic_load(&n_unexpected));
    printf("statuses:");
    for (int s = 0; s < 600; s++)
        if (atomic_load(&by_status[s]))
            printf(" %d=%ld", s, atomic_load(&by_status[s]));
    printf("\n");
    int st = daemon_stop(&D, SIGTERM, 15000);
    proc_stop(sim_pid, SIGTERM, 10000);
    printf("daemon exit status %d\n", st);
    daemon_cleanup(&D);
    curl_global_cleanup();
    return atomic_load(&n_unexpected) == 0 && st == 0 ? 0 : 1;
}
