/* main.c - slorag-llmsim: an OpenAI-compatible LLM simulator for tests and
 * benchmarks (see docs/llmsim.md).
 *
 * Signals are blocked before any thread starts and taken with sigwait(), so
 * shutdown runs as ordinary code.  The soft file-descriptor limit is raised
 * to fit the connection limit: every in-flight request is an open socket. */
#include "config.h"
#include "log.h"
#include "server.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define FD_RESERVE 64 /* descriptors kept for everything that is not a connection */

static const char usage_text[] =
    "usage: slorag-llmsim --config FILE [--listen ADDR:PORT] [--seed N] [--log-level LEVEL]\n"
    "       slorag-llmsim --help | --version\n"
    "\n"
    "Serves simulated models over the OpenAI HTTP API: GET /v1/models,\n"
    "POST /v1/chat/completions (streaming too) and POST /v1/embeddings, with\n"
    "configured latency, answer quality and injected faults.  --listen and\n"
    "--seed override the file.  Prints \"slorag-llmsim listening on URL\" when\n"
    "ready; SIGTERM or SIGINT stops it.  See docs/llmsim.md.\n";

struct cli {
    const char *config_path;
    const char *listen;
    const char *seed;
    const char *log_level;
};

static int parse_flags(int argc, char **argv, struct cli *cli) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"listen", required_argument, NULL, 'l'},
        {"seed", required_argument, NULL, 's'},   {"log-level", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    for (int c; (c = getopt_long(argc, argv, "c:l:s:h", opts, NULL)) != -1;) {
        switch (c) {
        case 'c': cli->config_path = optarg; break;
        case 'l': cli->listen = optarg; break;
        case 's': cli->seed = optarg; break;
        case 'v': cli->log_level = optarg; break;
        case 'h': fputs(usage_text, stdout); exit(0);
        case 'V': printf("slorag-llmsim %s\n", SLORAG_VERSION); exit(0);
        default: fputs(usage_text, stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "slorag-llmsim: unexpected argument \"%s\"\n%s", argv[optind], usage_text);
        return -1;
    }
    if (!cli->config_path) {
        fprintf(stderr, "slorag-llmsim: --config is required\n%s", usage_text);
        return -1;
    }
    return 0;
}

static int apply_flags(struct sim_cfg *c, const struct cli *cli) {
    char msg[256];
    if (cli->listen && !sim_cfg_set_listen(c, cli->listen, msg, sizeof msg)) {
        fprintf(stderr, "slorag-llmsim: --listen: %s\n", msg);
        return -1;
    }
    if (cli->seed) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(cli->seed, &end, 10);
        if (errno || !*cli->seed || *end || cli->seed[0] == '-') {
            fprintf(stderr, "slorag-llmsim: --seed: must be a non-negative integer, got \"%s\"\n", cli->seed);
            return -1;
        }
        c->seed = s;
    }
    if (cli->log_level) {
        int lvl = log_level_parse(cli->log_level);
        if (lvl < 0) {
            fprintf(stderr, "slorag-llmsim: --log-level: must be one of debug, info, warn, error\n");
            return -1;
        }
        log_set_level((enum log_level)lvl);
    }
    return 0;
}

/* Raises the soft descriptor limit as far as the connection limit needs
 * (and the hard limit allows); lowers the connection limit if it must. */
static void fit_fd_limit(struct sim_cfg *c) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)c->max_connections + FD_RESERVE;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want) {
        int fit = rl.rlim_cur > 2 * FD_RESERVE ? (int)(rl.rlim_cur - FD_RESERVE) : FD_RESERVE;
        log_msg(LOG_WARN, "fd_limit", LOG_I("limit", (long long)rl.rlim_cur), LOG_I("max_connections", fit),
                LOG_S("reason", "the descriptor limit is below max_connections; serving fewer"), LOG_END);
        c->max_connections = fit;
    }
}

int main(int argc, char **argv) {
    struct cli cli = {0};
    if (parse_flags(argc, argv, &cli))
        return 2;
    char msg[512] = "";
    struct sim_cfg *cfg = NULL;
    if (sim_cfg_load(cli.config_path, msg, sizeof msg, &cfg) != ERR_OK) {
        fprintf(stderr, "slorag-llmsim: config: %s\n", msg[0] ? msg : "out of memory");
        return 2;
    }
    if (apply_flags(cfg, &cli)) {
        sim_cfg_free(cfg);
        return 2;
    }
    if (!util_host_is_loopback(cfg->listen_host))
        log_msg(LOG_WARN, "listen", LOG_S("host", cfg->listen_host),
                LOG_S("reason", "not a loopback address: anyone who can reach it can use the simulator"), LOG_END);
    fit_fd_limit(cfg);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sim_server *srv = NULL;
    if (sim_server_start(cfg, msg, sizeof msg, &srv) != ERR_OK) {
        fprintf(stderr, "slorag-llmsim: %s\n", msg[0] ? msg : "cannot start");
        sim_cfg_free(cfg);
        return 1;
    }
    int port = sim_server_port(srv);
    log_msg(LOG_INFO, "listening", LOG_S("host", cfg->listen_host), LOG_I("port", port),
            LOG_I("models", (long long)cfg->nmodels), LOG_I("seed", (long long)cfg->seed),
            LOG_I("max_connections", cfg->max_connections), LOG_S("version", SLORAG_VERSION), LOG_END);
    printf("slorag-llmsim listening on http://%s:%d (models:", cfg->listen_host, port);
    for (size_t i = 0; i < cfg->nmodels; i++)
        printf("%s %s", i ? "," : "", cfg->models[i].name);
    printf(")\n");
    fflush(stdout);

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) == 0 && (sig == SIGTERM || sig == SIGINT)) {
            log_msg(LOG_INFO, "stopping", LOG_S("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"), LOG_END);
            break;
        }
    }
    sim_server_stop(srv);
    sim_cfg_free(cfg);
    log_msg(LOG_INFO, "stopped", LOG_END);
    return 0;
}
