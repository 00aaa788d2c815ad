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

/* "YYYY-MM-DDTHH:MM:SS" of sec into out (20 bytes), from the calling
 * thread's copy when the second has not changed: formatting the calendar
 * time is most of a short line's cost, and a busy server logs thousands
 * of lines a second. */
static void stamp_seconds(time_t sec, char *out) {
    static __thread time_t cached_sec = -1;
    static __thread char cached[24];
    if (sec != cached_sec) {
        struct tm tm;
        gmtime_r(&sec, &tm);
        if (strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm) != 19)
            memcpy(cached, "0000-00-00T00:00:00", 20);
        cached_sec = sec;
    }
    memcpy(out, cached, 20);
}

void log_msg(enum log_level lvl, const char *event, ...) {
    if (!log_enabled(lvl))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char stamp[32];
    stamp_seconds(ts.tv_sec, stamp);
    long ms = ts.tv_nsec / 1000000;
    stamp[19] = '.';
    stamp[20] = (char)('0' + ms / 100);
    stamp[21] = (char)('0' + ms / 10 % 10);
    stamp[22] = (char)('0' + ms % 10);
    memcpy(stamp + 23, "Z", 2);

    struct buf b;
    buf_init(&b, 16384);
    buf_puts(&b, "{\"ts\":\"");
    buf_append(&b, stamp, 24);
    buf_puts(&b, "\",\"level\":\"");
    buf_puts(&b, level_names[lvl]);
    buf_puts(&b, "\",\"event\":");
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
            buf_put_int(&b, va_arg(ap, long long));
        } else {
            char num[48];
            int n = snprintf(num, sizeof num, "%.3f", va_arg(ap, double));
            buf_append(&b, num, n > 0 && (size_t)n < sizeof num ? (size_t)n : 0);
        }
    }
    va_end(ap);
    if (buf_puts(&b, "}\n") == ERR_OK) {
        ssize_t w = write(STDERR_FILENO, b.data, b.len);
        (void)w;
    }
    buf_done(&b);
}
