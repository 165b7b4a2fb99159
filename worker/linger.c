/* linger.c - holds client sockets until the kernel has delivered what they still had
 * to send (see linger.h); owns the held descriptors. */
#include "linger.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

void linger_init(linger_set *l, size_t max)
{
    l->socks = NULL;
    l->n = l->cap = 0;
    l->max = max;
}

size_t linger_unacked(int fd)
{
    int queued = 0;
    if (ioctl(fd, SIOCOUTQ, &queued) != 0 || queued < 0)
        return 0;
    return (size_t)queued;
}

/* Delivered (the queue is empty, FIN included) or reset. What the client still sends
 * is read and dropped first: closing a socket with unread input makes the kernel
 * answer with a reset, which may destroy what the client has not read yet. */
static int sock_done(int fd)
{
    char sink[4096];
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
        ;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || ti.tcpi_state == TCP_CLOSE)
        return 1;
    return linger_unacked(fd) == 0;
}

void linger_add(linger_set *l, int fd, uint64_t deadline_ms)
{
    shutdown(fd, SHUT_WR);
    if (l->n == l->cap && l->n < l->max) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        linger_sock *grown = realloc(l->socks, (cap < l->max ? cap : l->max) * sizeof(*grown));
        if (grown != NULL) {
            l->socks = grown;
            l->cap = cap < l->max ? cap : l->max;
        }
    }
    if (l->n == l->cap) {
        close(fd);
        return;
    }
    l->socks[l->n].fd = fd;
    l->socks[l->n].deadline_ms = deadline_ms;
    l->n++;
}

size_t linger_poll(linger_set *l, uint64_t now_ms)
{
    for (size_t i = 0; i < l->n;) {
        if (now_ms >= l->socks[i].deadline_ms || sock_done(l->socks[i].fd)) {
            close(l->socks[i].fd);
            l->socks[i] = l->socks[--l->n];
        } else {
            i++;
        }
    }
    return l->n;
}

void linger_limit(linger_set *l, uint64_t deadline_ms)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->socks[i].deadline_ms > deadline_ms)
            l->socks[i].deadline_ms = deadline_ms;
}

void linger_free(linger_set *l)
{
    for (size_t i = 0; i < l->n; i++)
        close(l->socks[i].fd);
    free(l->socks);
    linger_init(l, l->max);
}
