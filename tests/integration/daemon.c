/* daemon.c - see daemon.h. */
#include "daemon.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *slorag_bin(void) {
    const char *b = getenv("SLORAG_BIN");
    if (!b) {
        fprintf(stderr, "SLORAG_BIN is not set\n");
        abort();
    }
    return b;
}

void daemon_prepare(struct daemon *d, const char *config_json) {
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof d->dir, "/tmp/slorag-it-XXXXXX");
    if (!mkdtemp(d->dir))
        abort();
    snprintf(d->log_path, sizeof d->log_path, "%s/daemon.log", d->dir);
    if (config_json) {
        char p[128];
        snprintf(p, sizeof p, "%s/config.json", d->dir);
        FILE *f = fopen(p, "w");
        fputs(config_json, f);
        fclose(f);
    }
}

static bool has_config(const struct daemon *d, char *out, size_t n) {
    snprintf(out, n, "%s/config.json", d->dir);
    return access(out, F_OK) == 0;
}

/* In a forked child before exec: only stdin, stdout and stderr go on.  A
 * test with connections open (client threads, curl's cache) must not hand
 * them to a daemon or simulator it starts, or they outlive its own close. */
static void close_inherited(void) {
    if (close_range(3, ~0U, 0) != 0)
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
}

int daemon_ingest(struct daemon *d, const char *collection, const char *path) {
    char cfg[128];
    bool with_cfg = has_config(d, cfg, sizeof cfg);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(d->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 2);
        close_inherited();
        if (with_cfg)
            execl(slorag_bin(), "slorag", "ingest", "--config", cfg, "--data", d->dir, "--collection", collection, path,
                  (char *)NULL);
        else
            execl(slorag_bin(), "slorag", "ingest", "--data", d->dir, "--collection", collection, path, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool proc_start_ready(char *const argv[], const char *log_path, pid_t *ret_pid, int *ret_port) {
    int out[2];
    if (pipe(out) != 0)
        return false;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 2);
        dup2(out[1], 1);
        close_inherited();
        execv(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    *ret_pid = pid;
    char line[512];
    size_t n = 0;
    while (n < sizeof line - 1) {
        ssize_t r = read(out[0], line + n, 1);
        if (r <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    close(out[0]);
    const char *p = strstr(line, "http://127.0.0.1:");
    if (!p)
        return false;
    *ret_port = atoi(p + strlen("http://127.0.0.1:"));
    return *ret_port > 0;
}

bool sim_start(const char *dir, const char *config_json, const char *sim_bin, pid_t *ret_pid, int *ret_port) {
    char cfg[256], log[256];
    snprintf(cfg, sizeof cfg, "%s/llmsim.json", dir);
    snprintf(log, sizeof log, "%s/llmsim.log", dir);
    FILE *f = fopen(cfg, "w");
    if (!f)
        return false;
    fputs(config_json, f);
    fclose(f);
    char *argv[] = {(char *)(sim_bin ? sim_bin : getenv("SLORAG_LLMSIM_BIN")), "--config", cfg, "--listen",
                    "127.0.0.1:0", NULL};
    return argv[0] && proc_start_ready(argv, log, ret_pid, ret_port);
}

long proc_status_field(pid_t pid, const char *field) {
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, strlen(field)) == 0)
            v = atol(line + strlen(field));
    if (f)
        fclose(f);
    return v;
}

int proc_stop(pid_t pid, int sig, int timeout_ms) {
    if (pid <= 0)
        return -1;
    if (sig)
        kill(pid, sig);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

bool daemon_start(struct daemon *d) {
    char cfg[128];
    bool with_cfg = has_config(d, cfg, sizeof cfg);
    char *argv[12];
    int n = 0;
    argv[n++] = (char *)slorag_bin();
    argv[n++] = "serve";
    if (with_cfg) {
        argv[n++] = "--config";
        argv[n++] = cfg;
    }
    argv[n++] = "--data";
    argv[n++] = d->dir;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n] = NULL;
    return proc_start_ready(argv, d->log_path, &d->pid, &d->port);
}

int daemon_stop(struct daemon *d, int sig, int timeout_ms) {
    int st = proc_stop(d->pid, sig, timeout_ms);
    d->pid = 0;
    return st;
}

int daemon_finish(struct daemon *d) {
    int st = d->pid > 0 ? daemon_stop(d, SIGTERM, 10000) : 0;
    if (st != 0)
        daemon_dump_log(d);
    daemon_cleanup(d);
    return st == 0 ? 0 : -1;
}

void daemon_dump_log(const struct daemon *d) {
    FILE *f = fopen(d->log_path, "r");
    if (!f)
        return;
    char buf[512];
    fprintf(stderr, "---- daemon log ----\n");
    while (fgets(buf, sizeof buf, f))
        fputs(buf, stderr);
    fclose(f);
}

void daemon_cleanup(struct daemon *d) {
    if (d->pid > 0)
        daemon_stop(d, SIGKILL, 2000);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", d->dir);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    struct http_resp *r = ud;
    size_t add = size * n;
    char *b = realloc(r->body, r->len + add + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, p, add);
    r->len += add;
    b[r->len] = '\0';
    r->body = b;
    return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    struct http_resp *r = ud;
    size_t add = size * n, have = strlen(r->headers);
    if (have + add < sizeof r->headers) {
        memcpy(r->headers + have, p, add);
        r->headers[have + add] = '\0';
    }
    return add;
}

void http_do(const struct daemon *d, const char *method, const char *path, const char *content_type,
             const char *body, size_t len, struct http_resp *ret) {
    http_do_auth(d, method, path, NULL, content_type, body, len, ret);
}

void http_do_auth(const struct daemon *d, const char *method, const char *path, const char *authorization,
                  const char *content_type, const char *body, size_t len, struct http_resp *ret) {
    memset(ret, 0, sizeof(*ret));
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", d->port, path);
    struct curl_slist *h = NULL;
    char ct[128];
    if (content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        h = curl_slist_append(h, ct);
    } else {
        h = curl_slist_append(h, "Content-Type:"); /* send none */
    }
    h = curl_slist_append(h, "Expect:");
    char auth[512];
    if (authorization) {
        snprintf(auth, sizeof auth, "Authorization: %s", authorization);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, ret);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, ret);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ret->status);
    if (!ret->body)
        ret->body = calloc(1, 1);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

void http_resp_done(struct http_resp *r) {
    free(r->body);
    r->body = NULL;
}

int tcp_connect_loopback(int port, int rcv_timeout_s) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {rcv_timeout_s, 0};
    if ((rcv_timeout_s > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

double metric_sample(const char *scrape, const char *series) {
    size_t n = strlen(series);
    for (const char *p = scrape; p && (p = strstr(p, series)) != NULL; p += n)
        if ((p == scrape || p[-1] == '\n') && p[n] == ' ')
            return atof(p + n + 1);
    return -1;
}
