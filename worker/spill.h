/* spill.h - request bodies libh2o spilled to a file: the file is erased and let go off
 * the loop.
 *
 * libh2o keeps a body above BODY_MEMORY_MAX in an unlinked file it maps, and closes and
 * unmaps that file on the loop when it is done with it; whichever of the two drops the
 * file's last reference frees its blocks (ext4 mounted with discard: 0.3 s in munmap for
 * a 1 GiB body). We keep a reference of our own, a duplicate of libh2o's descriptor,
 * so libh2o's close and unmap free nothing; once libh2o has unmapped the file, a helper
 * thread overwrites the file with zeros (and makes the blocks already on disk hold
 * them), then closes the duplicate, and the freeing happens there. The loop only drops
 * its mapping: a body of up to MAX_FILE_SIZE is never overwritten on it.
 *
 * A file is held by the request whose whole body it holds (spill_hold) and by the
 * connection whose input it is, while the body arrives (spill_watch): a body cut off
 * before it was complete is let go off the loop too. */
#ifndef RZ_SPILL_H
#define RZ_SPILL_H

#include <h2o.h>

struct worker;
typedef struct spill_ref spill_ref;

/* A reference to buf's spill file (NULL: it has none, or none could be made), for
 * spill_let_go once the buffer is done with. */
spill_ref *spill_take(struct worker *w, const h2o_buffer_t *buf);
/* Erase buf's spill file, if it has one, once libh2o has let it go. */
void spill_erase(struct worker *w, const h2o_buffer_t *buf);

/* If req's body lives in a spill file, hold the file until libh2o has let it go. */
void spill_hold(h2o_req_t *req);

/* Once a tick for each connection: *held follows the spill file its input is in
 * (NULL: none). */
void spill_watch(struct worker *w, h2o_socket_t *sock, spill_ref **held);
/* The buffer is done with (a connection closed: libh2o has let its input go): erase
 * the file and let it go once nothing maps it any more. NULL: nothing. */
void spill_let_go(spill_ref *held);

#endif
