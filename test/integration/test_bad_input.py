"""Hostile and broken input: truncated and malformed multipart, bad boundaries, huge
and unparseable heads, absurd lengths, broken chunked framing, odd paths and methods.

Each request gets a clear answer - a 4xx with a JSON {"detail": ...} body, or the answer
the contract documents for it - and none may crash a worker: every test ends by checking
that the master replaced nobody (same worker and shredder pids, no `child_died` in the
log) and that health still answers 200. A failed upload leaves nothing behind: no file
in TEMP_PATH or STORAGE_PATH, no `upload:*` record.

Requests are written on raw sockets where http.client would refuse to send them."""

import os
import socket

from harness import (STATUS_UNKNOWN, Redis, Server, assert_json_error, assert_nobody_replaced,
                     assert_nothing_left, json_answer, multipart, one_response, parse_responses,
                     raw_exchange, sha256, temp_files, wait_until)


# Failed lookups count towards the brute-force block; the sweep sends many on purpose.
SWEEP_ENV = {'DOWNLOAD_FAIL_LIMIT': '1000000'}


class Sweep:
    """A server and its store for a sweep; check() proves nobody crashed."""

    def __init__(self, env=None):
        settings = dict(SWEEP_ENV)
        settings.update(env or {})
        self.redis = Redis()
        self.server = Server(self.redis, env=settings)
        self.before = self.server.full_tree()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.stop()
        self.redis.stop()

    def assert_nothing_left(self, what):
        assert_nothing_left(self.server, self.redis, what)

    def check(self):
        """The master replaced nobody and the service is healthy."""
        assert_nobody_replaced(self.server, self.before)


def assert_json_4xx(what, status, headers, body, allowed=range(400, 500)):
    """A clear client error: a 4xx (one of `allowed`) with a JSON {"detail": ...}."""
    return assert_json_error(status, headers, body, allowed, what=what)


def assert_json_4xx_or_libh2o_400(what, status, headers, body):
    """A request libh2o 2.2.5 cannot parse at all (or whose head passes its own limits:
    about 408 KiB, 100 fields) is refused by libh2o itself with a plain
    "400 Bad Request" written straight to the socket, before any code of ours runs.
    Anything we do see gets the contract's JSON 4xx."""
    if status == 400 and headers.get('content-type', '').startswith('text/plain'):
        return None
    return assert_json_4xx(what, status, headers, body)


def assert_each_refused(sweep, cases):
    """Each (what, raw bytes) gets a clear 4xx; all are tried before failing."""
    failures = []
    for what, data in cases:
        received, end = raw_exchange(sweep.server, data)
        try:
            assert received, '%s: no answer (connection %s)' % (what, end)
            status, headers, body = one_response(received, what)
            assert_json_4xx_or_libh2o_400(what, status, headers, body)
        except AssertionError as e:
            failures.append(str(e))
    sweep.check()
    assert not failures, '\n'.join(failures)


def post_upload_head(content_type, length=None, extra=b''):
    head = (b'POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n'
            b'Content-Type: ' + content_type.encode() + b'\r\n')
    if length is not None:
        head += b'Content-Length: ' + str(length).encode() + b'\r\n'
    return head + extra + b'\r\n'


def upload_raw(sweep, body, ctype, extra=b''):
    data, _ = raw_exchange(sweep.server, post_upload_head(ctype, len(body), extra) + body)
    return one_response(data, 'upload')


# --- truncated and malformed multipart ------------------------------------------------

def test_upload_cut_short_by_the_client_leaves_nothing_and_crashes_nothing():
    with Sweep() as sweep:
        for size in (10_000, 3 * 1024 * 1024):  # in memory, and spilled to TEMP_PATH
            body, ctype = multipart(os.urandom(size))
            head = post_upload_head(ctype, len(body) + 1000)
            # Content-Length promises more than is sent, then the client closes.
            data, end = raw_exchange(sweep.server, head + body, half_close=True)
            if data:
                status, headers, resp = one_response(data, 'upload cut short')
                assert_json_4xx('upload of %d bytes cut short' % size, status, headers, resp)
            # ... and with half the body sent before a hard close.
            sock = socket.create_connection(('127.0.0.1', sweep.server.port))
            sock.sendall(head + body[:len(body) // 2])
            sock.close()
        # The server notices the closed connections; nothing of them may remain.
        wait_until(lambda: temp_files(sweep.server) == [], 10,
                   message='TEMP_PATH empty after uploads cut short')
        sweep.assert_nothing_left('uploads cut short')
        sweep.check()


def test_multipart_without_its_closing_boundary_is_422_and_leaves_nothing():
    with Sweep() as sweep:
        for size in (1000, 200_000):
            body, ctype = multipart(os.urandom(size), close=False)
            status, headers, resp = upload_raw(sweep, body, ctype)
            parsed = assert_json_4xx('no closing boundary (%d bytes)' % size, status, headers,
                                     resp, allowed={422})
            assert isinstance(parsed['detail'], list), parsed
        # The closing delimiter cut in the middle, and a body that is only a preamble.
        body, ctype = multipart(b'hello')
        for cut in (body[:-4], body[:-9], b'no delimiter at all\r\n'):
            status, headers, resp = upload_raw(sweep, cut, ctype)
            assert_json_4xx('truncated delimiter %r' % cut[-12:], status, headers, resp,
                            allowed={422})
        sweep.assert_nothing_left('multipart without its closing boundary')
        sweep.check()


def test_missing_empty_or_overlong_boundary_is_422_and_a_70_char_boundary_works():
    with Sweep() as sweep:
        body, _ = multipart(b'hello', boundary='b' * 71)
        for ctype in ('multipart/form-data', 'multipart/form-data; boundary=',
                      'multipart/form-data; boundary=""', 'multipart/form-data; boundary=' + 'b' * 71,
                      'multipart/form-data; boundary=' + 'b' * 5000, 'text/plain'):
            status, headers, resp = upload_raw(sweep, body, ctype)
            assert_json_4xx('Content-Type %r' % ctype[:60], status, headers, resp, allowed={422})
        # Without any Content-Type at all.
        data, _ = raw_exchange(sweep.server, b'POST /upload/ HTTP/1.1\r\nHost: x\r\n'
                               b'Connection: close\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
        status, headers, resp = one_response(data, 'no Content-Type')
        assert_json_4xx('no Content-Type', status, headers, resp, allowed={422})
        sweep.assert_nothing_left('bad boundaries')
        # RFC 2046 allows 70 characters: that is not hostile, it must work.
        payload = os.urandom(3000)
        body, ctype = multipart(payload, boundary='7' * 70)
        status, headers, resp = upload_raw(sweep, body, ctype)
        parsed = json_answer('a 70-character boundary', status, headers, resp)
        assert status == 201, 'a 70-character boundary: %d %r' % (status, parsed)
        assert parsed['sha256'] == sha256(payload), parsed
        sweep.check()


# --- heads ------------------------------------------------------------------------------

def test_huge_request_heads_get_a_clear_4xx():
    # Below libh2o's own limits the answers are exactly 431 and 414 (test_http); far
    # past them: a clear 4xx, no crash.
    with Sweep() as sweep:
        cases = [
            ('1 MiB header value', b'GET /health/ HTTP/1.1\r\nHost: x\r\nX-Big: '
             + b'a' * (1 << 20) + b'\r\nConnection: close\r\n\r\n'),
            ('200 header fields', b'GET /health/ HTTP/1.1\r\nHost: x\r\n'
             + b''.join(b'X-H%d: v\r\n' % i for i in range(200)) + b'Connection: close\r\n\r\n'),
            ('1 MiB request target', b'GET /' + b'a' * (1 << 20) + b' HTTP/1.1\r\nHost: x\r\n'
             b'Connection: close\r\n\r\n'),
        ]
        assert_each_refused(sweep, cases)


def test_unparseable_requests_get_a_clear_400():
    with Sweep() as sweep:
        cases = [
            ('a control byte in the method', b'GE\x01T /health/ HTTP/1.1\r\nHost: x\r\n\r\n'),
            ('no HTTP version', b'GET /health/\r\nHost: x\r\n\r\n'),
            ('HTTP/2.0 on an HTTP/1 connection', b'GET /health/ HTTP/2.0\r\nHost: x\r\n\r\n'),
            ('a TLS ClientHello on the plain port',
             b'\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03' + os.urandom(64)),
            ('a header without a colon', b'GET /health/ HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n'),
            ('a space before the colon', b'GET /health/ HTTP/1.1\r\nHost : x\r\n\r\n'),
            ('a control byte in a header value',
             b'POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; '
             b'boundary=a\x01b\r\nContent-Length: 0\r\n\r\n'),
            ('random bytes', bytes(range(256)) * 4 + b'\r\n\r\n'),
        ]
        assert_each_refused(sweep, cases)


# --- lengths ---------------------------------------------------------------------------

def test_absurd_or_broken_content_length_is_a_json_4xx_and_leaves_nothing():
    with Sweep() as sweep:
        body, ctype = multipart(b'hello')
        for length in ('99999999999999999999', '18446744073709551616', '-5', '12abc', '0x10',
                       ' ', '1e3', str(len(body)) + ', ' + str(len(body) + 1)):
            head = (b'POST /upload/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: '
                    + ctype.encode() + b'\r\nContent-Length: ' + length.encode() + b'\r\n\r\n')
            received, end = raw_exchange(sweep.server, head + body)
            assert received, 'Content-Length %r: no answer (%s)' % (length, end)
            status, headers, resp = one_response(received, 'Content-Length %r' % length)
            assert_json_4xx('Content-Length %r' % length, status, headers, resp,
                            allowed={400, 411, 413, 422})
        sweep.assert_nothing_left('absurd Content-Lengths')
        # Two different lengths, a request smuggling vector: refused, or at most one upload
        # and never a second request made of the leftover bytes.
        head = (b'POST /upload/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: '
                + ctype.encode() + b'\r\nContent-Length: %d\r\nContent-Length: 5\r\n\r\n' % len(body))
        received, _ = raw_exchange(sweep.server, head + body)
        responses = parse_responses(received)
        assert len(responses) == 1, 'two Content-Lengths gave %d responses' % len(responses)
        status, headers, resp = responses[0]
        if status != 201:
            assert_json_4xx('two Content-Lengths', status, headers, resp)
            sweep.assert_nothing_left('two Content-Lengths')
        sweep.check()


# --- chunked ---------------------------------------------------------------------------

def test_chunked_upload_with_broken_framing_is_a_json_4xx():
    with Sweep() as sweep:
        _, ctype = multipart(b'hello')
        for what, framing in [
            ('a chunk size that is not hex', b'zz\r\nhello\r\n0\r\n\r\n'),
            ('a chunk size of 2^80', b'ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n'),
            ('a chunk longer than its size', b'2\r\nhello\r\n0\r\n\r\n'),
            ('a negative chunk size', b'-5\r\nhello\r\n0\r\n\r\n'),
        ]:
            data, end = raw_exchange(sweep.server, post_upload_head(
                ctype, extra=b'Transfer-Encoding: chunked\r\n') + framing, timeout=5)
            assert data, '%s: no answer (%s)' % (what, end)
            status, headers, resp = one_response(data, what)
            assert_json_4xx(what, status, headers, resp)
        sweep.assert_nothing_left('broken chunked uploads')
        sweep.check()


# --- paths and methods ------------------------------------------------------------------

ODD_PATHS = [
    '/download/%00', '/download/apple%00-banana-cherry', '/preview/%00%00%00',
    '/download/../../../../etc/passwd', '/download/..%2f..%2f..%2fetc%2fpasswd',
    '/download/%2e%2e/%2e%2e/etc/passwd', '/preview/..', '/download/.', '/download/',
    '//download//abc', '/download//abc-def-ghi', '/download/abacus-abdomen-abide/extra/..',
    '/download/%c0%ae%c0%ae/etc/passwd', '/download/' + 'a-' * 4000 + 'a',
    '/download/ABACUS-ABDOMEN-ABIDE', '/preview/%ff%fe', '/download/?key=../../x',
    '/upload/../health/../../download/x', '/%2e%2e/%2e%2e/etc/passwd', '/..', '//',
    '/download/abacus-abdomen-abide%2f..%2f..%2fsecret.key',
]


def test_paths_with_nul_dot_dot_and_double_slashes_get_clear_answers():
    with Sweep() as sweep:
        failures = []
        page = sweep.server.request('GET', '/')[2]
        for target in ODD_PATHS:
            for method_path in (target, target.replace('/download/', '/status/', 1)):
                try:
                    status, headers, body = sweep.server.request('GET', method_path)
                    if status == 200 and body == page:
                        # '/..' and '/preview/..' normalize to '/': the drop page.
                        continue
                    parsed = json_answer(method_path, status, headers, body)
                    if status == 200:
                        # Only /status/ answers 200, the documented answer to an unknown
                        # key (where a path normalizes to /status/<something>).
                        shown = {k: parsed.get(k) for k in STATUS_UNKNOWN}
                        assert shown == STATUS_UNKNOWN, '%s: %r' % (method_path, parsed)
                    else:
                        assert_json_4xx(method_path, status, headers, body, allowed={400, 404, 414})
                    assert b'root:' not in body, '%s leaked a file' % method_path
                except AssertionError as e:
                    failures.append(str(e))
        sweep.check()
        assert not failures, '\n'.join(failures)


PATHS = ['/upload/', '/upload', '/health/', '/download/abacus-abdomen-abide',
         '/preview/abacus-abdomen-abide', '/status/abacus-abdomen-abide']
METHODS = ['PUT', 'DELETE', 'PATCH', 'TRACE', 'CONNECT', 'PROPFIND', 'FOO', 'GETT', 'get',
           'POST' + 'X' * 200]


def test_methods_other_than_the_allowed_ones_get_405_json_with_allow():
    with Sweep() as sweep:
        failures = []
        for target in PATHS:
            allowed = {'DELETE'} if target.startswith('/download/') else set()
            for method in [m for m in METHODS if m not in allowed] + \
                    (['POST'] if target != '/upload/' and target != '/upload' else []):
                what = '%s %s' % (method[:20], target)
                try:
                    received, end = raw_exchange(
                        sweep.server, b'%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n'
                        b'Connection: close\r\n\r\n' % (method.encode(), target.encode()))
                    assert received, '%s: no answer (%s)' % (what, end)
                    status, headers, body = one_response(received, what)
                    assert_json_4xx(what, status, headers, body, allowed={400, 405, 501})
                    if status == 405:
                        allow = headers.get('allow', '')
                        assert allow and method not in [m.strip() for m in allow.split(',')], \
                            '%s: 405 with Allow %r' % (what, allow)
                except AssertionError as e:
                    failures.append(str(e))
        sweep.check()
        assert not failures, '\n'.join(failures)
