/* master.c - the supervisor, in the manner of nginx's master cycle.
 *
 * It opens what children share (listening sockets, the log pipe, shared memory, the
 * word list, and the server secret when it is pinned in a file; otherwise each worker
 * reads it from the store), forks WORKERS workers and one shredder, then sleeps in
 * ppoll() reading the log pipe. Signal handlers only set flags; the loop reaps and
 * respawns children (with back-off), reloads on HUP by starting a new generation
 * before retiring the old one, reopens the log on USR1 and stops on TERM/INT/QUIT. */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "logfile.h"
#include "notify.h"
#include "paths.h"
#include "proc.h"
#include "routes.h"
#include "secret.h"
#include "shredder.h"
#include "util.h"
#include "version.h"
#include "worker.h"

#define MAX_CHILDREN 1024
#define FAST_STOP_MS 5000
#define BACKOFF_MAX_MS 10000
#define STABLE_MS 2000
#define LOG_PIPE_BYTES (1 << 20)

enum { KIND_WORKER, KIND_SHREDDER };
enum { RUNNING, STOP_FAST, STOP_GRACEFUL };

typedef struct {
    pid_t pid;
    int kind;
    unsigned slot;      /* workers 0..n-1; the shredder uses slot n */
    int retiring;       /* of an older generation: not replaced when it exits */
    uint64_t started_ms;
} child;

typedef struct {
    unsigned failures;
    uint64_t respawn_at_ms;
} slot_state;

typedef struct {
    const master_args *args;
    cfg *cfg;
    int listen_fds[CFG_LISTEN_MAX];
    size_t nlisten;
    int metrics_fds[CFG_LISTEN_MAX]; /* METRICS_LISTEN: /metrics alone */
    size_t nmetrics;
    int log_rd, log_wr;
    logfile lf;
    shm_state *shm;
    secret *secret; /* pinned (SECRET_PATH), else NULL */
    words *words;
    child children[MAX_CHILDREN];
    size_t nchildren;
    slot_state slots[CFG_WORKERS_MAX + 1]; /* the workers', then the shredder's */
    int state;
    uint64_t stop_deadline_ms;
    uint64_t started_ms;
    char pipebuf[65536];
    size_t pipelen;
} master_ctx;

static volatile sig_atomic_t sig_child, sig_term, sig_quit, sig_hup, sig_usr1;

static void on_signal(int sig)
{
    switch (sig) {
    case SIGCHLD: sig_child = 1; break;
    case SIGQUIT: sig_quit = 1; break;
    case SIGHUP: sig_hup = 1; break;
    case SIGUSR1: sig_usr1 = 1; break;
    default: sig_term = 1; break;
    }
}

int master_load_cfg(const master_args *a, cfg *c, char *err, size_t errlen)
{
    cfg_init(c);
    if (a->cfg_file != NULL && cfg_load_yaml(c, a->cfg_file, err, errlen) != 0)
        return -1;
    if (cfg_load_env(c, err, errlen) != 0)
        return -1;
    for (int i = 0; i < a->noverrides; i++) {
        char name[128];
        const char *eq = strchr(a->overrides[i], '=');
        if (eq == NULL || (size_t)(eq - a->overrides[i]) >= sizeof(name)) {
            snprintf(err, errlen, "-s %s: expected NAME=VALUE", a->overrides[i]);
            return -1;
        }
        snprintf(name, sizeof(name), "%.*s", (int)(eq - a->overrides[i]), a->overrides[i]);
        if (cfg_set(c, name, eq + 1, err, errlen) != 0)
            return -1;
    }
    if (cfg_validate(c, err, errlen) != 0)
        return -1;
    /* The word list is part of the configuration: a bad one is caught by -t too. */
    words *w = words_load(c->diceware_wordlist_path, err, errlen);
    if (w == NULL)
        return -1;
    words_free(w);
    return 0;
}

/* ---- children ---- */

/* What a child does not need is gone before it runs anything else. The shredder works
 * from ids in the store and paths on disk: it keeps neither the listening sockets nor
 * a pinned server secret (its view of the master's page is unmapped, never written:
 * a write would first copy the page into the shredder). */
static void child_drop(master_ctx *m, int kind)
{
    if (kind == KIND_WORKER)
        return;
    listen_close(m->listen_fds, &m->nlisten);
    listen_close(m->metrics_fds, &m->nmetrics);
    secret_forget(m->secret);
    m->secret = NULL;
}

/* In the child, right after fork(); never returns. */
static void child_exec(master_ctx *m, int kind, unsigned slot, pid_t master_pid)
{
    child_drop(m, kind);
    close(m->log_rd);
    logfile_close(&m->lf);
    log_setup(m->log_wr, m->cfg->log_level, kind == KIND_WORKER ? "worker" : "shredder");
    /* A child must not outlive the master: none would reap or stop it. Checked after
     * the prctl, so a master that died before it is seen too. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) {
        log_event(LOG_ERROR, "child_failed", "prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
        _exit(1);
    }
    if (getppid() != master_pid)
        _exit(1);
    if (proc_child_signals() != 0) {
        log_event(LOG_ERROR, "child_failed", "cannot set up signals: %s", strerror(errno));
        _exit(1);
    }
    if (prctl(PR_SET_NAME, kind == KIND_WORKER ? "rz-worker" : "rz-shredder") != 0)
        log_event(LOG_WARNING, "process_name_failed", "prctl(PR_SET_NAME): %s", strerror(errno));
    proc_env env = {
        .cfg = m->cfg,
        .listen_fds = m->listen_fds,
        .nlisten = m->nlisten,
        .metrics_fds = m->metrics_fds,
        .nmetrics = m->nmetrics,
        .shm = m->shm,
        .secret = kind == KIND_WORKER ? m->secret : NULL,
        .words = m->words,
        .log_fd = m->log_wr,
        .started_ms = m->started_ms,
        .slot = slot,
    };
    _exit(kind == KIND_WORKER ? worker_main(&env) : shredder_main(&env));
}

static void child_spawn(master_ctx *m, int kind, unsigned slot)
{
    if (m->nchildren == MAX_CHILDREN)
        return;
    pid_t master_pid = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        log_event(LOG_ERROR, "fork_failed", "%s", strerror(errno));
        m->slots[slot].respawn_at_ms = util_mono_ms() + 1000;
        return;
    }
    if (pid == 0)
        child_exec(m, kind, slot, master_pid);
    m->children[m->nchildren++] = (child){.pid = pid, .kind = kind, .slot = slot, .started_ms = util_mono_ms()};
    /* A shredder just started counts as alive until it has had time to beat itself, so
     * health does not flap to "scheduler offline" at every start and restart. */
    if (kind == KIND_SHREDDER)
        atomic_store(&m->shm->shredder_heartbeat_ms, util_mono_ms());
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "kind", kind == KIND_WORKER ? "worker" : "shredder");
    cJSON_AddNumberToObject(f, "pid", pid);
    log_fields(LOG_INFO, "child_started", f);
}

static int slot_alive(const master_ctx *m, unsigned slot)
{
    for (size_t i = 0; i < m->nchildren; i++)
        if (!m->children[i].retiring && m->children[i].slot == slot)
            return 1;
    return 0;
}

static void spawn_missing(master_ctx *m)
{
    uint64_t now = util_mono_ms();
    unsigned nworkers = m->cfg->workers;
    for (unsigned s = 0; s <= nworkers; s++)
        if (!slot_alive(m, s) && now >= m->slots[s].respawn_at_ms)
            child_spawn(m, s == nworkers ? KIND_SHREDDER : KIND_WORKER, s);
}

static void child_exited(master_ctx *m, size_t i, int status)
{
    child c = m->children[i];
    m->children[i] = m->children[--m->nchildren];
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "kind", c.kind == KIND_WORKER ? "worker" : "shredder");
    cJSON_AddNumberToObject(f, "pid", c.pid);
    if (WIFSIGNALED(status))
        cJSON_AddNumberToObject(f, "signal", WTERMSIG(status));
    else
        cJSON_AddNumberToObject(f, "exit_code", WEXITSTATUS(status));
    if (c.retiring || m->state != RUNNING) {
        log_fields(LOG_INFO, "child_exited", f);
        return;
    }
    /* Replace it; a child that keeps dying young is restarted ever more slowly. */
    slot_state *s = &m->slots[c.slot];
    uint64_t now = util_mono_ms();
    s->failures = now - c.started_ms < STABLE_MS ? s->failures + 1 : 0;
    uint64_t delay = s->failures == 0 ? 0 : 100ULL << (s->failures > 7 ? 7 : s->failures);
    s->respawn_at_ms = now + (delay > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay);
    cJSON_AddNumberToObject(f, "restart_in_ms", (double)(s->respawn_at_ms - now));
    log_fields(clean ? LOG_WARNING : LOG_ERROR, "child_died", f);
    shm_add(m->shm, M_WORKER_RESTARTS, 1);
}

static void reap(master_ctx *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (size_t i = 0; i < m->nchildren; i++)
            if (m->children[i].pid == pid) {
                child_exited(m, i, status);
                break;
            }
}

static void signal_children(master_ctx *m, int worker_sig, int shredder_sig, int only_retiring)
{
    for (size_t i = 0; i < m->nchildren; i++) {
        const child *c = &m->children[i];
        int sig = c->kind == KIND_WORKER ? worker_sig : shredder_sig;
        if ((only_retiring && !c->retiring) || kill(c->pid, sig) == 0)
            continue;
        cJSON *f = cJSON_CreateObject();
        cJSON_AddNumberToObject(f, "pid", c->pid);
        cJSON_AddNumberToObject(f, "signal", sig);
        cJSON_AddStringToObject(f, "error", strerror(errno));
        log_fields(LOG_ERROR, "signal_failed", f);
    }
}

/* ---- log pipe ---- */

/* At most max_reads reads: under a flood of log lines the cycle still gets back to
 * signals and children; ppoll wakes it again at once for the rest. */
static void drain_pipe(master_ctx *m, int max_reads)
{
    for (int reads = 0; reads < max_reads; reads++) {
        ssize_t n = read(m->log_rd, m->pipebuf + m->pipelen, sizeof(m->pipebuf) - m->pipelen);
        if (n <= 0)
            return;
        m->pipelen += (size_t)n;
        /* The whole lines read go out in one write; a partial last one waits. */
        char *start = m->pipebuf, *end = m->pipebuf + m->pipelen, *nl = memrchr(start, '\n', m->pipelen);
        if (nl != NULL) {
            logfile_write(&m->lf, start, (size_t)(nl - start + 1));
            start = nl + 1;
        }
        m->pipelen = (size_t)(end - start);
        if (m->pipelen == sizeof(m->pipebuf)) /* no newline in 64 KiB: not ours, drop */
            m->pipelen = 0;
        memmove(m->pipebuf, start, m->pipelen);
    }
}

/* Non-blocking at both ends: a full pipe drops a line instead of stalling requests. */
static int open_pipe(master_ctx *m, char *err, size_t errlen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "cannot create the log pipe: %s", strerror(errno));
        return -1;
    }
    m->log_rd = p[0];
    m->log_wr = p[1];
    return 0;
}

/* A larger pipe absorbs bursts of log lines. Without it the server works, but a burst
 * may drop lines, so this is said in the log rather than refused. */
static void grow_pipe(master_ctx *m)
{
    if (fcntl(m->log_wr, F_SETPIPE_SZ, LOG_PIPE_BYTES) < 0)
        log_event(LOG_WARNING, "log_pipe_small", "cannot grow the log pipe to %d bytes: %s; bursts may drop lines",
                  LOG_PIPE_BYTES, strerror(errno));
}

/* ---- reload ---- */

static int listen_same(const cfg_str_list *a, const cfg_str_list *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->items[i], b->items[i]) != 0)
            return 0;
    return 1;
}

/* Sockets of a list setting on reload: kept when the list is the same (0: no connection
 * is refused), else new ones opened into fds (1, *n of them), or -1 with err. */
static int listen_reopen(const char *setting, const cfg_str_list *now, const cfg_str_list *next, int *fds,
                         size_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (listen_same(now, next))
        return 0;
    int r = listen_open(setting, next, fds, CFG_LISTEN_MAX, err, errlen);
    if (r < 0)
        return -1;
    *n = (size_t)r;
    return 1;
}

static int reload(master_ctx *m)
{
    char err[1024];
    cfg *next = malloc(sizeof(*next));
    int fds[CFG_LISTEN_MAX], mfds[CFG_LISTEN_MAX], new_listen = 0, new_metrics = 0;
    size_t nfds = 0, nmfds = 0;
    words *w = NULL;
    if (next == NULL)
        return -1;
    if (master_load_cfg(m->args, next, err, sizeof(err)) != 0 || paths_prepare(next, err, sizeof(err)) != 0 ||
        (w = words_load(next->diceware_wordlist_path, err, sizeof(err))) == NULL)
        goto fail;
    /* Every live upload was made under the secret in force: another one would orphan
     * them all, so that takes a deliberate restart. */
    if (strcmp(next->secret_path, m->cfg->secret_path) != 0) {
        snprintf(err, sizeof(err), "SECRET_PATH=%s: the server secret does not change on a reload (restart to "
                 "change it; the uploads of the last hour are then lost)", next->secret_path);
        goto fail;
    }
    if ((new_listen = listen_reopen("LISTEN", &m->cfg->listen, &next->listen, fds, &nfds, err, sizeof(err))) < 0)
        goto fail;
    if ((new_metrics = listen_reopen("METRICS_LISTEN", &m->cfg->metrics_listen, &next->metrics_listen, mfds,
                                     &nmfds, err, sizeof(err))) < 0) {
        listen_close(fds, &nfds);
        goto fail;
    }
    if (new_listen) {
        listen_close(m->listen_fds, &m->nlisten);
        memcpy(m->listen_fds, fds, sizeof(int) * nfds);
        m->nlisten = nfds;
    }
    if (new_metrics) {
        listen_close(m->metrics_fds, &m->nmetrics);
        memcpy(m->metrics_fds, mfds, sizeof(int) * nmfds);
        m->nmetrics = nmfds;
    }
    if (strcmp(next->log_path, m->cfg->log_path) != 0 || next->log_stdout != m->lf.to_stdout ||
        next->log_max_bytes != m->lf.max_bytes || next->log_backups != m->lf.backups) {
        logfile nlf;
        if (logfile_open(&nlf, next->log_path, next->log_max_bytes, next->log_backups, next->log_stdout, err,
                         sizeof(err)) == 0) {
            logfile_close(&m->lf);
            m->lf = nlf;
        }
    }
    words_free(m->words);
    m->words = w;
    cfg_free(m->cfg);
    free(m->cfg);
    m->cfg = next;
    log_setup(m->log_wr, next->log_level, "master");
    for (size_t i = 0; i < m->nchildren; i++)
        m->children[i].retiring = 1;
    memset(m->slots, 0, sizeof(m->slots));
    spawn_missing(m); /* the new generation accepts before the old one stops */
    signal_children(m, SIGQUIT, SIGTERM, 1);
    log_event(LOG_INFO, "reloaded", "configuration reloaded, %u workers", next->workers);
    return 0;
fail:
    log_event(LOG_ERROR, "reload_failed", "%s; keeping the running configuration", err);
    words_free(w);
    cfg_free(next);
    free(next);
    return -1;
}

/* ---- the cycle ---- */

/* Handlers that set flags; SIGPIPE ignored (a closed log reader must not kill us). */
static int install_signals(sigset_t *orig, char *err, size_t errlen)
{
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1};
    struct sigaction sa, ignore;
    sigset_t set;
    memset(&sa, 0, sizeof(sa));
    memset(&ignore, 0, sizeof(ignore));
    sa.sa_handler = on_signal;
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&ignore.sa_mask);
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (sigaction(sigs[i], &sa, NULL) != 0)
            goto fail;
        sigaddset(&set, sigs[i]);
    }
    /* Blocked except inside ppoll(), so a signal can never slip in between checks. */
    if (sigaction(SIGPIPE, &ignore, NULL) != 0 || sigprocmask(SIG_BLOCK, &set, orig) != 0)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "cannot set up signal handling: %s", strerror(errno));
    return -1;
}

static void begin_stop(master_ctx *m, int how)
{
    if (m->state == STOP_FAST || m->state == how)
        return;
    m->state = how;
    notify_stopping();
    uint64_t grace = how == STOP_FAST ? FAST_STOP_MS : (uint64_t)m->cfg->shutdown_timeout * 1000 + FAST_STOP_MS;
    m->stop_deadline_ms = util_mono_ms() + grace;
    log_event(LOG_INFO, "stopping", how == STOP_FAST ? "fast stop" : "graceful stop");
    if (how == STOP_FAST)
        signal_children(m, SIGTERM, SIGTERM, 0);
    else
        signal_children(m, SIGQUIT, SIGTERM, 0);
    listen_close(m->listen_fds, &m->nlisten);
    listen_close(m->metrics_fds, &m->nmetrics);
}

static int next_wait_ms(const master_ctx *m)
{
    uint64_t now = util_mono_ms(), wait = 1000;
    if (m->state != RUNNING)
        return m->stop_deadline_ms > now ? (int)(m->stop_deadline_ms - now < 100 ? m->stop_deadline_ms - now : 100) : 0;
    for (unsigned s = 0; s <= m->cfg->workers; s++)
        if (!slot_alive(m, s)) {
            uint64_t at = m->slots[s].respawn_at_ms;
            wait = at <= now ? 0 : (at - now < wait ? at - now : wait);
        }
    return (int)wait;
}

static void cycle(master_ctx *m, const sigset_t *orig)
{
    for (;;) {
        if (sig_term) {
            sig_term = 0;
            begin_stop(m, STOP_FAST);
        }
        if (sig_quit) {
            sig_quit = 0;
            begin_stop(m, STOP_GRACEFUL);
        }
        if (sig_hup) {
            sig_hup = 0;
            if (m->state == RUNNING) {
                notify_reloading();
                reload(m); /* kept or replaced, the configuration in force is served */
                notify_ready(m->cfg->workers);
            }
        }
        if (sig_usr1) {
            sig_usr1 = 0;
            logfile_reopen(&m->lf);
            log_event(LOG_INFO, "log_reopened", NULL);
        }
        sig_child = 0;
        reap(m);
        if (m->state != RUNNING) {
            if (m->nchildren == 0)
                return;
            if (util_mono_ms() >= m->stop_deadline_ms) {
                log_event(LOG_WARNING, "stop_timeout", "killing %zu children that did not exit", m->nchildren);
                signal_children(m, SIGKILL, SIGKILL, 0);
                m->stop_deadline_ms = util_mono_ms() + FAST_STOP_MS;
            }
        } else {
            spawn_missing(m);
        }
        int ms = next_wait_ms(m);
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
        struct pollfd pfd = {.fd = m->log_rd, .events = POLLIN};
        if (ppoll(&pfd, 1, &ts, orig) > 0)
            drain_pipe(m, 16);
    }
}

/* The pinned secret, into a page of its own; or in store mode, a word about a secret
 * file an earlier version left on the data volume. */
static int secret_start(master_ctx *m, char *err, size_t errlen)
{
    const cfg *c = m->cfg;
    char warn[PATHS_MAX + 256];
    if (c->secret_path[0] == '\0') {
        if (secret_stale_file(c, warn, sizeof(warn)))
            log_event(LOG_WARNING, "secret_file_unused",
                      "%s is a server secret file of an earlier version, on the data volume: it is no longer "
                      "read (the secret now lives in the store); shred it (shred -u FILE)",
                      warn);
        return 0;
    }
    if ((m->secret = secret_new(warn, sizeof(warn))) == NULL) {
        snprintf(err, errlen, "cannot map a page for the server secret: %s", strerror(errno));
        return -1;
    }
    if (warn[0] != '\0')
        log_event(LOG_WARNING, "secret_unprotected", "%s", warn);
    return secret_load_file(c, m->secret, err, errlen);
}

static int startup(master_ctx *m, char *err, size_t errlen)
{
    const cfg *c = m->cfg;
    char warn[256];
    if (logfile_open(&m->lf, c->log_path, c->log_max_bytes, c->log_backups, c->log_stdout, err, errlen) != 0 ||
        open_pipe(m, err, errlen) != 0)
        return -1;
    log_setup(m->log_wr, c->log_level, "master");
    /* Before any secret is in memory; the children inherit both. */
    if (secret_protect_process(warn, sizeof(warn)) != 0)
        log_event(LOG_WARNING, "core_dumps_possible", "%s", warn);
    if (paths_prepare(c, err, errlen) != 0 || secret_start(m, err, errlen) != 0 ||
        (m->words = words_load(c->diceware_wordlist_path, err, errlen)) == NULL)
        return -1;
    int n = listen_open("LISTEN", &c->listen, m->listen_fds, CFG_LISTEN_MAX, err, errlen);
    if (n < 0)
        return -1;
    m->nlisten = (size_t)n;
    if ((n = listen_open("METRICS_LISTEN", &c->metrics_listen, m->metrics_fds, CFG_LISTEN_MAX, err, errlen)) < 0)
        return -1;
    m->nmetrics = (size_t)n;
    if ((m->shm = shm_create(routes_labels())) == NULL) {
        snprintf(err, errlen, "cannot create the shared memory: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int master_run(const master_args *a, cfg *c)
{
    static master_ctx m; /* large; lives for the whole process */
    char err[1024];
    sigset_t orig;
    m.args = a;
    m.cfg = malloc(sizeof(*m.cfg));
    if (m.cfg == NULL)
        return 1;
    *m.cfg = *c;
    m.started_ms = util_now_ms();
    if (install_signals(&orig, err, sizeof(err)) != 0 || startup(&m, err, sizeof(err)) != 0) {
        fprintf(stderr, "raven-zero: %s\n", err);
        return 1;
    }
    grow_pipe(&m);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "version", RZ_VERSION);
    cJSON_AddNumberToObject(f, "workers", m.cfg->workers);
    cJSON_AddNumberToObject(f, "pid", getpid());
    log_fields(LOG_INFO, "started", f);
    /* The sockets listen already, so connections queue until the workers accept them. */
    spawn_missing(&m);
    notify_ready(m.cfg->workers);
    cycle(&m, &orig);
    log_event(LOG_INFO, "stopped", NULL);
    drain_pipe(&m, INT_MAX);
    logfile_close(&m.lf);
    secret_free(m.secret);
    words_free(m.words);
    cfg_free(m.cfg);
    free(m.cfg);
    return 0;
}
