#!/usr/bin/env python3
"""bench.py - `make bench`: Raven Zero against Debian nginx, on this machine.

Starts a redis-server and ./raven-zero (WORKERS=2) from test/integration/harness.py, and
a Debian nginx (2 worker processes) on another loopback port, all in one temporary
directory, then measures, against both, in one run, every row of the goals table:

  status     wrk -c 50 GETs of /status/{key} over 200 live keys; nginx: `return 200`
             of a body of the same size from memory.
  downloads  wrk -c 50 (-c 16 for 10 MiB) with test/bench/download.lua: every request
             takes the next path of a list; for us the list holds fresh keys (uploaded
             just before with uses=5 by test/bench/keys.lua), each exactly 5 times, so
             no request hits a spent or unknown key (an unknown key would count towards
             the brute-force block). If the list runs out, the run is repeated with
             more keys. nginx: the same bytes as a static file (sendfile on).
  uploads    h2load --h1 -c 50 (-c 16 for 10 MiB): a fixed number of uploads of one
             body; N comes from a short pilot run (which also warms up) so that the
             measured run lasts about UPLOAD_SECONDS. Latencies and status codes come
             from h2load's per-request --log-file. Ours twice: the raw file as a PUT
             /{name}?uses=5&expiry=60, and a multipart POST /upload/ (uses=5,
             expiry=60, then the file). nginx twice: a WebDAV PUT (dav_methods PUT: the
             body goes to a temporary file under client_body_temp_path, on the same file
             system, then is renamed into place: it keeps the bytes, as we do, without
             parsing, sniffing, hashing or encrypting them), and the echo reader
             (client_body_in_file_only clean + echo_read_request_body: reads the body
             into a temporary file, answers 201 after the last byte, deletes the file).
             Before measuring, a 1 MiB POST checks that nginx really read every byte
             ($request_length and $request_body_file in its access log) and a 1 MiB PUT
             that it stored them; after each upload run the access log is checked again.
             The goal compares our PUT with nginx's PUT: the same bytes on the wire.
  probe      while 16 clients upload 10 MiB bodies (ours: POST /upload/; nginx: PUT)
             (PROBE_ROUNDS each), 2 keep-alive connections on each worker (placed with
             ss: more are opened until every worker holds two) ask /status one request
             after another: the worst worker's p99 says whether every event loop kept
             turning (goal: < 50 ms).
  rss        50 concurrent 10 MiB uploads, twice over: the largest anonymous RSS of a
             worker, sampled every 50 ms (goal: < 64 MiB).

Worker peak RSS: VmHWM of every `rz-worker` child of the master (and of every nginx
worker), reset before each measurement (echo 5 > /proc/PID/clear_refs) so the figure
belongs to that measurement.

The last table prints, per goal, ours and nginx's figures, the ratio, the goal and
whether this run met it (only when every answer of ours was 2xx). Output is
informational: the exit status is non-zero only when something could not run at all
(a missing tool, a server that did not start, a tool that crashed); slow numbers,
errors and non-2xx answers are reported, never failed on.

Object storage: then one node on OpenStack Swift's S3 API (STORAGE_URL; Swift started
here on loopback, as the tests do) against the same node on local disk, for uploads and
downloads of 1 KiB and 1 MiB at concurrency 1 and 50 and of 10 MiB at 1, with the CPU
time each request cost raven-zero's workers, Swift and redis (from /proc: where the
time goes). Skipped, saying so, when Swift is not installed.

Environment: RZ_BENCH_KEEP=1 keeps the temporary directory; RZ_BENCH_QUICK=1 shortens
every measurement (for trying the script out); RZ_BENCH_ONLY=ROW,... runs only those
rows: status, up-1KiB, up-1MiB, up-10MiB, down-1KiB, down-1MiB, down-10MiB, probe, rss;
RZ_BENCH_ONLY=s3 runs the object-storage rows alone, RZ_BENCH_S3=0 skips them.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BENCH_DIR = os.path.join(HERE, 'bench')

QUICK = os.environ.get('RZ_BENCH_QUICK') == '1'
UPLOAD_SECONDS = 1.0 if QUICK else 3.0     # target length of one measured upload run
DOWNLOAD_SECONDS = 1 if QUICK else 3       # wrk -d of one download run
KEY_MARGIN = 1.4                           # keys prepared / keys the estimate needs
MAX_DOWNLOAD_ATTEMPTS = 3                  # runs when the key list runs out
TOOL_TIMEOUT = 120.0                       # a single tool run longer than this is killed

SIZES = [('1KiB', 1024), ('1MiB', 1 << 20), ('10MiB', 10 << 20)]
CONCURRENCY = {'1KiB': 50, '1MiB': 50, '10MiB': 16}
STATUS_CONCURRENCY = 50
STATUS_KEYS = 200          # live keys the status requests cycle through
# The performance goals: ours/nginx req/s of the same run.
GOALS = {'status': 0.5, 'down 1KiB': 0.5, 'down 1MiB': 0.7, 'down 10MiB': 1.0,
         'up 1KiB': 1.0, 'up 1MiB': 1.0, 'up 10MiB': 1.0}
PROBE_UPLOADS = 16         # concurrent 10 MiB uploads during the loop probe
PROBE_CONNECTIONS = 2      # probe connections on each worker
PROBE_OPEN_MAX = 64        # connections opened at most to place them
PROBE_ROUNDS = 1 if QUICK else 3  # uploads per upload client during the probe
PROBE_P99_MS = 50
RSS_UPLOADS = 50           # concurrent 10 MiB uploads for the memory bound
RSS_ANON_MIB = 64
STATUS_BODY = ('{"key":"apple-banana-cherry","status":"active","remaining_uses":5,'
               '"expires_at":"2026-01-01T00:00:00Z","is_accessible":true}\\n')
BOUNDARY = 'RavenZeroBenchBoundary7MA4YWxkTrZu0gW'

# Under build/, not /tmp: on a long-lived machine /tmp's file system block group is
# crowded by test runs, and ext4 then spends most of an upload hunting for a free inode
# (measured: ~800 us per file created in /tmp against ~10 us under /work).
os.makedirs(os.path.join(ROOT, 'build'), exist_ok=True)
WORK = tempfile.mkdtemp(prefix='rz-bench-', dir=os.path.join(ROOT, 'build'))
os.environ['RZ_TEST_TMP'] = WORK  # the harness keeps its files (and pid list) here
sys.path.insert(0, os.path.join(HERE, 'integration'))
import harness as H  # noqa: E402

_procs = []   # every tool / nginx Popen running now; main() stops them on the way out
_extra_pids = set()  # nginx workers seen, in case the master dies first


def say(*args):
    print(*args, flush=True)


class CannotRun(Exception):
    """Something the benchmark needs could not run at all."""


# ---------------------------------------------------------------------------------
# Small helpers

def percentile(values, p):
    """Nearest-rank percentile of a list of numbers (None if empty)."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def which(tool):
    p = shutil.which(tool) or (tool if os.path.exists(tool) else None)
    if not p:
        raise CannotRun('%s is not installed (make bench / scripts/deps.sh bench installs it)'
                        % tool)
    return p


def run_tool(cmd, timeout=TOOL_TIMEOUT, label=''):
    """Run a load tool to completion; (returncode, stdout, stderr). Killed on timeout
    (returncode None)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=WORK)
    _procs.append(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        say('    !! %s killed after %.0fs' % (label or cmd[0], timeout))
        return None, out, err
    finally:
        _procs.remove(proc)


def status_of(pid):
    """{'VmHWM': kB, 'VmRSS': kB, 'RssAnon': kB, 'RssFile': kB} of a process, or None."""
    try:
        with open('/proc/%d/status' % pid) as f:
            out = {}
            for line in f:
                if line.startswith(('VmHWM:', 'VmRSS:', 'RssAnon:', 'RssFile:')):
                    k, v = line.split(':', 1)
                    out[k] = int(v.split()[0])
            return out
    except OSError:
        return None


def reset_peak(pids):
    """Reset VmHWM to the current RSS (Linux >= 4.0). False if not possible."""
    ok = True
    for pid in pids:
        try:
            with open('/proc/%d/clear_refs' % pid, 'w') as f:
                f.write('5')
        except OSError:
            ok = False
    return ok


def peak_rss_mib(pids):
    """The largest VmHWM among pids, in MiB (None if none could be read)."""
    vals = [s['VmHWM'] for s in (status_of(p) for p in pids) if s and 'VmHWM' in s]
    return max(vals) / 1024.0 if vals else None


class RssSampler(threading.Thread):
    """Samples RssAnon and RssFile of some processes every 50 ms while a tool runs:
    VmHWM says how high RSS went, this says how much of it was anonymous memory (heap)
    and how much file-backed pages (e.g. libh2o's mmap-ed request body buffers)."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = list(pids)
        self.anon = {}
        self.file = {}
        self.halt = threading.Event()

    def run(self):
        while True:
            for pid in self.pids:
                st = status_of(pid)
                if st:
                    self.anon[pid] = max(self.anon.get(pid, 0), st.get('RssAnon', 0))
                    self.file[pid] = max(self.file.get(pid, 0), st.get('RssFile', 0))
            if self.halt.wait(0.05):
                break

    def finish(self):
        """(peak RssAnon, peak RssFile) of one process, in MiB."""
        self.halt.set()
        self.join()
        return (max(self.anon.values()) / 1024.0 if self.anon else None,
                max(self.file.values()) / 1024.0 if self.file else None)


def file_size(p):
    try:
        return os.path.getsize(p)
    except OSError:
        return 0


def settle(path_, quiet=0.3, limit=5.0):
    """Wait until a log file has stopped growing for `quiet` seconds (bounded)."""
    deadline = time.monotonic() + limit
    last, since = file_size(path_), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = file_size(path_)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def quiesce(trash_dirs, limit=20.0):
    """Start every measurement from the same state: the shredder has finished with the
    files burned by the previous run (its trash directory is empty) and dirty pages are
    written back (os.sync), so one run's disk writes do not slow the next one down.
    Returns the seconds it took."""
    t0 = time.monotonic()
    deadline = t0 + limit
    for d in trash_dirs:
        while time.monotonic() < deadline:
            try:
                if not os.listdir(d):
                    break
            except OSError:
                break
            time.sleep(0.05)
    os.sync()
    return time.monotonic() - t0


def read_from(path_, offset):
    with open(path_, 'rb') as f:
        f.seek(offset)
        data = f.read()
    # only complete lines
    cut = data.rfind(b'\n')
    return data[:cut + 1] if cut >= 0 else b''


# ---------------------------------------------------------------------------------
# Payloads

def make_payloads():
    """Per size: the file bytes (data/<label>.bin, also nginx's static file) and the
    multipart body uploading them with uses=5, expiry=60."""
    os.makedirs(os.path.join(WORK, 'data'), exist_ok=True)
    os.makedirs(os.path.join(WORK, 'www', 'files'), exist_ok=True)
    out = {}
    for label, size in SIZES:
        data = os.urandom(size)
        raw = os.path.join(WORK, 'data', label + '.bin')
        with open(raw, 'wb') as f:
            f.write(data)
        shutil.copyfile(raw, os.path.join(WORK, 'www', 'files', label + '.bin'))
        b = BOUNDARY.encode()
        body = (b'--' + b + b'\r\nContent-Disposition: form-data; name="uses"\r\n\r\n5\r\n'
                + b'--' + b + b'\r\nContent-Disposition: form-data; name="expiry"\r\n\r\n60\r\n'
                + b'--' + b + b'\r\nContent-Disposition: form-data; name="file"; '
                + b'filename="bench-' + label.encode() + b'.bin"\r\n'
                + b'Content-Type: application/octet-stream\r\n\r\n'
                + data + b'\r\n--' + b + b'--\r\n')
        body_path = os.path.join(WORK, 'data', 'body-' + label + '.bin')
        with open(body_path, 'wb') as f:
            f.write(body)
        out[label] = {'size': size, 'raw': raw, 'body': body_path, 'body_len': len(body),
                      'sha256': hashlib.sha256(data).hexdigest(),
                      'static': '/files/%s.bin' % label}
    return out


# ---------------------------------------------------------------------------------
# nginx

NGINX_CONF = """\
# Written by test/bench.py: the reference server of `make bench`.
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
{user}daemon off;
master_process on;
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format bench '$request_method $uri $status $request_length $bytes_sent '
                     '$request_time "$request_body_file"';
    access_log {dir}/access.log bench;
    client_body_temp_path {dir}/body_temp;
    proxy_temp_path {dir}/proxy_temp;
    fastcgi_temp_path {dir}/fastcgi_temp;
    uwsgi_temp_path {dir}/uwsgi_temp;
    scgi_temp_path {dir}/scgi_temp;
    types {{ application/octet-stream bin; }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_max_body_size 20m;
    server {{
        listen 127.0.0.1:{port};
        root {www};
        location /files/ {{ }}
        # Upload reference: read the whole body into a temporary file, answer 201 only
        # once it is all there, then delete the file.
        location /upload/ {{
            client_body_buffer_size 1m;
            client_body_in_file_only clean;
            echo_read_request_body;
            echo_status 201;
            echo ok;
        }}
        # Upload reference that keeps the bytes, as we do: WebDAV PUT writes the body to
        # a temporary file (client_body_temp_path, same file system) and renames it
        # into place under {www}/dav/.
        location /dav/ {{
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw;
        }}
        # Status reference: an answer of about our status answer's size, from memory.
        location = /status200 {{
            default_type application/json;
            return 200 '{status_body}';
        }}
    }}
}}
"""


class Nginx:
    def __init__(self):
        self.dir = os.path.join(WORK, 'nginx')
        os.makedirs(os.path.join(self.dir, 'body_temp'), exist_ok=True)
        os.makedirs(os.path.join(WORK, 'www', 'dav'), exist_ok=True)
        self.port = H.free_port()
        self.conf = os.path.join(self.dir, 'nginx.conf')
        self.access_log = os.path.join(self.dir, 'access.log')
        self.error_log = os.path.join(self.dir, 'error.log')
        user = 'user root;\n' if os.geteuid() == 0 else ''
        with open(self.conf, 'w') as f:
            f.write(NGINX_CONF.format(user=user, dir=self.dir, port=self.port,
                                      www=os.path.join(WORK, 'www'),
                                      status_body=STATUS_BODY))
        self.proc = None

    def start(self):
        nginx = which('/usr/sbin/nginx')
        check = subprocess.run([nginx, '-t', '-q', '-p', self.dir, '-c', self.conf],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise CannotRun('nginx -t rejects the reference config:\n' + check.stderr)
        self.stderr = open(os.path.join(self.dir, 'stderr.txt'), 'wb')
        self.proc = subprocess.Popen([nginx, '-p', self.dir, '-c', self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self.stderr,
                                     stderr=subprocess.STDOUT)
        _procs.append(self.proc)
        try:
            H.wait_until(lambda: self._up(), 10.0, message='nginx on port %d' % self.port)
        except H.Timeout:
            raise CannotRun('nginx did not start: ' + H._tail(self.error_log)) from None
        H.wait_until(lambda: len(self.workers()) == 2, 10.0, message='2 nginx workers')
        return self

    def _up(self):
        if self.proc.poll() is not None:
            raise CannotRun('nginx exited with %s: %s' % (self.proc.returncode,
                                                          H._tail(self.error_log)))
        return H.port_open(self.port)

    def workers(self):
        if self.proc is None or self.proc.poll() is not None:
            return []
        pids = [p for p in H.children_of(self.proc.pid) if H.comm(p) == 'nginx']
        _extra_pids.update(pids)
        return pids

    def stop(self):
        if self.proc is None:
            return
        self.workers()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc in _procs:
            _procs.remove(self.proc)
        self.stderr.close()
        left = [p for p in _extra_pids if H.alive(p)]
        if left:
            H.kill_and_reap(left)


def nginx_log_tally(text):
    """Access log lines -> ({(method, prefix, status): count}, [parsed POST and PUT
    lines])."""
    tally, posts = {}, []
    for line in text.decode('utf-8', 'replace').splitlines():
        parts = line.split(' ')
        if len(parts) < 7:
            continue
        method, uri, status = parts[0], parts[1], parts[2]
        prefix = '/' + uri.strip('/').split('/')[0] + '/'
        tally[(method, prefix, status)] = tally.get((method, prefix, status), 0) + 1
        if method in ('POST', 'PUT'):
            posts.append({'method': method, 'status': status,
                          'request_length': int(parts[3]),
                          'body_file': parts[6].strip('"')})
    return tally, posts


# ---------------------------------------------------------------------------------
# Our server's log

def ours_log_tally(text):
    """Log lines -> ({(method, prefix, status): count}, {event: count} of warnings and
    errors, [unexpected non-request events])."""
    tally, problems, odd = {}, {}, []
    for raw in text.split(b'\n'):
        if not raw.strip():
            continue
        try:
            o = json.loads(raw)
        except ValueError:
            problems['(line that is not JSON)'] = problems.get('(line that is not JSON)', 0) + 1
            continue
        if o.get('event') == 'request':
            p = o.get('path') or '?'
            prefix = '/' + p.strip('/').split('/')[0] + '/'
            k = (o.get('method'), prefix, str(o.get('status_code')))
            tally[k] = tally.get(k, 0) + 1
        if o.get('level') in ('warning', 'error'):
            name = '%s %s' % (o.get('level'), o.get('event'))
            problems[name] = problems.get(name, 0) + 1
            if len(odd) < 10:
                odd.append(o)
        elif o.get('event') in ('child_exited', 'child_started') and o.get('kind') == 'worker':
            odd.append(o)
    return tally, problems, odd


def fmt_tally(tally):
    return ', '.join('%s %s %s: %d' % (m, p, s, n)
                     for (m, p, s), n in sorted(tally.items(), key=lambda kv: -kv[1]))


# ---------------------------------------------------------------------------------
# Measurements

def threads_for(c):
    return 1 if c == 1 else 2


def pilot_requests(size, c):
    """A pilot run of roughly half a second or less, whatever the server."""
    if size <= 4096:
        return 300 if c == 1 else 1000
    if size <= (1 << 20):
        return 30 if c == 1 else 100
    return 5 if c == 1 else 50


def h2load_upload(url, payload, c, n, label, mode='post'):
    """One h2load run of n uploads at concurrency c; a result dict (or None if h2load
    itself failed). mode 'post': the multipart body; 'put': the raw file bytes as the
    body of a PUT."""
    log = os.path.join(WORK, 'h2load-%s.log' % re.sub(r'[^A-Za-z0-9]+', '-', label))
    if os.path.exists(log):
        os.unlink(log)
    if mode == 'put':
        body, headers = payload['raw'], ['-H', ':method: PUT', '-H',
                                         'Content-Type: application/octet-stream']
    else:
        body, headers = payload['body'], ['-H', 'Content-Type: multipart/form-data; '
                                          'boundary=' + BOUNDARY]
    cmd = ['h2load', '--h1', '-n', str(n), '-c', str(c), '-t', str(threads_for(c)),
           '-d', body] + headers + ['--log-file', log, url]
    code, out, err = run_tool(cmd, label=label)
    m = re.search(r'finished in ([\d.]+)(us|ms|s),', out)
    if code != 0 or not m:
        say('    !! h2load failed (exit %s): %s' % (code, (err or out)[-500:].strip()))
        return None
    secs = float(m.group(1)) * {'us': 1e-6, 'ms': 1e-3, 's': 1.0}[m.group(2)]
    statuses, lat = {}, []
    with open(log) as f:
        for line in f:
            parts = line.split('\t')
            if len(parts) < 3:
                continue
            st = int(parts[1])
            statuses[st] = statuses.get(st, 0) + 1
            lat.append(int(parts[2]) / 1000.0)
    mreq = re.search(r'requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, '
                     r'(\d+) failed, (\d+) errored, (\d+) timeout', out)
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    return {'n': n, 'secs': secs, 'ok': ok, 'errors': n - ok, 'statuses': statuses,
            'rps': ok / secs if secs else 0.0,
            'mbs': ok * payload['size'] / secs / 1e6 if secs else 0.0,
            'p50': percentile(lat, 50), 'p99': percentile(lat, 99),
            'h2load': mreq.group(0) if mreq else None}


def measure_upload(srv, url, payload, c, label, mode='post'):
    """Pilot (warm-up, sizes the run) then the measured fixed-count run."""
    pilot = h2load_upload(url, payload, c, pilot_requests(payload['size'], c),
                          label + '-pilot', mode)
    if pilot is None:
        return None
    if pilot['ok'] and pilot['secs'] > 0:
        n = int(pilot['ok'] / pilot['secs'] * UPLOAD_SECONDS)
    else:
        n = pilot['n']
    n = max(n, 2 * c, 10)
    n = min(n, 200000)
    n = -(-n // c) * c  # a multiple of c: every client does the same number
    before = srv.before_case()
    r = h2load_upload(url, payload, c, n, label, mode)
    srv.after_case(r, before)
    return r


def write_path_lists(prefix, nthreads, paths_per_thread):
    for i, paths in enumerate(paths_per_thread, 1):
        with open('%s.%d' % (prefix, i), 'w') as f:
            f.write(''.join(p + '\n' for p in paths))


def wrk_download(url, c, prefix, label):
    cmd = ['wrk', '-t', str(threads_for(c)), '-c', str(c), '-d', '%ds' % DOWNLOAD_SECONDS,
           '--timeout', '60s', '-s', os.path.join(BENCH_DIR, 'download.lua'), url,
           '--', prefix]
    code, out, err = run_tool(cmd, label=label)
    m = re.search(r'^BENCH (\{.*\})$', out, re.M)
    if code != 0 or not m:
        say('    !! wrk failed (exit %s): %s' % (code, (err or out)[-500:].strip()))
        return None
    return json.loads(m.group(1))


def download_result(w, payload):
    secs = w['duration_us'] / 1e6
    ok = w['requests'] - w['status']
    errors = w['status'] + w['connect'] + w['read'] + w['write'] + w['timeout']
    return {'secs': secs, 'ok': ok, 'errors': errors, 'rps': ok / secs,
            'mbs': ok * payload['size'] / secs / 1e6,
            'p50': w['p50_us'] / 1000.0, 'p99': w['p99_us'] / 1000.0,
            'wrk': w, 'statuses': None}


class Ours:
    name = 'ours'

    def __init__(self, server):
        self.server = server
        self.url = 'http://127.0.0.1:%d' % server.port
        self.workers = server.children()['workers']
        # Where the shredder takes burned files: "trash" next to TEMP_PATH.
        self.trash = [os.path.join(os.path.dirname(server.settings['TEMP_PATH'].rstrip('/')),
                                   'trash')]

    def worker_pids(self):
        return self.server.children()['workers']

    def before_case(self):
        if not self.server.running():
            raise CannotRun('raven-zero exited with %s' % self.server.proc.returncode)
        pids = self.worker_pids()
        quiesce(self.trash)
        log = settle(self.server.log_path, quiet=0.2)
        self.rss_reset = reset_peak(pids)
        sampler = RssSampler(pids)
        sampler.start()
        return {'pids': pids, 'log': log, 'sampler': sampler}

    def after_case(self, r, before):
        pids = self.worker_pids()
        anon, filed = before['sampler'].finish()
        if r is None:
            return
        r['rss'] = peak_rss_mib(pids)
        r['anon'], r['file'] = anon, filed
        r['rss_reset'] = self.rss_reset
        settle(self.server.log_path)
        tally, problems, odd = ours_log_tally(read_from(self.server.log_path,
                                                        before['log']))
        r['log_tally'] = tally
        r['problems'] = problems
        r['odd'] = odd
        if sorted(pids) != sorted(before['pids']):
            r.setdefault('notes', []).append(
                'worker pids changed during the run: %s -> %s (a worker died)'
                % (before['pids'], pids))
        if not self.server.running():
            r.setdefault('notes', []).append('raven-zero exited during the run')


class NginxSide:
    name = 'nginx'

    def __init__(self, nginx, trash):
        self.nginx = nginx
        self.trash = trash
        self.url = 'http://127.0.0.1:%d' % nginx.port

    def before_case(self):
        if self.nginx.proc.poll() is not None:
            raise CannotRun('nginx exited with %s' % self.nginx.proc.returncode)
        pids = self.nginx.workers()
        quiesce(self.trash)
        log = settle(self.nginx.access_log, quiet=0.1, limit=2)
        self.rss_reset = reset_peak(pids)
        sampler = RssSampler(pids)
        sampler.start()
        return {'pids': pids, 'log': log, 'sampler': sampler}

    def after_case(self, r, before):
        pids = self.nginx.workers()
        anon, filed = before['sampler'].finish()
        if r is None:
            return
        r['rss'] = peak_rss_mib(pids)
        r['anon'], r['file'] = anon, filed
        r['rss_reset'] = self.rss_reset
        settle(self.nginx.access_log, quiet=0.1, limit=2)
        tally, posts = nginx_log_tally(read_from(self.nginx.access_log, before['log']))
        r['log_tally'] = tally
        r['posts'] = posts


class KeyMaker:
    """Prepares fresh keys of one size on our server with wrk + keys.lua."""

    def __init__(self, ours, payloads, name=''):
        self.ours = ours
        self.payloads = payloads
        self.name = name  # in the key files' names: one maker per server
        self.n = 0

    def make(self, label, count):
        p = self.payloads[label]
        self.n += 1
        prefix = os.path.join(WORK, 'keys-%s%s-%d' % (self.name, label, self.n))
        cmd = ['wrk', '-t', '2', '-c', '16', '-d', '%ds' % int(TOOL_TIMEOUT),
               '--timeout', '60s', '-s', os.path.join(BENCH_DIR, 'keys.lua'),
               self.ours.url + '/upload/', '--', p['body'], BOUNDARY, prefix]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=WORK)
        _procs.append(proc)
        try:
            while proc.poll() is None:
                if len(self._read(prefix)) >= count \
                        or time.monotonic() - t0 > TOOL_TIMEOUT - 5:
                    break
                time.sleep(0.05)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
        finally:
            _procs.remove(proc)
        keys = self._read(prefix)
        say('    prepared %d keys of %s in %.1fs' % (len(keys), label,
                                                    time.monotonic() - t0))
        if len(keys) < count:
            raise CannotRun('could not prepare %d keys of %s (got %d); wrk said: %s'
                            % (count, label, len(keys), (err or out)[-400:]))
        return keys[:count]

    @staticmethod
    def _read(prefix):
        keys = []
        for i in (1, 2):
            try:
                with open('%s.%d' % (prefix, i)) as fh:
                    keys += [line.strip() for line in fh if line.endswith('\n')]
            except OSError:
                pass
        return keys


def measure_download_ours(ours, keymaker, payload, label, c, est_rps, tag):
    nthreads = threads_for(c)
    est = est_rps
    for attempt in range(1, MAX_DOWNLOAD_ATTEMPTS + 1):
        need = int(est * DOWNLOAD_SECONDS * KEY_MARGIN / 5) + 10
        keys = keymaker.make(label, need)
        slices = [keys[i::nthreads] for i in range(nthreads)]
        # Each key 5 times: round after round through the thread's slice.
        prefix = os.path.join(WORK, 'paths-%s' % tag)
        write_path_lists(prefix, nthreads, [s * 5 for s in slices])
        before = ours.before_case()
        w = wrk_download(ours.url, c, prefix, tag)
        if w is None:
            ours.after_case(None, before)
            return None
        r = download_result(w, payload)
        ours.after_case(r, before)
        r['keys'] = len(keys)
        if w['wraps'] == 0:
            return r
        # Every use was taken before the run ended: the rate was above r['rps'], by how
        # much is unknown (the requests after the list ran out were fast 410s, so
        # `issued` says nothing). Three times the guess, or what was seen, if more.
        est = max(est, r['rps']) * 3
        say('    key list ran out (%d requests issued for %d keys x 5 uses): again '
            'with more keys' % (w['issued'], len(keys)))
    r.setdefault('notes', []).append('key list ran out even on the last attempt: some '
                                     'requests hit spent keys (410)')
    return r


def measure_download_nginx(ng, payload, c, tag):
    nthreads = threads_for(c)
    prefix = os.path.join(WORK, 'paths-%s' % tag)
    write_path_lists(prefix, nthreads, [[payload['static']]] * nthreads)
    before = ng.before_case()
    w = wrk_download(ng.url, c, prefix, tag)
    if w is None:
        ng.after_case(None, before)
        return None
    r = download_result(w, payload)
    ng.after_case(r, before)
    return r


def status_paths(keys):
    return ['/status/' + k.rsplit('/', 1)[-1] for k in keys]


def measure_status(srv, paths, c, tag):
    """wrk GETs of a list of paths (status never takes a use: the list may wrap)."""
    nthreads = threads_for(c)
    prefix = os.path.join(WORK, 'paths-%s' % tag)
    write_path_lists(prefix, nthreads, [paths[i::nthreads] or paths for i in range(nthreads)])
    before = srv.before_case()
    w = wrk_download(srv.url, c, prefix, tag)
    if w is None:
        srv.after_case(None, before)
        return None
    r = download_result(w, {'size': 0})
    srv.after_case(r, before)
    return r


def socket_owner(port, local_port, pids):
    """Which of pids holds the server side of our connection from local_port (None
    until one has accepted it)."""
    out = subprocess.run(['ss', '-tnpH', 'state', 'established', '( sport = :%d )' % port],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[3].endswith(':%d' % local_port):
            for pid in re.findall(r'pid=(\d+)', line):
                if int(pid) in pids:
                    return int(pid)
    return None


def probe_connections(port, pids):
    """Keep-alive connections, PROBE_CONNECTIONS per worker: connections go to whichever
    worker accepts first, so more are opened (up to PROBE_OPEN_MAX) until every worker
    holds its share. [(connection, worker pid)]."""
    import http.client
    conns, per = [], {pid: 0 for pid in pids}
    for _ in range(PROBE_OPEN_MAX):
        if all(n >= PROBE_CONNECTIONS for n in per.values()):
            break
        c = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
        c.connect()
        local = c.sock.getsockname()[1]
        try:
            owner = H.wait_until(lambda: socket_owner(port, local, set(pids)), 5.0,
                                 message='a worker to accept the probe connection')
        except H.Timeout:
            c.close()
            continue
        if per[owner] >= PROBE_CONNECTIONS:
            c.close()
            continue
        per[owner] += 1
        conns.append((c, owner))
    return conns


class Prober(threading.Thread):
    """One connection asking for a path over and over until stopped; its latencies."""

    def __init__(self, conn, path):
        super().__init__(daemon=True)
        self.conn, self.path = conn, path
        self.lat, self.errors = [], 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            t0 = time.monotonic()
            try:
                self.conn.request('GET', self.path)
                resp = self.conn.getresponse()
                resp.read()
                ok = 200 <= resp.status < 300
            except OSError:
                ok = False
            self.lat.append((time.monotonic() - t0) * 1000.0)
            if not ok:
                self.errors += 1
                return


def measure_probe(srv, url, payload, mode, probe_path, tag):
    """PROBE_UPLOADS concurrent uploads of payload, PROBE_ROUNDS each, and all the while
    PROBE_CONNECTIONS connections on every worker asking for probe_path one request
    after another: the worst worker's probe latency says whether its event loop kept
    turning under the uploads."""
    before = srv.before_case()
    port = int(srv.url.rsplit(':', 1)[1])
    conns = probe_connections(port, before['pids'])
    probers = [Prober(c, probe_path) for c, _ in conns]
    for p in probers:
        p.start()
    try:
        up = h2load_upload(url, payload, PROBE_UPLOADS, PROBE_UPLOADS * PROBE_ROUNDS,
                           tag + '-uploads', mode)
    finally:
        for p in probers:
            p.halt.set()
        for p in probers:
            p.join(70)
        for c, _ in conns:
            c.close()
    if up is None or not probers:
        srv.after_case(None, before)
        if not probers:
            say('    !! no probe connection could be placed on the workers')
        return None
    lat = [x for p in probers for x in p.lat]
    by_worker = {}
    for p, (_, pid) in zip(probers, conns):
        by_worker.setdefault(pid, []).extend(p.lat)
    errors = sum(p.errors for p in probers)
    r = {'ok': len(lat) - errors, 'errors': errors, 'rps': 0.0, 'mbs': 0.0,
         'p50': percentile(lat, 50), 'max': max(lat) if lat else None,
         'p99': max(percentile(v, 99) for v in by_worker.values()),
         'workers': {pid: (len(v), percentile(v, 99)) for pid, v in by_worker.items()},
         'uploads': up, 'statuses': None}
    srv.after_case(r, before)
    return r


def measure_rss(srv, url, payload, c, mode, tag):
    """c concurrent uploads of payload, 2 rounds: the workers' peak anonymous RSS."""
    before = srv.before_case()
    r = h2load_upload(url, payload, c, 2 * c, tag, mode)
    srv.after_case(r, before)
    return r


# ---------------------------------------------------------------------------------
# Sanity checks before measuring

def check_ours(server, payloads):
    """One upload and download per size: the bytes must come back."""
    for label, p in payloads.items():
        with open(p['raw'], 'rb') as f:
            data = f.read()
        st, _, body = server.upload(data, filename='check.bin', uses=1, expiry=60)
        if st != 201:
            raise CannotRun('raven-zero: upload of %s answered %s %r' % (label, st, body))
        st, hdrs, got = server.request('GET', '/download/' + body['key'], timeout=60)
        if st != 200 or hashlib.sha256(got).hexdigest() != p['sha256']:
            raise CannotRun('raven-zero: download of %s answered %s with %d bytes '
                            '(sha256 mismatch or error)' % (label, st, len(got)))


def check_nginx(ng, payloads):
    """Static files come back intact, and POST /upload/ reads the whole body."""
    import http.client
    for label, p in payloads.items():
        conn = http.client.HTTPConnection('127.0.0.1', ng.port, timeout=30)
        conn.request('GET', p['static'])
        resp = conn.getresponse()
        got = resp.read()
        conn.close()
        if resp.status != 200 or hashlib.sha256(got).hexdigest() != p['sha256']:
            raise CannotRun('nginx: GET %s answered %d with %d bytes'
                            % (p['static'], resp.status, len(got)))
    p = payloads['1MiB']
    with open(p['body'], 'rb') as f:
        body = f.read()
    offset = settle(ng.access_log, quiet=0.1, limit=1)
    conn = http.client.HTTPConnection('127.0.0.1', ng.port, timeout=30)
    conn.request('POST', '/upload/', body=body,
                 headers={'Content-Type': 'multipart/form-data; boundary=' + BOUNDARY})
    resp = conn.getresponse()
    answer = resp.read()
    conn.close()
    settle(ng.access_log, quiet=0.1, limit=2)
    _, posts = nginx_log_tally(read_from(ng.access_log, offset))
    if resp.status != 201 or not posts or posts[-1]['request_length'] < len(body) \
            or not posts[-1]['body_file'] or posts[-1]['body_file'] == '-':
        raise CannotRun('nginx upload reference does not read the body: status %d %r, '
                        'log %r' % (resp.status, answer, posts[-1:]))
    with open(p['raw'], 'rb') as f:
        raw = f.read()
    conn = http.client.HTTPConnection('127.0.0.1', ng.port, timeout=30)
    conn.request('PUT', '/dav/check.bin', body=raw)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    try:
        with open(os.path.join(WORK, 'www', 'dav', 'check.bin'), 'rb') as f:
            stored = hashlib.sha256(f.read()).hexdigest()
    except OSError:
        stored = None
    if resp.status not in (201, 204) or stored != p['sha256']:
        raise CannotRun('nginx WebDAV PUT reference does not store the body: status %d'
                        % resp.status)
    conn = http.client.HTTPConnection('127.0.0.1', ng.port, timeout=30)
    conn.request('GET', '/status200')
    resp = conn.getresponse()
    resp.read()
    conn.close()
    if resp.status != 200:
        raise CannotRun('nginx /status200 answered %d' % resp.status)
    return posts[-1]


# ---------------------------------------------------------------------------------
# Report

def fnum(v, digits=1):
    if v is None:
        return '-'
    if abs(v) >= 1000:
        return '%.0f' % v
    if abs(v) >= 100:
        return '%.0f' % v if digits <= 1 else '%.1f' % v
    return ('%%.%df' % digits) % v


def ratio(a, b):
    if a is None or b is None or not b:
        return '-'
    return '%.2fx' % (a / b)


def print_table(rows):
    """rows: (case, [(server, result)], [(label, ours result, nginx result)])."""
    head = ('%-16s %-11s %9s %9s %9s %9s %7s %9s %9s %6s'
            % ('case', 'server', 'req/s', 'MB/s', 'p50 ms', 'p99 ms', 'non-2xx',
               'peak RSS', '(anon)', 'reqs'))
    say('')
    say(head)
    say('-' * len(head))
    for case, entries, ratios in rows:
        first = True
        for name, r in entries:
            label = case if first else ''
            first = False
            if r is None:
                say('%-16s %-11s %9s' % (label, name, 'did not run'))
                continue
            say('%-16s %-11s %9s %9s %9s %9s %7d %9s %9s %6d'
                % (label, name, fnum(r['rps']), fnum(r['mbs']),
                   fnum(r['p50'], 2), fnum(r['p99'], 2), r['errors'],
                   fnum(r.get('rss'), 1), '(%s)' % fnum(r.get('anon'), 1),
                   r['ok'] + r['errors']))
        for label, a, b in ratios:
            if a and b:
                say('%-16s %-11s %9s %9s %9s %9s' % ('', label, ratio(a['rps'], b['rps']),
                                                     ratio(a['mbs'], b['mbs']),
                                                     ratio(a['p50'], b['p50']),
                                                     ratio(a['p99'], b['p99'])))
    say('')
    say('req/s and MB/s count successful (2xx) answers only; MB = 10^6 bytes of file\n'
        'payload. ratio = ours/nginx (higher is better for req/s and MB/s, lower for\n'
        'latency). peak RSS = the largest VmHWM (MiB) of one worker process during that\n'
        'run; (anon) = its largest RssAnon sampled every 50 ms, i.e. heap rather than\n'
        'file-backed pages such as mmap-ed body buffers. reqs = requests answered or\n'
        'failed in the measured run; non-2xx = answers that were not 2xx, plus\n'
        'connections that failed.')


def verdict(ok, measured):
    return '-' if not measured else ('met' if ok else 'NOT MET')


def print_goals(goal_rows, probe, rss):
    """The goals table: one line per goal, measured in this run."""
    say('')
    say('goals (ratios of this run; a goal is met only when every answer of ours was 2xx)')
    head = '%-12s %-24s %9s %9s %8s %8s %-8s %s' % (
        'case', 'ours / nginx', 'ours', 'nginx', 'ratio', 'goal', 'result', 'non-2xx')
    say(head)
    say('-' * len(head))
    for case, how, o, n, goal in goal_rows:
        measured = bool(o and n and n['rps'])
        rr = o['rps'] / n['rps'] if measured else None
        met = measured and rr >= goal and o['errors'] == 0
        say('%-12s %-24s %9s %9s %8s %8s %-8s %s' % (
            case, how, fnum(o['rps']) if o else '-', fnum(n['rps']) if n else '-',
            '%.2fx' % rr if rr is not None else '-', '>= %.1fx' % goal,
            verdict(met, measured),
            'ours %s, nginx %s' % (o['errors'] if o else '-', n['errors'] if n else '-')))
    for name, r, ref in probe:
        measured = r is not None
        met = measured and r['p99'] < PROBE_P99_MS and r['errors'] == 0
        say('%-12s %-24s %9s %9s %8s %8s %-8s %s' % (
            name, 'status p99 ms (max)',
            '%s (%s)' % (fnum(r['p99'], 1), fnum(r['max'], 0)) if r else '-',
            '%s (%s)' % (fnum(ref['p99'], 1), fnum(ref['max'], 0)) if ref else '-',
            '', '< %d ms' % PROBE_P99_MS, verdict(met, measured),
            'probe %s, uploads %s' % (r['errors'], r['uploads']['errors']) if r else ''))
    for name, r in rss:
        measured = r is not None and r.get('anon') is not None
        met = measured and r['anon'] < RSS_ANON_MIB
        say('%-12s %-24s %9s %9s %8s %8s %-8s %s' % (
            name, 'worker anon RSS MiB', fnum(r['anon'], 1) if measured else '-', '', '',
            '< %d MiB' % RSS_ANON_MIB, verdict(met, measured),
            'uploads %s' % r['errors'] if r else ''))
    say('')
    say('status: GET /status/{key} of live keys against nginx `return 200` of a body of\n'
        'the same size. downloads: GET /download/{key} against nginx sending the same\n'
        'bytes from a static file (sendfile). uploads: our raw-body PUT /{name} against\n'
        'nginx WebDAV PUT, like with like: the same bytes on the wire, and both keep\n'
        'them in a file (nginx writes a temporary file and renames it; we parse nothing,\n'
        'but sniff, hash, encrypt and record them). Our multipart POST /upload/ is\n'
        'shown against the same reference, and nginx reading the body into a file it\n'
        'deletes at once (echo) beside it. probe: %d connections on each worker asking\n'
        '/status one request after another (p99 of the worst worker) while %d clients\n'
        'upload %d 10 MiB bodies each (ours:\n'
        'POST /upload/; nginx: PUT). rss: %d concurrent 10 MiB uploads, largest RssAnon\n'
        'of a worker sampled every 50 ms.'
        % (PROBE_CONNECTIONS, PROBE_UPLOADS, PROBE_ROUNDS, RSS_UPLOADS))


def wanted(row):
    only = os.environ.get('RZ_BENCH_ONLY', '')
    return not only or row in [x.strip() for x in only.split(',')]


def main():
    sys.stdout.reconfigure(line_buffering=True)
    t_start = time.monotonic()
    redis = server = nginx = None
    rows, goal_rows, probe_rows, rss_rows = [], [], [], []
    anomalies = []
    failures = []

    def run(who, case, measure):
        r = attempt(measure)
        if r is None:
            failures.append('%s %s' % (who, case))
        else:
            say('    %-11s %8.1f req/s  %8.1f MB/s  p50 %7.2f ms  p99 %7.2f ms  '
                'non-2xx %d  %s'
                % (who, r['rps'], r['mbs'], r['p50'] or 0, r['p99'] or 0, r['errors'],
                   'statuses %s' % r['statuses'] if r.get('statuses')
                   else 'log %s' % fmt_tally(r.get('log_tally') or {})))
            anomalies.append((case, who, r))
        return r

    try:
        for tool in ('wrk', 'h2load', 'ss', 'redis-server', '/usr/sbin/nginx', H.binary()):
            which(tool)
        say('bench: working in %s (%d cores, load average %s)'
            % (WORK, os.cpu_count() or 0, loadavg()))
        payloads = make_payloads()
        redis = H.Redis()
        if os.environ.get('RZ_BENCH_ONLY') == 's3':
            return object_storage_bench(redis, payloads, failures)
        try:
            server = H.Server(redis, env={
                'WORKERS': '2',
                'UPLOAD_RATE_LIMIT': '1000000/second',
                'MAX_UPLOADS_PER_CLIENT': '1000',
                'MAX_FILE_SIZE': str(16 << 20),
                'LOG_MAX_BYTES': str(1 << 30),
            })
        except AssertionError as e:
            raise CannotRun('raven-zero did not start: %s' % e) from None
        ours = Ours(server)
        say('bench: raven-zero pid %d on port %d (workers %s), redis on port %d'
            % (server.pid, server.port, ours.workers, redis.port))
        nginx = Nginx().start()
        ng = NginxSide(nginx, ours.trash)
        say('bench: nginx pid %d on port %d (workers %s)'
            % (nginx.proc.pid, nginx.port, nginx.workers()))
        check_ours(server, payloads)
        post = check_nginx(nginx, payloads)
        say('bench: checks passed (round trips intact; nginx read a %d-byte POST body '
            'into %s and stored a PUT body)' % (post['request_length'], post['body_file']))
        keymaker = KeyMaker(ours, payloads)
        status_keys = []

        if wanted('status') or wanted('probe'):
            status_keys = status_paths(keymaker.make('1KiB', STATUS_KEYS))

        for label, size in SIZES:
            p = payloads[label]
            c = CONCURRENCY[label]
            up_rps = 100.0
            if wanted('up-' + label):
                case = 'up %s c%d' % (label, c)
                say('bench: %s' % case)
                r_post = run('ours POST', case, lambda: measure_upload(
                    ours, ours.url + '/upload/', p, c, 'ours-post-' + label))
                r_put = run('ours PUT', case, lambda: measure_upload(
                    ours, ours.url + '/bench-%s.bin?uses=5&expiry=60' % label, p, c,
                    'ours-put-' + label, mode='put'))
                r_dav = run('nginx PUT', case, lambda: measure_upload(
                    ng, ng.url + '/dav/bench-%s.bin' % label, p, c, 'nginx-put-' + label,
                    mode='put'))
                r_echo = run('nginx echo', case, lambda: measure_upload(
                    ng, ng.url + '/upload/', p, c, 'nginx-echo-' + label))
                for r, want in ((r_dav, 'PUT'), (r_echo, 'POST')):
                    if r is None:
                        continue
                    mine = [q for q in r.get('posts', []) if q['method'] == want]
                    r['short_reads'] = sum(1 for q in mine if q['status'][0] == '2'
                                           and q['request_length'] < (
                                               p['size'] if want == 'PUT' else p['body_len']))
                    logged = sum(1 for q in mine if q['status'][0] == '2')
                    if logged != r['ok']:
                        r.setdefault('notes', []).append(
                            'h2load saw %d answers 2xx but the access log has %d'
                            % (r['ok'], logged))
                if r_post:
                    up_rps = r_post['rps']
                rows.append((case, [('ours PUT', r_put), ('ours POST', r_post),
                                    ('nginx PUT', r_dav), ('nginx echo', r_echo)],
                             [('PUT/PUT', r_put, r_dav), ('POST/PUT', r_post, r_dav),
                              ('POST/echo', r_post, r_echo)]))
                goal_rows.append(('up ' + label, 'PUT / WebDAV PUT', r_put, r_dav,
                                  GOALS['up ' + label]))
            if wanted('down-' + label):
                case = 'down %s c%d' % (label, c)
                say('bench: %s' % case)
                # A generous guess of the download rate, to prepare enough keys; a run
                # that runs out of keys is repeated with more.
                est = max(up_rps * (8 if size <= 4096 else 12), 50)
                r_o = run('ours', case, lambda: measure_download_ours(
                    ours, keymaker, p, label, c, est, 'ours-dl-%s-c%d' % (label, c)))
                r_n = run('nginx', case, lambda: measure_download_nginx(
                    ng, p, c, 'nginx-dl-%s-c%d' % (label, c)))
                rows.append((case, [('ours', r_o), ('nginx', r_n)], [('ratio', r_o, r_n)]))
                goal_rows.append(('down ' + label, 'GET / static sendfile', r_o, r_n,
                                  GOALS['down ' + label]))

        if wanted('status'):
            case = 'status c%d' % STATUS_CONCURRENCY
            say('bench: %s' % case)
            r_o = run('ours', case, lambda: measure_status(ours, status_keys,
                                                           STATUS_CONCURRENCY, 'ours-status'))
            r_n = run('nginx', case, lambda: measure_status(ng, ['/status200'],
                                                            STATUS_CONCURRENCY, 'nginx-status'))
            rows.append((case, [('ours', r_o), ('nginx', r_n)], [('ratio', r_o, r_n)]))
            goal_rows.insert(0, ('status', 'GET / return 200', r_o, r_n, GOALS['status']))

        if wanted('probe'):
            case = 'probe'
            say('bench: /status probe during %d concurrent 10 MiB uploads, %d each'
                % (PROBE_UPLOADS, PROBE_ROUNDS))
            p = payloads['10MiB']
            r_o = run('ours', case, lambda: measure_probe(
                ours, ours.url + '/upload/', p, 'post', status_keys[0], 'ours-probe'))
            r_n = run('nginx', case, lambda: measure_probe(
                ng, ng.url + '/dav/probe.bin', p, 'put', '/status200', 'nginx-probe'))
            for who, r in (('ours', r_o), ('nginx', r_n)):
                if r:
                    say('    %-11s uploads: %d done, %d non-2xx, %.1f MB/s; probe max %.1f ms; '
                        'per worker (requests, p99 ms): %s'
                        % (who, r['uploads']['ok'], r['uploads']['errors'],
                           r['uploads']['mbs'], r['max'],
                           ', '.join('%d: %d, %.1f' % (pid, n, p99 or 0)
                                     for pid, (n, p99) in sorted(r['workers'].items()))))
            probe_rows.append(('probe', r_o, r_n))

        if wanted('rss'):
            case = 'rss c%d' % RSS_UPLOADS
            say('bench: worker memory with %d concurrent 10 MiB uploads' % RSS_UPLOADS)
            r_o = run('ours', case, lambda: measure_rss(
                ours, ours.url + '/upload/', payloads['10MiB'], RSS_UPLOADS, 'post',
                'ours-rss'))
            rows.append((case, [('ours POST', r_o)], []))
            rss_rows.append(('rss', r_o))

        print_table(rows)
        print_goals(goal_rows, probe_rows, rss_rows)
        report_anomalies(anomalies)
        if os.environ.get('RZ_BENCH_S3') != '0' and wanted('s3'):
            server.stop()
            object_storage_bench(redis, payloads, failures)
        if not all(r.get('rss_reset', True) for _, _, r in anomalies):
            say('note: could not reset VmHWM (clear_refs); RSS figures are peaks since '
                'the start of the process')
    finally:
        for p in list(_procs):
            if p.poll() is None:
                p.kill()
                p.wait()
        if nginx:
            nginx.stop()
        if server:
            server.stop()
        if redis:
            redis.stop()
        if os.environ.get('RZ_BENCH_KEEP') == '1':
            say('bench: kept %s' % WORK)
        else:
            shutil.rmtree(WORK, ignore_errors=True)
    say('bench: done in %.0fs (load average now %s; the load tools, redis and both '
        'servers share these cores, so anything else running skews the figures)'
        % (time.monotonic() - t_start, loadavg()))
    if failures:
        say('bench: these measurements could not run: %s' % ', '.join(failures))
        return 1
    return 0


# ---- one node on object storage against the same node on local disk ----------------

S3_CASES = [('1KiB', 1), ('1KiB', 50), ('1MiB', 1), ('1MiB', 50), ('10MiB', 1)]
if os.environ.get('RZ_BENCH_S3_CASES'):
    S3_CASES = [(a, int(b)) for a, b in (x.split(':') for x in os.environ['RZ_BENCH_S3_CASES'].split(','))]


def cpu_seconds(pids):
    """utime + stime of these processes (and their reaped children) now."""
    total = 0.0
    for pid in pids:
        try:
            with open('/proc/%d/stat' % pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15]) / os.sysconf('SC_CLK_TCK')
    return total


def bench_server(redis, extra):
    env = {'WORKERS': '2', 'UPLOAD_RATE_LIMIT': '1000000/second', 'MAX_UPLOADS_PER_CLIENT': '1000',
           'MAX_FILE_SIZE': str(16 << 20), 'LOG_MAX_BYTES': str(1 << 30)}
    env.update(extra)
    try:
        return H.Server(redis, env=env)
    except AssertionError as e:
        raise CannotRun('raven-zero did not start: %s' % e) from None


class Metered(Ours):
    """Ours, also taking the CPU time of its workers, Swift and redis over each measured
    run (not its warm-up or key making): r['cpu_ms'], per request."""

    def __init__(self, server, others):
        super().__init__(server)
        self.others = others  # {'swift': fn() -> pids, 'redis': fn() -> pids}

    def _groups(self):
        groups = {'raven-zero': self.worker_pids()}
        groups.update({k: f() for k, f in self.others.items()})
        return groups

    def before_case(self):
        before = super().before_case()
        before['cpu'] = {k: cpu_seconds(v) for k, v in self._groups().items()}
        return before

    def after_case(self, r, before):
        super().after_case(r, before)
        if r is not None:
            n = max(r['ok'] + r['errors'], 1)
            r['cpu_ms'] = {k: (cpu_seconds(v) - before['cpu'].get(k, 0.0)) * 1000 / n
                           for k, v in self._groups().items()}


def object_storage_bench(redis, payloads, failures):
    """Rows of one node on object storage (Swift) against the same node on disk."""
    code = subprocess.run([H.Swift.PYTHON, '-c', 'import swift.common.middleware.s3api'],
                          capture_output=True).returncode
    if code != 0 or not shutil.which('memcached'):
        say('bench: object storage skipped: Swift (swift-proxy & co.) or memcached is not installed')
        return 0
    say('bench: object storage: starting Swift with s3api on loopback (tens of seconds)')
    t0 = time.monotonic()
    swift = H.Swift(os.path.join(WORK, 'swift'))
    say('bench: Swift up in %.0fs, pids %s' % (time.monotonic() - t0, swift.pids()))
    disk = s3 = None
    try:
        others = {'swift': swift.pids, 'redis': lambda: [redis.proc.pid]}
        disk = Metered(bench_server(redis, {}), others)
        s3 = Metered(bench_server(redis, dict(swift.settings(swift.bucket()), S3_DELETE_DELAY='1')), others)
        check_ours(disk.server, payloads)
        check_ours(s3.server, payloads)
        makers = {'disk': KeyMaker(disk, payloads, 'disk-'), 's3': KeyMaker(s3, payloads, 's3-')}
        rows = []
        for label, c in S3_CASES:
            p = payloads[label]
            up = {}
            for direction in ('up', 'down'):
                case = '%s %s c%d' % (direction, label, c)
                say('bench: object storage: %s' % case)
                got = {}
                for name, srv in (('disk', disk), ('s3', s3)):
                    if direction == 'up':
                        r = attempt(lambda: measure_upload(srv, srv.url + '/upload/', p, c,
                                                           '%s-%s' % (name, case)))
                        up[name] = r['rps'] if r else 100.0
                    else:
                        est = max(up[name] * (8 if p['size'] <= 4096 else 12), 50)
                        r = attempt(lambda: measure_download_ours(srv, makers[name], p, label, c, est,
                                                                  '%s-dl-%s-c%d' % (name, label, c)))
                    if r is None:
                        failures.append('%s on %s' % (case, name))
                    else:
                        say('    %-5s %8.1f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %d  cpu ms/req %s'
                            % (name, r['rps'], r['p50'] or 0, r['p99'] or 0, r['errors'],
                               ' '.join('%s %.2f' % kv for kv in r['cpu_ms'].items())))
                    got[name] = r
                rows.append((case, got['disk'], got['s3']))
        print_object_storage_table(rows)
    finally:
        for srv in (disk, s3):
            if srv is not None:
                srv.server.stop()
        swift.stop()
    return 1 if failures else 0


def print_object_storage_table(rows):
    head = '%-16s %-6s %9s %9s %9s %9s %7s %11s %11s %11s' % (
        'case', 'store', 'req/s', 'MB/s', 'p50 ms', 'p99 ms', 'errors', 'cpu rz ms', 'cpu swift', 'cpu redis')
    say('')
    say('one node on object storage (Swift s3api, loopback) against the same node on local disk')
    say(head)
    say('-' * len(head))
    for case, disk, s3 in rows:
        for name, r in (('disk', disk), ('s3', s3)):
            if r is None:
                say('%-16s %-6s %9s' % (case if name == 'disk' else '', name, 'did not run'))
                continue
            cpu = r['cpu_ms']
            say('%-16s %-6s %9s %9s %9s %9s %7d %11.2f %11.2f %11.2f'
                % (case if name == 'disk' else '', name, fnum(r['rps']), fnum(r['mbs']), fnum(r['p50'], 2),
                   fnum(r['p99'], 2), r['errors'], cpu['raven-zero'], cpu['swift'], cpu['redis']))
        if disk and s3:
            say('%-16s %-6s %9s %9s %9s %9s' % ('', 's3/disk', ratio(s3['rps'], disk['rps']),
                                                ratio(s3['mbs'], disk['mbs']), ratio(s3['p50'], disk['p50']),
                                                ratio(s3['p99'], disk['p99'])))
    say('')
    say('cpu ... ms = CPU time per request of raven-zero\'s workers, of Swift (proxy, account,\n'
        'container and object servers, memcached) and of redis during the measured run:\n'
        'where the time goes. Swift runs on the same cores, so on object storage the node\n'
        'competes with its store; a remote store costs network round trips instead.')


def report_anomalies(results):
    lines = []
    for case, who, r in results:
        if r['errors']:
            detail = ''
            if r.get('statuses'):
                detail += ' h2load statuses %s;' % r['statuses']
            if r.get('wrk'):
                w = r['wrk']
                detail += (' wrk errors: status %d, connect %d, read %d, write %d, '
                           'timeout %d;' % (w['status'], w['connect'], w['read'],
                                            w['write'], w['timeout']))
            if r.get('log_tally'):
                detail += ' server log: %s' % fmt_tally(r['log_tally'])
            lines.append('%s %s: %d non-2xx.%s' % (who, case, r['errors'], detail))
        if r.get('short_reads'):
            lines.append('%s %s: %d answers 2xx with fewer body bytes read than sent'
                         % (who, case, r['short_reads']))
        if r.get('problems'):
            lines.append('%s %s: server log warnings/errors: %s'
                         % (who, case, r['problems']))
            for o_ in r.get('odd', [])[:3]:
                lines.append('    %s' % json.dumps(o_)[:300])
        for note in r.get('notes', []):
            lines.append('%s %s: %s' % (who, case, note))
    say('reference: nginx %s, 2 worker processes, same loopback, same load tool and '
        'options.' % nginx_version())
    say('anomalies:' if lines else 'anomalies: none (no errors, every answer 2xx)')
    for line in lines:
        say('  ' + line)


def attempt(measure):
    """Run one measurement; None (reported, and the exit status becomes 1) when it
    could not run, so that the other measurements still do."""
    try:
        return measure()
    except CannotRun as e:
        say('    !! could not run: %s' % e)
        return None


def loadavg():
    try:
        with open('/proc/loadavg') as f:
            return ' '.join(f.read().split()[:3])
    except OSError:
        return '?'


def nginx_version():
    try:
        out = subprocess.run(['/usr/sbin/nginx', '-v'], capture_output=True, text=True)
        return out.stderr.strip().split('/')[-1]
    except OSError:
        return '?'


def _on_term(signum, frame):
    raise SystemExit(128 + signum)


if __name__ == '__main__':
    signal.signal(signal.SIGTERM, _on_term)
    try:
        sys.exit(main())
    except CannotRun as e:
        print('bench: cannot run: %s' % e, file=sys.stderr, flush=True)
        sys.exit(2)
