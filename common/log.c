/* log.c - JSON-lines logger (see log.h).  Each line is formatted into a
 * local buffer and written with one write(2), so lines from different
 * threads never interleave. */
#include "log.h"
#include "buf.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *name) {
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void log_set_level(enum log_level lvl) { atomic_store(&min_level, lvl); }
int log_enabled(enum log_level lvl) { return (int)lvl >= atomic_load(&min_level); }

void log_msg(enum log_level lvl, const char *event, ...) {
    if (!log_enabled(lvl))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40];
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);

    struct buf b;
    buf_init(&b, 16384);
    buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":", stamp, level_names[lvl]);
    buf_json_str(&b, event, strlen(event));
    va_list ap;
    va_start(ap, event);
    for (int kind; (kind = va_arg(ap, int)) != 0;) {
        const char *key = va_arg(ap, const char *);
        buf_puts(&b, ",");
        buf_json_str(&b, key, strlen(key));
        buf_puts(&b, ":");
        if (kind == 's') {
            const char *v = va_arg(ap, const char *);
            if (v)
                buf_json_str(&b, v, strlen(v));
            else
                buf_puts(&b, "null");
        } else if (kind == 'i') {
            buf_printf(&b, "%lld", va_arg(ap, long long));
        } else {
            buf_printf(&b, "%.3f", va_arg(ap, double));
        }
    }
    va_end(ap);
    if (buf_puts(&b, "}\n") == ERR_OK) {
        ssize_t w = write(STDERR_FILENO, b.data, b.len);
        (void)w;
    }
    buf_done(&b);
}
