/* log.c - format JSON log lines and hand each to one atomic write().
 *
 * A child's fd is the write end of the master's log pipe (non-blocking: a line that
 * does not fit is dropped rather than stalling a request). The master writes its own
 * lines into the same pipe. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static int log_fd = 2;
static int log_min = LOG_INFO;
static const char *log_process = "raven-zero";

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

/* Format a line into buf (NUL-terminated, newline included); returns its length. */
static size_t log_format(char *buf, size_t cap, int level, const char *event, cJSON *fields)
{
    char ts[40];
    util_iso_time_ms(util_now_ms(), ts, sizeof(ts));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "timestamp", ts);
    cJSON_AddStringToObject(o, "level", log_level_name(level));
    cJSON_AddStringToObject(o, "event", event);
    cJSON_AddStringToObject(o, "process", log_process);
    if (fields != NULL) {
        cJSON *f;
        while ((f = fields->child) != NULL)
            cJSON_AddItemToObject(o, f->string, cJSON_DetachItemViaPointer(fields, f));
    }
    size_t len = 0;
    if (!cJSON_PrintPreallocated(o, buf, (int)cap - 1, 0)) {
        /* Too long for one atomic line: keep what identifies the event. */
        cJSON_Delete(o);
        len = (size_t)snprintf(buf, cap - 1,
                               "{\"timestamp\":\"%s\",\"level\":\"%s\",\"event\":\"%s\",\"process\":\"%s\","
                               "\"truncated\":true}",
                               ts, log_level_name(level), event, log_process);
        if (len > cap - 2)
            len = cap - 2;
    } else {
        cJSON_Delete(o);
        len = strlen(buf);
    }
    buf[len++] = '\n';
    buf[len] = '\0';
    return len;
}

void log_fields(int level, const char *event, cJSON *fields)
{
    if (!log_enabled(level)) {
        cJSON_Delete(fields);
        return;
    }
    char buf[LOG_LINE_MAX];
    size_t len = log_format(buf, sizeof(buf), level, event, fields);
    cJSON_Delete(fields);
    ssize_t r;
    do
        r = write(log_fd, buf, len);
    while (r < 0 && errno == EINTR);
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
