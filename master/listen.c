/* listen.c - resolve LISTEN entries and bind non-blocking listening sockets. */
#include "listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BACKLOG 4096

static int split_host_port(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':' || (size_t)(rb - s - 1) >= hcap)
            return -1;
        snprintf(host, hcap, "%.*s", (int)(rb - s - 1), s + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || (size_t)(colon - s) >= hcap)
            return -1;
        snprintf(host, hcap, "%.*s", (int)(colon - s), s);
    }
    snprintf(port, pcap, "%s", colon + 1);
    return 0;
}

static int open_one(const char *setting, const char *addr, char *err, size_t errlen)
{
    char host[256], port[16];
    struct addrinfo hints, *res = NULL;
    if (split_host_port(addr, host, sizeof(host), port, sizeof(port)) != 0) {
        snprintf(err, errlen, "%s=%s: expected host:port", setting, addr);
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "%s=%s: %s", setting, addr, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        if (res->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, BACKLOG) != 0) {
        snprintf(err, errlen, "%s=%s: %s", setting, addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int listen_open(const char *setting, const cfg_str_list *addrs, int *fds, size_t cap, char *err, size_t errlen)
{
    size_t n = 0;
    for (size_t i = 0; i < addrs->n && n < cap; i++) {
        int fd = open_one(setting, addrs->items[i], err, errlen);
        if (fd < 0) {
            listen_close(fds, &n);
            return -1;
        }
        fds[n++] = fd;
    }
    return (int)n;
}

void listen_close(int *fds, size_t *n)
{
    while (*n > 0)
        close(fds[--*n]);
}
