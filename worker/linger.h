/* linger.h - client sockets kept open after their connection ended, until the client
 * has acknowledged every byte the kernel still had to send it.
 *
 * A response is "sent" once its last bytes are in the kernel's send queue; a process
 * that exits then leaves them to the kernel, which is fine until the network goes
 * with the process (a container's namespace is deleted the moment its main process
 * exits, and the bytes are lost without a FIN). So a connection whose queue is not
 * empty is held here: its write side shut (the FIN follows the data) and the socket
 * kept until the queue is empty (SIOCOUTQ: the peer acknowledged everything, FIN
 * included), the peer reset it, or a deadline passed. Knows nothing of HTTP. */
#ifndef RZ_LINGER_H
#define RZ_LINGER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int fd;
    uint64_t deadline_ms;
} linger_sock;

typedef struct {
    linger_sock *socks;
    size_t n, cap, max;
} linger_set;

/* At most max sockets are held; beyond that one is closed at once (the kernel then
 * sends what it can, as without lingering). */
void linger_init(linger_set *l, size_t max);

/* Bytes sent on a TCP socket that its peer has not acknowledged yet; 0 when there
 * are none or the connection is gone. */
size_t linger_unacked(int fd);

/* Take fd (the caller never touches it again): shut its write side and hold it until
 * it is done or deadline_ms (monotonic) passes. */
void linger_add(linger_set *l, int fd, uint64_t deadline_ms);

/* Close the sockets that are done or past their deadline; how many are still held. */
size_t linger_poll(linger_set *l, uint64_t now_ms);

/* Bring every deadline forward to deadline_ms at the latest. */
void linger_limit(linger_set *l, uint64_t deadline_ms);

/* Close every socket still held and free the set. */
void linger_free(linger_set *l);

#endif
