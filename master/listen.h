/* listen.h - the listening sockets the master opens once and every worker shares:
 * LISTEN's, and METRICS_LISTEN's for /metrics alone. */
#ifndef RZ_LISTEN_H
#define RZ_LISTEN_H

#include <stddef.h>

#include "cfg.h"

/* Open one socket per entry of the list setting named setting (IPv6 sockets accept
 * only IPv6, so "0.0.0.0:8000" and "[::]:8000" can both be given). Returns the count,
 * or -1 with err naming the setting. */
int listen_open(const char *setting, const cfg_str_list *addrs, int *fds, size_t cap, char *err, size_t errlen);
/* Close n sockets; n becomes 0. */
void listen_close(int *fds, size_t *n);

#endif
