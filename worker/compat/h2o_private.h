/* h2o_private.h - the two structures of libh2o 2.2.5 that a streamed body (stream.c)
 * reaches into, as lib/http1.c and lib/common/socket/evloop.c.h define them. Debian
 * ships neither in a header.
 *
 * stream.c checks each against the running library before it relies on it (the
 * socket's descriptor, the request's place in its connection, the announced length)
 * and leaves a body to libh2o when anything does not match. */
#ifndef RZ_H2O_PRIVATE_H
#define RZ_H2O_PRIVATE_H

#include <h2o.h>
#include <h2o/http1.h>

/* The head of an event-loop socket: the descriptor and the flags, of which
 * H2O_SOCKET_FLAG_DONT_READ makes the loop call the read callback without reading. */
typedef struct {
    h2o_socket_t super;
    int fd;
    int flags;
} h2o_private_evsock;

struct h2o_private_http1_conn;

/* An HTTP/1 body of a known length: libh2o calls handle_incoming_entity after every
 * read until input holds the whole request (_reqsize bytes: head, then body). */
typedef struct {
    void (*handle_incoming_entity)(struct h2o_private_http1_conn *conn);
    size_t content_length;
} h2o_private_length_reader;

typedef struct h2o_private_http1_conn {
    h2o_conn_t super;
    h2o_socket_t *sock;
    h2o_linklist_t _conns;
    h2o_timeout_t *_timeout;
    h2o_timeout_entry_t _timeout_entry;
    uint64_t _req_index;
    size_t _prevreqlen;
    size_t _reqsize;
    h2o_private_length_reader *_req_entity_reader;
    struct {
        h2o_ostream_t super;
        int sent_headers;
        struct {
            void *buf;
            h2o_ostream_pull_cb cb;
        } pull;
    } _ostr_final;
    struct {
        void *data;
        h2o_http1_upgrade_cb cb;
    } upgrade;
    h2o_req_t req;
} h2o_private_http1_conn;

#endif
