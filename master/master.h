/* master.h - the supervising process: children table, signals, log pipe. */
#ifndef RZ_MASTER_H
#define RZ_MASTER_H

#include "cfg.h"

typedef struct {
    const char *cfg_file; /* -c, or NULL */
    char **overrides;     /* -s NAME=VALUE */
    int noverrides;
} master_args;

/* Build the configuration from every layer; 0, or -1 with err. */
int master_load_cfg(const master_args *a, cfg *c, char *err, size_t errlen);
/* Run until stopped; returns the exit code. Takes ownership of c. */
int master_run(const master_args *a, cfg *c);

#endif
