"""harness.py - the real raven-zero binary and a real redis-server, on free ports, in
the current test's temporary directory.

A test reads like the contract:

    with Redis() as redis, Server(redis) as server:
        status, headers, body = server.json('GET', '/health/')
        assert status == 200, body

It holds one helper of each kind that more than one test module needs: raw HTTP/1.1
exchanges, multipart bodies, the checks every JSON error and every answer's headers
get, a download read at the test's pace, keys, failed attempts and blocks.

Nothing here sleeps and hopes: conditions are polled with a deadline (wait_until).
Every process started here is registered (pid file and artifact list in the test's
temporary directory) so that test/run.py can check sanitizer output, show log tails on
failure, and kill whatever a test left behind.

Python 3.11 standard library only.
"""

import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORDLIST = os.path.join(ROOT, 'wordlists', 'eff_large_wordlist.txt')

# Every setting the binary reads from the environment: stripped from the inherited
# environment so that a developer's shell cannot change what a test sees.
SETTINGS = (
    'REDIS_URL', 'STORAGE_PATH', 'TEMP_PATH', 'MAX_FILE_SIZE', 'ALLOWED_MIME_TYPES',
    'UPLOAD_RATE_LIMIT', 'HEALTH_RATE_LIMIT', 'DOWNLOAD_FAIL_LIMIT',
    'DOWNLOAD_BLOCK_WINDOW', 'CLEANUP_INTERVAL_MINUTES', 'ORPHAN_AGE_MINUTES',
    'SECURE_SHRED_PASSES', 'DICEWARE_WORDLIST_PATH',
    'LISTEN', 'WORKERS', 'TRUSTED_PROXIES', 'CORS_ORIGINS', 'PUBLIC_URL', 'LOG_PATH',
    'LOG_MAX_BYTES', 'LOG_BACKUPS', 'LOG_STDOUT', 'LOG_LEVEL', 'SECRET_PATH',
    'FSYNC_UPLOADS', 'METRICS_ALLOW', 'MAX_CONNECTIONS', 'MAX_UPLOADS_PER_CLIENT',
    'IDLE_TIMEOUT', 'BODY_TIMEOUT', 'SHUTDOWN_TIMEOUT', 'IPV6_PREFIX', 'GLOBAL_FAIL_LIMIT',
    'MAX_CONNECTIONS_PER_CLIENT', 'HEAD_TIMEOUT', 'PREVIEW_AGENTS',
    'STORAGE_URL', 'S3_ENDPOINT', 'S3_REGION', 'S3_ACCESS_KEY', 'S3_SECRET_KEY',
    'S3_CREDENTIALS_FILE', 'S3_PART_SIZE', 'S3_DELETE_DELAY',
    'REDIS_SENTINELS', 'REDIS_SENTINEL_MASTER', 'REDIS_SENTINEL_PASSWORD',
)

START_TIMEOUT = 30.0     # seconds a server may take to become ready (ASan is slow)
REQUEST_TIMEOUT = 10.0   # seconds one HTTP request may take


# ---------------------------------------------------------------------------------
# The test's temporary directory and the registry run.py reads

_tmp = None


def tmp():
    """The current test's temporary directory (RZ_TEST_TMP, set by run.py)."""
    global _tmp
    if _tmp is None:
        _tmp = os.environ.get('RZ_TEST_TMP') or tempfile.mkdtemp(prefix='rz-test-')
        os.makedirs(_tmp, exist_ok=True)
    return _tmp


def path(*parts):
    return os.path.join(tmp(), *parts)


def binary():
    """The binary under test: RZ_BIN, else ./raven-zero at the repository root."""
    return os.environ.get('RZ_BIN') or os.path.join(ROOT, 'raven-zero')


def _register_pid(pid):
    with open(path('.rz-pids'), 'a') as f:
        f.write('%d\n' % pid)


def _register_artifact(label, stdout=None, stderr=None, log=None):
    with open(path('.rz-artifacts.jsonl'), 'a') as f:
        f.write(json.dumps({'label': label, 'stdout': stdout, 'stderr': stderr,
                            'log': log}) + '\n')


_counter = [0]


def _next(name):
    _counter[0] += 1
    return '%s%d' % (name, _counter[0])


# ---------------------------------------------------------------------------------
# Polling and processes

def once(fn):
    """Mark a test that does not run the server binary (it reads files, runs make): the
    runner runs it once instead of against each binary."""
    fn.flavours = ('rel',)
    return fn


def timeout(seconds):
    """Give one test longer than the runner's per-test default (e.g. a full build)."""
    def mark(fn):
        fn.timeout = seconds
        return fn
    return mark


class Timeout(AssertionError):
    pass


def wait_until(predicate, timeout, interval=0.02, message=None,
               ignore=(OSError, http.client.HTTPException)):
    """Call predicate() until it returns something true; return that value.

    Exceptions listed in `ignore` (connection errors by default) count as "not yet";
    the last one is shown if the deadline passes. Assertion errors propagate."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except ignore as e:  # noqa: PERF203
            last = e
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, '__name__', 'condition')
            raise Timeout('timed out after %.1fs waiting for %s (last: %r)'
                          % (timeout, what, last))
        time.sleep(interval)


def free_port():
    """A TCP port nobody listens on right now (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def port_open(port, host='127.0.0.1'):
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def proc_stat(pid):
    """(comm, state, ppid, session) of a process, or None if it does not exist."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    comm = data[data.index('(') + 1:data.rindex(')')]
    fields = data[data.rindex(')') + 2:].split()
    return comm, fields[0], int(fields[1]), int(fields[3])


def alive(pid):
    """True if the process exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[1] not in ('Z', 'X')


def comm(pid):
    try:
        with open('/proc/%d/comm' % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def children_of(ppid):
    """Pids of the live processes whose parent is ppid."""
    out = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[2] == ppid and st[1] not in ('Z', 'X'):
            out.append(int(name))
    return sorted(out)


def reap(pid):
    """Collect an exit status if pid became our child (we are a subreaper under run.py)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def kill_and_reap(pids, sig=signal.SIGKILL, timeout=5.0):
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for pid in pids:
        while alive(pid) and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.01)
        reap(pid)


class NetNamespace:
    """A network of its own, as a container has: a network namespace joined to this one
    by a veth pair, with link-local addresses (.outside here, .inside there). .exec is
    the command prefix that runs a program inside. delete() removes the veth and the
    namespace at once, as a container runtime does when a container stops: what the
    kernel still had to send from inside is then lost, with no FIN and no RST.
    Needs root and iproute2; unavailable() says why not."""

    @staticmethod
    def unavailable():
        if os.geteuid() != 0:
            return 'network namespaces need root'
        if subprocess.run(['ip', '-V'], capture_output=True).returncode != 0:
            return 'no iproute2 (ip)'
        return None

    def __init__(self):
        tag = uuid.uuid4().hex[:8]
        self.name, self.veth = 'rzt-' + tag, 'rzh' + tag
        used = subprocess.run(['ip', '-o', '-4', 'addr'], capture_output=True,
                              text=True).stdout
        while True:  # a /30 of 169.254.0.0/16 that no interface here uses
            base = '169.254.%d.%d' % (random.randint(1, 254), 4 * random.randint(0, 63))
            prefix = base.rsplit('.', 1)[0] + '.'
            last = int(base.rsplit('.', 1)[1])
            self.outside, self.inside = prefix + str(last + 1), prefix + str(last + 2)
            if ' %s/' % self.outside not in used and ' %s/' % self.inside not in used:
                break
        self.exec = ['ip', 'netns', 'exec', self.name]
        self.deleted = False
        steps = [['ip', 'netns', 'add', self.name],
                 ['ip', 'link', 'add', self.veth, 'type', 'veth', 'peer', 'name', 'rzn' + tag],
                 ['ip', 'link', 'set', 'rzn' + tag, 'netns', self.name],
                 ['ip', 'addr', 'add', self.outside + '/30', 'dev', self.veth],
                 ['ip', 'link', 'set', self.veth, 'up'],
                 self.exec + ['ip', 'addr', 'add', self.inside + '/30', 'dev', 'rzn' + tag],
                 self.exec + ['ip', 'link', 'set', 'rzn' + tag, 'up'],
                 self.exec + ['ip', 'link', 'set', 'lo', 'up']]
        try:
            for argv in steps:
                r = subprocess.run(argv, capture_output=True, text=True)
                assert r.returncode == 0, '%s: %s' % (' '.join(argv), r.stderr.strip())
        except BaseException:
            self.delete()
            raise

    def delete(self):
        """The veth first, then the namespace; idempotent."""
        if not self.deleted:
            self.deleted = True
            subprocess.run(['ip', 'link', 'del', self.veth], capture_output=True)
            subprocess.run(['ip', 'netns', 'del', self.name], capture_output=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.delete()


def _clean_env(overrides=None):
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    for k, v in (overrides or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def default_settings(port=None, redis_url=None):
    """The per-test settings every server (and every `run`) gets unless overridden."""
    return {
        'LISTEN': '127.0.0.1:%d' % (port or free_port()),
        'WORKERS': '2',
        'REDIS_URL': redis_url or 'redis://127.0.0.1:%d/0' % free_port(),
        'STORAGE_PATH': path('storage', 'uploads'),
        'TEMP_PATH': path('storage', 'temp'),
        'LOG_PATH': path('logs', 'raven_zero.log'),
        'UPLOAD_RATE_LIMIT': '100000/second',
        'HEALTH_RATE_LIMIT': '100000/second',
        # Tests that send many unknown keys on purpose would otherwise wait a second for
        # each once they pass the failure budget of all clients.
        'GLOBAL_FAIL_LIMIT': '1000000000/second',
        'DICEWARE_WORDLIST_PATH': WORDLIST,
    }


def run(args, env=None, timeout=15.0, defaults=True, cwd=None):
    """Run the binary to completion: (returncode, stdout, stderr) as text.

    returncode is None if it was still running after `timeout` (it is then killed).
    The per-test default settings apply unless defaults=False; env values of None
    remove a variable."""
    settings = default_settings() if defaults else {}
    settings.update(env or {})
    name = _next('run')
    out_path, err_path = path(name + '.stdout'), path(name + '.stderr')
    _register_artifact('%s %s' % (name, ' '.join(args)), out_path, err_path)
    with open(out_path, 'wb') as out, open(err_path, 'wb') as err:
        proc = subprocess.Popen([binary()] + list(args), env=_clean_env(settings),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                cwd=cwd or tmp())
        _register_pid(proc.pid)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kids = children_of(proc.pid)
            proc.kill()
            proc.wait()
            kill_and_reap(kids)
            code = None
    with open(out_path, 'rb') as f:
        stdout = f.read().decode('utf-8', 'replace')
    with open(err_path, 'rb') as f:
        stderr = f.read().decode('utf-8', 'replace')
    return code, stdout, stderr


def lines_of(text):
    """Non-empty lines of a text."""
    return [line for line in text.splitlines() if line.strip()]


def skip(why):
    """Pass, saying why the test could not run here; test/run.py shows the reason on the
    result line."""
    print('SKIP: %s' % why)


# A library preloaded into the server that makes one system call fail, as a kernel, a
# sandbox or a file system may: RZ_FAIL=sigprocmask fails the master's SIG_BLOCK,
# RZ_FAIL=kill every SIGQUIT sent, RZ_FAIL=O_TMPFILE every open of an unnamed file
# (EOPNOTSUPP, as on a file system that has none), RZ_FAIL=fsync every fsync (EIO, as
# a failing disk).
FAILING_CALLS = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int failing(const char *call)
{
    const char *f = getenv("RZ_FAIL");
    return f != NULL && strcmp(f, call) == 0;
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    if (failing("sigprocmask") && how == SIG_BLOCK) {
        errno = EINVAL;
        return -1;
    }
    int (*real)(int, const sigset_t *, sigset_t *) = (int (*)(int, const sigset_t *, sigset_t *))dlsym(RTLD_NEXT, "sigprocmask");
    return real(how, set, old);
}

int kill(pid_t pid, int sig)
{
    if (failing("kill") && sig == SIGQUIT) {
        errno = EPERM;
        return -1;
    }
    int (*real)(pid_t, int) = (int (*)(pid_t, int))dlsym(RTLD_NEXT, "kill");
    return real(pid, sig);
}

int fsync(int fd)
{
    if (failing("fsync")) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

static int open_as(const char *name, const char *file, int flags, va_list ap)
{
    mode_t mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
    if (failing("O_TMPFILE") && (flags & O_TMPFILE) == O_TMPFILE) {
        errno = EOPNOTSUPP;
        return -1;
    }
    int (*real)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, name);
    return real(file, flags, mode);
}

/* open and open64: which one a program calls depends on how it was built. */
#define OPEN(name)                                          \
    int name(const char *file, int flags, ...)              \
    {                                                       \
        va_list ap;                                         \
        va_start(ap, flags);                                \
        int fd = open_as(#name, file, flags, ap);           \
        va_end(ap);                                         \
        return fd;                                          \
    }
OPEN(open)
OPEN(open64)
"""


def failing_calls(call):
    """Settings that preload FAILING_CALLS (built here with cc) and make `call` fail."""
    source, library = path('failing_calls.c'), path('failing_calls.so')
    with open(source, 'w') as f:
        f.write(FAILING_CALLS)
    subprocess.run(['cc', '-shared', '-fPIC', '-o', library, source, '-ldl'], check=True)
    env = {'LD_PRELOAD': library, 'RZ_FAIL': call}
    if 'ASAN_OPTIONS' in os.environ:  # the sanitizer runtime then no longer loads first
        env['ASAN_OPTIONS'] = os.environ['ASAN_OPTIONS'] + ':verify_asan_link_order=0'
    return env


def rss_kib(pid):
    """A process's resident memory (VmRSS), in KiB."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise AssertionError('no VmRSS for pid %d' % pid)


def spill_maps(pid):
    """[(address range, bytes, file)] of the request-body spill files a worker has
    mapped (libh2o names them .body.XXXXXX, unlinked at once)."""
    out = []
    with open('/proc/%d/maps' % pid) as f:
        for line in f:
            fields = line.split(None, 5)
            if len(fields) == 6 and '/.body.' in fields[5]:
                lo, hi = (int(x, 16) for x in fields[0].split('-'))
                out.append((fields[0], hi - lo, fields[5].strip()))
    return out


# ---------------------------------------------------------------------------------
# Redis

class RedisError(Exception):
    pass


class Redis:
    """A real redis-server on a free port, storing nothing on disk.

    Redis(start=False) only reserves the port, for tests where the store is down at
    first; .start() and .stop() may be called again, always on the same port.
    Redis(unix_socket=True) also listens on the unix socket .socket_path."""

    def __init__(self, start=True, port=None, unix_socket=False):
        self.port = port or free_port()
        self.dir = path('redis-%d' % self.port)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.log_path = os.path.join(self.dir, 'redis.log')
        self.socket_path = os.path.join(self.dir, 'redis.sock') if unix_socket else None
        if start:
            self.start()

    @property
    def url(self):
        return 'redis://127.0.0.1:%d/0' % self.port

    def start(self, timeout=10.0):
        assert not self.running(), 'redis already running'
        log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1',
             '--save', '', '--appendonly', 'no', '--dir', self.dir] +
            (['--unixsocket', self.socket_path] if self.socket_path else []),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()
        _register_pid(self.proc.pid)

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError('redis-server exited with %s:\n%s'
                                     % (self.proc.returncode, _tail(self.log_path)))
            return self.command('PING') == 'PONG'
        wait_until(answers, timeout, message='redis PING on port %d' % self.port,
                   ignore=(OSError, RedisError))
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        if not self.running():
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def command(self, *args, timeout=5.0):
        """Send one command in RESP over a fresh socket and return the decoded reply
        (str for simple strings and bulk strings that are UTF-8, else bytes; int; list;
        None). An error reply raises RedisError."""
        return redis_command(self.port, *args, timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Sentinels:
    """A real store that fails over: redis-server primary + replica and three
    redis-sentinel, each on a free loopback port, storing nothing on disk.

    Sentinel decides a primary is down after down_after_ms without an answer and
    promotes the replica; the three agree with a quorum of two. The replica is started
    in sync before the sentinels, and the sentinels before the constructor returns know
    the replica and each other, so a failover can be asked for at once.
    .settings: what a server needs to find the primary through them (REDIS_URL then
    names the replica: a client that wrote there instead would be refused).
    password: the primary's and the replica's requirepass; sentinel_password: the
    Sentinels' own. hostnames: everyone is named "localhost" (Sentinel's
    resolve-hostnames and announce-hostnames), as containers name each other."""

    MASTER = 'rz-primary'

    def __init__(self, down_after_ms=1000, failover_timeout_ms=3000, password=None, sentinel_password=None,
                 hostnames=False):
        self.password, self.sentinel_password = password, sentinel_password
        self.host = 'localhost' if hostnames else '127.0.0.1'
        # a name may resolve to ::1 first: listen there too where there is one
        bind = '127.0.0.1 -::1' if hostnames else '127.0.0.1'
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.dir = path('sentinels-%d' % self.primary_port)
        self.procs = {}
        self.confs = {}
        for port in (self.primary_port, self.replica_port):
            d = os.path.join(self.dir, str(port))
            os.makedirs(d, exist_ok=True)
            self.confs[port] = os.path.join(d, 'redis.conf')
            with open(self.confs[port], 'w') as f:
                f.write('bind %s\nport %d\ndir %s\nlogfile %s/redis.log\nsave ""\n'
                        'appendonly no\nrepl-diskless-sync-delay 0\n' % (bind, port, d, d))
                if hostnames:
                    f.write('replica-announce-ip localhost\n')
                if password:
                    f.write('requirepass %s\nmasterauth %s\n' % (password, password))
                if port == self.replica_port:
                    f.write('replicaof %s %d\n' % (self.host, self.primary_port))
            self._start(port)
        wait_until(lambda: 'master_link_status:up' in self.command(self.replica_port, 'INFO', 'replication'),
                   20, 0.05, message='the replica in sync', ignore=(OSError, RedisError))
        for port in self.sentinel_ports:
            d = os.path.join(self.dir, str(port))
            os.makedirs(d, exist_ok=True)
            self.confs[port] = os.path.join(d, 'sentinel.conf')
            with open(self.confs[port], 'w') as f:
                if hostnames:
                    f.write('sentinel resolve-hostnames yes\nsentinel announce-hostnames yes\n')
                f.write('bind %s\nport %d\ndir %s\nlogfile %s/sentinel.log\n'
                        'sentinel monitor %s %s %d 2\n'
                        'sentinel down-after-milliseconds %s %d\n'
                        'sentinel failover-timeout %s %d\n'
                        % (bind, port, d, d, self.MASTER, self.host, self.primary_port, self.MASTER, down_after_ms,
                           self.MASTER, failover_timeout_ms))
                if password:
                    f.write('sentinel auth-pass %s %s\n' % (self.MASTER, password))
                if sentinel_password:
                    f.write('requirepass %s\nsentinel sentinel-pass %s\n' % (sentinel_password, sentinel_password))
            self._start(port, sentinel=True)

        def converged():
            return all(len(self.command(p, 'SENTINEL', 'REPLICAS', self.MASTER)) == 1 and
                       len(self.command(p, 'SENTINEL', 'SENTINELS', self.MASTER)) == 2
                       for p in self.sentinel_ports)
        wait_until(converged, 30, 0.05, message='three sentinels that know the replica and each other',
                   ignore=(OSError, RedisError))

    def _start(self, port, sentinel=False, args=()):
        self.procs[port] = subprocess.Popen(
            ['redis-sentinel' if sentinel else 'redis-server', self.confs[port]] + list(args),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=self.dir)
        _register_pid(self.procs[port].pid)
        wait_until(lambda: self.command(port, 'PING') == 'PONG', 10, 0.02,
                   message='port %d answering' % port, ignore=(OSError, RedisError))

    def command(self, port, *args, timeout=2.0):
        """One command to the redis-server or sentinel on port, after its AUTH."""
        password = self.sentinel_password if port in self.sentinel_ports else self.password
        if not password:
            return redis_command(port, *args, timeout=timeout)
        with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
            s.sendall(_resp(('AUTH', password)) + _resp(args))
            reader = _RespReader(s)
            reader.read()
            return reader.read()

    @property
    def settings(self):
        out = {'REDIS_URL': 'redis://%s127.0.0.1:%d/0' % (':%s@' % self.password if self.password else '',
                                                          self.replica_port),
               'REDIS_SENTINELS': ','.join('%s:%d' % (self.host, p) for p in self.sentinel_ports),
               'REDIS_SENTINEL_MASTER': self.MASTER}
        if self.sentinel_password:
            out['REDIS_SENTINEL_PASSWORD'] = self.sentinel_password
        return out

    def primary(self):
        """The port the sentinels name as the primary now."""
        for p in self.sentinel_ports:
            try:
                return int(self.command(p, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', self.MASTER)[1])
            except (OSError, RedisError, TypeError):
                continue
        raise AssertionError('no sentinel answered')

    def kill(self, port):
        """SIGKILL the redis-server on port (as a crashed machine would go)."""
        self.procs[port].kill()
        self.procs[port].wait()

    def reattach(self, port):
        """Restart the redis-server on port as a replica of the current primary (no
        moment as a writable primary), in sync before this returns."""
        self._start(port, args=('--replicaof', self.host, str(self.primary())))
        wait_until(lambda: 'master_link_status:up' in self.command(port, 'INFO', 'replication'),
                   20, 0.05, message='port %d in sync' % port, ignore=(OSError, RedisError))

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _resp(args):
    """One command in RESP."""
    payload = [b'*%d\r\n' % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif not isinstance(a, bytes):
            a = str(a).encode()
        payload.append(b'$%d\r\n%s\r\n' % (len(a), a))
    return b''.join(payload)


def redis_command(port, *args, timeout=5.0):
    """One command to the redis-server on 127.0.0.1:port (see Redis.command)."""
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        s.sendall(_resp(args))
        return _RespReader(s).read()


class _RespReader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b''

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError('redis closed the connection')
        self.buf += chunk

    def _line(self):
        while b'\r\n' not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b'+':
            return rest.decode()
        if kind == b'-':
            raise RedisError(rest.decode())
        if kind == b':':
            return int(rest)
        if kind == b'$':
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n)
            try:
                return data.decode()
            except UnicodeDecodeError:
                return data
        if kind == b'*':
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RedisError('unexpected reply %r' % line)


# ---------------------------------------------------------------------------------
# The server

def _tail(file_path, lines=30):
    try:
        with open(file_path, 'rb') as f:
            data = f.read()
    except OSError:
        return '(no %s)' % file_path
    return '\n'.join(data.decode('utf-8', 'replace').splitlines()[-lines:])


def exchange(conn, method, target, body=None, headers=None):
    """One request on an open http.client connection: (status, headers lower-cased,
    body bytes). Repeated headers are joined with ', '."""
    conn.request(method, target, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    hdrs = {}
    for k, v in resp.getheaders():
        k = k.lower()
        hdrs[k] = hdrs[k] + ', ' + v if k in hdrs else v
    return resp.status, hdrs, data


def storage(server):
    return server.settings['STORAGE_PATH']


def temp(server):
    return server.settings['TEMP_PATH']


def trash(server):
    """The shredder's trash: TEMP_PATH's sibling."""
    return os.path.join(os.path.dirname(temp(server).rstrip('/')), 'trash')


class Swift:
    """OpenStack Swift with its S3 API (s3api + tempauth) on free loopback ports, every
    file under one directory: the object storage of the tests. Debian's packages, run
    by swift_run.py: the object server in a process of its own (stop_object() and
    start_object() make an outage behind a proxy that still answers), the account and
    container servers and the proxy in another, and the memcached tempauth needs.

    Starting costs about 7 s of CPU (tens of seconds on a loaded machine): start it
    once per module (setup_module) and give each test a bucket of its own (bucket()).
    error_suppression_interval = 1: by default the proxy would keep a restarted object
    server "error-limited", answering 503 for a minute after it is back."""

    ACCESS_KEY = 'test:tester'   # tempauth's account:user, colon and all
    SECRET_KEY = 'testing'
    PYTHON = '/usr/bin/python3'  # Debian's, where Swift lives
    START_TIMEOUT = 180.0

    def __init__(self, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix='rz-swift-')
        self.ports = {name: free_port() for name in ('proxy', 'account', 'container', 'object', 'memcached')}
        for sub in ('etc', 'srv/d1', 'log'):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self._configure()
        self.start()

    @property
    def endpoint(self):
        return 'http://127.0.0.1:%d' % self.ports['proxy']

    def settings(self, bucket, prefix=''):
        """A server's settings for a bucket (made first with bucket())."""
        return {'STORAGE_URL': 's3://%s%s' % (bucket, '/' + prefix if prefix else ''),
                'S3_ENDPOINT': self.endpoint, 'S3_REGION': 'us-east-1',
                'S3_ACCESS_KEY': self.ACCESS_KEY, 'S3_SECRET_KEY': self.SECRET_KEY}

    def _configure(self):
        etc = os.path.join(self.dir, 'etc')
        user = __import__('pwd').getpwuid(os.getuid()).pw_name
        write = lambda name, text: open(os.path.join(etc, name), 'w').write(text)
        write('swift.conf', '[swift-hash]\nswift_hash_path_suffix = rz\nswift_hash_path_prefix = rz\n'
              '[storage-policy:0]\nname = Policy-0\ndefault = yes\n')
        common = ('[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = %%d\nworkers = 0\nuser = %s\n'
                  'swift_dir = %s\ndevices = %s\nmount_check = false\nlog_level = WARNING\n'
                  # no syslog here: its copies go to the discard port
                  'log_udp_host = 127.0.0.1\nlog_udp_port = 9\n'
                  % (user, etc, os.path.join(self.dir, 'srv')))
        for name in ('account', 'container', 'object'):
            write('%s-server.conf' % name, common % self.ports[name] +
                  '[pipeline:main]\npipeline = %s-server\n[app:%s-server]\nuse = egg:swift#%s\n'
                  % (name, name, name))
        filters = ''.join('[filter:%s]\nuse = egg:swift#%s\n' % (f, f) for f in
                          ('catch_errors', 'gatekeeper', 'healthcheck', 'proxy_logging',
                           'listing_formats', 'copy', 'slo', 'dlo'))
        write('proxy-server.conf', common % self.ports['proxy'] +
              '[pipeline:main]\npipeline = catch_errors gatekeeper healthcheck proxy_logging cache '
              'listing_formats s3api tempauth copy slo dlo proxy_logging proxy-server\n'
              '[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n'
              'error_suppression_interval = 1\nerror_suppression_limit = 1000\n'
              '[filter:s3api]\nuse = egg:swift#s3api\nlocation = us-east-1\n'
              '[filter:tempauth]\nuse = egg:swift#tempauth\nuser_test_tester = %s .admin\n'
              '[filter:cache]\nuse = egg:swift#memcache\nmemcache_servers = 127.0.0.1:%d\n'
              % (self.SECRET_KEY, self.ports['memcached']) + filters)
        rings = ('import sys\nfrom swift.common.ring import RingBuilder\n'
                 'for name, port in zip(("account", "container", "object"), sys.argv[2:5]):\n'
                 '    b = RingBuilder(8, 1, 1)\n'
                 '    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),'
                 ' "device": "d1", "weight": 100, "meta": ""})\n'
                 '    b.rebalance()\n'
                 '    b.get_ring().save("%s/%s.ring.gz" % (sys.argv[1], name))\n')
        write('mkrings.py', rings)
        subprocess.run([self.PYTHON, os.path.join(etc, 'mkrings.py'), etc, str(self.ports['account']),
                        str(self.ports['container']), str(self.ports['object'])],
                       check=True, stdin=subprocess.DEVNULL, capture_output=True)

    def _spawn(self, label, args, outlive_test=False):
        """Start one process; its pid goes to DIR/run/LABEL.pid, where stop() finds it.
        outlive_test: started by a test (not setup_module) for the tests after it, so in
        a session of its own and not registered: the runner kills what a test leaves."""
        os.makedirs(os.path.join(self.dir, 'run'), exist_ok=True)
        log = open(os.path.join(self.dir, 'log', label + '.log'), 'ab')
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=outlive_test)
        log.close()
        if not outlive_test:
            _register_pid(proc.pid)
        with open(os.path.join(self.dir, 'run', label + '.pid'), 'w') as f:
            f.write('%d\n' % proc.pid)

    def _pid(self, label):
        try:
            with open(os.path.join(self.dir, 'run', label + '.pid')) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def _kill(self, label):
        pid = self._pid(label)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)  # ours if this process started it
            except ChildProcessError:
                wait_until(lambda: not alive(pid), 10, message='Swift %s (pid %d) to exit' % (label, pid))
            os.unlink(os.path.join(self.dir, 'run', label + '.pid'))

    def start(self):
        memcached = ['memcached', '-l', '127.0.0.1', '-p', str(self.ports['memcached']), '-U', '0',
                     '-m', '16', '-c', '256']
        if os.getuid() == 0:
            memcached += ['-u', 'root']  # it refuses root otherwise
        self._spawn('memcached', memcached)
        etc = os.path.join(self.dir, 'etc')
        self._spawn('servers', [self.PYTHON, self._run_py(), etc, 'account', 'container', 'proxy'])
        self._spawn('object', [self.PYTHON, self._run_py(), etc, 'object'])
        wait_until(lambda: self.s3('PUT', '/rz-probe')[0] in (200, 409), self.START_TIMEOUT, interval=0.2,
                   message='Swift on port %d to answer S3 requests' % self.ports['proxy'])
        # The object server starts on its own: ready once an object can be written.
        wait_until(lambda: self.s3('PUT', '/rz-probe/ready', b'ready')[0] == 200, self.START_TIMEOUT,
                   interval=0.2, message='Swift on port %d to store an object' % self.ports['proxy'])

    @staticmethod
    def _run_py():
        return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'swift_run.py')

    def start_object(self):
        """Start the object server again after stop_object(), for this and later tests."""
        self._spawn('object', [self.PYTHON, self._run_py(), os.path.join(self.dir, 'etc'), 'object'],
                    outlive_test=True)
        wait_until(lambda: port_open(self.ports['object']), self.START_TIMEOUT, interval=0.1,
                   message='Swift object server on port %d' % self.ports['object'])

    def pids(self):
        """The pids of its processes now running (memcached's included)."""
        return [p for p in (self._pid(label) for label in ('object', 'servers', 'memcached'))
                if p is not None and alive(p)]

    def stop_object(self):
        """An outage behind a proxy that still answers (503 to every object request)."""
        self._kill('object')

    def stop(self):
        for label in ('object', 'servers', 'memcached'):
            self._kill(label)

    def s3(self, method, target, body=b'', headers=None):
        """One signed request with curl's SigV4: (status, body)."""
        netrc = os.path.join(self.dir, 'netrc')
        if not os.path.exists(netrc):
            with open(netrc, 'w') as f:
                f.write('machine 127.0.0.1 login %s password %s\n' % (self.ACCESS_KEY, self.SECRET_KEY))
        cmd = ['curl', '-sS', '-o', '-', '-w', '\n%{http_code}', '-X', method, '--aws-sigv4',
               'aws:amz:us-east-1:s3', '--netrc-file', netrc,
               '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', '--max-time', '20']
        for k, v in (headers or {}).items():
            cmd += ['-H', '%s: %s' % (k, v)]
        if body:
            cmd += ['--data-binary', '@-']
        out = subprocess.run(cmd + [self.endpoint + target], input=body, capture_output=True, timeout=30)
        text, _, code = out.stdout.rpartition(b'\n')
        return int(code or 0), text

    def bucket(self):
        """A new bucket, for one test."""
        name = 'rz-%s' % uuid.uuid4().hex[:12]
        status, body = self.s3('PUT', '/' + name)
        assert status == 200, (status, body)
        return name

    def objects(self, bucket, prefix=''):
        """{name: bytes} of every object in the bucket."""
        status, body = self.s3('GET', '/%s?list-type=2&prefix=%s' % (bucket, prefix))
        assert status == 200, (status, body)
        names = re.findall(rb'<Key>([^<]+)</Key>', body)
        return {n.decode(): self.s3('GET', '/%s/%s' % (bucket, n.decode()))[1] for n in names}


class Server:
    """The binary under test, with per-test paths, WORKERS=2 and generous rate limits.

    redis: a Redis (its URL becomes REDIS_URL) or None (REDIS_URL then comes from env
    or points at a free port where nothing listens).
    env: overrides; a value of None removes the variable.
    args: extra command-line arguments (e.g. ['-c', 'file.yaml']).
    port: the port the harness talks to (default: the one LISTEN is set to).
    wait: 'healthy' (GET /health/ answers 200), 'up' (any HTTP answer) or None.
    net: a NetNamespace to run in (LISTEN then is its address, where the harness talks),
    as a container would; the master is still .proc, and REDIS_URL the store's unix
    socket when it has one (unix sockets cross network namespaces).
    prefix: a command the binary is run under, which execs it (e.g. setpriv)."""

    host = '127.0.0.1'  # where the harness talks to it (subclasses talking elsewhere too)

    def __init__(self, redis=None, env=None, args=(), port=None, wait='healthy',
                 make_dirs=True, net=None, prefix=()):
        self.port = port or free_port()
        self.host = net.inside if net else '127.0.0.1'
        self.prefix = net.exec if net else []
        redis_url = redis.url if redis else None
        if net and redis and redis.socket_path:
            redis_url = 'unix://' + redis.socket_path
        self.settings = default_settings(self.port, redis_url)
        if net:
            self.settings['LISTEN'] = '%s:%d' % (self.host, self.port)
        self.settings.update(env or {})
        self.args = list(args)
        self.prefix = self.prefix + list(prefix)
        self.log_path = self.settings.get('LOG_PATH') or path('logs', 'raven_zero.log')
        if make_dirs:
            for key in ('STORAGE_PATH', 'TEMP_PATH'):
                if self.settings.get(key):
                    os.makedirs(self.settings[key], exist_ok=True)
            os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        name = _next('server')
        self.stdout_path = path(name + '.stdout')
        self.stderr_path = path(name + '.stderr')
        self._seen = set()
        self.proc = None
        self.start(wait)

    # -- life cycle --------------------------------------------------------------
    def start(self, wait='healthy'):
        with open(self.stdout_path, 'ab') as out, open(self.stderr_path, 'ab') as err:
            self.proc = subprocess.Popen(self.prefix + [binary()] + self.args,
                                         env=_clean_env(self.settings),
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         cwd=tmp())
        _register_pid(self.proc.pid)
        _register_artifact('server pid %d (port %d)' % (self.proc.pid, self.port),
                           self.stdout_path, self.stderr_path, self.log_path)
        if wait:
            self.wait_ready(wait)
        return self

    def wait_ready(self, wait='healthy', timeout=START_TIMEOUT):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError('server exited with %s before it was ready; '
                                     'stderr:\n%s' % (self.proc.returncode,
                                                      _tail(self.stderr_path)))
            status, _, _ = self.request('GET', '/health/', timeout=5.0)
            return status == 200 if wait == 'healthy' else True
        wait_until(ready, timeout, interval=0.05,
                   message='server on port %d to be %s' % (self.port, wait))

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        """Wait for the master to exit; its return code (negative: killed by signal)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Timeout('server pid %d still running %.1fs later'
                          % (self.proc.pid, timeout)) from None

    def children(self):
        """{'workers': [pids], 'shredder': pid or None, 'other': [pids]} of the master."""
        out = {'workers': [], 'shredder': None, 'other': []}
        if self.proc.poll() is not None:
            return out
        for pid in children_of(self.proc.pid):
            self._seen.add(pid)
            _register_pid(pid)
            name = comm(pid)
            if name == 'rz-worker':
                out['workers'].append(pid)
            elif name == 'rz-shredder':
                if out['shredder'] is not None:
                    out['other'].append(pid)
                else:
                    out['shredder'] = pid
            else:
                out['other'].append(pid)
        return out

    def stop(self, timeout=10.0):
        """Stop the master (TERM, then KILL) and make sure no child survives it."""
        if self.proc is None:
            return
        self.children()  # remember who is there
        if self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        left = [p for p in self._seen if alive(p)]
        if left:
            kill_and_reap(left, signal.SIGTERM, timeout=2.0)
            kill_and_reap([p for p in left if alive(p)])
        for p in self._seen:
            reap(p)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- HTTP ----------------------------------------------------------------------
    def connection(self, source_address=None, timeout=REQUEST_TIMEOUT):
        src = (source_address, 0) if source_address else None
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout,
                                          source_address=src)

    def request(self, method, path, body=None, headers=None, source_address=None,
                timeout=REQUEST_TIMEOUT):
        """One request on a new connection: (status, headers lower-cased, body bytes).
        Repeated headers are joined with ', '."""
        conn = self.connection(source_address, timeout)
        try:
            return exchange(conn, method, path, body, headers)
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None, source_address=None,
             timeout=REQUEST_TIMEOUT):
        """Like request(), with the body parsed as JSON (AssertionError if it is not)."""
        status, hdrs, data = self.request(method, path, body, headers, source_address,
                                          timeout)
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            raise AssertionError('%s %s -> %d, body is not JSON: %r'
                                 % (method, path, status, data[:500])) from None
        return status, hdrs, parsed

    def upload(self, data, filename='x.bin', expiry=None, uses=None,
               fields_order=('expiry', 'uses', 'file'),
               content_type='application/octet-stream', headers=None,
               source_address=None, path='/upload/'):
        """POST a multipart/form-data upload; (status, headers, parsed JSON body).
        Fields whose value is None are left out; fields_order sets their order."""
        boundary = new_boundary()
        parts = []
        for field in fields_order:
            if field == 'file':
                if data is not None:
                    parts.append(file_part(data, filename, content_type=content_type))
            elif {'expiry': expiry, 'uses': uses}.get(field) is not None:
                parts.append(field_part(field, {'expiry': expiry, 'uses': uses}[field]))
        hdrs = {'Content-Type': 'multipart/form-data; boundary=' + boundary}
        hdrs.update(headers or {})
        return self.json('POST', path, body=form_body(boundary, parts), headers=hdrs,
                         source_address=source_address)

    # -- processes -------------------------------------------------------------------
    def full_tree(self, workers=None, timeout=10):
        """Wait until the master has its workers (WORKERS unless given) and a shredder;
        return children()."""
        workers = int(self.settings.get('WORKERS') or 2) if workers is None else workers

        def complete():
            kids = self.children()
            return len(kids['workers']) == workers and kids['shredder'] and kids
        return wait_until(complete, timeout,
                          message='%d rz-worker and one rz-shredder' % workers)

    def events(self, name, process=None):
        """The log lines of one event (of one process kind if given)."""
        return [x for x in self.log_lines() if x.get('event') == name and
                (process is None or x.get('process') == process)]

    # -- output ----------------------------------------------------------------------
    def log_lines(self, file_path=None):
        """Every complete line of LOG_PATH (or file_path) parsed as JSON; a line that is
        not a JSON object fails the test. A last line without its newline is skipped
        (the master may be writing it)."""
        return parse_json_lines(file_path or self.log_path)

    def stdout_text(self):
        with open(self.stdout_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def stderr_text(self):
        with open(self.stderr_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')


# ---------------------------------------------------------------------------------
# nginx in front (etc/nginx-raven-zero.conf)

def read_file(*parts):
    """A file of the repository, as text."""
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


NGINX = shutil.which('nginx') or '/usr/sbin/nginx'


def server_blocks(text):
    """[(start, end)] of every top-level `server {...}` block of an http-context file."""
    out, i = [], 0
    while True:
        m = re.compile(r'^server\s*\{', re.M).search(text, i)
        if not m:
            return out
        depth, j = 0, m.end() - 1
        while True:
            if text[j] == '{':
                depth += 1
            elif text[j] == '}':
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out.append((m.start(), j + 1))
        i = j + 1


def nginx_site(upstream_port, http_port, tls_port=None, cert=None, key=None, cluster=None):
    """The example file made runnable here: upstream and listen ports replaced, IPv6
    listens dropped; without tls_port the redirect block and TLS lines are removed.
    cluster: ports of several nodes, behind the upstream of the cluster example
    (etc/nginx-raven-zero-cluster.conf) in place of the single-node one."""
    text = read_file('etc', 'nginx-raven-zero.conf')
    if cluster:
        upstream = read_file('etc', 'nginx-raven-zero-cluster.conf')
        upstream = upstream[re.search(r'^upstream raven_zero \{', upstream, re.M).start():]
        examples = re.findall(r'server (\d+\.\d+\.\d+\.\d+:\d+)', upstream)
        assert len(examples) == len(cluster), 'the cluster example has %d nodes' % len(examples)
        for example, port in zip(examples, cluster):
            upstream = upstream.replace('server %s ' % example, 'server 127.0.0.1:%d ' % port)
        text = re.sub(r'upstream raven_zero \{.*?\n\}\n', lambda m: upstream, text, count=1, flags=re.S)
    else:
        assert 'server 127.0.0.1:8000;' in text, 'the upstream is not 127.0.0.1:8000'
        text = text.replace('server 127.0.0.1:8000;', 'server 127.0.0.1:%d;' % upstream_port)
    text = re.sub(r'^\s*listen \[::\]:\d+.*\n', '', text, flags=re.M)
    if tls_port is None:
        blocks = server_blocks(text)
        redirect = [b for b in blocks if 'return 301' in text[b[0]:b[1]]]
        assert len(redirect) == 1, 'expected one redirecting server block'
        text = text[:redirect[0][0]] + text[redirect[0][1]:]
        text = re.sub(r'^\s*(ssl_\w+|add_header Strict-Transport-Security).*\n', '', text,
                      flags=re.M)
        text = re.sub(r'listen 443 ssl http2;', 'listen 127.0.0.1:%d;' % http_port, text)
    else:
        text = re.sub(r'listen 80;', 'listen 127.0.0.1:%d;' % http_port, text)
        text = re.sub(r'listen 443 ssl http2;', 'listen 127.0.0.1:%d ssl http2;' % tls_port, text)
        text = re.sub(r'ssl_certificate\s+\S+;', 'ssl_certificate %s;' % cert, text)
        text = re.sub(r'ssl_certificate_key\s+\S+;', 'ssl_certificate_key %s;' % key, text)
    assert 'listen 80' not in text and 'listen 443' not in text, text
    return text


class Nginx:
    """Debian's nginx in the foreground, one process, everything in the test's directory."""

    def __init__(self, site, port):
        self.port = port
        self.dir = path('nginx')
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, 'nginx.conf')
        self.error_log = os.path.join(self.dir, 'error.log')
        d = self.dir
        with open(self.conf, 'w') as f:
            f.write('daemon off;\nmaster_process off;\nworker_processes 1;\n'
                    'pid %s/nginx.pid;\nerror_log %s info;\n'
                    'events { worker_connections 256; }\n'
                    'http {\n'
                    '  client_body_temp_path %s/body;\n  proxy_temp_path %s/proxy;\n'
                    '  fastcgi_temp_path %s/fastcgi;\n  uwsgi_temp_path %s/uwsgi;\n'
                    '  scgi_temp_path %s/scgi;\n  access_log %s/access.log;\n'
                    '%s\n}\n' % (d, self.error_log, d, d, d, d, d, d, site))
        self.argv = [NGINX, '-p', self.dir + '/', '-c', self.conf, '-e', self.error_log]
        check = sh(self.argv + ['-t'], timeout=30)
        assert check.returncode == 0, 'nginx -t:\n%s%s' % (check.stdout, check.stderr)
        _register_artifact('nginx', None, None, self.error_log)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _register_pid(self.proc.pid)
        wait_until(lambda: self.proc.poll() is None and port_open(port), 10,
                   message='nginx on port %d' % port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Via(Server):
    """The harness's HTTP helpers (request, json, upload) aimed at another port: nginx."""

    def __init__(self, port, scheme='http'):  # noqa: super().__init__ would start a server
        self.port = port
        self.scheme = scheme
        self.proc = None
        self._seen = set()

    def connection(self, source_address=None, timeout=REQUEST_TIMEOUT):
        src = (source_address, 0) if source_address else None
        if self.scheme == 'https':
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection('127.0.0.1', self.port, timeout=timeout,
                                               source_address=src, context=ctx)
        return super().connection(source_address, timeout)

    def stop(self, timeout=10.0):
        pass



# ---------------------------------------------------------------------------------
# Load with a ledger (failover tests)

class UploadLoad:
    """Uploads in a loop from a thread through server (a Server, or Via a proxy), each
    timed: .results holds (t, status) per request (0: no answer), .ledger every upload
    acknowledged (201): key -> bytes."""

    def __init__(self, server):
        self.server = server
        self.results = []
        self.ledger = {}
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        n = 0
        while not self.stopping:
            n += 1
            data = os.urandom(64) + b'%d' % n
            form, content_type = multipart(data, fields=[('uses', '5')])
            try:
                status, _, body = self.server.request('POST', '/upload/', form, {'Content-Type': content_type})
            except (OSError, http.client.HTTPException):
                status, body = 0, None
            self.results.append((time.monotonic(), status))
            if status == 201:
                self.ledger[json.loads(body)['key']] = data
            else:
                time.sleep(0.01)  # an outage answers at once: do not spin

    def successes_after(self, t):
        return sum(1 for when, status in self.results if when > t and status == 201)

    def stop(self):
        self.stopping = True
        self.thread.join(15)

    def gap(self, t0):
        """(first failure, last failure) after t0, in seconds from t0, and the statuses
        seen after t0 that were neither 201 nor 503 (0: no answer)."""
        after = [(when - t0, status) for when, status in self.results if when >= t0]
        failed = [when for when, status in after if status != 201]
        odd = sorted({status for _, status in after if status not in (201, 503)})
        return (failed[0], failed[-1]) if failed else (0.0, 0.0), odd


def assert_ledger(server, ledger):
    """Every upload acknowledged (key -> bytes) is served with its bytes, or not found
    (lost in a failover of the store); never other bytes. How many were not found."""
    lost = 0
    for key, data in ledger.items():
        status, _, body = server.request('GET', '/download/' + key)
        assert status in (200, 404), (status, body[:200])
        if status == 200:
            assert body == data
        else:
            lost += 1
    return lost


def parse_json_lines(file_path, allow_missing=True):
    """Every complete line of a file parsed as a JSON object ([] if it is missing)."""
    try:
        with open(file_path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        if allow_missing:
            return []
        raise
    return parse_json_bytes(data, file_path)


def parse_json_bytes(data, origin='output'):
    """Complete lines of data as JSON objects; any other line fails the test. The last
    chunk after the final newline is ignored (it may still be being written)."""
    out = []
    for n, raw in enumerate(data.split(b'\n')[:-1], 1):
        try:
            obj = json.loads(raw)
        except ValueError:
            raise AssertionError('%s line %d is not JSON: %r' % (origin, n, raw[:300])) \
                from None
        if not isinstance(obj, dict):
            raise AssertionError('%s line %d is not a JSON object: %r'
                                 % (origin, n, raw[:300]))
        out.append(obj)
    return out


def request_line(lines, request_id):
    """The `request` log line with this request id, or None."""
    for line in lines:
        if line.get('event') == 'request' and line.get('request_id') == request_id:
            return line
    return None


def write_file(name, text):
    p = path(name)
    with open(p, 'w') as f:
        f.write(text)
    return p


# ---------------------------------------------------------------------------------
# Small helpers

def _bytes(v):
    if isinstance(v, bytes):
        return v
    return (v if isinstance(v, str) else str(v)).encode('utf-8')


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def parse_iso(text):
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


# ---------------------------------------------------------------------------------
# Multipart bodies built by hand (hostile ones included)

def new_boundary():
    return '----rzTest' + uuid.uuid4().hex


def file_part(data, filename=b'x.bin', name=b'file', content_type=b'application/octet-stream',
              disposition=None):
    """A part's header block and data. filename None leaves the parameter out;
    disposition replaces the whole Content-Disposition value (for hostile names)."""
    if disposition is None:
        disposition = b'form-data; name="' + _bytes(name) + b'"'
        if filename is not None:
            disposition += b'; filename="' + _bytes(filename) + b'"'
    head = b'Content-Disposition: ' + disposition + b'\r\n'
    if content_type is not None:
        head += b'Content-Type: ' + _bytes(content_type) + b'\r\n'
    return head + b'\r\n' + data


def field_part(name, value):
    return b'Content-Disposition: form-data; name="' + _bytes(name) + b'"\r\n\r\n' + \
        _bytes(value)


def form_body(boundary, parts, preamble=b'', epilogue=b'', close=True):
    """The parts framed by the boundary; close=False leaves out the closing delimiter."""
    b = _bytes(boundary)
    out = [preamble] + [b'--' + b + b'\r\n' + p + b'\r\n' for p in parts]
    if close:
        out.append(b'--' + b + b'--\r\n' + epilogue)
    return b''.join(out)


def multipart(data, filename=b'x.bin', fields=(), boundary=None, close=True):
    """(body, Content-Type) of an upload form: the fields [(name, value)], then the file."""
    boundary = boundary or new_boundary()
    parts = [field_part(n, v) for n, v in fields] + [file_part(data, filename)]
    return (form_body(boundary, parts, close=close),
            'multipart/form-data; boundary=' + boundary)


def post_form(server, parts, boundary=None, content_type=None, target='/upload/', **kw):
    """POST parts built by hand (file_part, field_part) as multipart/form-data; kw go to
    form_body. (status, headers, parsed JSON body)."""
    boundary = boundary or new_boundary()
    ct = content_type or 'multipart/form-data; boundary=' + boundary
    return server.json('POST', target, body=form_body(boundary, parts, **kw),
                       headers={'Content-Type': ct})


def chunked(body, size):
    """body in Transfer-Encoding: chunked framing, `size` bytes a chunk."""
    return b''.join(b'%x\r\n%s\r\n' % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b'0\r\n\r\n'


# ---------------------------------------------------------------------------------
# Raw HTTP/1.1, for what http.client will not send

def raw_connect(server, source=None, timeout=REQUEST_TIMEOUT, rcvbuf=None):
    """A TCP connection to the server (from a given loopback address), nothing sent."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source:
        s.bind((source, 0))
    s.connect((server.host, server.port))
    return s


def read_response(sock, method='GET'):
    """One HTTP/1 response read from an open socket: (status, headers, body bytes)."""
    resp = http.client.HTTPResponse(sock, method=method)
    resp.begin()
    data = resp.read()
    hdrs = {}
    for k, v in resp.getheaders():
        k = k.lower()
        hdrs[k] = hdrs[k] + ', ' + v if k in hdrs else v
    return resp.status, hdrs, data


def raw_exchange(server, data, pause=0.0, half_close=False, source=None,
                 timeout=REQUEST_TIMEOUT, responses=None):
    """Write data (bytes, or a list of pieces sent `pause` seconds apart as separate TCP
    segments) on a new connection, from a thread so that an answer sent before the
    server read everything is still seen; half_close shuts the write side afterwards.
    Read until the server closes, `timeout` passes, or `responses` complete responses
    have arrived. Returns (bytes received, how it ended: 'closed', 'reset', 'timeout'
    or 'answered')."""
    pieces = [data] if isinstance(data, (bytes, bytearray)) else list(data)
    sock = raw_connect(server, source, timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send():
        try:
            for i, piece in enumerate(pieces):
                if i and pause:
                    time.sleep(pause)  # a separate TCP segment, the point of the exercise
                sock.sendall(piece)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before taking everything
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received, end = bytearray(), 'closed'
    deadline = time.monotonic() + timeout
    try:
        while not (responses and _complete_responses(received) >= responses):
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        else:
            end = 'answered'
    except socket.timeout:
        end = 'timeout'
    except ConnectionResetError:
        end = 'reset'
    finally:
        sock.close()
        sender.join(5)
    return bytes(received), end


def _split_response(data):
    """(status, headers, body, rest, complete) of the first response in data, or None
    if its head is not all there. Interim 1xx responses are skipped."""
    while True:
        head_end = data.find(b'\r\n\r\n')
        if head_end < 0:
            return None
        lines = data[:head_end].decode('latin-1').split('\r\n')
        parts = lines[0].split(' ', 2)
        if len(parts) < 2 or not parts[0].startswith('HTTP/') or not parts[1].isdigit():
            raise AssertionError('not a status line: %r' % lines[0])
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(':')
            key = name.strip().lower()
            headers[key] = headers[key] + ', ' + value.strip() if key in headers \
                else value.strip()
        rest = data[head_end + 4:]
        if 100 <= status < 200:
            data = rest
            continue
        if 'content-length' in headers:
            n = int(headers['content-length'])
            return status, headers, rest[:n], rest[n:], len(rest) >= n
        return status, headers, rest, b'', False


def _complete_responses(data):
    n, data = 0, bytes(data)
    while data:
        first = _split_response(data)
        if first is None or not first[4]:
            break
        n, data = n + 1, first[3]
    return n


def parse_responses(data):
    """Every HTTP/1.1 response in data: [(status, headers lower-cased, body)]. A response
    without Content-Length (or cut short) takes the rest."""
    out = []
    while data:
        first = _split_response(data)
        if first is None:
            raise AssertionError('an incomplete response head: %r' % data[:300])
        status, headers, body, data, _ = first
        out.append((status, headers, body))
    return out


def one_response(data, what):
    """The only response in data: (status, headers, body)."""
    responses = parse_responses(data)
    assert len(responses) == 1, '%s: %d responses: %r' % (what, len(responses), data[:600])
    return responses[0]


# ---------------------------------------------------------------------------------
# What every answer carries

UUID4 = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')
JSON_CT = 'application/json; charset=utf-8'
COMMON_HEADERS = {
    'cache-control': 'no-store, no-cache, must-revalidate, max-age=0',
    'pragma': 'no-cache',
    'expires': '0',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'x-xss-protection': '1; mode=block',
    'referrer-policy': 'no-referrer',
}
DOWNLOAD_CACHE_CONTROL = 'no-store, no-cache, must-revalidate, max-age=0, no-transform'


def tokens(value):
    """The comma-separated items of a header value, lower-cased and sorted."""
    return sorted(t.strip().lower() for t in (value or '').split(',') if t.strip())


def header_problems(what, headers, origin='*', cache_control=None):
    """Everything missing or wrong among the headers every answer carries ([] if none):
    the cache and security headers, a uuid v4 X-Request-ID, and CORS for `origin`.
    A header sent twice shows up joined (a, b) and fails the exact comparisons."""
    problems = []
    want = dict(COMMON_HEADERS)
    if cache_control:
        want['cache-control'] = cache_control
    for name, value in want.items():
        if headers.get(name) != value:
            problems.append('%s: %s is %r, expected %r' % (what, name, headers.get(name), value))
    rid = headers.get('x-request-id', '')
    if not UUID4.match(rid.lower()):
        problems.append('%s: X-Request-ID %r is not a uuid v4' % (what, rid))
    if headers.get('access-control-allow-origin') != origin:
        problems.append('%s: Access-Control-Allow-Origin %r, expected %r'
                        % (what, headers.get('access-control-allow-origin'), origin))
    for name, expect in (('access-control-allow-methods', 'GET, POST, PUT, DELETE, OPTIONS'),
                         ('access-control-allow-headers',
                          'Content-Type, Accept, X-Delete-Token, Expiry, Uses'),
                         ('access-control-expose-headers',
                          'X-SHA256, Content-Disposition, X-Request-ID')):
        if tokens(headers.get(name)) != tokens(expect):
            problems.append('%s: %s is %r, expected %r' % (what, name, headers.get(name), expect))
    return problems


def assert_common_headers(what, headers, **kw):
    problems = header_problems(what, headers, **kw)
    assert not problems, '\n'.join(problems) + '\nall: %r' % headers


def json_answer(what, status, headers, body):
    """The body of an answer that must be JSON (Content-Type included, and a newline at
    its end, so that a terminal's prompt starts on a line of its own), parsed."""
    ctype = headers.get('content-type', '').replace(' ', '').lower()
    assert ctype == JSON_CT.replace(' ', ''), \
        '%s: answered %d with Content-Type %r, body %r' % (what, status, ctype, body[:200])
    if not isinstance(body, (bytes, bytearray, str)):
        return body
    end = b'\n' if isinstance(body, (bytes, bytearray)) else '\n'
    assert body.endswith(end) and not body.endswith(end * 2), \
        '%s: answered %d, the JSON does not end with one newline: %r' % (what, status, body[-80:])
    try:
        return json.loads(body)
    except ValueError:
        raise AssertionError('%s: answered %d, body is not JSON: %r'
                             % (what, status, body[:300])) from None


# What every 503 (the store is away) and 507 (the disk is full) says in Retry-After.
RETRY_AFTER = {503: 2, 507: 60}


def assert_json_error(status, headers, body, expect, detail=None, what='answer'):
    """A JSON error: status `expect` (an int, or a collection of allowed ones), a
    {"detail": ...} body (bytes or already parsed) whose detail, if given, is a string
    to match exactly or a test to pass, and the headers every answer carries. Returns
    the parsed body."""
    allowed = (expect,) if isinstance(expect, int) else expect
    assert status in allowed, '%s: answered %d, expected %s: %r' % (
        what, status, expect if isinstance(expect, int) else sorted(allowed), body)
    parsed = json_answer(what, status, headers, body)
    assert isinstance(parsed, dict) and parsed.get('detail'), \
        '%s: answered %d without a detail: %r' % (what, status, parsed)
    if callable(detail):
        assert detail(parsed['detail']), '%s: unexpected detail %r' % (what, parsed['detail'])
    elif detail is not None:
        assert parsed['detail'] == detail, '%s: detail %r, want %r' % (
            what, parsed['detail'], detail)
    assert_common_headers(what, headers)
    if status in RETRY_AFTER:
        assert headers.get('retry-after') == str(RETRY_AFTER[status]), \
            '%s: answered %d with Retry-After %r, want %d' % (
                what, status, headers.get('retry-after'), RETRY_AFTER[status])
    return parsed


def assert_422(status, headers, body, locs, what):
    """422 with the list-form detail naming every loc in locs (tuples); each loc starts
    with where the value came from: body, query or header."""
    parsed = assert_json_error(status, headers, body, 422, what=what)
    detail = parsed['detail']
    assert isinstance(detail, list) and detail, '%s: detail is not a list: %r' % (what, parsed)
    for item in detail:
        assert isinstance(item, dict), (what, parsed)
        assert isinstance(item.get('type'), str) and item['type'], (what, item)
        assert isinstance(item.get('msg'), str) and item['msg'], (what, item)
        assert isinstance(item.get('loc'), list) and item['loc'][:1] in (
            ['body'], ['query'], ['header']), (what, item)
    got = [tuple(item['loc']) for item in detail]
    for loc in locs:
        assert loc in got, '%s: no error at %r in %r' % (what, loc, detail)
    return parsed


# ---------------------------------------------------------------------------------
# Keys, uploads and downloads

MIB = 1024 * 1024
# A sealed file: a HEADER-byte header, then SEGMENT-byte segments each with a TAG.
SEGMENT = 65536
TAG = 16
HEADER = 40
SERVICES = ('redis', 'storage', 'scheduler', 'diceware')
NOT_FOUND = 'File not found or link expired'
PREVIEW_NOT_FOUND = 'Upload not found or link expired'
SPENT = 'Download limit has been reached'
STATUS_UNKNOWN = {'status': 'expired_or_burned', 'remaining_uses': 0, 'expires_at': None,
                  'is_accessible': False}
# Unknown keys count towards the brute-force block; tests that send many raise the limit.
MANY_FAILURES = {'DOWNLOAD_FAIL_LIMIT': '100000'}
PDF = (b'%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n'
       b'2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n'
       b'%%EOF\n')
TEXT = b'The quick brown fox jumps over the lazy dog.\n' * 40


def _load_words():
    words = []
    with open(WORDLIST, encoding='utf-8') as f:
        for line in f:
            parts = line.split()
            if parts:
                words.append(parts[-1])
    return words


WORDS = _load_words()
WORDSET = frozenset(WORDS)


def key_words(key, count=None):
    """A split of key into 3 to 6 list words (exactly count of them if given), or None.
    Words may contain '-', so a key may split more than one way."""
    if not re.match(r'^[a-z-]+$', key):
        return None

    def split(rest, taken):
        if len(taken) == 6:
            return None
        if rest in WORDSET and len(taken) + 1 >= 3 and count in (None, len(taken) + 1):
            return taken + (rest,)
        for a in range(len(rest)):
            if rest[a] == '-' and rest[:a] in WORDSET:
                found = split(rest[a + 1:], taken + (rest[:a],))
                if found:
                    return found
        return None
    return split(key, ())


def unknown_key():
    """A key of the right shape that no upload has (7776^3 to one)."""
    return '-'.join(random.SystemRandom().choice(WORDS) for _ in range(3))


def upload_ok(server, data, filename='x.bin', expiry=None, uses=None, **kw):
    """An upload that must succeed: (parsed body, headers)."""
    status, headers, body = server.upload(data, filename=filename, expiry=expiry, uses=uses,
                                          **kw)
    assert status == 201, 'upload of %d bytes: %d %r' % (len(data), status, body)
    return body, headers


def download(server, key, **kw):
    return server.request('GET', '/download/' + key, **kw)


ISO_WHOLE_Z = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
UPLOAD_FIELDS = ('key', 'preview_url', 'download_url', 'expiry', 'uses', 'filename', 'size',
                 'created_at', 'sha256', 'share_url', 'delete_url', 'delete_token')
DELETE_TOKEN = re.compile(r'^[0-9a-f]{32}$')


def assert_upload_body(body, headers, server, data, filename, uses, expiry_minutes,
                       base=None):
    """The 201 of an upload: every field right, Location, the common headers."""
    assert headers.get('content-type', '').replace(' ', '').lower() == \
        JSON_CT.replace(' ', ''), headers
    for field in UPLOAD_FIELDS:
        assert field in body, 'upload answer lacks %r: %r' % (field, body)
    key = body['key']
    assert isinstance(key, str) and key_words(key), \
        'key %r is not 3 to 6 words of the list joined by -' % key
    base = base or 'http://127.0.0.1:%d' % server.port
    assert body['preview_url'] == '%s/preview/%s' % (base, key), body
    assert body['download_url'] == '%s/download/%s' % (base, key), body
    assert body['share_url'] == '%s/#%s' % (base, key), body
    assert body['delete_url'] == body['download_url'], body
    assert isinstance(body['delete_token'], str) and DELETE_TOKEN.match(body['delete_token']), \
        'delete_token %r is not 128 bits in hex' % body['delete_token']
    assert headers.get('location') == body['download_url'], headers
    assert is_int(body['uses']) and body['uses'] == uses, body
    assert body['filename'] == filename, body
    assert is_int(body['size']) and body['size'] == len(data), body
    assert isinstance(body['sha256'], str) and body['sha256'] == sha256(data), body
    for field in ('expiry', 'created_at'):
        assert isinstance(body[field], str) and ISO_WHOLE_Z.match(body[field]), \
            '%s %r is not ISO 8601 UTC with Z in whole seconds' % (field, body[field])
    created, expiry = parse_iso(body['created_at']), parse_iso(body['expiry'])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - created).total_seconds()) < 10, 'created_at %s is not now' % created
    assert abs((expiry - created).total_seconds() - 60 * expiry_minutes) <= 1, \
        'expiry %s is not created_at + %d min' % (expiry, expiry_minutes)
    assert_common_headers('upload 201', headers)


def server_secret(server):
    """The server secret: the pinned file (SECRET_PATH) if there is one, else the one the
    server keeps in its store (a local redis-server on a TCP port)."""
    pinned = server.settings.get('SECRET_PATH')
    if pinned:
        with open(pinned, 'rb') as f:
            return f.read()
    m = re.match(r'^redis://127\.0\.0\.1:(\d+)/', server.settings['REDIS_URL'])
    assert m, 'no local store to read the secret from: %r' % server.settings['REDIS_URL']
    secret = redis_command(int(m.group(1)), 'GET', 'secret')
    secret = secret.encode() if isinstance(secret, str) else secret  # bytes, exactly
    assert isinstance(secret, bytes) and len(secret) == 32, 'the store holds no secret: %r' % secret
    return secret


def drop_id(server, key, secret=None):
    """The id a key's record and file go by: HMAC-SHA256(secret, key), first 16 bytes
    in hex (the server's own secret unless another is given)."""
    secret = server_secret(server) if secret is None else secret
    return hmac.new(secret, key.encode(), hashlib.sha256).digest()[:16].hex()


def stored_path(server, key):
    """Where a key's sealed file lives: STORAGE_PATH/<id[0:2]>/<id>."""
    i = drop_id(server, key)
    return os.path.join(storage(server), i[:2], i)


def files_under(root):
    out = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            out.append(os.path.join(dirpath, n))
    return sorted(out)


def unnamed_temp_files(server):
    """[(who, bytes)]: the files in TEMP_PATH with no name (O_TMPFILE) that the server's
    processes hold open, each an upload being sealed; who is 'pid:fd'."""
    prefix = os.path.realpath(temp(server)) + '/#'
    kids = server.children()
    out = []
    for pid in [server.pid] + kids['workers'] + [kids['shredder']] + kids['other']:
        try:
            fds = os.listdir('/proc/%s/fd' % pid)
        except (OSError, TypeError):
            continue
        for fd in fds:
            where = '/proc/%s/fd/%s' % (pid, fd)
            try:
                link = os.readlink(where)
                if link.startswith(prefix) and link.endswith(' (deleted)'):
                    out.append(('%s:%s' % (pid, fd), os.stat(where).st_size))
            except OSError:
                continue  # closed meanwhile
    return out


def temp_files(server):
    """What TEMP_PATH holds: its named files, and the unnamed ones held open."""
    return files_under(temp(server)) + ['unnamed, held by %s (%d bytes)' % u
                                        for u in unnamed_temp_files(server)]


def sealed_bytes(server):
    """Bytes sealed so far into TEMP_PATH: where an upload's body goes as it arrives."""
    return (sum(os.path.getsize(f) for f in files_under(temp(server))) +
            sum(n for _, n in unnamed_temp_files(server)))


def assert_nothing_left(server, redis, what):
    """A failed upload leaves no file, no partial file and no record."""
    seen = []

    def clean():
        left = temp_files(server) + files_under(storage(server))
        keys = redis.command('KEYS', 'upload:*')
        seen[:] = ['files %r, keys %r' % (left, keys)]
        return not left and not keys and not redis.command('ZCARD', 'expiries')
    try:
        wait_until(clean, 3, ignore=())
    except AssertionError:
        raise AssertionError('%s: something was left behind: %s' % (what, seen[0])) from None


def assert_nobody_replaced(server, before, healthy=True):
    """No worker and no shredder was replaced since `before` (a full_tree()), none died,
    and (unless healthy=False, for a store that is down on purpose) health answers 200."""
    assert server.running(), 'the master exited'
    after = server.children()
    died = server.events('child_died')
    assert sorted(after['workers']) == sorted(before['workers']), \
        'workers replaced: before %r, after %r, deaths %r' % (
            before['workers'], after['workers'], died)
    assert after['shredder'] == before['shredder'], 'the shredder was replaced'
    assert died == [], 'children died: %r' % died
    if healthy:
        status, _, body = server.json('GET', '/health/')
        assert status == 200, 'health: %d %r' % (status, body)


class SlowDownload:
    """GET /download/KEY on a raw socket with a small receive buffer, read only as fast
    as the test asks, so that the worker keeps the file open (and locked) meanwhile."""

    def __init__(self, server, key, rcvbuf=64 * 1024):
        self.sock = raw_connect(server, rcvbuf=rcvbuf)
        self.sock.sendall(b'GET /download/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                          b'Connection: close\r\n\r\n' % key.encode())
        head = b''
        while b'\r\n\r\n' not in head:
            chunk = self.sock.recv(4096)
            assert chunk, 'the download closed before its headers'
            head += chunk
        head, rest = head.split(b'\r\n\r\n', 1)
        # A bytearray: appending to bytes would copy the whole body at every chunk.
        self.body = bytearray(rest)
        lines = head.decode('latin-1').split('\r\n')
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in
                        (line.partition(':') for line in lines[1:])}
        self.length = int(self.headers.get('content-length', -1))

    def read(self, n, pause=0.0):
        """Read n more body bytes, pausing `pause` seconds after each 256 KiB; False
        when the server closed the connection first."""
        goal, mark = len(self.body) + n, len(self.body)
        while len(self.body) < goal:
            chunk = self.sock.recv(min(65536, goal - len(self.body)))
            if not chunk:
                return False
            self.body += chunk
            if pause and len(self.body) - mark >= 256 * 1024:
                mark = len(self.body)
                time.sleep(pause)
        return True

    def finish(self):
        """Read the rest of the announced length, close; the whole body."""
        assert self.read(self.length - len(self.body)), \
            'stream ended after %d of %d bytes' % (len(self.body), self.length)
        self.close()
        return bytes(self.body)

    def close(self):
        self.sock.close()


class PacedDownload(threading.Thread):
    """GET /download/KEY on a raw socket with a small receive buffer, read at about
    `rate` bytes a second in a thread until the server closes (unlike SlowDownload,
    which the test reads step by step), over HTTP/1.1 (with
    Connection: close, or keep-alive) or HTTP/2 (prior knowledge, windows opened wide,
    so that only the socket paces the server). .got: body bytes; .status; .ending:
    'closed' (EOF after the whole answer), 'reset', or 'stalled' (nothing for
    `patience` seconds: the connection was left hanging)."""

    H2_PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'

    def __init__(self, host, port, key, mode, rate=2 * MIB, patience=5.0):
        super().__init__(daemon=True)
        self.mode, self.rate, self.patience = mode, rate, patience
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.sock.settimeout(patience)
        self.sock.connect((host, port))
        self.target = '/download/' + key
        self.authority = '%s:%d' % (host, port)
        self.got, self.status, self.ending, self.complete = bytearray(), None, None, False
        self.length = None

    def run(self):
        try:
            if self.mode == 'h2':
                self.run_h2()
            else:
                self.run_h1()
        except socket.timeout:
            self.ending = 'stalled'
        except ConnectionResetError:
            self.ending = 'reset'
        finally:
            self.sock.close()

    def recv(self):
        chunk = self.sock.recv(65536)
        time.sleep(len(chunk) / self.rate)
        return chunk

    def run_h1(self):
        close = b'Connection: close\r\n' if self.mode == 'close' else b''
        self.sock.sendall(b'GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n'
                          % (self.target.encode(), self.authority.encode(), close))
        data = bytearray()
        while b'\r\n\r\n' not in data:
            chunk = self.recv()
            if not chunk:
                self.ending = 'closed'
                return
            data += chunk
        head, rest = bytes(data).split(b'\r\n\r\n', 1)
        self.status = int(head.split()[1])
        self.length = int(re.search(rb'(?i)\r\ncontent-length: *(\d+)', head).group(1))
        self.got += rest
        while True:
            chunk = self.recv()
            if not chunk:
                self.ending = 'closed'
                return
            self.got += chunk
            self.complete = len(self.got) >= self.length

    @staticmethod
    def h2_frame(kind, flags, stream, payload=b''):
        return struct.pack('>I', len(payload))[1:] + bytes([kind, flags]) + \
            struct.pack('>I', stream) + payload

    @staticmethod
    def hpack_literal(index, value):
        """A header field without indexing, its name from the static table."""
        value = value.encode()
        assert index < 15 and len(value) < 127
        return bytes([index, len(value)]) + value

    def run_h2(self):
        wide = 2 ** 31 - 1
        request = b'\x82\x86' + self.hpack_literal(4, self.target) + \
            self.hpack_literal(1, self.authority)  # GET, http, :path, :authority
        self.sock.sendall(self.H2_PREFACE +
                          self.h2_frame(4, 0, 0, struct.pack('>HI', 4, wide)) +
                          self.h2_frame(8, 0, 0, struct.pack('>I', wide - 65535)) +
                          self.h2_frame(1, 0x5, 1, request))
        buf = bytearray()
        while True:
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], 'big'):
                size, kind, flags = int.from_bytes(buf[:3], 'big'), buf[3], buf[4]
                stream = int.from_bytes(buf[5:9], 'big') & wide
                payload, buf = bytes(buf[9:9 + size]), buf[9 + size:]
                if kind == 0 and stream == 1:  # DATA (h2o does not pad)
                    self.got += payload
                    self.complete = self.complete or bool(flags & 1)
                elif kind == 1 and stream == 1:  # HEADERS: :status 200 is indexed, 0x88
                    self.status = 200 if payload[:1] == b'\x88' else payload[:1]
                elif kind == 4 and not flags & 1:
                    self.sock.sendall(self.h2_frame(4, 1, 0))
                elif kind == 6 and not flags & 1:
                    self.sock.sendall(self.h2_frame(6, 1, 0, payload))
                elif kind == 3 and stream == 1:
                    self.ending = 'reset'
                    return
            chunk = self.recv()
            if not chunk:
                self.ending = 'closed'
                return
            buf += chunk


def race(n, fn):
    """Run fn in n threads released together; its results (exceptions re-raised)."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        try:
            barrier.wait(10)
            results[i] = ('ok', fn())
        except Exception as e:  # reported below
            results[i] = ('error', e)
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    errors = [r[1] for r in results if r is None or r[0] == 'error']
    assert not errors, 'racing requests failed: %r' % errors[:5]
    return [r[1] for r in results]


# ---------------------------------------------------------------------------------
# Failed attempts, blocks and clients. Other clients are other loopback addresses;
# with the default TRUSTED_PROXIES 127.0.0.1 plays a trusted proxy and any other
# loopback address an untrusted peer.

PROXY = '127.0.0.1'      # trusted by default
CLIENT = '127.0.0.2'     # an untrusted peer
OTHER = '127.0.0.3'      # another untrusted peer
BLOCK_TEXT = 'Too many failed attempts. Temporarily blocked.'
KEYED = ('download', 'preview', 'status')


def xff(value):
    return {} if value is None else {'X-Forwarded-For': value}


def miss(server, endpoint, source=None, forwarded=None, key=None):
    """GET /{endpoint}/{an unknown key}: (status, headers, parsed body)."""
    return server.json('GET', '/%s/%s' % (endpoint, key or unknown_key()),
                       headers=xff(forwarded), source_address=source)


def assert_normal_miss(endpoint, status, body):
    """The answer an unknown key gets from an endpoint when the client is not blocked."""
    if endpoint == 'status':
        assert status == 200, (endpoint, status, body)
        assert body['status'] == 'expired_or_burned', body
        assert body['remaining_uses'] == 0 and body['is_accessible'] is False, body
        assert body['expires_at'] is None, body
    elif endpoint == 'download':
        assert (status, body) == (404, {'detail': 'File not found or link expired'}), \
            (endpoint, status, body)
    else:
        assert (status, body) == (404, {'detail': 'Upload not found or link expired'}), \
            (endpoint, status, body)


def assert_blocked(status, headers, body, window):
    """429 with the block's body, retry_after_seconds in 1..window, and a matching
    Retry-After header."""
    assert status == 429, 'expected the block (429), got %d %r' % (status, body)
    assert isinstance(body, dict) and isinstance(body.get('detail'), dict), body
    assert set(body['detail']) == {'error', 'retry_after_seconds'}, body
    assert body['detail']['error'] == BLOCK_TEXT, body
    seconds = body['detail']['retry_after_seconds']
    assert is_int(seconds), body
    assert 1 <= seconds <= window, 'retry_after_seconds %r outside 1..%d' % (seconds, window)
    assert headers.get('retry-after') == str(seconds), \
        'Retry-After %r does not match retry_after_seconds %d' % (headers.get('retry-after'),
                                                                  seconds)


def block(server, source=None, forwarded=None, limit=3, endpoint='status'):
    """Make `limit` failed attempts (each answered normally); the client is then blocked."""
    for _ in range(limit):
        status, _, body = miss(server, endpoint, source, forwarded)
        assert_normal_miss(endpoint, status, body)


def retry_after(headers):
    value = headers.get('retry-after')
    assert value is not None and value.isdigit(), 'Retry-After %r' % value
    return int(value)


def in_one_window(period, attempt, clients, early=None):
    """Run attempt(client) for one client after another until a run starts and ends in
    the same fixed window of `period` seconds (the store's windows are aligned to the
    epoch), so that a window boundary cannot reset a count mid-test: (client, result)."""
    for client in clients:
        if early is not None:  # start within the first `early` seconds of a window
            wait_until(lambda: time.time() % period < early, period + 1, interval=0.005,
                       message='the start of a %d s window' % period)
        window = int(time.time()) // period
        result = attempt(client)
        if int(time.time()) // period == window:
            return client, result
    raise AssertionError('every attempt straddled a %d s window boundary' % period)


def logged_client(server, headers):
    """The `client` of the request log line of the response with these headers."""
    rid = headers['x-request-id']
    line = wait_until(lambda: request_line(server.log_lines(), rid), 5,
                      message='the log line of request %s' % rid)
    return line['client']


# ---------------------------------------------------------------------------------
# curl, for HTTP/2 and for what a new user types

def curl(args, cwd, timeout=30):
    """curl -sS with a time limit: (exit code, stdout bytes, stderr bytes)."""
    proc = subprocess.run(['curl', '-sS', '--max-time', str(timeout)] + args, cwd=cwd,
                          capture_output=True, timeout=timeout + 5)
    return proc.returncode, proc.stdout, proc.stderr


def curl_headers(text):
    """Status line and lower-cased headers of the last response in a curl -D dump."""
    blocks = [b for b in text.replace('\r\n', '\n').split('\n\n') if b.strip()]
    lines = blocks[-1].split('\n')
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        k = k.strip().lower()
        headers[k] = headers[k] + ', ' + v.strip() if k in headers else v.strip()
    return lines[0], headers


# ---------------------------------------------------------------------------------
# Raw HTTP/2 (h2c with prior knowledge), for what curl will not send: streams left
# open, bodies that trickle or stop, streams reset by the thousand

H2_PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
H2_DATA, H2_HEADERS, H2_RST_STREAM, H2_SETTINGS, H2_PING, H2_GOAWAY, H2_WINDOW_UPDATE = \
    0, 1, 3, 4, 6, 7, 8
H2_END_STREAM, H2_END_HEADERS, H2_ACK = 0x1, 0x4, 0x1
H2_NO_ERROR, H2_STREAM_CLOSED, H2_REFUSED_STREAM, H2_CANCEL, H2_ENHANCE_YOUR_CALM = 0, 5, 7, 8, 11
# The :status values libh2o sends from HPACK's static table (RFC 7541, appendix A).
STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}


def h2_frame(kind, flags, stream, payload=b''):
    return len(payload).to_bytes(3, 'big') + bytes([kind, flags]) + \
        stream.to_bytes(4, 'big') + payload


def _hpack_literal(name, value):
    """A header field as an HPACK literal without indexing, new name, no Huffman."""
    def string(b):
        assert len(b) < 127, 'long header values are not needed here'
        return bytes([len(b)]) + b
    return b'\x00' + string(_bytes(name)) + string(_bytes(value))


def h2_status(block):
    """The :status of a response header block: libh2o always puts it first, either
    indexed from the static table or as a literal of three digits."""
    if block[0] & 0x80:
        return STATIC_STATUS[block[0] & 0x7f]
    assert block[0] == 0x08 and block[1] == 3, 'unexpected first field %r' % block[:8]
    return int(block[2:5])


class H2:
    """One HTTP/2 connection, frames written and read by hand. Our receive windows are
    opened wide, so the server is never held up by us unless a test wants it."""

    def __init__(self, server, source=None, timeout=REQUEST_TIMEOUT):
        self.sock = raw_connect(server, source, timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = '127.0.0.1:%d' % server.port
        self.buf = b''
        self.closed = False
        self.goaway = None  # (last stream id, error code) of the first GOAWAY received
        self.pongs = 0      # PING frames the server acknowledged
        self.streams = {}   # stream id -> {'status', 'body', 'reset', 'ended'}
        self.sock.sendall(H2_PREFACE + h2_frame(H2_SETTINGS, 0, 0, (4).to_bytes(2, 'big') +
                                                 (1 << 30).to_bytes(4, 'big')) +
                          h2_frame(H2_WINDOW_UPDATE, 0, 0, (1 << 30).to_bytes(4, 'big')))

    def request_head(self, stream, method, path, headers=(), end_stream=False):
        """H2_HEADERS opening a stream (bytes, to send now or later)."""
        block = b''.join(_hpack_literal(n, v) for n, v in
                         [(':method', method), (':scheme', 'http'), (':authority', self.host),
                          (':path', path)] + list(headers))
        return h2_frame(H2_HEADERS, H2_END_HEADERS | (H2_END_STREAM if end_stream else 0), stream, block)

    @staticmethod
    def data_frames(stream, data, end_stream=False):
        """H2_DATA frames of at most 16 KiB carrying data (bytes to send)."""
        out = [h2_frame(H2_DATA, 0, stream, data[i:i + 16384]) for i in range(0, len(data), 16384)]
        if end_stream:
            out.append(h2_frame(H2_DATA, H2_END_STREAM, stream))
        return b''.join(out)

    @staticmethod
    def rst(stream, code=H2_CANCEL):
        return h2_frame(H2_RST_STREAM, 0, stream, code.to_bytes(4, 'big'))

    def send(self, data):
        """False once the server has closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self.closed = True
            return False

    def _frame(self):
        if len(self.buf) < 9:
            return None
        length = int.from_bytes(self.buf[:3], 'big')
        if len(self.buf) < 9 + length:
            return None
        kind, flags = self.buf[3], self.buf[4]
        stream = int.from_bytes(self.buf[5:9], 'big') & 0x7fffffff
        payload, self.buf = self.buf[9:9 + length], self.buf[9 + length:]
        return kind, flags, stream, payload

    def _note(self, kind, flags, stream, payload):
        st = self.streams.setdefault(stream, {'status': None, 'body': b'', 'reset': None,
                                              'ended': False})
        if kind == H2_HEADERS:
            st['status'] = h2_status(payload)
        elif kind == H2_DATA:
            st['body'] += payload
        elif kind == H2_RST_STREAM:
            st['reset'] = int.from_bytes(payload[:4], 'big')
        elif kind == H2_GOAWAY and self.goaway is None:  # the first says why
            self.goaway = (int.from_bytes(payload[:4], 'big') & 0x7fffffff,
                           int.from_bytes(payload[4:8], 'big'))
        elif kind == H2_SETTINGS and not flags & H2_ACK:
            self.send(h2_frame(H2_SETTINGS, H2_ACK, 0))
        elif kind == H2_PING and not flags & H2_ACK:
            self.send(h2_frame(H2_PING, H2_ACK, 0, payload))
        elif kind == H2_PING:
            self.pongs += 1
        if flags & H2_END_STREAM and kind in (H2_HEADERS, H2_DATA):
            st['ended'] = True

    def read(self, until, timeout):
        """Read frames until until(self) is true, the server closes, or timeout passes.
        True if until(self) became true."""
        deadline = time.monotonic() + timeout
        while not until(self):
            if self.closed:
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                return False
            except OSError:
                chunk = b''
            if not chunk:
                self.closed = True
                continue
            self.buf += chunk
            while True:
                frame = self._frame()
                if frame is None:
                    break
                self._note(*frame)
        return True

    def sync(self, timeout=5):
        """Wait until the server has read everything sent so far (a PING answered)."""
        want = self.pongs + 1
        self.send(h2_frame(H2_PING, 0, 0, b'syncsync'))
        return self.read(lambda c: c.pongs >= want, timeout)

    def answered(self, stream):
        """The stream's answer has ended (or the stream was reset)."""
        st = self.streams.get(stream)
        return st is not None and (st['ended'] or st['reset'] is not None)

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------------
# Tools on the source tree: make, the package list

def sh(argv, timeout=120, **kw):
    """Run a command to completion: CompletedProcess with text stdout and stderr."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def make(args, cwd=ROOT, env=None, timeout=120):
    """make in the source tree, with none of the caller's make or compiler settings
    (`make test` runs the tests with its own MAKEFLAGS in the environment)."""
    full = {k: v for k, v in os.environ.items()
            if k not in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'CFLAGS', 'CPPFLAGS', 'LDFLAGS')}
    full.update(env or {})
    return sh(['make', '--no-print-directory'] + list(args), cwd=cwd, env=full, timeout=timeout)


def listed_packages(*groups):
    """The Debian packages scripts/deps.sh installs for these groups."""
    r = sh([os.path.join(ROOT, 'scripts', 'deps.sh'), '--list'] + list(groups), timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


if __name__ == '__main__':
    sys.exit('harness.py is a library; run the tests with python3 test/run.py')
