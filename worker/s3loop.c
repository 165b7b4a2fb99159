/* s3loop.c - libcurl's multi interface on libh2o's evloop. Each socket libcurl watches
 * gets an h2o socket on a dup of its descriptor with DONT_READ (h2o only reports
 * readiness; libcurl reads), readiness goes back through curl_multi_socket_action, and
 * libcurl's one timer is an h2o timeout of the nearest shorter step, re-armed until
 * the deadline is reached. */
#include "s3loop.h"

#include <stdlib.h>
#include <unistd.h>

#include "util.h"

/* h2o 2.2.5 timeouts have a fixed length each: libcurl's deadline is reached in steps. */
static const uint64_t steps_ms[] = {1, 10, 100, 1000};
#define NSTEPS (sizeof(steps_ms) / sizeof(steps_ms[0]))

typedef struct {
    s3loop_done done;
    void *data;
} job;

typedef struct watch {
    struct s3loop *l;
    curl_socket_t fd; /* libcurl's */
    h2o_socket_t *sock; /* on our dup of it */
    int want;         /* CURL_POLL_* */
    int write_armed;  /* h2o's write notice is one-shot */
    int busy;         /* inside its callback: a removal only marks it */
    int gone;
} watch;

struct s3loop {
    h2o_loop_t *loop;
    CURLM *multi;
    h2o_timeout_t step[NSTEPS];
    h2o_timeout_entry_t timer;
    uint64_t deadline_ms; /* 0: no timer */
};

static void finished(s3loop *l)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(l->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode rc = m->data.result;
        job *j = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&j);
        curl_multi_remove_handle(l->multi, e);
        curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
        if (j != NULL) {
            s3loop_done done = j->done;
            void *data = j->data;
            free(j);
            done(e, rc, data);
        }
    }
}

static void action(s3loop *l, curl_socket_t fd, int ev)
{
    int running;
    curl_multi_socket_action(l->multi, fd, ev, &running);
    finished(l);
}

static void arm_timer(s3loop *l)
{
    if (h2o_timeout_is_linked(&l->timer))
        h2o_timeout_unlink(&l->timer);
    if (l->deadline_ms == 0)
        return;
    uint64_t now = util_mono_ms(), left = l->deadline_ms > now ? l->deadline_ms - now : 0;
    size_t i = 0;
    while (i + 1 < NSTEPS && steps_ms[i + 1] <= left)
        i++;
    h2o_timeout_link(l->loop, &l->step[i], &l->timer);
}

static void on_timer(h2o_timeout_entry_t *entry)
{
    s3loop *l = H2O_STRUCT_FROM_MEMBER(s3loop, timer, entry);
    if (util_mono_ms() < l->deadline_ms) {
        arm_timer(l);
        return;
    }
    l->deadline_ms = 0;
    action(l, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
    s3loop *l = arg;
    (void)multi;
    l->deadline_ms = timeout_ms < 0 ? 0 : util_mono_ms() + (uint64_t)timeout_ms;
    if (timeout_ms >= 0 && l->deadline_ms == 0)
        l->deadline_ms = 1;
    arm_timer(l);
    return 0;
}

static void watch_close(watch *w)
{
    if (w->sock != NULL) {
        w->sock->data = NULL;
        h2o_socket_read_stop(w->sock);
        h2o_socket_close(w->sock);
        w->sock = NULL;
    }
    free(w);
}

static void on_writable(h2o_socket_t *sock, const char *err);

/* After a callback: free a watch libcurl let go of, or keep waiting to write. */
static void watch_after(watch *w)
{
    w->busy = 0;
    if (w->gone)
        watch_close(w);
    else if ((w->want & CURL_POLL_OUT) && !w->write_armed) {
        w->write_armed = 1;
        h2o_socket_notify_write(w->sock, on_writable);
    }
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    watch *w = sock->data;
    if (w == NULL)
        return;
    w->busy = 1;
    action(w->l, w->fd, err != NULL ? CURL_CSELECT_ERR : CURL_CSELECT_IN);
    watch_after(w);
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    watch *w = sock->data;
    if (w == NULL)
        return;
    w->write_armed = 0;
    if (!(w->want & CURL_POLL_OUT) && err == NULL)
        return;
    w->busy = 1;
    action(w->l, w->fd, err != NULL ? CURL_CSELECT_ERR : CURL_CSELECT_OUT);
    watch_after(w);
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *arg, void *socketp)
{
    s3loop *l = arg;
    watch *w = socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (w != NULL) {
            curl_multi_assign(l->multi, fd, NULL);
            w->want = 0;
            if (w->busy)
                w->gone = 1;
            else
                watch_close(w);
        }
        return 0;
    }
    if (w == NULL) {
        int dup_fd = dup(fd);
        w = dup_fd >= 0 ? calloc(1, sizeof(*w)) : NULL;
        if (w == NULL) {
            if (dup_fd >= 0)
                close(dup_fd);
            return -1;
        }
        w->l = l;
        w->fd = fd;
        w->sock = h2o_evloop_socket_create(l->loop, dup_fd, H2O_SOCKET_FLAG_DONT_READ);
        w->sock->data = w;
        curl_multi_assign(l->multi, fd, w);
    }
    w->want = what;
    if (what & CURL_POLL_IN)
        h2o_socket_read_start(w->sock, on_readable);
    else
        h2o_socket_read_stop(w->sock);
    if ((what & CURL_POLL_OUT) && !w->write_armed && !w->busy) {
        w->write_armed = 1;
        h2o_socket_notify_write(w->sock, on_writable);
    }
    return 0;
}

s3loop *s3loop_new(h2o_loop_t *loop)
{
    s3loop *l = calloc(1, sizeof(*l));
    if (l == NULL || (l->multi = curl_multi_init()) == NULL) {
        free(l);
        return NULL;
    }
    l->loop = loop;
    for (size_t i = 0; i < NSTEPS; i++)
        h2o_timeout_init(loop, &l->step[i], steps_ms[i]);
    l->timer.cb = on_timer;
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    return l;
}

void s3loop_free(s3loop *l)
{
    if (l == NULL)
        return;
    if (h2o_timeout_is_linked(&l->timer))
        h2o_timeout_unlink(&l->timer);
    curl_multi_cleanup(l->multi);
    for (size_t i = 0; i < NSTEPS; i++)
        h2o_timeout_dispose(l->loop, &l->step[i]);
    free(l);
}

int s3loop_add(s3loop *l, CURL *e, s3loop_done done, void *data)
{
    job *j = malloc(sizeof(*j));
    if (j == NULL)
        return -1;
    *j = (job){done, data};
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)j);
    if (curl_multi_add_handle(l->multi, e) != CURLM_OK) {
        curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
        free(j);
        return -1;
    }
    return 0;
}

void s3loop_remove(s3loop *l, CURL *e)
{
    job *j = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&j);
    curl_multi_remove_handle(l->multi, e);
    curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
    free(j);
}

void s3loop_unpause(s3loop *l, CURL *e)
{
    (void)l;
    /* libcurl asks for its timer at once; a transfer that ends is reported from there,
     * never from inside the caller's own callback. */
    curl_easy_pause(e, CURLPAUSE_CONT);
}
