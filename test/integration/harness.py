"""harness.py - the real raven-zero binary and a real redis-server, on free ports, in
the current test's temporary directory.

A test reads like the contract:

    with Redis() as redis, Server(redis) as server:
        status, headers, body = server.json('GET', '/health/')
        assert status == 200, body

Nothing here sleeps and hopes: conditions are polled with a deadline (wait_until).
Every process started here is registered (pid file and artifact list in the test's
temporary directory) so that test/run.py can check sanitizer output, show log tails on
failure, and kill whatever a test left behind.

Python 3.11 standard library only.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
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
    'IDLE_TIMEOUT', 'BODY_TIMEOUT', 'SHUTDOWN_TIMEOUT',
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
        'SECRET_PATH': path('storage', 'secret.key'),
        'LOG_PATH': path('logs', 'raven_zero.log'),
        'UPLOAD_RATE_LIMIT': '100000/second',
        'HEALTH_RATE_LIMIT': '100000/second',
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


# ---------------------------------------------------------------------------------
# Redis

class RedisError(Exception):
    pass


class Redis:
    """A real redis-server on a free port, storing nothing on disk.

    Redis(start=False) only reserves the port, for tests where the store is down at
    first; .start() and .stop() may be called again, always on the same port."""

    def __init__(self, start=True, port=None):
        self.port = port or free_port()
        self.dir = path('redis-%d' % self.port)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.log_path = os.path.join(self.dir, 'redis.log')
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
             '--save', '', '--appendonly', 'no', '--dir', self.dir],
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
        payload = [b'*%d\r\n' % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif not isinstance(a, bytes):
                a = str(a).encode()
            payload.append(b'$%d\r\n%s\r\n' % (len(a), a))
        with socket.create_connection(('127.0.0.1', self.port), timeout=timeout) as s:
            s.sendall(b''.join(payload))
            return _RespReader(s).read()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


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


class Server:
    """The binary under test, with per-test paths, WORKERS=2 and generous rate limits.

    redis: a Redis (its URL becomes REDIS_URL) or None (REDIS_URL then comes from env
    or points at a free port where nothing listens).
    env: overrides; a value of None removes the variable.
    args: extra command-line arguments (e.g. ['-c', 'file.yaml']).
    port: the port the harness talks to (default: the one LISTEN is set to).
    wait: 'healthy' (GET /health/ answers 200), 'up' (any HTTP answer) or None."""

    def __init__(self, redis=None, env=None, args=(), port=None, wait='healthy',
                 make_dirs=True):
        self.port = port or free_port()
        self.settings = default_settings(self.port, redis.url if redis else None)
        self.settings.update(env or {})
        self.args = list(args)
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
            self.proc = subprocess.Popen([binary()] + self.args,
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
        return http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout,
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
        boundary = '----rzboundary' + uuid.uuid4().hex
        parts = []
        for field in fields_order:
            if field == 'file':
                if data is None:
                    continue
                disp = 'form-data; name="file"'
                if filename is not None:
                    disp += '; filename="%s"' % filename
                parts.append(b'--%s\r\nContent-Disposition: %s\r\nContent-Type: %s\r\n\r\n'
                             % (boundary.encode(), disp.encode('utf-8'),
                                content_type.encode()) + data + b'\r\n')
            else:
                value = {'expiry': expiry, 'uses': uses}.get(field)
                if value is None:
                    continue
                parts.append(b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n'
                             b'%s\r\n' % (boundary.encode(), field.encode(),
                                          str(value).encode()))
        body = b''.join(parts) + b'--%s--\r\n' % boundary.encode()
        hdrs = {'Content-Type': 'multipart/form-data; boundary=' + boundary}
        hdrs.update(headers or {})
        return self.json('POST', path, body=body, headers=hdrs,
                         source_address=source_address)

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


if __name__ == '__main__':
    sys.exit('harness.py is a library; run the tests with python3 test/run.py')
