/* daemon.h - helpers for integration tests: start the real slorag binary on
 * an ephemeral loopback port with a temporary data directory, and talk HTTP
 * to it with libcurl. */
#ifndef SLORAG_TEST_DAEMON_H
#define SLORAG_TEST_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct daemon {
    pid_t pid;
    int port;
    char dir[64];       /* temporary data directory */
    char log_path[128]; /* the daemon's stderr */
};

struct http_resp {
    long status;
    char *body;          /* malloc'd, NUL-terminated */
    size_t len;
    char headers[4096];  /* raw response headers */
};

/* Runs `slorag ingest` over paths into collection, in d->dir.  Returns its exit status. */
int daemon_ingest(struct daemon *d, const char *collection, const char *path);
/* Creates the temp dir (and config file from config_json if non-NULL). */
void daemon_prepare(struct daemon *d, const char *config_json);
/* Starts `slorag serve`; waits until it prints its ready line. */
bool daemon_start(struct daemon *d);
/* Sends sig and waits for exit; returns the exit status, or -1 on timeout/signal. */
int daemon_stop(struct daemon *d, int sig, int timeout_ms);
void daemon_cleanup(struct daemon *d);
/* The end of a test group: SIGTERM the daemon if it runs, show its log when
 * it did not exit 0 (a crash, or a leak report under ASan), clean up.
 * Returns 0 for a clean exit, -1 otherwise. */
int daemon_finish(struct daemon *d);
void daemon_dump_log(const struct daemon *d);

/* Starts argv[0] with argv, stderr appended to log_path, and waits for its
 * first stdout line, which must contain "http://127.0.0.1:PORT".  Used for
 * slorag serve and for slorag-llmsim. */
bool proc_start_ready(char *const argv[], const char *log_path, pid_t *ret_pid, int *ret_port);
/* Writes config_json to DIR/llmsim.json and starts the simulator (binary:
 * sim_bin, or $SLORAG_LLMSIM_BIN when NULL) on 127.0.0.1:0, logging to
 * DIR/llmsim.log. */
bool sim_start(const char *dir, const char *config_json, const char *sim_bin, pid_t *ret_pid, int *ret_port);
/* SIGTERM (or sig), then wait; exit status or -1. */
int proc_stop(pid_t pid, int sig, int timeout_ms);
/* A number from /proc/PID/status ("VmRSS:" in kB, "Threads:"), -1 if absent. */
long proc_status_field(pid_t pid, const char *field);

/* A TCP connection to 127.0.0.1:port whose reads time out after
 * rcv_timeout_s (0: never), for requests curl would not send; -1 when it
 * cannot connect. */
int tcp_connect_loopback(int port, int rcv_timeout_s);

/* The value of a series in a /metrics scrape: its name (with its labels,
 * if any) at the start of a line, then a space; -1 when absent. */
double metric_sample(const char *scrape, const char *series);

/* One request; content_type NULL for none. */
void http_do(const struct daemon *d, const char *method, const char *path, const char *content_type,
             const char *body, size_t len, struct http_resp *ret);
/* The same with an Authorization header value (NULL: none). */
void http_do_auth(const struct daemon *d, const char *method, const char *path, const char *authorization,
                  const char *content_type, const char *body, size_t len, struct http_resp *ret);
void http_resp_done(struct http_resp *r);

#endif
