/* log.c - format JSON log lines and hand each to one atomic write().
 *
 * A child's fd is the write end of the master's log pipe (non-blocking: a line that
 * does not fit is dropped rather than stalling a request). The master writes its own
 * lines into the same pipe. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "jsonw.h"
#include "util.h"

static int log_fd = 2;
static int log_min = LOG_INFO;
static const char *log_process = "raven-zero";
/* log_batch's lines waiting for log_flush: whole lines, one atomic write's worth, of
 * the thread that asked for it (a helper thread's lines go out at once). */
static int batch_on;
static pthread_t batch_thread;
static size_t batch_len;
static char batch_buf[LOG_LINE_MAX];

void log_setup(int fd, int min_level, const char *process)
{
    log_fd = fd;
    log_min = min_level;
    log_process = process;
}

static int log_enabled(int level)
{
    return level >= log_min;
}

const char *log_level_name(int level)
{
    static const char *const names[] = {"debug", "info", "warning", "error"};
    return level >= LOG_DEBUG && level <= LOG_ERROR ? names[level] : "info";
}

/* Format a line into buf (NUL-terminated, newline included); returns its length.
 * members: the event's own fields as JSON members ("k":v,... without braces). */
static size_t log_format(char *buf, size_t cap, int level, const char *event, const char *members, size_t len)
{
    char ts[40];
    jsonw j;
    util_iso_time_ms(util_now_ms(), ts, sizeof(ts));
    jsonw_init(&j, buf, cap - 1, 1);
    jsonw_str(&j, "timestamp", ts);
    jsonw_str(&j, "level", log_level_name(level));
    jsonw_str(&j, "event", event);
    jsonw_str(&j, "process", log_process);
    jsonw_members(&j, members, len);
    jsonw_close(&j);
    long n = jsonw_len(&j);
    if (n < 0) {
        /* Too long for one atomic line: keep what identifies the event. */
        n = snprintf(buf, cap - 1,
                     "{\"timestamp\":\"%s\",\"level\":\"%s\",\"event\":\"%s\",\"process\":\"%s\","
                     "\"truncated\":true}",
                     ts, log_level_name(level), event, log_process);
        if (n > (long)cap - 2)
            n = (long)cap - 2;
    }
    buf[n++] = '\n';
    buf[n] = '\0';
    return (size_t)n;
}

static void write_all(const char *buf, size_t n)
{
    ssize_t r;
    do
        r = write(log_fd, buf, n);
    while (r < 0 && errno == EINTR);
}

void log_batch(int on)
{
    log_flush();
    batch_on = on;
    batch_thread = pthread_self();
}

void log_flush(void)
{
    if (batch_len > 0)
        write_all(batch_buf, batch_len);
    batch_len = 0;
}

static void log_write(int level, const char *event, const char *members, size_t len)
{
    char buf[LOG_LINE_MAX];
    size_t n = log_format(buf, sizeof(buf), level, event, members, len);
    if (!batch_on || !pthread_equal(pthread_self(), batch_thread)) {
        write_all(buf, n);
        return;
    }
    if (batch_len + n > sizeof(batch_buf))
        log_flush();
    memcpy(batch_buf + batch_len, buf, n);
    batch_len += n;
    if (level >= LOG_WARNING)
        log_flush();
}

void log_members(int level, const char *event, const char *members, size_t len)
{
    if (log_enabled(level))
        log_write(level, event, members, len);
}

void log_fields(int level, const char *event, cJSON *fields)
{
    if (!log_enabled(level)) {
        cJSON_Delete(fields);
        return;
    }
    char text[LOG_LINE_MAX];
    size_t len = 0;
    if (fields != NULL && cJSON_PrintPreallocated(fields, text, (int)sizeof(text), 0)) {
        len = strlen(text);
        len = len >= 2 ? len - 2 : 0; /* the members, without the object's braces */
        memmove(text, text + 1, len);
    } else if (fields != NULL) {
        len = sizeof(text); /* too long: the line says it was truncated */
    }
    cJSON_Delete(fields);
    log_write(level, event, text, len);
}

void log_event(int level, const char *event, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    cJSON *f = NULL;
    if (fmt != NULL) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "message", msg);
    }
    log_fields(level, event, f);
}
