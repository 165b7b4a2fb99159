/* spill.c - spill files held until libh2o lets them go (see spill.h), then closed by
 * a helper thread. It reads libh2o 2.2.5's buffers: an HTTP/1 body lives in its
 * connection socket's input; an HTTP/2 body is a buffer of its own whose bytes start
 * where the buffer's header ends; a buffer spilled to a file has that file's
 * descriptor. */
#include "spill.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "offload.h"
#include "worker.h"

struct spill_ref {
    offload_job job;
    worker *w;
    int fd; /* our duplicate; -1 once closed */
    dev_t dev;
    ino_t ino;
    h2o_timeout_entry_t later;
};

/* Does any mapping of this process still show the file? Runs on a helper thread: it
 * reads /proc. When /proc cannot be read, say yes: the file is only held longer. */
static int still_mapped(dev_t dev, ino_t ino)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (f == NULL)
        return 1;
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        unsigned maj, min;
        unsigned long long inode;
        if (sscanf(line, "%*x-%*x %*s %*x %x:%x %llu", &maj, &min, &inode) == 3)
            found = inode == (unsigned long long)ino && maj == major(dev) && min == minor(dev);
        while (strchr(line, '\n') == NULL && fgets(line, sizeof(line), f) != NULL)
            ; /* the rest of a line longer than the buffer (a long path) */
    }
    fclose(f);
    return found;
}

static void release_work(offload_job *job)
{
    spill_ref *r = (spill_ref *)job;
    if (!still_mapped(r->dev, r->ino)) {
        close(r->fd); /* the last reference: the file's blocks are freed here */
        r->fd = -1;
    }
}

/* Still mapped (a pipelined request reads from the same buffer): look again later. */
static void release_done(offload_job *job)
{
    spill_ref *r = (spill_ref *)job;
    if (r->fd < 0)
        free(r);
    else
        h2o_timeout_link(r->w->ctx.loop, &r->w->retry_timeout, &r->later);
}

static void on_later(h2o_timeout_entry_t *entry)
{
    spill_ref *r = H2O_STRUCT_FROM_MEMBER(spill_ref, later, entry);
    r->job = (offload_job){.work = release_work, .done = release_done};
    offload_submit(r->w->offload, &r->job);
}

/* A reference to buf's file, or NULL when it has none (or we cannot make one). */
static spill_ref *ref_new(worker *w, const h2o_buffer_t *buf, const struct stat *st)
{
    spill_ref *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->fd = fcntl(buf->_fd, F_DUPFD_CLOEXEC, 0);
    if (r->fd < 0) {
        free(r);
        return NULL;
    }
    r->w = w;
    r->dev = st->st_dev;
    r->ino = st->st_ino;
    r->later.cb = on_later;
    return r;
}

/* libh2o frees an HTTP/1 body right after the request's end, in the same call, so the
 * first look is on a later loop turn. */
void spill_let_go(spill_ref *r)
{
    if (r != NULL)
        h2o_timeout_link(r->w->ctx.loop, &r->w->slice_timeout, &r->later);
}

static void on_request_end(void *p)
{
    spill_let_go(*(spill_ref **)p);
}

/* The buffer libh2o keeps req's body in, or NULL. An HTTP/2 stream's body buffer is
 * never consumed from, so its bytes are its own _buf; the buffer is taken for one only
 * if it says so itself (its bytes, its size, the socket buffers' prototype). */
static h2o_buffer_t *body_buffer(h2o_req_t *req)
{
    if (req->version < 0x200) {
        h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
        return sock != NULL ? sock->input : NULL;
    }
    if (req->entity.base == NULL || req->entity.len == 0)
        return NULL;
    h2o_buffer_t *b = (h2o_buffer_t *)(void *)(req->entity.base - offsetof(h2o_buffer_t, _buf));
    return b->bytes == req->entity.base && b->size == req->entity.len && b->_prototype == &h2o_socket_buffer_prototype
               ? b
               : NULL;
}

void spill_hold(h2o_req_t *req)
{
    h2o_buffer_t *buf = body_buffer(req);
    struct stat st;
    if (buf == NULL || buf->_fd < 0 || fstat(buf->_fd, &st) != 0)
        return;
    spill_ref *r = ref_new(worker_of(req), buf, &st);
    if (r != NULL)
        *(spill_ref **)h2o_mem_alloc_shared(&req->pool, sizeof(r), on_request_end) = r;
}

void spill_watch(worker *w, h2o_socket_t *sock, spill_ref **held)
{
    const h2o_buffer_t *buf = sock->input;
    struct stat st;
    int spilled = buf != NULL && buf->_fd >= 0 && fstat(buf->_fd, &st) == 0;
    if (*held != NULL && spilled && (*held)->dev == st.st_dev && (*held)->ino == st.st_ino)
        return;
    spill_let_go(*held); /* a file libh2o has already let go: the input was consumed */
    *held = spilled ? ref_new(w, buf, &st) : NULL;
}
