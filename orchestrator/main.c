/* main.c - the slorag command line: serve, ingest, --help, --version.
 *
 * Signals are blocked in every thread before any thread starts and taken
 * synchronously with sigwait() in main, so shutdown and reload run as plain
 * code rather than in a signal handler. */
#include "backend.h"
#include "config.h"
#include "eval.h"
#include "space.h"
#include "eval_retrieval.h"
#include "plan.h"
#include "executor.h"
#include "http.h"
#include "intents.h"
#include "ledger.h"
#include "ingest.h"
#include "log.h"
#include "pool.h"
#include "store.h"
#include "vindex.h"
#include "util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: slorag serve  [--config FILE] [--listen ADDR:PORT] [--data DIR] [--log-level LEVEL]\n"
    "       slorag ingest [--config FILE] [--data DIR] [--collection NAME] PATH...\n"
    "       slorag eval-retrieval --dataset FILE [--json] [--config FILE]\n"
    "       slorag eval --dataset FILE [--tier T] [--mode M] [--limit N] [--json-out FILE] [--config FILE]\n"
    "       slorag eval --dataset FILE --plan CONFIGURATION [--limit N] [--json-out FILE] [--config FILE]\n"
    "       slorag eval --dataset FILE --calibrate PRIORS.json [--limit N] [--config FILE]\n"
    "       slorag eval --dataset FILE --url http://HOST:PORT [--tier T] [--mode M] [--limit N]   (key: $SLORAG_API_KEY)\n"
    "       slorag tenant create ID | list | show ID | delete ID | key ID | revoke ID KEY_ID\n"
    "                     [--config FILE] [--data DIR]\n"
    "       slorag --help | --version\n"
    "\n"
    "serve    answer questions over HTTP (default 127.0.0.1:8080)\n"
    "ingest   store .md/.markdown/.txt/.html/.jsonl files (directories recursively)\n"
    "         in a collection; run it while `serve` is stopped, or use the HTTP API\n"
    "         (default collection: \"default\"); re-ingesting a path replaces it\n"
    "tenant   manage tenants and API keys offline (the same as the admin API);\n"
    "         a new key is printed once\n"
    "eval     exact match, F1, abstention, cost and latency of answers on a SQuAD\n"
    "         file, through the whole pipeline, in a scratch store\n"
    "eval-retrieval  recall@1/5/10 and MRR of lexical, dense and hybrid retrieval on a\n"
    "         SQuAD-format file, in a scratch store (your data is not touched)\n"
    "\n"
    "Settings come from the JSON config file, then SLORAG_LISTEN, SLORAG_DATA_DIR,\n"
    "SLORAG_LOG_LEVEL and SLORAG_WORKERS, then flags.  See docs/configuration.md.\n";

struct cli {
    const char *config_path;
    struct cfg_overrides ov;
    const char *collection;
    const char *dataset;
    bool json;
    const char *tier, *mode, *json_out, *calibrate, *url, *plan;
    int limit;
};

static int parse_flags(int argc, char **argv, struct cli *cli) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},   {"listen", required_argument, NULL, 'l'},
        {"data", required_argument, NULL, 'd'},     {"log-level", required_argument, NULL, 'v'},
        {"collection", required_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'},
        {"dataset", required_argument, NULL, 's'},  {"json", no_argument, NULL, 'j'},
        {"tier", required_argument, NULL, 't'},     {"mode", required_argument, NULL, 'm'},
        {"json-out", required_argument, NULL, 'o'}, {"limit", required_argument, NULL, 'L'},
        {"calibrate", required_argument, NULL, 'C'}, {"url", required_argument, NULL, 'U'},
        {"plan", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "c:l:d:n:h", opts, NULL)) != -1;) {
        switch (c) {
        case 'c': cli->config_path = optarg; break;
        case 'l': cli->ov.listen = optarg; break;
        case 'd': cli->ov.data_dir = optarg; break;
        case 'v': cli->ov.log_level = optarg; break;
        case 'n': cli->collection = optarg; break;
        case 's': cli->dataset = optarg; break;
        case 'j': cli->json = true; break;
        case 't': cli->tier = optarg; break;
        case 'm': cli->mode = optarg; break;
        case 'P': cli->plan = optarg; break;
        case 'o': cli->json_out = optarg; break;
        case 'L': cli->limit = atoi(optarg); break;
        case 'C': cli->calibrate = optarg; break;
        case 'U': cli->url = optarg; break;
        case 'h': fputs(usage_text, stdout); exit(0);
        default: fputs(usage_text, stderr); return -1;
        }
    }
    return 0;
}

static struct cfg *load_config(const struct cli *cli) {
    char msg[512] = "";
    struct cfg *c = NULL;
    if (cfg_load(cli->config_path, &cli->ov, msg, sizeof msg, &c) != ERR_OK) {
        fprintf(stderr, "slorag: config: %s\n", msg);
        return NULL;
    }
    log_set_level(c->log_level);
    return c;
}

static struct ret_store *open_store(const struct cfg *c, int readers) {
    if (mkdir(c->data_dir, 0750) != 0 && errno != EEXIST) {
        fprintf(stderr, "slorag: cannot create data directory %s: %s\n", c->data_dir, strerror(errno));
        return NULL;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/slorag.db", c->data_dir);
    struct ret_store *s = NULL;
    if (ret_store_open(path, readers, &s) != ERR_OK) {
        fprintf(stderr, "slorag: cannot open the store at %s\n", path);
        return NULL;
    }
    if (ret_store_set_text_cache(s, (size_t)c->retrieval.text_cache_mb << 20) != ERR_OK) {
        fprintf(stderr, "slorag: no memory for retrieval.text_cache_mb (%d MiB)\n", c->retrieval.text_cache_mb);
        return ret_store_free(s);
    }
    return s;
}

/* The engine's report of a background approximate-index build. */
static void ann_done(void *ud, int64_t collection_id, enum err e, const char *detail, int64_t vectors, int nlist,
                     int nprobe, double seconds) {
    (void)ud;
    if (e == ERR_OK)
        log_msg(LOG_INFO, "approximate_index_ready", LOG_I("collection_id", collection_id), LOG_I("vectors", vectors),
                LOG_I("nlist", nlist), LOG_I("nprobe", nprobe), LOG_F("seconds", seconds), LOG_END);
    else if (e != ERR_CANCELLED)
        log_msg(LOG_WARN, "approximate_index_failed", LOG_I("collection_id", collection_id),
                LOG_S("error", err_name(e)), LOG_S("detail", detail), LOG_F("seconds", seconds),
                LOG_S("effect", "the collection keeps its current index; retried when it grows"), LOG_END);
}

/* serving: whether approximate indexes are built (in the background); a
 * command-line run (ingest) leaves that to the server's next start rather
 * than wait for a build before it exits. */
static struct ret_engine *open_engine(const struct cfg *c, struct ret_store *store, bool serving) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/index", c->data_dir);
    struct ret_engine_opts o = {
        .index_dir = dir,
        .index_factory = c->retrieval.index_factory,
        .dim = c->retrieval.embedding_dim,
        .save_interval_ms = c->retrieval.index_save_interval_ms,
        .chunk = {c->retrieval.chunk_tokens, c->retrieval.chunk_overlap_tokens},
        .ann_threshold = serving ? c->retrieval.ann_threshold : 0,
        .ann_factory = c->retrieval.ann_factory,
        .ann_nprobe = c->retrieval.ann_nprobe,
        .ann_done = ann_done,
        .lexical_index = serving && c->retrieval.lexical_index,
    };
    ret_vindex_set_quantized_min(c->retrieval.quantized_scan_min);
    struct ret_embed_http_opts http;
    bool is_http = false;
    struct ret_startup_report rep;
    struct ret_engine *eng = NULL;
    double t0 = clock_ms();
    enum err e = ret_embed_http_opts_from_cfg(c, &http, &is_http);
    if (e) {
        fprintf(stderr, "slorag: config: %s\n", ret_last_error());
        return NULL;
    }
    o.http = is_http ? &http : NULL;
    e = ret_engine_open(store, &o, &rep, &eng);
    if (e && strncmp(ret_last_error(), "retrieval.", 10) == 0) {
        fprintf(stderr, "slorag: config: %s\n", ret_last_error());
        return NULL;
    }
    if (e && ret_last_error()[0]) { /* the embedder's own words: its backend, its dimension */
        fprintf(stderr, "slorag: cannot start the embedder: %s\n", ret_last_error());
        return NULL;
    }
    if (e == ERR_CONFIG || e == ERR_INVALID_FIELD) {
        fprintf(stderr,
                "slorag: config: retrieval.index_factory: \"%s\" %s\n", c->retrieval.index_factory,
                e == ERR_CONFIG ? "needs training (IVF, PQ), which document-by-document ingestion cannot give it; "
                                  "use Flat (exact) or HNSW32"
                                : "is not a FAISS index-factory string this build accepts");
        return NULL;
    }
    if (e) {
        fprintf(stderr, "slorag: cannot open the vector indexes in %s: %s (%s)\n", dir, err_message(e),
                ret_vindex_last_error());
        return NULL;
    }
    log_msg(LOG_INFO, "indexes_ready", LOG_S("embedder", ret_engine_embedder_name(eng)),
            LOG_I("dimension", ret_engine_dim(eng)), LOG_I("collections", rep.collections), LOG_I("loaded", rep.loaded),
            LOG_I("rebuilt", rep.rebuilt), LOG_I("vectors", rep.vectors), LOG_F("ms", clock_ms() - t0), LOG_END);
    if (ret_engine_conflicts(eng))
        log_msg(LOG_WARN, "embedding_dimension_conflict", LOG_I("collections", ret_engine_conflicts(eng)),
                LOG_S("reason", "their stored embeddings have another dimension than the embedder's: dense search "
                                "and ingestion fail with 409 until they are re-embedded (docs/retrieval.md)"),
                LOG_END);
    return eng;
}

static struct cfg_tenants *open_tenants(const struct cfg *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/slorag.db", c->data_dir);
    struct cfg_tenants *t = NULL;
    if (cfg_tenants_open(path, &t) != ERR_OK) {
        fprintf(stderr, "slorag: cannot open the tenant store at %s\n", path);
        return NULL;
    }
    return t;
}

/* The SLO engine's learned state lives in the same SQLite file, as one
 * JSON row: loaded at start-up, written every 30 s and at shutdown. */
static void slo_state_load(const char *db_path, struct exec_slo *slo) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) == SQLITE_OK &&
        sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS slo_state(id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL)",
                     NULL, NULL, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT state FROM slo_state WHERE id = 1", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        json_t *j = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        char err[256] = "";
        if (!j || exec_slo_load(slo, j, err, sizeof err) != ERR_OK)
            log_msg(LOG_WARN, "slo_state_ignored", LOG_S("reason", j ? err : "not JSON"), LOG_END);
        else
            log_msg(LOG_INFO, "slo_state_loaded", LOG_END);
        json_decref(j);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void slo_state_save(const char *db_path, struct exec_slo *slo) {
    json_t *j = exec_slo_save(slo);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    bool ok = false;
    if (text && sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO slo_state(id, state) VALUES (1, ?1)", -1, &st, NULL) ==
            SQLITE_OK) {
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    if (!ok)
        log_msg(LOG_WARN, "slo_state_not_saved", LOG_END);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(text);
}

static int cmd_serve(const struct cli *cli) {
    struct cfg *c = load_config(cli);
    if (!c)
        return 2;
    struct ret_store *store = open_store(c, c->server.workers);
    struct cfg_tenants *tenants = store ? open_tenants(c) : NULL;
    if (!store || !tenants) {
        ret_store_free(store);
        cfg_unref(c);
        return 1;
    }
    if (!util_host_is_loopback(c->listen_host) && !c->admin_key[0] && cfg_tenants_count(tenants) == 0) {
        fprintf(stderr,
                "slorag: refusing to listen on %s without authentication: set admin_key (or SLORAG_ADMIN_KEY) "
                "and create tenants, or listen on loopback (127.0.0.0/8)\n",
                c->listen_host);
        cfg_tenants_free(tenants);
        ret_store_free(store);
        cfg_unref(c);
        return 2;
    }
    /* Block the signals we handle before any thread exists, so every thread
     * inherits the mask and only sigwait() below sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct ret_engine *eng = open_engine(c, store, true);
    struct exec_pool *pool = NULL;
    if (!eng || exec_pool_new(c->server.workers, (size_t)c->server.queue_max, &pool) != ERR_OK) {
        if (eng)
            fprintf(stderr, "slorag: cannot start %d worker threads\n", c->server.workers);
        ret_engine_free(eng);
        cfg_tenants_free(tenants);
        ret_store_free(store);
        cfg_unref(c);
        return 1;
    }
    struct agent_pool *llm = NULL;
    if (agent_pool_new(c, &llm) != ERR_OK) {
        fprintf(stderr, "slorag: cannot start the LLM backend pool\n");
        exec_pool_free(pool);
        ret_engine_free(eng);
        cfg_tenants_free(tenants);
        ret_store_free(store);
        cfg_unref(c);
        return 1;
    }
    for (int i = 0; i < c->nbackends; i++)
        log_msg(LOG_INFO, "backend", LOG_S("name", c->backends[i].name), LOG_S("tier", c->backends[i].tier),
                LOG_S("url", c->backends[i].url), LOG_S("model", c->backends[i].model),
                LOG_I("max_concurrency", c->backends[i].max_concurrency), LOG_END);
    char ledger_path[4096], store_path[4096];
    snprintf(ledger_path, sizeof ledger_path, "%s/ledger.db", c->data_dir);
    snprintf(store_path, sizeof store_path, "%s/slorag.db", c->data_dir);
    struct ledger *ledger = NULL;
    if (ledger_open(ledger_path, store_path, 256, &ledger) != ERR_OK) {
        fprintf(stderr, "slorag: cannot open the usage ledger in %s\n", ledger_path);
        exec_pool_free(pool);
        agent_pool_free(llm);
        ret_engine_free(eng);
        cfg_tenants_free(tenants);
        ret_store_free(store);
        cfg_unref(c);
        return 1;
    }
    struct exec_slo *slo = NULL;
    if (exec_slo_new(c->query.explore_rate, 0x510ab5eedULL, &slo) != ERR_OK) {
        fprintf(stderr, "slorag: cannot start the SLO engine\n");
        exec_pool_free(pool);
        agent_pool_free(llm);
        ledger_free(ledger);
        ret_engine_free(eng);
        cfg_tenants_free(tenants);
        ret_store_free(store);
        cfg_unref(c);
        return 1;
    }
    if (c->query.calibration[0]) {
        /* priors measured by `slorag eval --calibrate`, before the learned state */
        json_error_t je;
        json_t *cal = json_load_file(c->query.calibration, 0, &je);
        char err[256] = "";
        enum err ce = cal ? exec_slo_calibrate(slo, cal, err, sizeof err) : ERR_CONFIG;
        json_decref(cal);
        if (ce) {
            fprintf(stderr, "slorag: query.calibration: %s: %s\n", c->query.calibration, cal ? err : je.text);
            exec_slo_free(slo);
            exec_pool_free(pool);
            agent_pool_free(llm);
            ledger_free(ledger);
            ret_engine_free(eng);
            cfg_tenants_free(tenants);
            ret_store_free(store);
            cfg_unref(c);
            return 1;
        }
        log_msg(LOG_INFO, "calibration_loaded", LOG_S("path", c->query.calibration), LOG_END);
    }
    slo_state_load(ledger_path, slo);
    struct cfg_slot slot;
    cfg_slot_init(&slot, c);
    struct intents_cache *intents = intents_cache_new(tenants); /* NULL: the built-in classifier only */
    struct http_deps deps = {.cfg = &slot, .engine = eng, .pool = pool, .llm = llm, .tenants = tenants,
                             .ledger = ledger, .slo = slo, .intents = intents};
    struct http_server *srv = NULL;
    char msg[256];
    if (http_start(c, &deps, msg, sizeof msg, &srv) != ERR_OK) {
        fprintf(stderr, "slorag: %s\n", msg);
        intents_cache_free(intents);
        exec_pool_free(pool);
        agent_pool_free(llm);
        ledger_free(ledger);
        exec_slo_free(slo);
        ret_engine_free(eng);
        cfg_tenants_free(tenants);
        ret_store_free(store);
        cfg_slot_done(&slot);
        return 1;
    }
    int port = http_port(srv);
    log_msg(LOG_INFO, "listening", LOG_S("host", c->listen_host), LOG_I("port", port), LOG_S("data_dir", c->data_dir),
            LOG_I("workers", c->server.workers), LOG_S("version", SLORAG_VERSION), LOG_END);
    printf("slorag %s serving on http://%s:%d (data in %s). Try:\n"
           "  curl -s http://%s:%d/v1/query -H 'Content-Type: application/json' \\\n"
           "       -d '{\"question\": \"How do I run the tests?\"}'\n",
           SLORAG_VERSION, c->listen_host, port, c->data_dir, c->listen_host, port);
    fflush(stdout);

    int status = 0;
    time_t pruned_at = 0; /* ledger.retention_days: at start, then hourly */
    for (;;) {
        time_t now = time(NULL);
        if (now - pruned_at >= 3600) {
            struct cfg *cur = cfg_slot_get(&slot);
            ledger_prune(ledger, cur->ledger.retention_days, (int64_t)now);
            cfg_unref(cur);
            pruned_at = now;
        }
        struct timespec every = {30, 0};
        int sig = sigtimedwait(&set, NULL, &every);
        if (sig < 0) { /* timeout (or EINTR): persist what the planner learned */
            slo_state_save(ledger_path, slo);
            continue;
        }
        if (sig == SIGHUP) {
            struct cfg *nc = load_config(cli);
            if (!nc) {
                log_msg(LOG_ERROR, "reload_failed", LOG_S("reason", "invalid config; keeping the current one"), LOG_END);
                continue;
            }
            struct cfg *cur = cfg_slot_get(&slot);
            if (strcmp(nc->listen_host, cur->listen_host) || nc->listen_port != cur->listen_port ||
                strcmp(nc->data_dir, cur->data_dir) || nc->server.workers != cur->server.workers)
                log_msg(LOG_WARN, "reload_partial",
                        LOG_S("reason", "listen, data_dir and server.workers apply only after a restart"), LOG_END);
            cfg_unref(cur);
            agent_pool_reconfigure(llm, nc);
            cfg_slot_swap(&slot, nc);
            log_msg(LOG_INFO, "reloaded", LOG_I("backends", nc->nbackends), LOG_END);
            continue;
        }
        struct cfg *cur = cfg_slot_get(&slot);
        int drain_ms = cur->server.drain_timeout_ms;
        cfg_unref(cur);
        log_msg(LOG_INFO, "draining", LOG_S("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"),
                LOG_I("in_flight", http_in_flight(srv)), LOG_I("timeout_ms", drain_ms), LOG_END);
        http_quiesce(srv);
        if (!http_wait_idle(srv, drain_ms))
            log_msg(LOG_WARN, "drain_timeout", LOG_I("in_flight", http_in_flight(srv)), LOG_END);
        break;
    }
    /* Workers, then the LLM pool (which fails what is still pending): every
     * job and every backend call resumes its connection, so none is left
     * suspended when the HTTP daemon stops. */
    exec_pool_free(pool);
    agent_pool_free(llm);
    ledger_free(ledger); /* commits what is queued; its callbacks resume connections */
    http_stop(srv);
    intents_cache_free(intents);
    slo_state_save(ledger_path, slo);
    exec_slo_free(slo);
    ret_engine_free(eng); /* writes changed indexes */
    cfg_tenants_free(tenants);
    ret_store_free(store);
    cfg_slot_done(&slot);
    log_msg(LOG_INFO, "stopped", LOG_END);
    return status;
}

struct progress {
    bool tty;
    double t0;
};

static void on_file(void *ud, const char *path, const char *why, const struct ret_ingest_stats *st) {
    struct progress *p = ud;
    if (why)
        fprintf(stderr, "%sskipped %s: %s\n", p->tty ? "\r\033[K" : "", path, why);
    if (p->tty) {
        double s = (clock_ms() - p->t0) / 1000.0;
        double rate = s > 0 ? (double)st->read_bytes / 1e6 / s : 0.0;
        double left = rate > 0 ? (double)(st->total_bytes - st->read_bytes) / 1e6 / rate : 0.0;
        int pct = st->total_bytes ? (int)(100.0 * (double)st->read_bytes / (double)st->total_bytes) : 100;
        fprintf(stderr, "\r\033[K[%3d%%] %zu documents, %.2f/%.2f MB, %zu chunks, %.2f MB/s, ETA %.0f s", pct,
                st->documents, (double)st->read_bytes / 1e6, (double)st->total_bytes / 1e6, st->chunks, rate, left);
    }
}

static int cmd_ingest(const struct cli *cli, int npaths, char **paths) {
    if (npaths < 1) {
        fputs("slorag ingest: no PATH given\n", stderr);
        return 2;
    }
    const char *collection = cli->collection ? cli->collection : "default";
    if (!ret_name_valid(collection)) {
        fprintf(stderr, "slorag ingest: --collection: must be 1-64 characters of [A-Za-z0-9._-], not starting with '.'\n");
        return 2;
    }
    struct cfg *c = load_config(cli);
    if (!c)
        return 2;
    struct ret_store *store = open_store(c, 1);
    if (!store) {
        cfg_unref(c);
        return 1;
    }
    struct ret_engine *eng = open_engine(c, store, false);
    if (!eng) {
        ret_store_free(store);
        cfg_unref(c);
        return 1;
    }
    int64_t cid;
    enum err e = ret_collection_ensure(store, "default", collection, &cid);
    struct progress prog = {isatty(STDERR_FILENO) == 1, clock_ms()};
    struct ret_ingest_opts o = {
        .max_document_bytes = c->retrieval.max_document_bytes,
        .on_file = on_file,
        .ud = &prog,
    };
    struct ret_ingest_stats st = {0};
    if (!e)
        e = ret_ingest_paths(eng, cid, paths, (size_t)npaths, &o, &st);
    double secs = (clock_ms() - prog.t0) / 1000.0;
    if (prog.tty)
        fputs("\r\033[K", stderr);
    fprintf(stderr, "ingested %zu documents (%.2f MB, %zu chunks) into \"%s\" in %.2f s, %zu skipped%s%s\n",
            st.documents, (double)st.bytes / 1e6, st.chunks, collection, secs, st.skipped, e ? "; stopped: " : "",
            e ? ret_error_detail(e) : "");
    ret_engine_free(eng);
    ret_store_free(store);
    cfg_unref(c);
    return e ? 1 : 0;
}

static int cmd_tenant(const struct cli *cli, int nargs, char **args) {
    static const struct {
        const char *verb;
        int nargs;
    } verbs[] = {{"create", 1}, {"list", 0}, {"show", 1}, {"delete", 1}, {"key", 1}, {"revoke", 2}};
    int v = -1;
    for (int i = 0; nargs >= 1 && i < (int)(sizeof verbs / sizeof verbs[0]); i++)
        if (strcmp(args[0], verbs[i].verb) == 0 && nargs - 1 == verbs[i].nargs)
            v = i;
    if (v < 0) {
        fputs("usage: slorag tenant create ID | list | show ID | delete ID | key ID | revoke ID KEY_ID\n", stderr);
        return 2;
    }
    struct cfg *c = load_config(cli);
    if (!c)
        return 2;
    if (mkdir(c->data_dir, 0750) != 0 && errno != EEXIST) {
        fprintf(stderr, "slorag: cannot create data directory %s: %s\n", c->data_dir, strerror(errno));
        cfg_unref(c);
        return 1;
    }
    struct cfg_tenants *t = open_tenants(c);
    cfg_unref(c);
    if (!t)
        return 1;
    char key[CFG_KEY_LEN + 1], key_id[CFG_KEY_ID_LEN + 1];
    enum err e = ERR_OK;
    const char *id = nargs > 1 ? args[1] : "";
    switch (v) {
    case 0:
        e = cfg_tenant_create(t, id, key, key_id);
        if (!e)
            printf("tenant %s created\napi_key %s\nkey_id %s\n", id, key, key_id);
        break;
    case 1: {
        char **ids = NULL;
        size_t n = 0;
        e = cfg_tenant_list(t, &ids, &n);
        for (size_t i = 0; !e && i < n; i++)
            puts(ids[i]);
        if (!e)
            cfg_tenant_list_free(ids, n);
        break;
    }
    case 2: {
        struct cfg_tenant tn;
        struct cfg_key_info *keys = NULL;
        size_t nk = 0;
        e = cfg_tenant_get(t, id, &tn);
        if (!e)
            e = cfg_key_list(t, id, &keys, &nk);
        if (!e) {
            printf("tenant %s\ncreated_at %lld\nprofile %s\nrequests_per_second %g\ntokens_per_minute %g\n", tn.id,
                   (long long)tn.created_at, tn.profile ? tn.profile : "(default)", tn.rate_rps, tn.tokens_per_min);
            for (size_t i = 0; i < nk; i++)
                printf("key %s %s\n", keys[i].key_id, keys[i].revoked_at ? "revoked" : "active");
            free(keys);
            cfg_tenant_done(&tn);
        }
        break;
    }
    case 3:
        e = cfg_tenant_delete(t, id);
        if (!e)
            printf("tenant %s deleted (its collections stay until removed through the API)\n", id);
        break;
    case 4:
        e = cfg_key_issue(t, id, key, key_id);
        if (!e)
            printf("api_key %s\nkey_id %s\n", key, key_id);
        break;
    case 5:
        e = cfg_key_revoke(t, id, args[2]);
        if (!e)
            printf("key %s of tenant %s revoked\n", args[2], id);
        break;
    }
    cfg_tenants_free(t);
    if (e) {
        fprintf(stderr, "slorag tenant %s: %s\n", args[0],
                e == ERR_CONFLICT      ? "the tenant already exists"
                : e == ERR_NOT_FOUND   ? "no such tenant or key"
                : e == ERR_INVALID_FIELD ? "tenant ids are 1-64 characters of [a-z0-9_-], starting with a letter or digit"
                                       : err_message(e));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    util_restart_with_huge_pages(argv);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread starts */
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("slorag %s\n", SLORAG_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    struct cli cli = {0};
    const char *cmd = argv[1];
    if (parse_flags(argc - 1, argv + 1, &cli))
        return 2;
    if (strcmp(cmd, "serve") == 0) {
        if (optind < argc - 1) {
            fprintf(stderr, "slorag serve: unexpected argument \"%s\"\n", argv[1 + optind]);
            return 2;
        }
        return cmd_serve(&cli);
    }
    if (strcmp(cmd, "eval") == 0) {
        if (!cli.dataset) {
            fputs("slorag eval: --dataset FILE is required\n", stderr);
            return 2;
        }
        if ((cli.tier && slo_tier_parse(cli.tier) < 0) || (cli.mode && ret_mode_parse(cli.mode) < 0)) {
            fputs("slorag eval: --tier is extractive|small|medium|large, --mode lexical|dense|hybrid\n", stderr);
            return 2;
        }
        int pin = cli.plan ? slo_space_find(cli.plan) : -1;
        if (cli.plan && (pin < 0 || cli.tier || cli.mode || cli.url || cli.calibrate)) {
            fprintf(stderr, "slorag eval: --plan takes a configuration key such as hybrid/k5/medium/t256 "
                            "(docs/slo.md), runs in-process, and not with --tier, --mode or --calibrate\n");
            return 2;
        }
        struct cfg *c = load_config(&cli);
        if (!c)
            return 2;
        struct eval_opts eo = {.dataset = cli.dataset, .tier = cli.tier, .mode = cli.mode, .out_json = cli.json_out,
                               .limit = cli.limit, .url = cli.url, .api_key = getenv("SLORAG_API_KEY"),
                               .pin = pin + 1};
        if (cli.url && cli.calibrate) {
            fputs("slorag eval: --calibrate runs in-process; it does not take --url\n", stderr);
            cfg_unref(c);
            return 2;
        }
        int rc = cli.calibrate ? eval_calibrate(c, &eo, cli.calibrate) : eval_run(c, &eo);
        cfg_unref(c);
        return rc;
    }
    if (strcmp(cmd, "eval-retrieval") == 0) {
        if (!cli.dataset) {
            fputs("slorag eval-retrieval: --dataset FILE is required\n", stderr);
            return 2;
        }
        struct cfg *c = load_config(&cli);
        if (!c)
            return 2;
        int rc = eval_retrieval_run(c, cli.dataset, cli.json);
        cfg_unref(c);
        return rc;
    }
    if (strcmp(cmd, "tenant") == 0)
        return cmd_tenant(&cli, argc - 1 - optind, argv + 1 + optind);
    if (strcmp(cmd, "ingest") == 0)
        return cmd_ingest(&cli, argc - 1 - optind, argv + 1 + optind);
    fprintf(stderr, "slorag: unknown command \"%s\"\n%s", cmd, usage_text);
    return 2;
}
