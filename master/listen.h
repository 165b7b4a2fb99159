/* listen.h - the listening sockets the master opens once and every worker shares. */
#ifndef RZ_LISTEN_H
#define RZ_LISTEN_H

#include <stddef.h>

#include "cfg.h"

/* Open one socket per LISTEN entry (IPv6 sockets accept only IPv6, so "0.0.0.0:8000"
 * and "[::]:8000" can both be given). Returns the count, or -1 with err. */
int listen_open(const cfg_str_list *addrs, int *fds, size_t cap, char *err, size_t errlen);

#endif
