/* offload.c - a worker's helper threads (see offload.h): one FIFO of jobs taken by
 * OFFLOAD_THREADS threads, and a list of finished ones the loop collects when an
 * eventfd it watches like any socket says there are some. */
#include "offload.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct offload {
    h2o_loop_t *loop;
    int efd;
    h2o_socket_t *wake; /* efd, for the loop */
    pthread_mutex_t lock;
    pthread_cond_t queued;
    offload_job *todo, **todo_tail;
    offload_job *done, **done_tail;
    int stopping;
    size_t nthreads;
    pthread_t threads[OFFLOAD_THREADS];
};

/* ---- the helper threads ---- */

static offload_job *take(offload *o)
{
    pthread_mutex_lock(&o->lock);
    while (o->todo == NULL && !o->stopping)
        pthread_cond_wait(&o->queued, &o->lock);
    offload_job *job = o->todo;
    if (job != NULL && (o->todo = job->next) == NULL)
        o->todo_tail = &o->todo;
    pthread_mutex_unlock(&o->lock);
    return job;
}

/* The loop is woken when the list of finished jobs stops being empty; it reads the
 * eventfd before it takes the list, so no finished job can be left unseen. */
static void finished(offload *o, offload_job *job)
{
    pthread_mutex_lock(&o->lock);
    int was_empty = o->done == NULL;
    job->next = NULL;
    *o->done_tail = job;
    o->done_tail = &job->next;
    pthread_mutex_unlock(&o->lock);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t n = write(o->efd, &one, sizeof(one)); /* fails only on a full counter: a wake-up is due anyway */
        (void)n;
    }
}

static void *helper(void *p)
{
    offload *o = p;
    offload_job *job;
    while ((job = take(o)) != NULL) {
        void (*done)(offload_job *) = job->done;
        job->work(job);
        if (done != NULL)
            finished(o, job);
    }
    return NULL;
}

/* ---- the loop's side ---- */

static void run_finished(offload *o)
{
    pthread_mutex_lock(&o->lock);
    offload_job *job = o->done;
    o->done = NULL;
    o->done_tail = &o->done;
    pthread_mutex_unlock(&o->lock);
    while (job != NULL) {
        offload_job *next = job->next;
        job->done(job);
        job = next;
    }
}

static void on_wake(h2o_socket_t *sock, const char *err)
{
    offload *o = sock->data;
    uint64_t n;
    (void)err;
    ssize_t r = read(o->efd, &n, sizeof(n)); /* EAGAIN: already read with an earlier wake-up */
    (void)r;
    run_finished(o);
}

/* Helper threads take no signal: SIGQUIT and SIGTERM must reach the loop's thread and
 * interrupt its wait. They inherit the mask in force when they are created. */
static int start_threads(offload *o)
{
    sigset_t all, old;
    sigfillset(&all);
    if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0)
        return -1;
    int r = 0;
    while (o->nthreads < OFFLOAD_THREADS && r == 0)
        if ((r = pthread_create(&o->threads[o->nthreads], NULL, helper, o)) == 0)
            o->nthreads++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        errno = r;
    return r == 0 ? 0 : -1;
}

offload *offload_new(h2o_loop_t *loop)
{
    offload *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    o->loop = loop;
    o->todo_tail = &o->todo;
    o->done_tail = &o->done;
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->queued, NULL);
    o->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (o->efd < 0 || start_threads(o) != 0) {
        int e = errno;
        offload_free(o);
        errno = e;
        return NULL;
    }
    o->wake = h2o_evloop_socket_create(loop, o->efd, H2O_SOCKET_FLAG_DONT_READ);
    o->wake->data = o;
    h2o_socket_read_start(o->wake, on_wake);
    return o;
}

void offload_free(offload *o)
{
    if (o == NULL)
        return;
    pthread_mutex_lock(&o->lock);
    o->stopping = 1;
    pthread_cond_broadcast(&o->queued);
    pthread_mutex_unlock(&o->lock);
    for (size_t i = 0; i < o->nthreads; i++)
        pthread_join(o->threads[i], NULL);
    if (o->wake != NULL)
        h2o_socket_close(o->wake); /* closes efd */
    else if (o->efd >= 0)
        close(o->efd);
    pthread_cond_destroy(&o->queued);
    pthread_mutex_destroy(&o->lock);
    free(o);
}

void offload_submit(offload *o, offload_job *job)
{
    pthread_mutex_lock(&o->lock);
    job->next = NULL;
    *o->todo_tail = job;
    o->todo_tail = &job->next;
    pthread_cond_signal(&o->queued);
    pthread_mutex_unlock(&o->lock);
}

/* ---- closing ---- */

typedef struct {
    offload_job job;
    int fd;
    char path[]; /* empty: nothing to unlink */
} close_job;

static void close_work(offload_job *job)
{
    close_job *c = (close_job *)job;
    if (c->path[0] != '\0')
        unlink(c->path);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

void offload_close(offload *o, int fd, const char *path)
{
    size_t len = path != NULL ? strlen(path) : 0;
    close_job *c = malloc(sizeof(*c) + len + 1);
    if (c == NULL) {
        if (path != NULL)
            unlink(path);
        if (fd >= 0)
            close(fd);
        return;
    }
    c->job = (offload_job){.work = close_work};
    c->fd = fd;
    memcpy(c->path, path != NULL ? path : "", len + 1);
    offload_submit(o, &c->job);
}
