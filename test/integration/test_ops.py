"""Operating Raven Zero: systemd readiness (sd_notify), nginx in front, /openapi.json,
/metrics, and the deployment files (Dockerfile, compose.yaml, the systemd unit,
`make install`), checked as far as this machine allows (no Docker here: the image's
build stage is replayed with the same commands on a copy of the build context).

Run with python3 test/run.py -k test_ops."""

import fnmatch
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid

import harness
from harness import (ROOT, WORDLIST, Redis, Server, free_port, path, port_open,
                     request_line, run, wait_until)

ISO_Z = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
ETC = os.path.join(ROOT, 'etc')
REL_BINARY = os.path.join(ROOT, 'raven-zero')  # what `make all` (and the image) builds


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def sh(argv, timeout=120, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


# =====================================================================================
# sd_notify

class NotifySocket:
    """A fake systemd: a datagram socket that collects the master's notifications."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = 'rz-notify-' + uuid.uuid4().hex
            self.sock.bind('\0' + name)
            self.address = '@' + name
        else:
            self.address = path('notify.sock')
            self.sock.bind(self.address)
        self.messages = []

    def receive(self, key, timeout=harness.START_TIMEOUT):
        """Wait for the next message holding key (e.g. 'READY'); it, parsed to a dict."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('no %s=1 within %.0fs; received %r'
                                     % (key, timeout, self.messages))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            msg = dict(line.split('=', 1) for line in data.decode().split('\n') if '=' in line)
            self.messages.append(msg)
            if key in msg:
                return msg

    def close(self):
        self.sock.close()


def test_master_notifies_ready_once_listening_then_reloading_ready_on_hup_and_stopping_on_term():
    notify = NotifySocket()
    with Redis() as redis:
        server = Server(redis, env={'NOTIFY_SOCKET': notify.address}, wait=None)
        try:
            ready = notify.receive('READY')
            assert ready['READY'] == '1', ready
            assert 'workers' in ready.get('STATUS', ''), ready
            # Ready means the socket accepts now: no connection may be refused.
            assert port_open(server.port), 'READY=1 sent before the port accepts'
            status, _, _ = server.request('GET', '/health/')
            assert status in (200, 503), status

            server.wait_ready()
            server.signal(signal.SIGHUP)
            reloading = notify.receive('RELOADING')
            assert reloading['RELOADING'] == '1', reloading
            usec = int(reloading['MONOTONIC_USEC'])
            assert abs(usec - time.monotonic() * 1e6) < 10e6, \
                'MONOTONIC_USEC %d is not CLOCK_MONOTONIC' % usec
            assert 'READY' not in reloading, reloading
            again = notify.receive('READY')
            assert again['READY'] == '1', again
            status, _, _ = server.request('GET', '/health/')
            assert status == 200, 'not serving after the reload'

            server.signal(signal.SIGTERM)
            stopping = notify.receive('STOPPING', timeout=10)
            assert stopping['STOPPING'] == '1', stopping
            assert server.wait_exit(15) == 0
        finally:
            server.stop()
            notify.close()
    kinds = [next(iter(m)) for m in notify.messages]
    assert kinds == ['READY', 'RELOADING', 'READY', 'STOPPING'], notify.messages


def test_master_notifies_an_abstract_socket_and_stopping_on_graceful_quit():
    notify = NotifySocket(abstract=True)
    try:
        with Redis() as redis, Server(redis, env={'NOTIFY_SOCKET': notify.address}) as server:
            assert notify.receive('READY')['READY'] == '1'
            server.signal(signal.SIGQUIT)
            assert notify.receive('STOPPING', timeout=10)['STOPPING'] == '1'
            assert server.wait_exit(40) == 0
    finally:
        notify.close()


def test_reload_with_a_bad_configuration_still_reports_ready_and_keeps_serving():
    notify = NotifySocket()
    conf = harness.write_file('rz.yaml', 'workers: 2\n')
    try:
        with Redis() as redis, Server(redis, env={'NOTIFY_SOCKET': notify.address},
                                      args=['-c', conf]) as server:
            notify.receive('READY')
            harness.write_file('rz.yaml', 'workers: banana\n')
            server.signal(signal.SIGHUP)
            notify.receive('RELOADING')
            assert notify.receive('READY', timeout=10)['READY'] == '1'
            status, _, _ = server.request('GET', '/health/')
            assert status == 200
            wait_until(lambda: any(l.get('event') == 'reload_failed' for l in server.log_lines()),
                       5, message='reload_failed logged')
    finally:
        notify.close()


def test_without_notify_socket_nothing_changes():
    with Redis() as redis, Server(redis, env={'NOTIFY_SOCKET': None}) as server:
        server.signal(signal.SIGHUP)
        wait_until(lambda: any(l.get('event') == 'reloaded' for l in server.log_lines()), 10,
                   message='reloaded logged')
        assert server.request('GET', '/health/')[0] == 200


# =====================================================================================
# nginx in front (etc/nginx-raven-zero.conf)

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


def nginx_site(upstream_port, http_port, tls_port=None, cert=None, key=None):
    """The example file made runnable here: upstream and listen ports replaced, IPv6
    listens dropped; without tls_port the redirect block and TLS lines are removed."""
    text = read('etc', 'nginx-raven-zero.conf')
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
        harness._register_artifact('nginx', None, None, self.error_log)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        harness._register_pid(self.proc.pid)
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

    def connection(self, source_address=None, timeout=harness.REQUEST_TIMEOUT):
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


PROXIED = {'TRUSTED_PROXIES': '127.0.0.1/32'}
PUBLIC_HOST = 'drop.example.test'


def test_nginx_in_front_uploads_and_downloads_with_its_host_and_the_original_client():
    nginx_port = free_port()
    with Redis() as redis, Server(redis, env=PROXIED) as server, \
            Nginx(nginx_site(server.port, nginx_port), nginx_port):
        via = Via(nginx_port)
        data = os.urandom(300 * 1024)  # over nginx's buffers: streamed both ways
        status, headers, body = via.upload(data, filename='report.bin', uses=2,
                                           headers={'Host': PUBLIC_HOST},
                                           source_address='127.0.0.2')
        assert status == 201, body
        key = body['key']
        assert body['download_url'] == 'http://%s/download/%s' % (PUBLIC_HOST, key), body
        assert body['preview_url'] == 'http://%s/preview/%s' % (PUBLIC_HOST, key), body
        assert headers.get('location') == body['download_url'], headers

        line = wait_until(lambda: request_line(server.log_lines(), headers['x-request-id']), 5,
                          message='the upload\'s log line')
        assert line['client'] == '127.0.0.2', line

        status, headers, got = via.request('GET', '/download/' + key,
                                           headers={'Host': PUBLIC_HOST},
                                           source_address='127.0.0.2')
        assert status == 200 and got == data, (status, len(got))
        assert headers.get('x-sha256') == body['sha256'], headers
        assert headers.get('content-length') == str(len(data)), headers
        assert 'filename="report.bin"' in headers.get('content-disposition', ''), headers

        # A client cannot pose as another through nginx: what it sends is kept on the left.
        status, headers, _ = via.request('GET', '/status/' + key,
                                         headers={'X-Forwarded-For': '10.9.9.9'},
                                         source_address='127.0.0.2')
        assert status == 200
        line = wait_until(lambda: request_line(server.log_lines(), headers['x-request-id']), 5,
                          message='the status log line')
        assert line['client'] == '127.0.0.2', line


def test_nginx_in_front_blocks_the_original_client_and_only_it():
    nginx_port = free_port()
    env = dict(PROXIED, DOWNLOAD_FAIL_LIMIT='3')
    with Redis() as redis, Server(redis, env=env) as server, \
            Nginx(nginx_site(server.port, nginx_port), nginx_port):
        via = Via(nginx_port)
        for i in range(3):
            status, _, body = via.json('GET', '/download/no-such-key%d' % i,
                                       source_address='127.0.0.2')
            assert status == 404, (i, status, body)
        status, headers, body = via.json('GET', '/download/apple-banana-cherry',
                                         source_address='127.0.0.2')
        assert status == 429, (status, body)
        assert body['detail']['error'] == 'Too many failed attempts. Temporarily blocked.', body
        assert int(headers['retry-after']) > 0, headers
        status, _, body = via.json('GET', '/status/apple-banana-cherry',
                                   source_address='127.0.0.3')
        assert status == 200 and body['status'] == 'expired_or_burned', (status, body)
        status, _, _ = via.json('GET', '/download/apple-banana-cherry',
                                source_address='127.0.0.3')
        assert status == 404


def test_nginx_example_with_tls_serves_https_urls_and_redirects_plain_http():
    if not shutil.which('openssl'):
        raise AssertionError('openssl (the Debian package) is needed to make a test certificate')
    cert, key = path('cert.pem'), path('key.pem')
    made = sh(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
               'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj',
               '/CN=' + PUBLIC_HOST, '-keyout', key, '-out', cert], timeout=30)
    assert made.returncode == 0, made.stderr
    http_port, tls_port = free_port(), free_port()
    with Redis() as redis, Server(redis, env=PROXIED) as server, \
            Nginx(nginx_site(server.port, http_port, tls_port, cert, key), tls_port):
        status, headers, _ = Via(http_port).request('GET', '/download/x',
                                                    headers={'Host': PUBLIC_HOST})
        assert status == 301 and headers['location'] == 'https://%s/download/x' % PUBLIC_HOST, \
            (status, headers)
        via = Via(tls_port, 'https')
        status, headers, body = via.upload(b'over tls', headers={'Host': PUBLIC_HOST})
        assert status == 201, body
        assert body['download_url'].startswith('https://%s/download/' % PUBLIC_HOST), body
        assert headers.get('strict-transport-security'), headers
        status, _, got = via.request('GET', '/download/' + body['key'],
                                     headers={'Host': PUBLIC_HOST})
        assert status == 200 and got == b'over tls'


def test_nginx_example_keeps_metrics_private():
    nginx_port = free_port()
    with Redis() as redis, Server(redis, env=PROXIED) as server, \
            Nginx(nginx_site(server.port, nginx_port), nginx_port):
        for target in ('/metrics', '/metrics/'):
            status, _, _ = Via(nginx_port).request('GET', target)
            assert status == 404, (target, status)
        assert server.request('GET', '/metrics')[0] == 200


# =====================================================================================
# /metrics

def metrics(server, source_address=None, headers=None):
    status, hdrs, body = server.request('GET', '/metrics', headers=headers,
                                        source_address=source_address)
    assert status == 200, (status, body[:300])
    assert hdrs['content-type'].startswith('text/plain; version=0.0.4'), hdrs
    values, types = {}, {}
    for line in body.decode().splitlines():
        if line.startswith('# TYPE '):
            _, _, name, kind = line.split(' ')
            types[name] = kind
        elif line and not line.startswith('#'):
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?) (\S+)$', line)
            assert m, 'not a Prometheus sample line: %r' % line
            values[m.group(1)] = float(m.group(3))
    for sample in values:
        base = re.sub(r'(_bucket|_sum|_count)$', '', sample.split('{')[0])
        assert sample.split('{')[0] in types or base in types, 'no # TYPE for %s' % sample
    return values


COUNTERS = ('uploads', 'upload_bytes', 'downloads', 'download_bytes', 'burns',
            'expired_shredded', 'orphans_shredded', 'blocked_requests', 'store_errors',
            'worker_restarts')


def test_metrics_count_uploads_downloads_bytes_and_responses_summed_over_workers():
    with Redis() as redis, Server(redis, env={'WORKERS': '3'}) as server:
        before = metrics(server)
        for name in COUNTERS:
            assert 'raven_zero_%s_total' % name in before, name
        data = os.urandom(70000)
        keys = []
        for _ in range(4):  # separate connections: several workers take part
            status, _, body = server.upload(data, uses=1)
            assert status == 201, body
            keys.append(body['key'])
        for k in keys:
            status, _, got = server.request('GET', '/download/' + k)
            assert status == 200 and got == data
        assert server.request('GET', '/download/' + keys[0])[0] == 410
        assert server.request('GET', '/download/no-such-thing')[0] == 404
        expected = {
            'raven_zero_uploads_total': 4,
            'raven_zero_upload_bytes_total': 4 * len(data),
            'raven_zero_downloads_total': 4,
            'raven_zero_download_bytes_total': 4 * len(data),
            'raven_zero_responses_total{endpoint="upload",class="2xx"}': 4,
            'raven_zero_responses_total{endpoint="download",class="2xx"}': 4,
            'raven_zero_responses_total{endpoint="download",class="4xx"}': 2,
        }

        # A response is counted when its request is logged, just after its last byte
        # left: a scrape on another connection may come a moment before that.
        def counted():
            m = metrics(server)
            return m if all(m[k] - before.get(k, 0) >= v for k, v in expected.items()) else None
        after = wait_until(counted, 5, message='the requests counted')

        def delta(name):
            return after[name] - before.get(name, 0)
        for name, value in expected.items():
            assert delta(name) == value, (name, delta(name), value)
        assert delta('raven_zero_request_duration_seconds_count') >= 10
        buckets = sorted((float(k.split('"')[1]) if '+Inf' not in k else float('inf'), v)
                         for k, v in after.items()
                         if k.startswith('raven_zero_request_duration_seconds_bucket'))
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), 'buckets not cumulative: %r' % buckets
        assert counts[-1] == after['raven_zero_request_duration_seconds_count']
        # The burns are counted once the shredder has overwritten the files.
        wait_until(lambda: metrics(server)['raven_zero_burns_total'] >= 4, 15,
                   message='4 burns counted')


def test_metrics_count_blocked_requests_store_errors_and_worker_restarts():
    redis = Redis()
    with redis, Server(redis, env={'DOWNLOAD_FAIL_LIMIT': '2'}) as server:
        for i in range(2):
            server.request('GET', '/status/unknown-key%d' % i)
        assert server.request('GET', '/status/unknown-key')[0] == 429
        assert metrics(server)['raven_zero_blocked_requests_total'] == 1

        worker = server.children()['workers'][0]
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: metrics(server)['raven_zero_worker_restarts_total'] == 1, 10,
                   message='the restart counted')

        redis.stop()
        wait_until(lambda: server.request('GET', '/status/apple-banana-cherry')[0] == 503, 5,
                   message='503 with the store down')
        wait_until(lambda: metrics(server)['raven_zero_store_errors_total'] >= 1, 5,
                   message='the store error counted')


def test_metrics_refused_403_to_clients_outside_metrics_allow():
    env = {'METRICS_ALLOW': '127.0.0.1/32', 'TRUSTED_PROXIES': '127.0.0.1/32'}
    with Redis() as redis, Server(redis, env=env) as server:
        status, headers, body = server.json('GET', '/metrics', source_address='127.0.0.2')
        assert status == 403 and body == {'detail': 'Forbidden'}, (status, body)
        assert headers['content-type'].replace(' ', '') == 'application/json;charset=utf-8'
        # Relayed by a trusted proxy, the client is the forwarded one.
        status, _, _ = server.json('GET', '/metrics', headers={'X-Forwarded-For': '127.0.0.2'})
        assert status == 403
        metrics(server)  # the loopback scraper itself
        metrics(server, headers={'X-Forwarded-For': '127.0.0.1'})


# =====================================================================================
# /openapi.json

def spec():
    with open(os.path.join(ROOT, 'openapi.json'), 'rb') as f:
        return json.loads(f.read())


def resolve(doc, node):
    while isinstance(node, dict) and '$ref' in node:
        assert node['$ref'].startswith('#/'), node
        target = doc
        for part in node['$ref'][2:].split('/'):
            target = target[part]
        node = target
    return node


def test_openapi_json_is_served_as_the_file_in_the_repository():
    with open(os.path.join(ROOT, 'openapi.json'), 'rb') as f:
        on_disk = f.read()
    with Redis() as redis, Server(redis) as server:
        for target in ('/openapi.json', '/openapi.json/'):
            status, headers, body = server.request('GET', target)
            assert status == 200, status
            assert body == on_disk, 'served %s differs from openapi.json (rebuild?)' % target
            assert headers['content-type'].replace(' ', '') == 'application/json;charset=utf-8'
        status, headers, body = server.request('HEAD', '/openapi.json')
        assert status == 200 and body == b'' and headers['content-length'] == str(len(on_disk))
        assert server.request('POST', '/openapi.json')[0] == 405


SPEC_OPERATIONS = {
    ('/upload/', 'post'): {'201', '413', '415', '422', '429', '503', '507'},
    ('/preview/{key}', 'get'): {'200', '404', '429', '503'},
    ('/download/{key}', 'get'): {'200', '404', '410', '429', '500', '503'},
    ('/status/{key}', 'get'): {'200', '429', '503'},
    ('/health/', 'get'): {'200', '429', '503'},
    ('/openapi.json', 'get'): {'200'},
    ('/metrics', 'get'): {'200', '403'},
}
METHODS = ('get', 'head', 'post', 'put', 'patch', 'delete', 'options', 'trace')
SPEC_HEADERS = {'X-Request-ID', 'Cache-Control', 'Pragma', 'Expires', 'X-Content-Type-Options',
                'X-Frame-Options', 'X-XSS-Protection', 'Referrer-Policy',
                'Access-Control-Allow-Origin', 'Access-Control-Allow-Methods',
                'Access-Control-Allow-Headers', 'Access-Control-Expose-Headers'}


def test_openapi_describes_every_endpoint_status_and_header_of_the_contract():
    doc = spec()
    assert doc['openapi'].startswith('3.'), doc['openapi']
    try:  # the full OpenAPI 3 schema check, where the machine's Python has the validator
        from openapi_spec_validator import validate
    except ImportError:
        print('openapi-spec-validator not installed: structural checks only')
    else:
        validate(doc)
    refs = []

    def walk(node):
        if isinstance(node, dict):
            if '$ref' in node:
                refs.append(node['$ref'])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(doc)
    for r in refs:
        resolve(doc, {'$ref': r})  # KeyError if dangling
    ids = []
    for (p, method), statuses in SPEC_OPERATIONS.items():
        item = doc['paths'][p]
        assert 'options' in item and '204' in item['options']['responses'], p
        op = item[method]
        assert statuses <= set(op['responses']), (p, method, statuses - set(op['responses']))
        for code, r in op['responses'].items():
            r = resolve(doc, r)
            assert SPEC_HEADERS <= set(r.get('headers', {})), (p, code)
            if code in ('429',):
                assert 'Retry-After' in r['headers'], (p, code)
        for m, o in item.items():
            if m in METHODS:
                ids.append(o['operationId'])
    assert len(ids) == len(set(ids)), 'operationIds repeat'
    dl = resolve(doc, doc['paths']['/download/{key}']['get']['responses']['200'])
    assert {'Content-Length', 'Content-Disposition', 'X-SHA256', 'Content-Encoding'} <= \
        set(dl['headers'])
    assert 'Location' in doc['paths']['/upload/']['post']['responses']['201']['headers']
    form = resolve(doc, doc['paths']['/upload/']['post']['requestBody']['content']
                   ['multipart/form-data']['schema'])
    assert form['properties']['expiry'] == {**form['properties']['expiry'], 'minimum': 1,
                                            'maximum': 60, 'default': 10}
    assert form['properties']['uses'] == {**form['properties']['uses'], 'minimum': 1,
                                          'maximum': 5, 'default': 1}


TYPES = {'string': (str,), 'integer': (int,), 'number': (int, float), 'boolean': (bool,),
         'array': (list,), 'object': (dict,)}


def check_value(doc, schema, value, where):
    schema = resolve(doc, schema)
    if value is None:
        assert schema.get('nullable'), '%s is null, documented as not nullable' % where
        return
    kind = schema.get('type')
    if kind:
        ok = isinstance(value, TYPES[kind]) and not (kind in ('integer', 'number') and
                                                     isinstance(value, bool))
        assert ok, '%s = %r is not a %s' % (where, value, kind)
    if 'enum' in schema:
        assert value in schema['enum'], '%s = %r not in %r' % (where, value, schema['enum'])
    if 'pattern' in schema:
        assert re.search(schema['pattern'], value), '%s = %r does not match %s' % (
            where, value, schema['pattern'])
    if schema.get('format') == 'date-time':
        assert ISO_Z.match(value), '%s = %r is not ISO 8601 Z' % (where, value)
    if 'minimum' in schema:
        assert value >= schema['minimum'], (where, value)
    if 'maximum' in schema:
        assert value <= schema['maximum'], (where, value)
    if kind == 'object' and 'properties' in schema:
        props = schema['properties']
        for name in schema.get('required', []):
            assert name in value, '%s lacks documented field %r: %r' % (where, name, value)
        for name, v in value.items():
            assert name in props, '%s has undocumented field %r' % (where, name)
            check_value(doc, props[name], v, '%s.%s' % (where, name))
    if kind == 'array' and 'items' in schema:
        for i, v in enumerate(value):
            check_value(doc, schema['items'], v, '%s[%d]' % (where, i))


def check_response(doc, template, method, status, headers, body, checked):
    op = doc['paths'][template][method]
    assert str(status) in op['responses'], '%s %s answered %d, not documented' % (
        method.upper(), template, status)
    r = resolve(doc, op['responses'][str(status)])
    for name in r.get('headers', {}):
        assert name.lower() in headers, '%s %s %d lacks documented header %s' % (
            method.upper(), template, status, name)
        check_value(doc, resolve(doc, r['headers'][name])['schema'],
                    int(headers[name.lower()]) if resolve(doc, r['headers'][name])['schema']
                    .get('type') == 'integer' else headers[name.lower()],
                    '%s %s %d header %s' % (method.upper(), template, status, name))
    content = r.get('content', {})
    if 'application/json' in content and method != 'head':
        assert headers['content-type'].startswith('application/json'), headers
        check_value(doc, content['application/json']['schema'], json.loads(body),
                    '%s %s %d body' % (method.upper(), template, status))
    elif content and method != 'head':
        assert headers.get('content-type'), 'no Content-Type'
    else:
        assert not content or method == 'head', (template, status)
    checked.add((template, method, str(status)))


def test_openapi_matches_real_responses_field_by_field_and_header_by_header():
    doc = spec()
    checked = set()
    env = {'ALLOWED_MIME_TYPES': 'text/plain', 'MAX_FILE_SIZE': '4096',
           'DOWNLOAD_FAIL_LIMIT': '6', 'METRICS_ALLOW': '127.0.0.1/32'}
    redis = Redis()
    with redis, Server(redis, env=env) as server:
        def check(method, target, template, status=None, **kw):
            st, headers, body = server.request(method.upper(), target, **kw)
            if status is not None:
                assert st == status, (method, target, st, body[:300])
            check_response(doc, template, method, st, headers, body, checked)
            return st, headers, body

        def upload(data, **kw):
            st, headers, body = server.upload(data, **kw)
            raw = json.dumps(body).encode()
            check_response(doc, '/upload/', 'post', st, headers, raw, checked)
            return st, body

        st, up = upload(b'hello openapi\n', filename='notes.txt', uses=1, expiry=5)
        assert st == 201, up
        key = up['key']
        assert upload(b'text\n', expiry=99)[0] == 422
        assert upload(b'text\n' * 1000)[0] == 413
        assert upload(b'\x89PNG\r\n\x1a\n' + b'\0' * 64, filename='a.png')[0] == 415
        check('get', '/preview/' + key, '/preview/{key}', 200)
        check('get', '/preview/' + key, '/preview/{key}', 404)
        check('get', '/status/' + key, '/status/{key}', 200)
        check('head', '/status/' + key, '/status/{key}', 200)
        check('get', '/download/' + key, '/download/{key}', 200)
        check('get', '/download/' + key, '/download/{key}', 410)
        check('get', '/health/', '/health/', 200)
        check('head', '/health/', '/health/', 200)
        check('get', '/openapi.json', '/openapi.json', 200)
        check('get', '/metrics', '/metrics', 200)
        check('get', '/metrics', '/metrics', 403, source_address='127.0.0.2')
        for template, target in (('/upload/', '/upload/'), ('/preview/{key}', '/preview/' + key),
                                 ('/download/{key}', '/download/' + key),
                                 ('/status/{key}', '/status/' + key), ('/health/', '/health/'),
                                 ('/openapi.json', '/openapi.json'), ('/metrics', '/metrics')):
            check('options', target, template, 204)
        # Unknown keys: status answers 200 with nulls, the others 404, then all 429.
        check('get', '/status/apple-banana-cherry', '/status/{key}', 200)
        check('get', '/download/apple-banana-cherry', '/download/{key}', 404)
        check('get', '/preview/apple-banana-cherry', '/preview/{key}', 404)
        for _ in range(3):
            server.request('GET', '/status/apple-banana-cherry')
        for template in ('/status/{key}', '/download/{key}', '/preview/{key}'):
            check('get', template.replace('{key}', 'apple-banana-cherry'), template, 429)
        redis.stop()
        wait_until(lambda: server.request('GET', '/health/')[0] == 503, 5,
                   message='health 503 with the store down')
        check('get', '/health/', '/health/', 503)
        check('head', '/health/', '/health/', 503)
        for template in ('/status/{key}', '/download/{key}', '/preview/{key}'):
            check('get', template.replace('{key}', 'apple-banana-cherry'), template, 503)
        check('head', '/status/apple-banana-cherry', '/status/{key}', 503)
        assert upload(b'store is down\n')[0] == 503
    with Redis() as redis, Server(redis, env={'UPLOAD_RATE_LIMIT': '1/hour',
                                              'HEALTH_RATE_LIMIT': '1/hour'}) as server:
        # wait_ready used the one health request of the hour.
        st, headers, body = server.request('GET', '/health/')
        assert st == 429, st
        check_response(doc, '/health/', 'get', st, headers, body, checked)
        assert server.upload(b'one')[0] == 201
        st, headers, body = server.upload(b'two')
        assert st == 429, body
        check_response(doc, '/upload/', 'post', st, headers, json.dumps(body).encode(), checked)
    # Not provoked here: 500 (integrity failure, internal error) and 507 (disk full),
    # which other tests cover for behaviour.
    documented = {(p, m, c) for p, item in doc['paths'].items() for m, op in item.items()
                  if m in METHODS for c in op['responses']}
    missing = documented - checked - {('/upload/', 'post', '500'), ('/upload/', 'post', '507'),
                                      ('/download/{key}', 'get', '500'),
                                      ('/status/{key}', 'head', '429'),
                                      ('/health/', 'head', '429')}
    assert not missing, 'documented but never checked: %r' % sorted(missing)


# =====================================================================================
# Dockerfile, .dockerignore, compose.yaml

def dockerfile_stages():
    """[{'from': 'image AS name', 'ins': [(INSTRUCTION, args)]}] of the Dockerfile."""
    logical, cur = [], ''
    for line in read('Dockerfile').splitlines():
        s = line.strip()
        if s.startswith('#') or (not s and not cur):
            continue
        if s.endswith('\\'):
            cur += s[:-1] + ' '
            continue
        logical.append(cur + s)
        cur = ''
    stages = []
    for ins in logical:
        word, _, rest = ins.partition(' ')
        word = word.upper()
        if word == 'FROM':
            stages.append({'from': rest.strip(), 'ins': []})
        assert stages, 'instruction before FROM: %s' % ins
        stages[-1]['ins'].append((word, rest.strip()))
    return stages


def args_of(stage, word):
    return [rest for w, rest in stage['ins'] if w == word]


def apt_packages(stage):
    pkgs = []
    for run_args in args_of(stage, 'RUN'):
        for m in re.finditer(r'apt-get install ([^&;|]*)', run_args):
            pkgs += [p for p in m.group(1).split() if not p.startswith('-')]
    return pkgs


def env_of(stage):
    env = {}
    for rest in args_of(stage, 'ENV'):
        for tok in shlex.split(rest):
            k, _, v = tok.partition('=')
            env[k] = v
    return env


def package_of(file_path):
    """The Debian package owning a file (merged /usr aware)."""
    cands = [file_path, os.path.realpath(file_path)]
    for c in list(cands):
        if c.startswith('/lib'):
            cands.append('/usr' + c)
        elif c.startswith('/usr/lib'):
            cands.append(c[4:])
    for c in cands:
        r = sh(['dpkg', '-S', c], timeout=30)
        if r.returncode == 0:
            return r.stdout.split(':')[0].strip()
    raise AssertionError('no Debian package owns %s' % file_path)


def run_binary(binary, args, env, cwd=None):
    """Another binary than the one under test (an installed or image copy), settings
    only from env."""
    full = {k: v for k, v in os.environ.items() if k not in harness.SETTINGS}
    full.update(env)
    return sh([binary] + args, env=full, cwd=cwd or path(), timeout=30)


def linked_libraries(binary):
    r = sh(['ldd', binary], timeout=30)
    assert r.returncode == 0, r.stderr
    libs = []
    for line in r.stdout.splitlines():
        m = re.search(r'=>\s*(/\S+)', line) or re.match(r'\s*(/\S+)', line)
        if m:
            libs.append(m.group(1))
    assert libs, r.stdout
    return libs


def test_dockerfile_has_a_debian_12_slim_build_stage_and_runtime_stage():
    stages = dockerfile_stages()
    assert len(stages) == 2, [s['from'] for s in stages]
    build, runtime = stages
    assert re.match(r'^debian:12-slim AS build$', build['from'], re.I), build['from']
    assert runtime['from'] == 'debian:12-slim', runtime['from']
    assert any('make all' in r for r in args_of(build, 'RUN'))
    assert not any(p.endswith('-dev') or p in ('gcc', 'make', 'pkg-config')
                   for p in apt_packages(runtime)), apt_packages(runtime)
    assert all('--no-install-recommends' in r for r in args_of(runtime, 'RUN') if 'apt-get install' in r)
    assert any('rm -rf /var/lib/apt/lists' in r for r in args_of(runtime, 'RUN'))
    copies = args_of(runtime, 'COPY')
    assert copies and all(c.startswith('--from=build ') for c in copies), copies


def test_dockerfile_build_stage_installs_every_package_the_build_needs():
    build = dockerfile_stages()[0]
    pkgs = set(apt_packages(build))
    assert {'make', 'gcc', 'libc6-dev', 'pkg-config'} <= pkgs, pkgs
    names = re.search(r'^PKGS\s*:=\s*(.*)$', read('Makefile'), re.M).group(1).split()
    for name in names:
        pcdir = sh(['pkg-config', '--variable=pcfiledir', name]).stdout.strip()
        owner = package_of(os.path.join(pcdir, name + '.pc'))
        assert owner in pkgs, '%s.pc comes from %s, not installed by the build stage' % (
            name, owner)
    # Every header the sources include comes from those packages (or the C library).
    cflags = sh(['pkg-config', '--cflags'] + names).stdout.split()
    headers = set()
    for d in ('common', 'master', 'worker', 'shredder'):
        for name in sorted(os.listdir(os.path.join(ROOT, d))):
            if name.endswith('.c'):
                r = sh(['cc', '-M', '-std=c11', '-D_GNU_SOURCE', '-DH2O_USE_LIBUV=0', '-Icommon',
                        '-Iworker', '-Ishredder', '-Imaster'] + cflags + [os.path.join(d, name)],
                       cwd=ROOT)
                assert r.returncode == 0, r.stderr
                headers |= {h for h in r.stdout.replace('\\\n', ' ').split()
                            if h.startswith('/usr/include')}
    owners = set()
    r = sh(['dpkg', '-S'] + sorted(headers))
    assert 'no path found' not in r.stderr, r.stderr
    for line in r.stdout.splitlines():
        owners |= {p.split(':')[0].strip() for p in line.split(': ')[0].split(',')}
    toolchain = re.compile(r'^(libc6-dev|linux-libc-dev|libgcc-\d+-dev|libcrypt-dev)$')
    # -dev packages pull their own -dev dependencies; check them through apt's eyes.
    deps = set()
    for p in pkgs:
        out = sh(['apt-cache', 'depends', '--recurse', '--no-recommends', '--no-suggests',
                  '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', p]).stdout
        for line in out.splitlines():
            line = line.strip()
            deps.add((line.split(': ', 1)[1] if ': ' in line else line).split(':')[0])
    stray = {o for o in owners if o not in pkgs and o not in deps and not toolchain.match(o)}
    assert not stray, 'headers from packages the build stage does not install: %r' % stray


def test_dockerfile_runtime_stage_installs_every_library_the_binary_links():
    runtime = dockerfile_stages()[1]
    pkgs = set(apt_packages(runtime))
    assert os.path.exists(REL_BINARY), 'build ./raven-zero first (make all)'
    missing = {}
    for lib in linked_libraries(REL_BINARY):
        owner = package_of(lib)
        if owner not in pkgs:
            missing[lib] = owner
    assert not missing, 'libraries whose package the runtime stage lacks: %r' % missing
    # libmagic's database is data, not a linked library.
    assert package_of('/usr/lib/file/magic.mgc') in pkgs
    assert not any(p.endswith('-dev') for p in pkgs), pkgs


def test_dockerfile_runs_unprivileged_exposes_8000_and_keeps_state_in_a_volume():
    runtime = dockerfile_stages()[1]
    user = args_of(runtime, 'USER')
    assert user and user[-1] not in ('root', '0'), user
    assert args_of(runtime, 'EXPOSE') == ['8000']
    volumes = json.loads(args_of(runtime, 'VOLUME')[-1])
    env = env_of(runtime)
    assert env['LISTEN'].endswith(':8000'), env
    assert env['LOG_STDOUT'].lower() in ('1', 'true', 'yes', 'on'), env
    for name in ('STORAGE_PATH', 'TEMP_PATH', 'SECRET_PATH'):
        assert any(env[name].startswith(v.rstrip('/') + '/') for v in volumes), (name, env[name])
    assert args_of(runtime, 'STOPSIGNAL') == ['SIGQUIT']
    assert args_of(runtime, 'ENTRYPOINT') == ['["/usr/local/sbin/raven-zero"]']
    # The settings are valid for the binary (paths moved into this test's directory).
    settings = {k: (path('img') + v if v.startswith('/var/') else v) for k, v in env.items()}
    settings['DICEWARE_WORDLIST_PATH'] = WORDLIST
    code, out, err = run(['-t'], env=settings, defaults=False)
    assert code == 0, err


def test_dockerfile_healthcheck_passes_when_healthy_and_fails_when_degraded():
    runtime = dockerfile_stages()[1]
    hc = args_of(runtime, 'HEALTHCHECK')
    assert len(hc) == 1, hc
    m = re.match(r'^(--\S+\s+)*CMD\s+(\[.*\])$', hc[0])
    assert m, hc[0]
    argv = json.loads(m.group(2))
    assert '/health/' in ' '.join(argv) and '127.0.0.1/8000' in ' '.join(argv), argv
    redis = Redis()
    with redis, Server(redis) as server:
        here = [a.replace('127.0.0.1/8000', '127.0.0.1/%d' % server.port) for a in argv]
        r = sh(here, timeout=10)
        assert r.returncode == 0, (r.stdout, r.stderr)
        redis.stop()
        wait_until(lambda: sh(here, timeout=10).returncode != 0, 10,
                   message='the health check to fail with the store down')


def dockerignored(rel, patterns):
    parts = rel.split('/')
    prefixes = ['/'.join(parts[:i]) for i in range(1, len(parts) + 1)]
    for p in patterns:
        for pre in prefixes:
            if fnmatch.fnmatch(pre, p) or (p.startswith('**/') and
                                            fnmatch.fnmatch(pre.split('/')[-1], p[3:])):
                return True
    return False


def build_context():
    """A copy of the repository as `docker build .` would send it (.dockerignore applied)."""
    patterns = [l.strip() for l in read('.dockerignore').splitlines()
                if l.strip() and not l.startswith('#')]
    assert not any(p.startswith('!') for p in patterns), 'exceptions are not handled here'
    listed = sh(['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT).stdout.split('\n')
    ctx = path('context')
    for rel in filter(None, listed):
        src = os.path.join(ROOT, rel)
        if dockerignored(rel, patterns) or not os.path.isfile(src):
            continue
        os.makedirs(os.path.dirname(os.path.join(ctx, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(ctx, rel))
    return ctx


def test_dockerfile_build_stage_builds_from_the_repository_alone():
    """The build stage's commands, replayed on the build context (Debian 12 has the same
    packages here); the runtime stage's COPY sources must then exist."""
    build, runtime = dockerfile_stages()
    ctx = build_context()
    out = path('out')
    assert not os.path.exists(os.path.join(ctx, 'build')), 'build output in the context'
    for rest in args_of(build, 'RUN'):
        if 'apt-get' in rest:
            continue
        r = sh(['sh', '-c', rest.replace('/out', out)], cwd=ctx, timeout=300)
        assert r.returncode == 0, 'RUN %s\n%s%s' % (rest, r.stdout[-3000:], r.stderr[-3000:])
    binary = None
    for copy in args_of(runtime, 'COPY'):
        src, dst = copy.split()[1:3]
        assert src.startswith('/out/'), copy
        assert os.path.exists(out + src[4:]), 'COPY source %s was not built' % src
        if dst.endswith('sbin/raven-zero'):
            binary = out + src[4:]
    env = env_of(runtime)
    wl = env['DICEWARE_WORDLIST_PATH']
    assert os.path.isfile(out + wl), '%s is not where the image copies the word list' % wl
    runtime_pkgs = set(apt_packages(runtime))
    for lib in linked_libraries(binary):
        assert package_of(lib) in runtime_pkgs, lib
    r = run_binary(binary, ['-t'], {'DICEWARE_WORDLIST_PATH': out + wl})
    assert r.returncode == 0, r.stderr


def compose():
    """compose.yaml parsed by PyYAML: this Python's, or Debian's python3-yaml (make deps)."""
    file_path = os.path.join(ROOT, 'compose.yaml')
    try:
        import yaml
    except ImportError:
        r = sh(['/usr/bin/python3', '-c', 'import json, sys, yaml; '
                'json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)', file_path])
        assert r.returncode == 0, 'PyYAML is needed to parse compose.yaml (apt-get install ' \
            'python3-yaml, as make deps does): %s' % r.stderr
        return json.loads(r.stdout)
    with open(file_path) as f:
        return yaml.safe_load(f)


def test_compose_runs_the_app_with_an_ephemeral_valkey_on_one_bridge_network():
    doc = compose()
    services = doc['services']
    assert set(services) == {'app', 'valkey'}, set(services)
    valkey, app = services['valkey'], services['app']
    assert valkey['image'] == 'valkey/valkey:9-alpine'
    cmd = valkey['command']
    assert cmd[0] == 'valkey-server' and cmd[cmd.index('--save') + 1] == '' and \
        cmd[cmd.index('--appendonly') + 1] == 'no', cmd
    assert 'valkey-cli' in valkey['healthcheck']['test'] and 'ping' in valkey['healthcheck']['test']
    build = app['build']
    context = build if isinstance(build, str) else build.get('context', '.')
    assert os.path.isfile(os.path.join(ROOT, context, 'Dockerfile'))
    assert app['depends_on'] == {'valkey': {'condition': 'service_healthy'}}
    for s in (app, valkey):
        assert s['restart'] == 'on-failure'
    assert app['environment']['REDIS_URL'] == 'redis://valkey:6379/0'
    nets = doc['networks']
    assert len(nets) == 1
    (name, net), = nets.items()
    assert net['driver'] == 'bridge'
    assert app['networks'] == [name] and valkey['networks'] == [name]
    # The trusted proxy is the network's gateway, through which published ports arrive.
    gateway = net['ipam']['config'][0]['gateway']
    assert app['environment']['TRUSTED_PROXIES'] == gateway + '/32'


def test_compose_volumes_hold_what_the_image_writes_and_its_settings_are_valid():
    app = compose()['services']['app']
    runtime = dockerfile_stages()[1]
    env = dict(env_of(runtime))
    env.update({k: str(v) for k, v in app['environment'].items()})
    mounts = dict(v.split(':')[:2][::-1] for v in app['volumes'])  # container -> host
    assert mounts.get(os.path.dirname(env['LOG_PATH'])) == './logs', mounts
    storage = [c for c, h in mounts.items() if h == './storage']
    assert storage and all(env[k].startswith(storage[0] + '/')
                           for k in ('STORAGE_PATH', 'TEMP_PATH', 'SECRET_PATH')), (storage, env)
    assert storage[0] in json.loads(args_of(runtime, 'VOLUME')[-1])
    assert app['ports'] == ['127.0.0.1:8000:8000'], app['ports']
    settings = {k: (path('img') + v if v.startswith('/var/') else v) for k, v in env.items()}
    settings['DICEWARE_WORDLIST_PATH'] = WORDLIST
    code, out, err = run(['-t'], env=settings, defaults=False)
    assert code == 0, err


# =====================================================================================
# systemd unit and make install

def unit_directives(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(('#', '[')):
            continue
        k, _, v = line.partition('=')
        out.setdefault(k.strip(), []).append(v.strip())
    return out


HARDENING = {'NoNewPrivileges': 'yes', 'ProtectSystem': 'strict', 'ProtectHome': 'yes',
             'PrivateTmp': 'yes', 'PrivateDevices': 'yes', 'MemoryDenyWriteExecute': 'yes',
             'CapabilityBoundingSet': ''}


def test_systemd_unit_is_type_notify_reloads_with_hup_and_is_hardened():
    d = unit_directives(read('etc', 'raven-zero.service'))
    assert d['Type'] == ['notify']
    assert d['ExecStart'] == ['/usr/local/sbin/raven-zero -c /etc/raven-zero/raven-zero.yaml']
    assert d['ExecReload'][-1] == '/bin/kill -HUP $MAINPID', d['ExecReload']
    assert d['KillSignal'] == ['SIGQUIT'] and d['KillMode'] == ['mixed']
    assert int(d['TimeoutStopSec'][0].rstrip('s')) > 30 + 5  # SHUTDOWN_TIMEOUT + the master's margin
    assert d['User'] == ['raven-zero']
    assert d['StateDirectory'] == ['raven-zero'] and d['LogsDirectory'] == ['raven-zero']
    for k, v in HARDENING.items():
        assert d.get(k) == [v], (k, d.get(k))
    assert set(d['RestrictAddressFamilies'][0].split()) == {'AF_INET', 'AF_INET6', 'AF_UNIX'}
    assert '@system-service' in d['SystemCallFilter']
    env = dict(e.split('=', 1) for e in d['Environment'])
    for k in ('STORAGE_PATH', 'TEMP_PATH', 'SECRET_PATH'):
        assert env[k].startswith('/var/lib/raven-zero/'), (k, env[k])
    assert env['LOG_PATH'].startswith('/var/log/raven-zero/')


def make_install(dest, prefix='/usr/local'):
    """`make install` without rebuilding (-o all): the binary under test is installed."""
    assert os.path.exists(REL_BINARY), 'build ./raven-zero first (make all)'
    r = sh(['make', '--no-print-directory', '-o', 'all', 'install', 'DESTDIR=' + dest,
            'PREFIX=' + prefix], cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_systemd_analyze_verifies_the_installed_unit_and_rates_it_safe():
    dest = path('dest')
    make_install(dest)
    unit = os.path.join(dest, 'usr/local/lib/systemd/system/raven-zero.service')
    if not shutil.which('systemd-analyze'):
        print('systemd-analyze not available: unit checked by the directive test only')
        return
    # Point it at the copy installed under DESTDIR so that the binary exists.
    here = path('raven-zero.service')
    with open(unit) as f, open(here, 'w') as g:
        g.write(f.read().replace('/usr/local/', dest + '/usr/local/'))
    r = sh(['systemd-analyze', 'verify', here], timeout=60)
    assert r.returncode == 0 and 'raven-zero' not in r.stderr, r.stdout + r.stderr
    r = sh(['systemd-analyze', 'security', '--offline=yes', here], timeout=60)
    m = re.search(r'Overall exposure level for \S+: ([\d.]+)', r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, 'exposure %s:\n%s' % (m.group(1), r.stdout)


def test_make_install_puts_binary_word_list_config_and_unit_where_they_belong():
    dest = path('dest')
    make_install(dest)
    sbin = os.path.join(dest, 'usr/local/sbin/raven-zero')
    share = os.path.join(dest, 'usr/local/share/raven-zero')
    conf = os.path.join(dest, 'etc/raven-zero/raven-zero.yaml')
    unit = os.path.join(dest, 'usr/local/lib/systemd/system/raven-zero.service')
    assert os.stat(sbin).st_mode & 0o777 == 0o755
    with open(sbin, 'rb') as a, open(REL_BINARY, 'rb') as b:
        assert a.read() == b.read()
    assert sorted(os.listdir(share)) == ['LICENSE.md', 'eff_large_wordlist.txt']
    assert os.path.isfile(conf)
    assert unit_directives(open(unit).read())['ExecStart'] == \
        ['/usr/local/sbin/raven-zero -c /etc/raven-zero/raven-zero.yaml']
    # The installed binary, run outside a source tree, defaults to the installed list.
    empty = path('elsewhere')
    os.makedirs(empty)
    r = run_binary(sbin, ['-t', '-c', conf], {}, cwd=empty)
    installed = '/usr/local/share/raven-zero/eff_large_wordlist.txt'
    assert (r.returncode == 0 and os.path.isfile(installed)) or installed in r.stderr, r
    r = run_binary(sbin, ['-t', '-c', conf],
                   {'DICEWARE_WORDLIST_PATH': share + '/eff_large_wordlist.txt'}, cwd=empty)
    assert r.returncode == 0, r.stderr
    # An upgrade keeps the administrator's configuration.
    with open(conf, 'a') as f:
        f.write('# edited by the administrator\n')
    make_install(dest)
    assert open(conf).read().endswith('# edited by the administrator\n')


def test_make_install_with_prefix_usr_puts_the_unit_in_usr_lib_systemd():
    dest = path('dest')
    make_install(dest, prefix='/usr')
    unit = os.path.join(dest, 'usr/lib/systemd/system/raven-zero.service')
    d = unit_directives(open(unit).read())
    assert d['ExecStart'] == ['/usr/sbin/raven-zero -c /etc/raven-zero/raven-zero.yaml']
    assert all('/usr/local' not in v for vs in d.values() for v in vs), d
    assert os.path.isfile(os.path.join(dest, 'usr/sbin/raven-zero'))
    assert os.path.isfile(os.path.join(dest, 'usr/share/raven-zero/eff_large_wordlist.txt'))
