/* logfile.h - the master's log file: the only writer of LOG_PATH. Appends whole lines,
 * rotates at LOG_MAX_BYTES keeping LOG_BACKUPS (name.1 newest), mirrors to stdout. */
#ifndef RZ_LOGFILE_H
#define RZ_LOGFILE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *path;
    uint64_t max_bytes;
    unsigned backups;
    int to_stdout;
    int fd;
    uint64_t size;
} logfile;

/* Open (creating the directory); 0 or -1 with err naming LOG_PATH. */
int logfile_open(logfile *lf, const char *path, uint64_t max_bytes, unsigned backups, int to_stdout, char *err,
                 size_t errlen);
/* Close and open again at the same path (after an external rotation, SIGUSR1). */
int logfile_reopen(logfile *lf);
/* Append bytes made of whole lines; rotates first when they would pass the limit. */
void logfile_write(logfile *lf, const char *buf, size_t len);
void logfile_close(logfile *lf);

#endif
