/* bench-embed.c - time to embed N chunks through the HTTP embedder against
 * a simulated /v1/embeddings backend, in batches of 64, 16 and 1, in both
 * encodings, beside the built-in embedder.  Prints the median of a few runs
 * of the whole set.  Starts its own slorag-llmsim; --ttft-ms gives each
 * request a fixed service time, as a real model server has.
 *
 *   bench-embed --llmsim PATH [--chunks 1000] [--runs 5] [--ttft-ms 0]
 */
#include <curl/curl.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "embed.h"
#include "util.h"

#define WORDS_PER_CHUNK 120
#define DIM 256

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Deterministic chunk texts: 120 words drawn from a small vocabulary. */
static char **make_chunks(int n, size_t **ret_lens) {
    static const char *const vocab[] = {"harbour", "lighthouse", "ferry", "morning", "tide",   "keeper",
                                        "stone",   "metres",     "built", "island",  "boats",  "fish",
                                        "market",  "winter",     "storm", "bell",    "church", "pier",
                                        "oak",     "mill",       "river", "bridge",  "train",  "station"};
    char **t = calloc((size_t)n, sizeof(*t));
    size_t *l = calloc((size_t)n, sizeof(*l));
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < n; i++) {
        char *s = malloc(WORDS_PER_CHUNK * 12 + 1);
        size_t len = 0;
        for (int w = 0; w < WORDS_PER_CHUNK; w++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            const char *word = vocab[x % (sizeof vocab / sizeof *vocab)];
            len += (size_t)sprintf(s + len, "%s%s", w ? " " : "", word);
        }
        t[i] = s;
        l[i] = len;
    }
    *ret_lens = l;
    return t;
}

/* Median wall time in ms of embedding all chunks with e. */
static double time_embedder(struct ret_embedder *e, char **texts, const size_t *lens, int n, int runs) {
    float *out = malloc((size_t)n * DIM * sizeof(float));
    double *ms = calloc((size_t)runs, sizeof(double));
    for (int r = 0; r < runs; r++) {
        double t0 = clock_ms();
        enum err err = ret_embed(e, (const char *const *)texts, lens, (size_t)n, out);
        ms[r] = clock_ms() - t0;
        if (err) {
            fprintf(stderr, "bench-embed: %s\n", ret_error_detail(err));
            exit(1);
        }
    }
    qsort(ms, (size_t)runs, sizeof(double), cmp_double);
    double med = ms[runs / 2];
    free(ms);
    free(out);
    return med;
}

int main(int argc, char **argv) {
    const char *sim = NULL;
    int chunks = 1000, runs = 5, ttft = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--llmsim"))
            sim = argv[i + 1];
        else if (!strcmp(argv[i], "--chunks"))
            chunks = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--ttft-ms"))
            ttft = atoi(argv[i + 1]);
    }
    if (!sim || chunks < 1 || runs < 1 || ttft < 0) {
        fprintf(stderr, "usage: bench-embed --llmsim PATH [--chunks N] [--runs N] [--ttft-ms MS]\n");
        return 2;
    }
    char dir[] = "/tmp/slorag-bench-emb-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char cfgpath[128];
    snprintf(cfgpath, sizeof cfgpath, "%s/llmsim.json", dir);
    FILE *f = fopen(cfgpath, "w");
    fprintf(f, "{\"embedding_dim\": %d, \"models\": [{\"name\": \"emb\", \"ttft_ms\": %d, \"max_concurrency\": 64}]}",
            DIM, ttft);
    fclose(f);
    int out[2];
    if (pipe(out) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(sim, sim, "--config", cfgpath, "--listen", "127.0.0.1:0", "--log-level", "warn", (char *)NULL);
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
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", atoi(p + strlen("http://127.0.0.1:")));
    curl_global_init(CURL_GLOBAL_DEFAULT);

    size_t *lens = NULL;
    char **texts = make_chunks(chunks, &lens);
    printf("%d chunks of %d words, %d dimensions, simulator ttft %d ms, median of %d runs\n", chunks,
           WORDS_PER_CHUNK, DIM, ttft, runs);
    printf("%-10s %-8s %6s %10s %12s\n", "embedder", "encoding", "batch", "ms total", "chunks/s");
    static const int batches[] = {64, 16, 1};
    char json[2048];
    size_t jl = 0;
    for (int enc = 0; enc < 2; enc++)
        for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
            struct ret_embed_http_opts o = {.url = url, .model = "emb", .base64 = enc == 1, .batch = batches[b],
                                            .connect_timeout_ms = 2000, .timeout_ms = 60000, .dim = DIM};
            struct ret_embedder *e = NULL;
            if (ret_embedder_http_new(&o, &e) != ERR_OK)
                return 1;
            double ms = time_embedder(e, texts, lens, chunks, runs);
            ret_embedder_free(e);
            printf("%-10s %-8s %6d %10.1f %12.0f\n", "http", enc ? "base64" : "float", batches[b], ms,
                   chunks / (ms / 1000));
            jl += (size_t)snprintf(json + jl, sizeof json - jl,
                                   "%s{\"encoding\":\"%s\",\"batch\":%d,\"ms\":%.1f}", jl ? "," : "",
                                   enc ? "base64" : "float", batches[b], ms);
        }
    struct ret_embedder *bi = NULL;
    ret_embedder_builtin_new(DIM, &bi);
    double ms = time_embedder(bi, texts, lens, chunks, runs);
    ret_embedder_free(bi);
    printf("%-10s %-8s %6s %10.1f %12.0f\n", "builtin", "-", "-", ms, chunks / (ms / 1000));
    printf("{\"bench\":\"embed\",\"chunks\":%d,\"ttft_ms\":%d,\"runs\":%d,\"http\":[%s],\"builtin_ms\":%.1f}\n", chunks,
           ttft, runs, json, ms);
    for (int i = 0; i < chunks; i++)
        free(texts[i]);
    free(texts);
    free(lens);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    curl_global_cleanup();
    return 0;
}
