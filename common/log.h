/* log.h - JSON-lines logging.
 *
 * Children (workers, shredder) format a whole line (<= LOG_LINE_MAX bytes, so one
 * write is atomic) and write it to the pipe the master reads; the master is the only
 * writer of LOG_PATH (see master/logfile.c), and logs through the same pipe itself so
 * that its lines keep their order with everyone else's. Before the pipe exists lines
 * go to stderr. */
#ifndef RZ_LOG_H
#define RZ_LOG_H

#include <cjson/cJSON.h>
#include <stddef.h>

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARNING = 2, LOG_ERROR = 3 };
#define LOG_LINE_MAX 4096

/* Where lines go (fd), the lowest level written, and this process's name
 * ("master", "worker", "shredder"), added to every line as "process". */
void log_setup(int fd, int min_level, const char *process);
/* One event with a human message (may be NULL). */
void log_event(int level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* One event with extra fields; takes ownership of fields (an object, or NULL). */
void log_fields(int level, const char *event, cJSON *fields);
/* The same with the fields already JSON members ("k":v,... without braces; jsonw.h
 * writes them), for the lines of every request. */
void log_members(int level, const char *event, const char *members, size_t len);
const char *log_level_name(int level);

/* With on, this process's lines wait, in order, until log_flush() or until the next
 * one would not fit in one atomic write with them: a worker logs every request and
 * flushes once a loop turn, one write for the turn's lines instead of one each. A
 * warning or an error flushes at once, with what waited before it. Only the calling
 * thread's lines wait; other threads' are written at once. */
void log_batch(int on);
void log_flush(void);

#endif
