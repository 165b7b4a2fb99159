/* spill.c - spill files held until libh2o lets them go (see spill.h), then erased and
 * closed by a helper thread. It reads libh2o 2.2.5's buffers: an HTTP/1 body lives in
 * its connection socket's input; an HTTP/2 body is a buffer of its own whose bytes start
 * where the buffer's header ends; a buffer spilled to a file has that file's
 * descriptor. */
#include "spill.h"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "offload.h"
#include "worker.h"

#define ZERO_CHUNK 65536
#define EXTENTS 32 /* asked of FIEMAP at a time */
#define MAPS_BUF 65536

struct spill_ref {
    offload_job job;
    worker *w;
    int fd; /* our duplicate */
    dev_t dev;
    ino_t ino;
    h2o_timeout_entry_t later;
};

/* Does any mapping of this process still show the file? Only the loop maps and unmaps
 * spill files, and libh2o maps each of its spill buffers for as long as the buffer
 * lives, so asked on the loop, between two turns, no is final: the file will never be
 * read or written again. When /proc cannot be read, say yes: the file is only held
 * longer. */
static int still_mapped(dev_t dev, ino_t ino)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (f == NULL)
        return 1;
    /* stdio reads /proc in its block size, 1 KiB: some forty reads a look on a worker
     * holding a few spill maps, every one a system call on the loop. */
    char buf[MAPS_BUF];
    setvbuf(f, buf, _IOFBF, sizeof(buf));
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

/* Wait until the parts of [off, end) that the file system has already given blocks
 * (FIEMAP: extents neither delayed nor unwritten) are written back, so that those
 * blocks hold what the pages now hold. The other pages never reached the disk and go
 * with the file unwritten. A file system that cannot say (a memory one, where this
 * costs nothing) gets all of it written back. */
static void write_back(int fd, off_t off, off_t end)
{
    enum { FLAGS = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER };
    /* Room for EXTENTS entries of the map's flexible array. */
    union {
        struct fiemap map;
        unsigned char room[sizeof(struct fiemap) + EXTENTS * sizeof(struct fiemap_extent)];
    } q;
    while (off < end) {
        memset(&q, 0, sizeof(q));
        q.map.fm_start = (uint64_t)off;
        q.map.fm_length = (uint64_t)(end - off);
        q.map.fm_extent_count = EXTENTS;
        if (ioctl(fd, FS_IOC_FIEMAP, &q.map) != 0) {
            (void)sync_file_range(fd, off, end - off, FLAGS);
            return;
        }
        if (q.map.fm_mapped_extents == 0)
            return;
        for (uint32_t i = 0; i < q.map.fm_mapped_extents; i++) {
            const struct fiemap_extent *e = &q.map.fm_extents[i];
            off_t from = (off_t)e->fe_logical > off ? (off_t)e->fe_logical : off;
            off_t to = (off_t)(e->fe_logical + e->fe_length) < end ? (off_t)(e->fe_logical + e->fe_length) : end;
            if (!(e->fe_flags & (FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_UNWRITTEN)) && to > from)
                (void)sync_file_range(fd, from, to - from, FLAGS);
            if (e->fe_flags & FIEMAP_EXTENT_LAST)
                return;
            off = (off_t)(e->fe_logical + e->fe_length);
        }
    }
}

/* Overwrite every byte the file holds with zeros (holes hold nothing), then make the
 * blocks already on disk hold the zeros too. Freeing the blocks instead would leave
 * the plaintext in them. Once erased, the blocks are punched out, so that another
 * reference to the same file finds nothing left to write. */
static void erase(int fd)
{
    static const char zeros[ZERO_CHUNK];
    struct stat st;
    if (fstat(fd, &st) != 0)
        return;
    off_t off = 0;
    while (off < st.st_size) {
        off_t data = lseek(fd, off, SEEK_DATA);
        if (data < 0)
            break; /* ENXIO: no data past off */
        off_t hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0)
            hole = st.st_size;
        for (off = data; off < hole;) {
            ssize_t n = pwrite(fd, zeros, (size_t)(hole - off < ZERO_CHUNK ? hole - off : ZERO_CHUNK), off);
            if (n <= 0)
                return;
            off += n;
        }
    }
    write_back(fd, 0, st.st_size);
    (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, st.st_size);
}

/* The last reference: the file's blocks are freed in the close. */
static void release_work(offload_job *job)
{
    spill_ref *r = (spill_ref *)job;
    erase(r->fd);
    close(r->fd);
    free(r);
}

static void on_later(h2o_timeout_entry_t *entry)
{
    spill_ref *r = H2O_STRUCT_FROM_MEMBER(spill_ref, later, entry);
    if (still_mapped(r->dev, r->ino)) { /* a pipelined request reads from the same buffer */
        h2o_timeout_link(r->w->ctx.loop, &r->w->retry_timeout, &r->later);
        return;
    }
    r->job = (offload_job){.work = release_work};
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

spill_ref *spill_take(worker *w, const h2o_buffer_t *buf)
{
    struct stat st;
    if (buf == NULL || buf->_fd < 0 || fstat(buf->_fd, &st) != 0)
        return NULL;
    return ref_new(w, buf, &st);
}

void spill_erase(worker *w, const h2o_buffer_t *buf)
{
    spill_let_go(spill_take(w, buf));
}

void spill_hold(h2o_req_t *req)
{
    spill_ref *r = spill_take(worker_of(req), body_buffer(req));
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
