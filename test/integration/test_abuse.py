"""Abuse controls and HTTP hygiene (issue 4): client identity behind trusted proxies,
rate limits, brute-force blocking, the SPEC's headers on every response, CORS, and the
bounds on what one client can hold (connections, slow senders, oversized requests).

Other clients are other loopback source addresses (127.0.0.2, 127.0.0.3, ...). With the
default TRUSTED_PROXIES (127.0.0.1/32, ::1/128) 127.0.0.1 plays a trusted proxy and any
other loopback address an untrusted peer.

Run with python3 test/run.py -k test_abuse."""

import http.client
import json
import os
import random
import re
import select
import socket
import struct
import threading
import time
import uuid

from harness import (REQUEST_TIMEOUT, WORDLIST, Redis, Server, exchange, request_line, wait_until)

UUID4 = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')

PROXY = '127.0.0.1'      # trusted by default
CLIENT = '127.0.0.2'     # an untrusted peer
OTHER = '127.0.0.3'      # another untrusted peer
BLOCK_TEXT = 'Too many failed attempts. Temporarily blocked.'
KEYED = ('download', 'preview', 'status')


# --- helpers ------------------------------------------------------------------------

_words = []


def unknown_key():
    """A key of the right shape (three words of the list) that no upload has."""
    if not _words:
        with open(WORDLIST) as f:
            _words.extend(w for w in (line.split()[-1] for line in f if line.strip())
                          if '-' not in w)
    rng = random.SystemRandom()
    return '-'.join(rng.choice(_words) for _ in range(3))


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
    """429 with the SPEC's body, retry_after_seconds in 1..window, and a matching
    Retry-After header."""
    assert status == 429, 'expected the block (429), got %d %r' % (status, body)
    assert isinstance(body, dict) and isinstance(body.get('detail'), dict), body
    assert set(body['detail']) == {'error', 'retry_after_seconds'}, body
    assert body['detail']['error'] == BLOCK_TEXT, body
    seconds = body['detail']['retry_after_seconds']
    assert isinstance(seconds, int) and not isinstance(seconds, bool), body
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


def multipart(data, filename='x.bin'):
    """(body, content type) of an upload form with just the file part."""
    boundary = 'rzabuse' + uuid.uuid4().hex
    body = (b'--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
            b'Content-Type: application/octet-stream\r\n\r\n%s\r\n--%s--\r\n'
            % (boundary.encode(), filename.encode(), data, boundary.encode()))
    return body, 'multipart/form-data; boundary=' + boundary


def parsed(data):
    return json.loads(data) if data else None


def request_with_header_lines(server, method, target, lines, source=None):
    """A request carrying the same header name several times: lines = [(name, value)]."""
    conn = server.connection(source)
    try:
        conn.putrequest(method, target)
        for name, value in lines:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, hdrs, parsed(data)
    finally:
        conn.close()


def raw_connect(server, source=None, timeout=REQUEST_TIMEOUT):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(('127.0.0.1', server.port))
    return s


def read_response(sock, method='GET'):
    """Parse one HTTP/1 response from a raw socket: (status, headers, body bytes)."""
    resp = http.client.HTTPResponse(sock, method=method)
    resp.begin()
    data = resp.read()
    hdrs = {}
    for k, v in resp.getheaders():
        k = k.lower()
        hdrs[k] = hdrs[k] + ', ' + v if k in hdrs else v
    return resp.status, hdrs, data


def raw_exchange(server, data, method='GET', source=None, timeout=REQUEST_TIMEOUT):
    """Send raw bytes, read one response; a server that sends nothing back fails."""
    s = raw_connect(server, source, timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before it has read everything
        return read_response(s, method)
    finally:
        s.close()


def closed_by_peer(sock):
    """True once the server has closed the socket (EOF or reset); data is discarded."""
    while True:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return False
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except BlockingIOError:
            return False
        if not chunk:
            return True


def wait_closed(sock, timeout, started):
    """Wait for the server to close sock; seconds since `started` when it did."""
    wait_until(lambda: closed_by_peer(sock), timeout, interval=0.01, ignore=(),
               message='the server to close the connection')
    return time.monotonic() - started


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


def workers_of(server, n):
    def all_there():
        kids = server.children()
        return len(kids['workers']) == n and kids['workers']
    return wait_until(all_there, 10, message='%d workers' % n)


def _tcp_hex(addr):
    ip, port = addr[0], addr[1]
    return '%08X:%04X' % (struct.unpack('<I', socket.inet_aton(ip))[0], port)


def serving_worker(server, sock, workers):
    """Which worker holds the server side of this client socket (from /proc)."""
    local, remote = _tcp_hex(('127.0.0.1', server.port)), _tcp_hex(sock.getsockname())
    inode = None
    with open('/proc/net/tcp') as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                inode = fields[9]
    if inode is None:
        return None
    tag = 'socket:[%s]' % inode
    for pid in workers:
        try:
            for fd in os.listdir('/proc/%d/fd' % pid):
                try:
                    if os.readlink('/proc/%d/fd/%s' % (pid, fd)) == tag:
                        return pid
                except OSError:
                    pass
        except OSError:
            pass
    return None


def connections_on_distinct_workers(server, source, workers, tries=200):
    """Keep-alive connections from `source`, each held by a different worker: [(pid, conn)].
    New connections go to whichever worker accepts first; collect one per worker."""
    held = {}
    for _ in range(tries):
        conn = server.connection(source)
        status, _, _ = exchange(conn, 'OPTIONS', '/')  # served; counts toward nothing
        assert status == 204, status
        pid = serving_worker(server, conn.sock, workers)
        if pid is not None and pid not in held:
            held[pid] = conn
        else:
            conn.close()
        if len(held) == len(workers):
            break
    assert len(held) >= 2, 'after %d connections only workers %r served them' % (tries, list(held))
    return sorted(held.items())


SPEC_HEADERS = {
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
    return sorted(t.strip().lower() for t in (value or '').split(',') if t.strip())


def header_problems(what, headers, origin='*', cache_control=None):
    """Everything missing or wrong among the SPEC's headers of one response ([] if none).
    A header sent twice shows up joined (a, b) and fails the exact comparisons."""
    problems = []
    want = dict(SPEC_HEADERS)
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
    for name, expect in (('access-control-allow-methods', 'GET, POST, OPTIONS'),
                         ('access-control-allow-headers', 'Content-Type, Accept'),
                         ('access-control-expose-headers',
                          'X-SHA256, Content-Disposition, X-Request-ID')):
        if tokens(headers.get(name)) != tokens(expect):
            problems.append('%s: %s is %r, expected %r' % (what, name, headers.get(name), expect))
    return problems


def assert_spec_headers(what, headers, **kw):
    problems = header_problems(what, headers, **kw)
    assert not problems, '\n'.join(problems)


def assert_json_error(what, status, headers, data, expect_status):
    """status, a JSON content type and a {"detail": ...} body."""
    assert status == expect_status, '%s: status %d (expected %d), body %r' % (
        what, status, expect_status, data[:300])
    ctype = headers.get('content-type', '').replace(' ', '').lower()
    assert ctype == 'application/json;charset=utf-8', '%s: Content-Type %r, body %r' % (
        what, headers.get('content-type'), data[:300])
    try:
        body = json.loads(data)
    except ValueError:
        raise AssertionError('%s: body is not JSON: %r' % (what, data[:300])) from None
    assert isinstance(body, dict) and 'detail' in body, '%s: %r' % (what, body)
    return body


# --- client identity: forwarded headers ---------------------------------------------

def test_spoofed_x_forwarded_for_from_an_untrusted_peer_cannot_lift_a_block():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        block(server, CLIENT)
        for forged in (None, '9.9.9.9', '9.9.9.9, 8.8.8.8', '127.0.0.1', '10.0.0.1, 127.0.0.1'):
            for endpoint in KEYED:
                status, headers, body = miss(server, endpoint, CLIENT, forwarded=forged)
                assert_blocked(status, headers, body, 60)
        for other_header in ({'X-Real-IP': '9.9.9.9'}, {'Forwarded': 'for=9.9.9.9'},
                             {'Client-IP': '9.9.9.9'}):
            status, headers, body = server.json('GET', '/status/' + unknown_key(),
                                                headers=other_header, source_address=CLIENT)
            assert_blocked(status, headers, body, 60)
        status, _, body = miss(server, 'status', OTHER)
        assert_normal_miss('status', status, body)


def test_rotating_x_forwarded_for_from_an_untrusted_peer_cannot_dodge_the_failure_count():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        for i in range(3):
            status, _, body = miss(server, 'download', CLIENT, forwarded='1.0.0.%d' % (i + 1))
            assert_normal_miss('download', status, body)
        status, headers, body = miss(server, 'download', CLIENT, forwarded='1.0.0.99')
        assert_blocked(status, headers, body, 60)
        status, headers, body = miss(server, 'download', CLIENT)
        assert_blocked(status, headers, body, 60)


def test_spoofed_x_forwarded_for_from_an_untrusted_peer_cannot_dodge_the_upload_rate_limit():
    with Redis() as redis, Server(redis, env={'UPLOAD_RATE_LIMIT': '2/minute'}) as server:
        def attempt(client):
            return [server.upload(b'data %d' % i, source_address=client,
                                  headers=xff('%d.%d.%d.%d' % (i + 1, i + 1, i + 1, i + 1)))
                    for i in range(3)]
        _, results = in_one_window(60, attempt, ['127.0.0.2', '127.0.0.12', '127.0.0.22'])
        assert [r[0] for r in results] == [201, 201, 429], [(s, b) for s, _, b in results]
        status, headers, body = results[2]
        assert body == {'detail': 'Rate limit exceeded'}, body
        assert 1 <= retry_after(headers) <= 60, headers


def test_a_trusted_proxy_gets_the_forwarded_client_blocked_and_other_forwarded_clients_served():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        block(server, PROXY, forwarded='10.0.0.1')
        for endpoint in KEYED:
            status, headers, body = miss(server, endpoint, PROXY, forwarded='10.0.0.1')
            assert_blocked(status, headers, body, 60)
        for endpoint in KEYED:
            status, _, body = miss(server, endpoint, PROXY, forwarded='10.0.0.2')
            assert_normal_miss(endpoint, status, body)
        status, _, body = miss(server, 'download', PROXY)  # the proxy's own requests
        assert_normal_miss('download', status, body)


def test_a_client_cannot_forge_its_way_out_through_a_trusted_proxy_by_prepending_entries():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        block(server, PROXY, forwarded='10.0.0.1')
        # The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended the real peer.
        for forged in ('1.2.3.4, 10.0.0.1', '1.2.3.4,10.0.0.1', '5.6.7.8, 1.2.3.4, 10.0.0.1',
                       '10.0.0.1, 127.0.0.1'):  # the last: two proxy hops, both trusted
            status, headers, body = miss(server, 'status', PROXY, forwarded=forged)
            assert_blocked(status, headers, body, 60)
        # The same, with the forged value in a header line of its own.
        status, headers, body = request_with_header_lines(
            server, 'GET', '/status/' + unknown_key(),
            [('X-Forwarded-For', '1.2.3.4'), ('X-Forwarded-For', '10.0.0.1')], source=PROXY)
        assert_blocked(status, headers, body, 60)
        # What the proxy appended is the truth: here the client is 1.2.3.4, not blocked.
        status, _, body = miss(server, 'status', PROXY, forwarded='10.0.0.1, 1.2.3.4')
        assert_normal_miss('status', status, body)


def test_malformed_x_forwarded_for_is_ignored_not_fatal():
    env = {'DOWNLOAD_FAIL_LIMIT': '1000', 'WORKERS': '2'}
    with Redis() as redis, Server(redis, env=env) as server:
        before = workers_of(server, 2)
        rightmost_garbage = ['garbage', '', ' ', ',', ',,,,', ' , , ', '999.1.1.1', '1.2.3.4:80',
                             '10.0.0.9, not-an-ip', '10.0.0.9, 1.2.3', 'unknown', '[::1',
                             '1.2.3.4 5.6.7.8', '::ffff:300.1.1.1', '10.0.0.9, ' + 'x' * 8000,
                             '1' * 300, '%00', '\t', '10.0.0.9,,', b'\xff\xfe10.0.0.9']
        other = ['garbage, 10.0.0.9', ' 10.0.0.9 ', '[2001:db8::7]', '10.0.0.9' + ', 1.1.1.1' * 500]
        for value in rightmost_garbage + other:
            for target in ('/health/', '/status/' + unknown_key(), '/download/' + unknown_key()):
                status, headers, data = server.request('GET', target, source_address=PROXY,
                                                       headers={'X-Forwarded-For': value})
                assert status in (200, 404), 'XFF %r on %s -> %d %r' % (value, target, status,
                                                                       data[:200])
                parsed(data)  # still JSON
            if value in rightmost_garbage:
                client = logged_client(server, headers)
                assert client == PROXY, 'XFF %r: the client is %r, expected the peer %s' % (
                    value[:40], client, PROXY)
        assert server.running()
        assert workers_of(server, 2) == before, 'a worker died on a malformed X-Forwarded-For'


def test_the_request_log_shows_the_attributed_client():
    with Redis() as redis, Server(redis) as server:
        cases = [(CLIENT, None, CLIENT),
                 (CLIENT, '9.9.9.9', CLIENT),
                 (PROXY, None, PROXY),
                 (PROXY, '10.0.0.1', '10.0.0.1'),
                 (PROXY, '1.2.3.4, 10.0.0.1', '10.0.0.1'),
                 (PROXY, '10.0.0.1, 127.0.0.1', '10.0.0.1'),
                 (PROXY, '2001:db8::1', '2001:db8::1')]
        for source, forwarded, expect in cases:
            for target in ('/health/', '/status/' + unknown_key(), '/no-such-path'):
                _, headers, _ = server.request('GET', target, source_address=source,
                                               headers=xff(forwarded))
                client = logged_client(server, headers)
                assert client == expect, 'peer %s, XFF %r, %s: logged client %r, expected %r' % (
                    source, forwarded, target, client, expect)


def test_trusted_proxies_setting_decides_whose_forwarded_headers_are_believed():
    env = {'TRUSTED_PROXIES': '127.0.0.3/32', 'DOWNLOAD_FAIL_LIMIT': '2',
           'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        cases = [(PROXY, '10.0.0.7', PROXY),                  # 127.0.0.1 is not trusted now
                 ('127.0.0.3', '10.0.0.7', '10.0.0.7'),
                 ('127.0.0.3', '10.0.0.7, 127.0.0.3', '10.0.0.7')]
        for source, forwarded, expect in cases:
            _, headers, _ = server.request('GET', '/health/', source_address=source,
                                           headers=xff(forwarded))
            assert logged_client(server, headers) == expect, (source, forwarded)
        block(server, '127.0.0.3', forwarded='10.0.0.7', limit=2)
        status, headers, body = miss(server, 'status', '127.0.0.3', forwarded='10.0.0.7')
        assert_blocked(status, headers, body, 60)
        # 127.0.0.1 claiming to forward for 10.0.0.7 is just 127.0.0.1: not blocked.
        status, _, body = miss(server, 'status', PROXY, forwarded='10.0.0.7')
        assert_normal_miss('status', status, body)

    with Redis() as redis, Server(redis, env={'TRUSTED_PROXIES': ''}) as server:
        _, headers, _ = server.request('GET', '/health/', source_address=PROXY,
                                       headers=xff('10.0.0.7'))
        assert logged_client(server, headers) == PROXY, 'TRUSTED_PROXIES="" trusts nobody'


def test_forwarded_proto_and_host_are_believed_only_from_a_trusted_proxy():
    forwarded = {'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'drop.example'}
    with Redis() as redis, Server(redis) as server:
        status, headers, body = server.upload(b'from a proxy', source_address=PROXY,
                                              headers=forwarded)
        assert status == 201, body
        assert body['download_url'] == 'https://drop.example/download/' + body['key'], body
        status, headers, body = server.upload(b'from anyone', source_address=CLIENT,
                                              headers=forwarded)
        assert status == 201, body
        assert body['download_url'] == 'http://127.0.0.1:%d/download/%s' % (
            server.port, body['key']), body
        assert 'drop.example' not in headers.get('location', ''), headers.get('location')


# --- rate limits ----------------------------------------------------------------------

def test_upload_rate_limit_answers_429_with_retry_after_and_spares_other_clients():
    with Redis() as redis, Server(redis, env={'UPLOAD_RATE_LIMIT': '2/minute'}) as server:
        def attempt(client):
            return [server.upload(b'upload %d' % i, source_address=client) for i in range(3)]
        _, results = in_one_window(60, attempt, ['127.0.0.2', '127.0.0.12', '127.0.0.22'])
        assert [r[0] for r in results] == [201, 201, 429], [(s, b) for s, _, b in results]
        _, headers, body = results[2]
        assert body == {'detail': 'Rate limit exceeded'}, body
        assert 1 <= retry_after(headers) <= 60, headers
        status, _, body = server.upload(b'another client', source_address=OTHER)
        assert status == 201, body


def test_health_rate_limit_answers_429_with_retry_after_and_resets_with_its_window():
    with Redis() as redis, Server(redis, env={'HEALTH_RATE_LIMIT': '2/second'}) as server:
        def attempt(client):
            return [server.json('GET', '/health/', source_address=client) for _ in range(3)]
        clients = ['127.0.0.%d' % n for n in range(10, 20)]
        client, results = in_one_window(1, attempt, clients, early=0.5)
        assert [r[0] for r in results] == [200, 200, 429], [(s, b) for s, _, b in results]
        _, headers, body = results[2]
        assert body == {'detail': 'Rate limit exceeded'}, body
        assert retry_after(headers) == 1, headers
        status, _, body = server.json('GET', '/health/', source_address=OTHER)
        assert status == 200, body
        # The limited client is served again once its one-second window has passed.
        wait_until(lambda: server.request('GET', '/health/', source_address=client)[0] == 200,
                   3, message='health served again after the window')


def test_limits_and_blocks_hold_across_workers():
    env = {'WORKERS': '4', 'UPLOAD_RATE_LIMIT': '2/hour', 'DOWNLOAD_FAIL_LIMIT': '4',
           'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        workers = workers_of(server, 4)

        def attempt(client):
            conns = connections_on_distinct_workers(server, client, workers)
            statuses = []
            for i in range(4):
                body, ctype = multipart(b'across workers %d' % i)
                _, conn = conns[i % len(conns)]
                statuses.append(exchange(conn, 'POST', '/upload/', body,
                                         {'Content-Type': ctype})[0])
            return conns, statuses
        _, (conns, statuses) = in_one_window(3600, attempt, [CLIENT, '127.0.0.12'])
        assert statuses == [201, 201, 429, 429], \
            'uploads alternating over workers %r: %r' % ([p for p, _ in conns], statuses)

        for i in range(4):
            _, conn = conns[i % len(conns)]
            status, _, data = exchange(conn, 'GET', '/download/' + unknown_key())
            assert_normal_miss('download', status, parsed(data))
        for pid, conn in conns:
            for endpoint in KEYED:
                status, headers, data = exchange(conn, 'GET', '/%s/%s' % (endpoint, unknown_key()))
                assert_blocked(status, headers, parsed(data), 60)
        for pid, conn in conns:
            conn.close()
        for _ in range(3):  # another client, on new connections (any worker)
            status, _, body = miss(server, 'status', OTHER)
            assert_normal_miss('status', status, body)


def test_a_client_uploading_one_at_a_time_is_never_refused_as_too_many_in_progress():
    # Every finished upload gives its slot back, rejected ones included, before the
    # client has its answer: the next upload may land on the other worker at once.
    with Redis() as redis, Server(redis, env={'MAX_UPLOADS_PER_CLIENT': '1'}) as server:
        answers = []
        for i in range(40):
            status, _, body = server.upload(b'one at a time %d' % i, source_address=CLIENT)
            answers.append((201, status, body))
            status, _, body = server.json('POST', '/upload/', body=b'not multipart at all',
                                          headers={'Content-Type':
                                                   'multipart/form-data; boundary=zz'},
                                          source_address=CLIENT)
            answers.append((422, status, body))
        wrong = [(n, want, got, body) for n, (want, got, body) in enumerate(answers)
                 if got != want]
        assert not wrong, 'sequential uploads from one client (MAX_UPLOADS_PER_CLIENT=1, ' \
            'WORKERS=2), (request#, expected, got, body): %r' % wrong


def test_too_many_uploads_in_progress_for_a_client_answers_429_and_spares_other_clients():
    with Redis() as redis, Server(redis, env={'MAX_UPLOADS_PER_CLIENT': '2'}) as server:
        # An upload in progress is counted in the store (white box: the key the gate
        # script uses), so it holds across workers; simulate two that are still running.
        redis.command('SET', 'inflight:{%s}' % CLIENT, '2', 'EX', '60')
        status, headers, body = server.upload(b'a third at once', source_address=CLIENT)
        assert status == 429, body
        assert body == {'detail': 'Too many uploads in progress'}, body
        assert retry_after(headers) >= 1, headers
        assert_spec_headers('429 too many uploads', headers)
        status, _, body = server.upload(b'another client', source_address=OTHER)
        assert status == 201, body
        redis.command('DECR', 'inflight:{%s}' % CLIENT)  # one of them finished
        status, _, body = server.upload(b'after one finished', source_address=CLIENT)
        assert status == 201, body


def test_limits_and_blocks_hold_across_nodes_sharing_the_store():
    env = {'WORKERS': '1', 'UPLOAD_RATE_LIMIT': '2/hour', 'DOWNLOAD_FAIL_LIMIT': '3',
           'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as a, Server(redis, env=env) as b:
        nodes = (a, b)

        def attempt(client):
            return [nodes[i % 2].upload(b'two nodes %d' % i, source_address=client)[0]
                    for i in range(4)]
        _, statuses = in_one_window(3600, attempt, [CLIENT, '127.0.0.12'])
        assert statuses == [201, 201, 429, 429], 'uploads alternating over two nodes: %r' % statuses
        for i in range(3):
            status, _, body = miss(nodes[i % 2], 'preview', CLIENT)
            assert_normal_miss('preview', status, body)
        for node in nodes:
            status, headers, body = miss(node, 'preview', CLIENT)
            assert_blocked(status, headers, body, 60)
            status, _, body = miss(node, 'preview', OTHER)
            assert_normal_miss('preview', status, body)


# --- brute-force blocking ---------------------------------------------------------------

def test_the_failure_that_reaches_the_limit_gets_its_normal_answer_then_the_client_is_blocked():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        for i in range(3):
            status, _, body = miss(server, 'download', CLIENT)
            assert_normal_miss('download', status, body)
        status, headers, body = miss(server, 'download', CLIENT)
        assert_blocked(status, headers, body, 60)
        assert body['detail']['retry_after_seconds'] >= 55, body


def test_failures_are_counted_on_download_preview_and_status_together():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        for endpoint in KEYED:
            status, _, body = miss(server, endpoint, CLIENT)
            assert_normal_miss(endpoint, status, body)
        for endpoint in KEYED:
            status, headers, body = miss(server, endpoint, CLIENT)
            assert_blocked(status, headers, body, 60)
        # Keys that do not even have the shape of a key count as well.
        for endpoint, key in zip(KEYED, ('x', 'NOT-A-KEY', 'a-b-c-d-e-f')):
            status, _, body = miss(server, endpoint, OTHER, key=key)
            assert_normal_miss(endpoint, status, body)
        status, headers, body = miss(server, 'status', OTHER)
        assert_blocked(status, headers, body, 60)


def test_a_block_applies_to_download_preview_and_status_even_for_a_real_key():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        status, _, up = server.upload(b'a real file', uses=1, source_address=OTHER)
        assert status == 201, up
        block(server, CLIENT, endpoint='status')
        for endpoint in KEYED:
            status, headers, body = server.json('GET', '/%s/%s' % (endpoint, up['key']),
                                                source_address=CLIENT)
            assert_blocked(status, headers, body, 60)
        # Nothing was consumed by the blocked attempts.
        status, _, body = server.json('GET', '/status/' + up['key'], source_address=OTHER)
        assert status == 200 and body['status'] == 'active' and body['remaining_uses'] == 1, body
        status, _, body = server.json('GET', '/preview/' + up['key'], source_address=OTHER)
        assert status == 200, body
        status, _, data = server.request('GET', '/download/' + up['key'], source_address=OTHER)
        assert status == 200 and data == b'a real file', (status, data[:100])


def test_a_blocked_client_can_still_upload_and_check_health():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        block(server, CLIENT, endpoint='download')
        status, headers, body = miss(server, 'download', CLIENT)
        assert_blocked(status, headers, body, 60)
        status, _, body = server.upload(b'blocked but uploading', source_address=CLIENT)
        assert status == 201, body
        status, _, body = server.json('GET', '/health/', source_address=CLIENT)
        assert status == 200, body
        status, _, _ = server.request('OPTIONS', '/download/' + unknown_key(),
                                      source_address=CLIENT)
        assert status == 204, status
        status, _, body = server.json('GET', '/no-such-path', source_address=CLIENT)
        assert status == 404, body


def test_a_block_expires_after_the_block_window_and_counting_starts_over():
    window = 2
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': str(window)}
    with Redis() as redis, Server(redis, env=env) as server:
        block(server, CLIENT, endpoint='download')
        blocked_at = time.monotonic()
        status, headers, body = miss(server, 'download', CLIENT)
        assert_blocked(status, headers, body, window)

        answers = []

        def served_again():
            status, headers, body = miss(server, 'download', CLIENT)
            answers.append(status)
            return status != 429 and (status, body)
        status, body = wait_until(served_again, window + 3, interval=0.05,
                                  message='the block of %d s to expire' % window)
        elapsed = time.monotonic() - blocked_at
        assert_normal_miss('download', status, body)
        assert elapsed >= window - 1, 'block lifted after %.2fs, window is %ds' % (elapsed, window)
        assert set(answers[:-1]) <= {429}, answers
        # That answer was failure 1 of a new count: two more, then blocked again.
        for _ in range(2):
            status, _, body = miss(server, 'download', CLIENT)
            assert_normal_miss('download', status, body)
        status, headers, body = miss(server, 'download', CLIENT)
        assert_blocked(status, headers, body, window)


# --- headers, CORS, methods, paths ------------------------------------------------------

def test_spec_headers_on_every_status():
    env = {'MAX_FILE_SIZE': '100000', 'UPLOAD_RATE_LIMIT': '1/hour',
           'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    seen = []  # (what, status, headers, cache-control override)
    with Redis() as redis, Server(redis, env=env) as server:
        def note(what, expect, status, headers, data=b'', cache_control=None):
            assert status == expect, '%s: %d (expected %d) %r' % (what, status, expect,
                                                                  str(data)[:200])
            seen.append((what, headers, cache_control))

        status, headers, data = server.request('GET', '/health/')
        note('GET /health/', 200, status, headers, data)
        status, headers, up = server.upload(b'headers everywhere', uses=1)
        note('POST /upload/', 201, status, headers, up)
        status, headers, data = server.request('GET', '/status/' + up['key'])
        note('GET /status/KEY', 200, status, headers, data)
        status, headers, data = server.request('GET', '/preview/' + up['key'])
        note('GET /preview/KEY', 200, status, headers, data)
        status, headers, data = server.request('GET', '/download/' + up['key'])
        note('GET /download/KEY', 200, status, headers, data, DOWNLOAD_CACHE_CONTROL)
        status, headers, data = server.request('GET', '/download/' + up['key'])
        note('GET /download/KEY again', 410, status, headers, data)
        status, headers, data = server.request('OPTIONS', '/upload/')
        note('OPTIONS /upload/', 204, status, headers, data)
        status, headers, data = server.request('GET', '/no-such-path')
        note('GET /no-such-path', 404, status, headers, data)
        status, headers, data = server.request('GET', '/download/' + unknown_key(),
                                               source_address='127.0.0.4')
        note('GET /download/UNKNOWN', 404, status, headers, data)
        status, headers, data = server.request('DELETE', '/upload/')
        note('DELETE /upload/', 405, status, headers, data)
        status, headers, data = raw_exchange(
            server, b'POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; '
                    b'boundary=b\r\nContent-Length: 100000000\r\n\r\n', 'POST')
        note('POST /upload/ over MAX_FILE_SIZE', 413, status, headers, data)
        status, headers, data = server.upload(None, source_address='127.0.0.6')
        note('POST /upload/ without a file', 422, status, headers, data)
        status, headers, data = server.upload(b'first within the hour', source_address='127.0.0.7')
        note('POST /upload/ within the rate limit', 201, status, headers, data)
        status, headers, data = server.upload(b'second within the hour', source_address='127.0.0.7')
        note('POST /upload/ over the rate limit', 429, status, headers, data)
        block(server, OTHER)
        status, headers, data = server.request('GET', '/status/' + unknown_key(),
                                               source_address=OTHER)
        note('GET /status/ while blocked', 429, status, headers, data)

        redis.stop()
        wait_until(lambda: server.request('GET', '/status/' + unknown_key(),
                                          source_address='127.0.0.5')[0] == 503, 10,
                   message='503 once the store is down')
        status, headers, data = server.request('GET', '/status/' + unknown_key(),
                                               source_address='127.0.0.5')
        note('GET /status/ with the store down', 503, status, headers, data)
        status, headers, data = server.upload(b'store down', source_address='127.0.0.5')
        note('POST /upload/ with the store down', 503, status, headers, data)
        status, headers, data = server.request('GET', '/health/')
        note('GET /health/ with the store down', 503, status, headers, data)

    problems = []
    for what, headers, cache_control in seen:
        problems += header_problems(what, headers, cache_control=cache_control)
    assert not problems, '\n'.join(problems)


def test_request_ids_are_unique_across_workers_and_concurrent_requests():
    with Redis() as redis, Server(redis, env={'WORKERS': '4'}) as server:
        ids, errors = [], []
        lock = threading.Lock()
        requests = [('GET', '/health/'), ('GET', '/no-such-path'), ('OPTIONS', '/upload/'),
                    ('POST', '/health/'), ('GET', '/status/' + unknown_key())]

        def run(n):
            for i in range(30):
                method, target = requests[(n + i) % len(requests)]
                try:
                    status, headers, _ = server.request(method, target)
                    with lock:
                        ids.append(headers.get('x-request-id', '').lower())
                except Exception as e:  # noqa: BLE001 - every failure is reported
                    with lock:
                        errors.append(repr(e))
        threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors[:5]
        assert len(ids) == 240, len(ids)
        bad = [i for i in ids if not UUID4.match(i)]
        assert not bad, 'not uuid v4: %r' % bad[:5]
        assert len(set(ids)) == len(ids), '%d repeated request ids' % (len(ids) - len(set(ids)))


def test_cors_with_a_list_echoes_only_a_listed_origin_with_vary():
    env = {'CORS_ORIGINS': 'https://a.example,https://b.example'}
    with Redis() as redis, Server(redis, env=env) as server:
        def vary_origin(headers):
            return 'origin' in tokens(headers.get('vary'))
        for origin in ('https://a.example', 'https://b.example'):
            for method, target in (('GET', '/health/'), ('GET', '/no-such-path'),
                                   ('GET', '/status/' + unknown_key()), ('POST', '/health/')):
                status, headers, _ = server.request(method, target, headers={'Origin': origin})
                what = '%s %s from %s -> %d' % (method, target, origin, status)
                assert_spec_headers(what, headers, origin=origin)
                assert vary_origin(headers), '%s: Vary %r' % (what, headers.get('vary'))
        for origin in ('https://c.example', 'https://a.example.evil.example', 'http://a.example',
                       'https://a.example:8443', 'null', 'https://A.example.', '*'):
            status, headers, _ = server.request('GET', '/health/', headers={'Origin': origin})
            assert 'access-control-allow-origin' not in headers, \
                'Origin %r got ACAO %r' % (origin, headers['access-control-allow-origin'])
            assert vary_origin(headers), 'Origin %r: Vary %r' % (origin, headers.get('vary'))
        status, headers, _ = server.request('GET', '/health/')
        assert 'access-control-allow-origin' not in headers, headers
        assert vary_origin(headers), 'no Origin: Vary %r' % headers.get('vary')
        status, headers, _ = server.request('OPTIONS', '/upload/', headers={
            'Origin': 'https://b.example', 'Access-Control-Request-Method': 'POST',
            'Access-Control-Request-Headers': 'content-type'})
        assert status == 204, status
        assert_spec_headers('preflight from b', headers, origin='https://b.example')
        assert vary_origin(headers), headers


def test_preflight_options_on_any_path_answers_204_with_the_allowed_methods_and_headers():
    with Redis() as redis, Server(redis) as server:
        for target in ('/upload/', '/upload', '/download/' + unknown_key(), '/preview/x',
                       '/status/x', '/health/', '/nonexistent', '/', '*'):
            status, headers, data = server.request('OPTIONS', target, headers={
                'Origin': 'https://app.example', 'Access-Control-Request-Method': 'POST',
                'Access-Control-Request-Headers': 'Content-Type'})
            assert status == 204, 'OPTIONS %s -> %d %r' % (target, status, data[:200])
            assert data == b'', 'OPTIONS %s: body %r' % (target, data[:200])
            assert_spec_headers('OPTIONS %s' % target, headers)


def test_wrong_method_on_a_known_path_answers_405_json_with_allow():
    with Redis() as redis, Server(redis) as server:
        cases = [('GET', '/upload/', 'POST'), ('PUT', '/upload', 'POST'),
                 ('POST', '/health/', 'GET'), ('DELETE', '/health', 'GET'),
                 ('POST', '/download/' + unknown_key(), 'GET'), ('PUT', '/preview/x', 'GET'),
                 ('DELETE', '/status/x', 'GET'), ('FROB', '/health/', 'GET')]
        for method, target, allowed in cases:
            status, headers, data = server.request(method, target)
            what = '%s %s' % (method, target)
            assert_json_error(what, status, headers, data, 405)
            allow = [t.upper() for t in tokens(headers.get('allow'))]
            assert allowed in allow and 'OPTIONS' in allow, '%s: Allow %r' % (
                what, headers.get('allow'))
            assert method not in allow, '%s: Allow %r' % (what, headers.get('allow'))
            assert_spec_headers(what, headers)


def test_unknown_path_answers_404_json_and_counts_no_failure():
    env = {'DOWNLOAD_FAIL_LIMIT': '2', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        for target in ('/nonexistent', '/upload/extra', '/health/x', '/api/v1/upload',
                       '/.env', '/download', '/%2e%2e/etc/passwd', '/?q=1'):
            status, headers, data = server.request('GET', target, source_address=CLIENT)
            body = assert_json_error('GET %s' % target, status, headers, data, 404)
            assert isinstance(body['detail'], str), body
            assert_spec_headers('GET %s' % target, headers)
        # Eight unknown paths later, the client has no failure on record.
        status, _, body = miss(server, 'status', CLIENT)
        assert_normal_miss('status', status, body)


# --- resource bounds ---------------------------------------------------------------------

def test_content_length_over_max_file_size_answers_413_json_before_the_body_is_sent():
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': '1000'}) as server:
        for length in (10 ** 12, 100000):
            head = (b'POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; '
                    b'boundary=b\r\nContent-Length: %d\r\n\r\n' % length)
            s = raw_connect(server, timeout=5)
            try:
                started = time.monotonic()
                s.sendall(head)  # and not one byte of the body
                status, headers, data = read_response(s, 'POST')
                took = time.monotonic() - started
            finally:
                s.close()
            what = 'Content-Length %d' % length
            body = assert_json_error(what, status, headers, data, 413)
            assert took < 2, '%s: answered after %.2fs' % (what, took)
            assert_spec_headers(what, headers)
            rid = headers['x-request-id']
            line = wait_until(lambda: request_line(server.log_lines(), rid), 5,
                              message='the 413 logged')
            assert line['status_code'] == 413, line
            assert sum(1 for x in server.log_lines() if x.get('request_id') == rid) == 1
            # SPEC: "File too large: N bytes (Max Size: M bytes)"; "more than M" only
            # when rejected while streaming -- here N is known from Content-Length.
            assert body['detail'] == 'File too large: %d bytes (Max Size: 1000 bytes)' % length, \
                '%s: detail %r' % (what, body['detail'])


def test_a_chunked_body_over_max_file_size_answers_413_json_while_streaming():
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': '1000'}) as server:
        head = (b'POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; '
                b'boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n')
        chunks = b''.join(b'400\r\n' + b'a' * 1024 + b'\r\n' for _ in range(100))
        status, headers, data = raw_exchange(server, head + chunks, 'POST')
        body = assert_json_error('chunked 100 KiB', status, headers, data, 413)
        assert re.match(r'^File too large: (\d+|more than 1000) bytes \(Max Size: 1000 bytes\)$',
                        body['detail']), body
        assert_spec_headers('chunked 100 KiB', headers)


def _head_with(extra_headers):
    return b'GET /health/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n' + extra_headers + b'\r\n'


def assert_answered_json(server, what, data, expect_status):
    """Send a raw request; it must be answered expect_status, JSON, SPEC headers."""
    try:
        status, headers, body = raw_exchange(server, data)
    except (http.client.HTTPException, OSError) as e:
        raise AssertionError('%s: no HTTP answer (%r)' % (what, e)) from None
    assert_json_error(what, status, headers, body, expect_status)
    assert_spec_headers(what, headers)
    assert server.running()


def test_a_100_kb_request_head_answers_431_json():
    # Issue 4: the header size is a bound with a sane default, answered 431 in JSON.
    # (libh2o alone takes heads up to H2O_MAX_REQLEN, 8192 + 4096 * 100 = 417792 bytes.)
    with Redis() as redis, Server(redis) as server:
        assert_answered_json(server, '100 KB of headers',
                             _head_with(b'X-Big: ' + b'a' * 100000 + b'\r\n'), 431)
        assert_answered_json(server, '100 KB in 50 headers',
                             _head_with(b''.join(b'X-Big-%d: %s\r\n' % (i, b'b' * 2000)
                                                 for i in range(50))), 431)


def assert_refused_by_libh2o(server, what, data):
    """Past libh2o's own parser limits (a head over H2O_MAX_REQLEN, more than 100
    fields, a line that is not HTTP) libh2o writes a plain 400 straight to the socket,
    before any filter of ours can run: the client still gets a 400 status line, and
    nothing else is harmed."""
    workers = server.children()['workers']
    status, _, _ = raw_exchange(server, data)
    assert status == 400, '%s: %r' % (what, status)
    assert server.children()['workers'] == workers, '%s: a worker was replaced' % what
    status, _, _ = server.request('GET', '/health/')
    assert status == 200


def test_a_request_head_larger_than_libh2o_can_buffer_is_refused_with_400():
    with Redis() as redis, Server(redis) as server:
        assert_refused_by_libh2o(server, '512 KB of headers',
                                 _head_with(b'X-Big: ' + b'a' * 512 * 1024 + b'\r\n'))


def test_too_many_header_fields_answer_431_json():
    # MAX_HEADER_COUNT (default 64) applies below libh2o's own limit of 100 fields.
    with Redis() as redis, Server(redis) as server:
        assert_answered_json(server, '80 header fields',
                             _head_with(b''.join(b'X-H%d: v\r\n' % i for i in range(80))), 431)
        assert_refused_by_libh2o(server, '150 header fields',
                                 _head_with(b''.join(b'X-H%d: v\r\n' % i for i in range(150))))


def test_an_overlong_request_line_answers_414_json():
    # Issue 4 lists the request line among the bounds, answered 414.
    with Redis() as redis, Server(redis) as server:
        assert_answered_json(server, '100 KB request target',
                             b'GET /' + b'a' * 100000 + b' HTTP/1.1\r\nHost: x\r\n'
                             b'Connection: close\r\n\r\n', 414)


def test_a_malformed_request_answers_400():
    with Redis() as redis, Server(redis) as server:
        assert_answered_json(server, 'a non-numeric Content-Length',
                             b'POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n'
                             b'Connection: close\r\n\r\n', 400)
        assert_refused_by_libh2o(server, 'a request line that is not HTTP', b'GARBAGE\r\n\r\n')


def log_mark(server):
    """Make a request and wait for its log line: the number of lines up to it. Lines are
    written asynchronously, so counting lines without such a mark may count too few."""
    _, headers, _ = server.request('GET', '/no-such-path')
    rid = headers['x-request-id']

    def marked():
        lines = server.log_lines()
        for n, line in enumerate(lines):
            if line.get('request_id') == rid:
                return n + 1
        return None
    return wait_until(marked, 5, message='the log mark %s' % rid)


def worker_lines(server, skip):
    """Log lines of the workers after the first `skip` lines (the shredder and the master
    log on their own schedule)."""
    return [x for x in server.log_lines()[skip:] if x.get('process') == 'worker']


def _open_count(socks):
    return sum(1 for s in socks if not closed_by_peer(s))


def test_max_connections_sheds_excess_connections_and_serves_again_once_they_close():
    env = {'WORKERS': '1', 'MAX_CONNECTIONS': '20'}  # BODY_TIMEOUT stays 60 s
    with Redis() as redis, Server(redis, env=env) as server:
        socks = []
        try:
            started = time.monotonic()
            for _ in range(50):
                socks.append(raw_connect(server, CLIENT))
            for s in socks:
                s.setblocking(False)
            wait_until(lambda: len(socks) - _open_count(socks) >= 30, 3,
                       message='the 30 connections over MAX_CONNECTIONS=20 to be closed')
            shed_after = time.monotonic() - started
            still_open = [s for s in socks if not closed_by_peer(s)]
            # At most MAX_CONNECTIONS held (one slot may still be the harness's health check).
            assert 19 <= len(still_open) <= 20, '%d of 50 connections still open' % len(still_open)
            assert shed_after < 3, shed_after
            # While they are held a new client is turned away at once, not queued.
            try:
                status, _, _ = server.request('GET', '/health/', source_address=OTHER, timeout=5)
            except (http.client.HTTPException, OSError):
                status = None
            assert status is None, 'a 21st connection was served (%s) while 20 were held' % status
            # The held connections are real connections: each is served.
            for s in still_open:
                s.setblocking(True)
                s.settimeout(5)
                s.sendall(b'GET /no-such-path HTTP/1.1\r\nHost: x\r\n\r\n')
                status, _, _ = read_response(s)
                assert status == 404, status
        finally:
            for s in socks:
                s.close()
        wait_until(lambda: server.request('GET', '/health/', source_address=OTHER,
                                          timeout=2)[0] == 200, 5,
                   message='a new client served once the held connections closed')


def test_connections_shed_over_max_connections_are_logged():
    env = {'WORKERS': '1', 'MAX_CONNECTIONS': '5'}
    with Redis() as redis, Server(redis, env=env) as server:
        before = log_mark(server)
        socks = [raw_connect(server, CLIENT) for _ in range(15)]
        try:
            for s in socks:
                s.setblocking(False)
            wait_until(lambda: len(socks) - _open_count(socks) >= 10, 3,
                       message='connections over MAX_CONNECTIONS=5 to be closed')
            wait_until(lambda: worker_lines(server, before), 5,
                       message='a worker log line about the shed connections')
        finally:
            for s in socks:
                s.close()


class SlowClients(threading.Thread):
    """Raw connections that each send one more byte every `period` seconds: half hold a
    request head open, half a request body (slowloris / slow POST)."""

    def __init__(self, server, count, period=0.5, source='127.0.0.3'):
        super().__init__(daemon=True)
        self.period = period
        self.socks = []
        self.rounds = 0
        self.send_errors = 0
        self.halt = threading.Event()
        for i in range(count):
            s = raw_connect(server, source, timeout=5)
            if i % 2:
                s.sendall(b'POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Type: '
                          b'multipart/form-data; boundary=slow\r\nContent-Length: 5000000\r\n\r\n'
                          b'--slow\r\n')
            else:
                s.sendall(b'GET /health/ HTTP/1.1\r\nHost: x\r\nX-Slow: ')
            s.setblocking(False)
            self.socks.append(s)

    def run(self):
        while not self.halt.wait(self.period):
            for s in self.socks:
                try:
                    s.send(b'a')
                except OSError:
                    self.send_errors += 1
            self.rounds += 1

    def open_count(self):
        return _open_count(self.socks)

    def stop(self):
        self.halt.set()
        self.join(10)
        for s in self.socks:
            s.close()


def test_200_slow_clients_do_not_stop_a_normal_client_uploading_and_downloading_within_a_second():
    with Redis() as redis, Server(redis) as server:
        slow = SlowClients(server, 200)
        slow.start()
        try:
            wait_until(lambda: slow.rounds >= 2, 5, message='slow clients trickling')
            timings = []
            for i in range(3):
                at = slow.rounds
                wait_until(lambda: slow.rounds > at, 5, message='another trickle round')
                payload = os.urandom(64 * 1024)
                started = time.monotonic()
                status, _, body = server.upload(payload, filename='normal-%d.bin' % i)
                upload_took = time.monotonic() - started
                assert status == 201, body
                started = time.monotonic()
                status, _, data = server.request('GET', '/download/' + body['key'])
                download_took = time.monotonic() - started
                assert status == 200 and data == payload, (status, len(data))
                timings.append((upload_took, download_took))
            still_open = slow.open_count()
        finally:
            slow.stop()
        assert still_open == 200, 'only %d of 200 slow clients were still connected' % still_open
        slowest = max(max(t) for t in timings)
        assert slowest < 1.0, 'upload/download took %r s with 200 slow clients' % timings


def test_slow_senders_are_cut_off_at_body_timeout():
    env = {'BODY_TIMEOUT': '2', 'IDLE_TIMEOUT': '30'}
    with Redis() as redis, Server(redis, env=env) as server:
        upload_head = (b'POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; '
                       b'boundary=slow\r\nContent-Length: 1000\r\n\r\n')
        cases = {  # name: (first bytes, trickle a byte every 0.3 s?)
            'stalled head': (b'GET /health/ HTTP/1.1\r\nHost: x\r\n', False),
            'trickling head': (b'GET /health/ HTTP/1.1\r\nHost: x\r\nX-Slow: ', True),
            'stalled body': (upload_head + b'--slow\r\n', False),
            'trickling body': (upload_head + b'--slow\r\n', True),
        }
        socks, started = {}, {}
        for name, (first, _) in cases.items():
            s = raw_connect(server, CLIENT)
            started[name] = time.monotonic()
            s.sendall(first)
            s.setblocking(False)
            socks[name] = s
        # And an idle keep-alive connection after one answered request.
        idle = raw_connect(server, CLIENT)
        idle.sendall(b'GET /no-such-path HTTP/1.1\r\nHost: x\r\n\r\n')
        status, _, _ = read_response(idle)
        assert status == 404
        started['idle keep-alive'] = time.monotonic()
        idle.setblocking(False)
        socks['idle keep-alive'] = idle

        closed_after = {}
        deadline = time.monotonic() + 8
        last_trickle = 0.0
        try:
            while len(closed_after) < len(socks) and time.monotonic() < deadline:
                now = time.monotonic()
                if now - last_trickle >= 0.3:
                    last_trickle = now
                    for name, (_, trickle) in cases.items():
                        if trickle and name not in closed_after:
                            try:
                                socks[name].send(b'a')
                            except OSError:
                                pass
                for name, s in socks.items():
                    if name not in closed_after and closed_by_peer(s):
                        closed_after[name] = time.monotonic() - started[name]
                time.sleep(0.01)
        finally:
            for s in socks.values():
                s.close()
        never = sorted(set(socks) - set(closed_after))
        assert not never, 'still connected 8 s later with BODY_TIMEOUT=2: %s' % never
        for name, took in closed_after.items():
            assert 1.5 <= took <= 4.0, '%s: closed after %.2fs (BODY_TIMEOUT=2)' % (name, took)
        status, _, body = server.json('GET', '/health/', source_address=OTHER)
        assert status == 200, body


def test_a_request_cut_off_at_body_timeout_is_logged():
    with Redis() as redis, Server(redis, env={'BODY_TIMEOUT': '2'}) as server:
        before = log_mark(server)
        s = raw_connect(server, CLIENT)
        try:
            started = time.monotonic()
            s.sendall(b'POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; '
                      b'boundary=slow\r\nContent-Length: 1000\r\n\r\n--slow\r\n')
            s.setblocking(False)
            wait_closed(s, 5, started)
        finally:
            s.close()
        wait_until(lambda: worker_lines(server, before), 5,
                   message='a worker log line for the request cut off at BODY_TIMEOUT')


def test_an_idle_http2_connection_is_closed_at_idle_timeout():
    env = {'IDLE_TIMEOUT': '2', 'BODY_TIMEOUT': '30'}
    with Redis() as redis, Server(redis, env=env) as server:
        s = raw_connect(server, CLIENT, timeout=10)
        try:
            started = time.monotonic()
            # HTTP/2 with prior knowledge: the preface and an empty SETTINGS frame.
            s.sendall(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + b'\x00\x00\x00\x04\x00\x00\x00\x00\x00')
            received = b''
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                received += chunk
            took = time.monotonic() - started
        finally:
            s.close()
        assert 1.5 <= took <= 4.0, \
            'idle HTTP/2 connection closed after %.2fs (IDLE_TIMEOUT=2)' % took
        frame_types = []
        while len(received) >= 9:
            length = int.from_bytes(received[:3], 'big')
            frame_types.append(received[3])
            received = received[9 + length:]
        assert 0x7 in frame_types, 'no GOAWAY before the close: frames %r' % frame_types


def test_a_download_that_stops_reading_is_cut_off_at_body_timeout_and_its_file_shredded():
    # libh2o has no send timeout: without ours, a client that stops reading would hold
    # the stored file (and its lock, so a burned file could never be shredded).
    env = {'BODY_TIMEOUT': '2', 'MAX_FILE_SIZE': str(96 << 20)}
    with Redis() as redis, Server(redis, env=env) as server:
        data = os.urandom(64 << 20)  # far more than socket buffers can absorb
        status, _, created = server.upload(data, filename='big.bin')
        assert status == 201, created
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(('127.0.0.1', server.port))
        try:
            s.sendall(b'GET /download/%s HTTP/1.1\r\nHost: x\r\n\r\n' % created['key'].encode())
            started = time.monotonic()
            # Read nothing: wait for the server to give up on us.
            wait_until(lambda: any(x.get('event') == 'download_stalled' for x in server.log_lines()),
                       10, message='the stalled download logged')
            took = time.monotonic() - started
            received = 0
            s.settimeout(5)
            try:
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    received += len(chunk)
            except (ConnectionResetError, socket.timeout):
                pass
        finally:
            s.close()
        assert 1.5 <= took <= 6, 'cut off after %.1fs with BODY_TIMEOUT=2' % took
        assert received < len(data), 'the whole file arrived: %d bytes' % received
        # The only use was taken: the file must now be shredded, not held.
        trash = os.path.join(os.path.dirname(server.settings['TEMP_PATH']), 'trash')
        wait_until(lambda: not os.listdir(trash), 10, message='the burned file shredded')
