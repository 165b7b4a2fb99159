/* notify.c - the sd_notify protocol, without libsystemd: when NOTIFY_SOCKET names a
 * unix datagram socket (a path, or "@name" for an abstract one), each state change is
 * one datagram of NAME=VALUE lines sent to it. Only the master speaks it (systemd
 * accepts only the main process by default); a failure to send is never fatal. */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int notify_send(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    if (name == NULL || name[0] == '\0')
        return 0;
    size_t len = strlen(name);
    if ((name[0] != '/' && name[0] != '@') || len >= sizeof(sa.sun_path)) {
        errno = EAFNOSUPPORT; /* e.g. vsock: addresses, which this server has no use for */
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace: the length, not a NUL, ends the name */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    size_t n = strlen(state);
    ssize_t sent = sendto(fd, state, n, MSG_NOSIGNAL, (struct sockaddr *)&sa,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    int saved = errno;
    close(fd);
    errno = saved;
    return sent == (ssize_t)n ? 0 : -1;
}

int notify_ready(unsigned workers)
{
    char state[96];
    snprintf(state, sizeof(state), "READY=1\nSTATUS=serving with %u workers", workers);
    return notify_send(state);
}

int notify_reloading(void)
{
    char state[96];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
    return notify_send(state);
}

int notify_stopping(void)
{
    return notify_send("STOPPING=1\nSTATUS=stopping");
}
