/* bench-backends.c - holds N concurrent in-flight generations against a
 * simulated backend that takes S seconds each, through slorag's backend
 * pool (one I/O thread, libcurl multi), and prints whether all succeed,
 * the process's thread count and RSS while they are in flight, and the
 * wall time.  Starts its own slorag-llmsim.
 *
 *   bench-backends --llmsim PATH [--calls 1000] [--seconds 5]
 */
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "util.h"

static atomic_int done_ok, done_err;

static void on_done(void *ud, const struct agent_llm_result *res) {
    (void)ud;
    if (res->err == ERR_OK)
        atomic_fetch_add(&done_ok, 1);
    else
        atomic_fetch_add(&done_err, 1);
}

static long status_field(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0)
            v = atol(line + n);
    if (f)
        fclose(f);
    return v;
}

int main(int argc, char **argv) {
    const char *sim = NULL;
    int calls = 1000;
    double seconds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--llmsim"))
            sim = argv[i + 1];
        else if (!strcmp(argv[i], "--calls"))
            calls = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
    }
    if (!sim || calls < 1) {
        fprintf(stderr, "usage: bench-backends --llmsim PATH [--calls N] [--seconds S]\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    char dir[] = "/tmp/slorag-bench-be-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char cfgpath[128];
    snprintf(cfgpath, sizeof cfgpath, "%s/llmsim.json", dir);
    FILE *f = fopen(cfgpath, "w");
    fprintf(f,
            "{\"max_connections\": %d, \"models\": [{\"name\": \"slow\", \"ttft_ms\": %.0f, \"ms_per_token\": 0,"
            " \"jitter\": 0, \"max_concurrency\": %d}]}",
            calls + 64, seconds * 1000, calls);
    fclose(f);
    int out[2];
    if (pipe(out) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(sim, sim, "--config", cfgpath, "--listen", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[256];
    size_t n = 0;
    while (n < sizeof line - 1 && read(out[0], line + n, 1) == 1 && line[n] != '\n')
        n++;
    line[n] = '\0';
    const char *p = strstr(line, "http://127.0.0.1:");
    if (!p) {
        fprintf(stderr, "simulator did not start\n");
        return 1;
    }
    int port = atoi(p + strlen("http://127.0.0.1:"));

    char json[512], err[256];
    snprintf(json, sizeof json,
             "{\"backends\": [{\"name\": \"sim\", \"tier\": \"medium\", \"url\": \"http://127.0.0.1:%d\","
             " \"model\": \"slow\", \"max_concurrency\": %d, \"timeout_ms\": %d, \"first_token_timeout_ms\": %d,"
             " \"max_retries\": 0}]}",
             port, calls, (int)(seconds * 1000) + 30000, (int)(seconds * 1000) + 30000);
    struct cfg *c = NULL;
    if (cfg_load_text(json, strlen(json), err, sizeof err, &c) != ERR_OK) {
        fprintf(stderr, "config: %s\n", err);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct agent_pool *pool = NULL;
    agent_pool_new(c, &pool);
    long threads_before = status_field("Threads:"), rss_before = status_field("VmRSS:");
    double t0 = clock_ms();
    const char *prompt = "Passages:\n[1] The harbour office opens at seven in the morning.\n\n"
                         "Question: When does the harbour office open?\nAnswer:";
    for (int i = 0; i < calls; i++) {
        struct agent_llm_call call = {.tier = "medium", .user = prompt, .max_tokens = 32,
                                      .deadline_us = clock_us() + (int64_t)((seconds + 60) * 1e6)};
        if (agent_pool_chat(pool, &call, on_done, NULL) != ERR_OK)
            atomic_fetch_add(&done_err, 1);
    }
    long max_threads = 0, max_rss = 0;
    int in_flight_peak = 0;
    while (atomic_load(&done_ok) + atomic_load(&done_err) < calls) {
        usleep(100 * 1000);
        long th = status_field("Threads:"), rss = status_field("VmRSS:");
        max_threads = th > max_threads ? th : max_threads;
        max_rss = rss > max_rss ? rss : max_rss;
        struct agent_backend_health h;
        agent_pool_health(pool, &h, 1);
        in_flight_peak = h.in_flight > in_flight_peak ? h.in_flight : in_flight_peak;
        if (clock_ms() - t0 > (seconds + 120) * 1000)
            break;
    }
    double wall = (clock_ms() - t0) / 1000;
    printf("calls %d, each %.1f s at the backend\n", calls, seconds);
    printf("succeeded %d, failed %d\n", atomic_load(&done_ok), atomic_load(&done_err));
    printf("peak in flight at once: %d\n", in_flight_peak);
    printf("threads: %ld before, %ld at most while in flight\n", threads_before, max_threads);
    printf("RSS: %.1f MB before, %.1f MB at most while in flight\n", rss_before / 1024.0, max_rss / 1024.0);
    printf("wall time: %.2f s\n", wall);
    printf("{\"bench\":\"backends\",\"calls\":%d,\"seconds\":%.1f,\"ok\":%d,\"failed\":%d,\"peak_in_flight\":%d,"
           "\"threads_before\":%ld,\"threads_max\":%ld,\"rss_mb_max\":%.1f,\"wall_s\":%.2f}\n",
           calls, seconds, atomic_load(&done_ok), atomic_load(&done_err), in_flight_peak, threads_before, max_threads,
           max_rss / 1024.0, wall);
    agent_pool_free(pool);
    cfg_unref(c);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    curl_global_cleanup();
    return atomic_load(&done_ok) == calls ? 0 : 1;
}
