/* offload.h - a worker's helper threads, for the work that may block in the kernel:
 * closing and unlinking large files, fsync, renames, the writes of an upload's sealed
 * file. The event loop must never wait for the disk (ext4 frees a large unlinked file's
 * blocks, and sends their discards, inside the close or unlink that drops its last
 * reference: up to a second; a write waits for dirty pages to be written back), so such
 * calls run here and their completions come back to the loop.
 *
 * A job is the caller's struct with an offload_job in it. work runs on a helper thread
 * and may only touch what the job owns (never the loop, a request, the store); done
 * then runs on the loop. Jobs start in the order they were submitted, OFFLOAD_THREADS
 * at a time, so a long one does not hold up the next. */
#ifndef RZ_OFFLOAD_H
#define RZ_OFFLOAD_H

#include <h2o.h>

#define OFFLOAD_THREADS 2

typedef struct offload offload;
typedef struct offload_job offload_job;

struct offload_job {
    void (*work)(offload_job *job); /* on a helper thread */
    void (*done)(offload_job *job); /* on the loop, once work has returned; may free the
                                     * job. NULL: the job is forgotten when work returns,
                                     * so work may free it. */
    offload_job *next;              /* the queue's */
};

/* NULL, with errno, when the threads or the loop's wake-up cannot be made. */
offload *offload_new(h2o_loop_t *loop);
/* Waits for every job submitted to have worked; completions not yet run never run. */
void offload_free(offload *o);

/* Queue job; its done never runs before this returns. */
void offload_submit(offload *o, offload_job *job);

/* Close fd on a helper thread, after unlinking path (NULL: none) there: for a file of
 * ours that may be large, whichever of the two drops its last reference is the slow
 * one. Nobody waits for it; when memory is short it is done here and now. */
void offload_close(offload *o, int fd, const char *path);

#endif
