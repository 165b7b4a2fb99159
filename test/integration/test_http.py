"""HTTP on every path: the headers every answer carries, request ids, CORS and
preflight, methods (405 with Allow), unknown paths, trailing slashes, the bounds on a
request head (431, 414, 400), pipelining and HTTP/2."""

import json
import os
import shutil
import threading

from harness import (CLIENT, DOWNLOAD_CACHE_CONTROL, OTHER, STATUS_UNKNOWN, UUID4, Redis,
                     Server, assert_422, assert_common_headers, assert_json_error,
                     assert_nobody_replaced, assert_normal_miss, assert_upload_body, block,
                     curl, curl_headers, download, header_problems, miss, multipart,
                     one_response, parse_responses, path, raw_exchange, sha256, tokens,
                     unknown_key, upload_ok, wait_until)


def test_every_response_has_a_unique_uuid4_request_id():
    with Redis() as redis, Server(redis) as server:
        ids = []
        for method, target in [('GET', '/health/'), ('GET', '/health'),
                               ('GET', '/no-such-path'), ('GET', '/status/not-a-key'),
                               ('POST', '/health/'), ('OPTIONS', '/health/')] * 5:
            status, headers, _ = server.request(method, target)
            rid = headers.get('x-request-id')
            assert rid is not None, '%s %s -> %d has no X-Request-ID' % (method, target, status)
            assert UUID4.match(rid.lower()), '%s %s: X-Request-ID %r is not a uuid v4' % (
                method, target, rid)
            ids.append(rid.lower())
        assert len(set(ids)) == len(ids), 'repeated request ids: %r' % ids


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
        status, headers, data = one_response(raw_exchange(
            server, b'POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; '
                    b'boundary=b\r\nContent-Length: 100000000\r\n\r\n', responses=1)[0], '413')
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
                assert_common_headers(what, headers, origin=origin)
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
        assert_common_headers('preflight from b', headers, origin='https://b.example')
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
            assert_common_headers('OPTIONS %s' % target, headers)


def test_options_preflight_on_drop_paths_answers_cors_and_consumes_nothing():
    with Redis() as redis, Server(redis) as server:
        data = b'preflight\n'
        up, _ = upload_ok(server, data)
        key = up['key']
        for target in ('/upload/', '/upload', '/download/' + key, '/preview/' + key,
                       '/status/' + key):
            status, headers, _ = server.request('OPTIONS', target, headers={
                'Origin': 'https://app.example', 'Access-Control-Request-Method': 'GET'})
            assert status in (200, 204), (target, status)
            assert_common_headers('OPTIONS ' + target, headers)
        status, _, pv = server.json('GET', '/preview/' + key)
        assert status == 200 and pv['uses'] == 1, pv
        status, _, got = download(server, key)
        assert status == 200 and got == data


def test_wrong_method_on_a_known_path_answers_405_json_with_allow():
    with Redis() as redis, Server(redis) as server:
        cases = [('GET', '/upload/', 'POST'), ('PUT', '/upload', 'POST'),
                 ('POST', '/health/', 'GET'), ('DELETE', '/health', 'GET'),
                 ('POST', '/download/' + unknown_key(), 'GET'), ('PUT', '/preview/x', 'GET'),
                 ('DELETE', '/status/x', 'GET'), ('FROB', '/health/', 'GET')]
        for method, target, allowed in cases:
            status, headers, data = server.request(method, target)
            what = '%s %s' % (method, target)
            assert_json_error(status, headers, data, 405, what=what)
            allow = [t.upper() for t in tokens(headers.get('allow'))]
            assert allowed in allow and 'OPTIONS' in allow, '%s: Allow %r' % (
                what, headers.get('allow'))
            assert method not in allow, '%s: Allow %r' % (what, headers.get('allow'))
            assert_common_headers(what, headers)


def test_unknown_path_answers_404_json_and_counts_no_failure():
    env = {'DOWNLOAD_FAIL_LIMIT': '2', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        for target in ('/nonexistent', '/upload/extra/x', '/health/x', '/api/v1/upload',
                       '/.env', '/download', '/%2e%2e/etc/passwd', '/report.pdf', '/assets/',
                       '/assets/nothing.js', '/assets/drop.js/x'):
            status, headers, data = server.request('GET', target, source_address=CLIENT)
            body = assert_json_error(status, headers, data, 404, what='GET %s' % target)
            assert isinstance(body['detail'], str), body
            assert_common_headers('GET %s' % target, headers)
        # Eight unknown paths later, the client has no failure on record.
        status, _, body = miss(server, 'status', CLIENT)
        assert_normal_miss('status', status, body)


def test_every_kind_of_json_answer_ends_with_one_newline():
    env = {'MAX_FILE_SIZE': '1000', 'UPLOAD_RATE_LIMIT': '4/hour', 'DOWNLOAD_FAIL_LIMIT': '2',
           'DOWNLOAD_BLOCK_WINDOW': '60', 'METRICS_ALLOW': '127.0.0.1/32'}
    answers = []  # (what, status, raw body)
    with Redis() as redis, Server(redis, env=env) as server:
        def note(what, status, body):
            answers.append((what, status, body))

        def ask(what, method, target, **kw):
            status, _, body = server.request(method, target, **kw)
            note(what, status, body)
            return status, body
        body, ctype = multipart(b'newline\n')
        status, created = ask('201 upload', 'POST', '/upload/', body=body,
                              headers={'Content-Type': ctype})
        key = json.loads(created)['key']
        ask('201 PUT', 'PUT', '/n.txt', body=b'n\n', headers={'Accept': 'application/json'})
        ask('200 health', 'GET', '/health/')
        ask('200 status', 'GET', '/status/' + key)
        ask('200 preview', 'GET', '/preview/' + key)
        ask('404 preview again', 'GET', '/preview/' + key)
        ask('403 delete', 'DELETE', '/download/' + key, source_address='127.0.0.9')
        ask('200 download', 'GET', '/download/' + key)
        ask('410 download', 'GET', '/download/' + key)
        ask('404 path', 'GET', '/nonexistent')
        ask('405 method', 'POST', '/health/')
        ask('422 form', 'POST', '/upload/', body=b'x', headers={'Content-Type': 'text/plain'})
        ask('413 ours', 'PUT', '/big.bin', body=b'b' * 2000)
        ask('414 target', 'GET', '/health/?' + 'q' * 9000)
        ask('431 headers', 'GET', '/health/', headers={'X-Padding': 'p' * 40000})
        ask('403 metrics', 'GET', '/metrics', source_address='127.0.0.2')
        ask('429 rate', 'PUT', '/r.txt', body=b'r\n', headers={'Accept': 'application/json'})
        for _ in range(2):
            ask('miss', 'GET', '/status/' + unknown_key(), source_address=CLIENT)
        ask('429 blocked', 'GET', '/status/' + unknown_key(), source_address=CLIENT)
        for what, raw in (('413 by the HTTP library', b'PUT /x HTTP/1.1\r\nHost: x\r\n'
                           b'Content-Length: 999999999\r\n\r\n'),
                          ('400 by the HTTP library', b'PUT /x HTTP/1.1\r\nHost: x\r\n'
                           b'Transfer-Encoding: chunked\r\n\r\nzz\r\n')):
            status, _, body = one_response(raw_exchange(server, raw, responses=1)[0], what)
            note(what, status, body)
        status, _, body = server.request('GET', '/openapi.json')
        note('200 openapi.json', status, body)
        redis.stop()
        wait_until(lambda: server.request('GET', '/health/')[0] == 503, 10,
                   message='health 503 with the store down')
        ask('503 health', 'GET', '/health/')
        ask('503 store', 'GET', '/status/' + key)
    statuses = sorted({a[1] for a in answers})
    assert statuses == [200, 201, 400, 403, 404, 405, 410, 413, 414, 422, 429, 431, 503], \
        statuses
    for what, status, body in answers:
        if what == '200 download':
            assert body == b'newline\n', body  # a file is sent as it is
            continue
        assert body.endswith(b'\n') and not body.endswith(b'\n\n'), \
            '%s (%d) does not end with one newline: %r' % (what, status, body[-60:])
        json.loads(body)


def test_every_path_answers_with_and_without_trailing_slash():
    with Redis() as redis, Server(redis) as server:
        data = b'slash or not\n'
        body, _ = upload_ok(server, data, uses=2, path='/upload')
        key = body['key']
        status, headers, st = server.json('GET', '/status/%s/' % key)
        assert status == 200 and st['status'] == 'active', st
        status, _, st = server.json('GET', '/status/%s' % key)
        assert status == 200 and st['status'] == 'active', st
        status, _, pv = server.json('GET', '/preview/%s/' % key)
        assert status == 200 and pv['key'] == key, pv
        status, _, got = download(server, key + '/')
        assert status == 200 and got == data, (status, got)
        status, _, got = download(server, key)
        assert status == 200 and got == data, (status, got)


def _head_with(extra_headers):
    return b'GET /health/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n' + extra_headers + b'\r\n'


def assert_answered_json(server, what, data, expect_status):
    """Send a raw request; it must be answered expect_status in JSON, with the headers
    every answer carries."""
    received, end = raw_exchange(server, data, responses=1)
    assert received, '%s: no HTTP answer (connection %s)' % (what, end)
    status, headers, body = one_response(received, what)
    assert_json_error(status, headers, body, expect_status, what=what)
    assert server.running()


def test_a_100_kb_request_head_answers_431_json():
    # The size of a request head is bounded by a sane default, answered 431 in JSON.
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
    status, _, _ = one_response(raw_exchange(server, data, responses=1)[0], what)
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
    # The request line is bounded too, answered 414.
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


def test_pipelined_requests_are_answered_in_order():
    with Redis() as redis, Server(redis, env={'DOWNLOAD_FAIL_LIMIT': '1000'}) as server:
        before = server.full_tree()
        payload = os.urandom(1000)
        created, _ = upload_ok(server, payload, uses=1)
        body, ctype = multipart(b'pipelined upload')
        requests = (b'GET /health/ HTTP/1.1\r\nHost: x\r\n\r\n'
                    b'GET /status/not-a-key HTTP/1.1\r\nHost: x\r\n\r\n'
                    b'GET /no-such-path HTTP/1.1\r\nHost: x\r\n\r\n'
                    b'GET /download/' + created['key'].encode() + b' HTTP/1.1\r\nHost: x\r\n\r\n'
                    b'POST /upload/ HTTP/1.1\r\nHost: x\r\nContent-Type: ' + ctype.encode()
                    + b'\r\nContent-Length: %d\r\n\r\n' % len(body) + body
                    + b'GET /download/' + created['key'].encode() + b' HTTP/1.1\r\nHost: x\r\n'
                    b'Connection: close\r\n\r\n')
        received, end = raw_exchange(server, requests)
        responses = parse_responses(received)
        got = [r[0] for r in responses]
        assert got == [200, 200, 404, 200, 201, 410], \
            'pipelined answers %r (connection %s)' % (got, end)
        assert json.loads(responses[0][2])['status'] == 'healthy'
        status_body = json.loads(responses[1][2])
        assert {k: status_body[k] for k in STATUS_UNKNOWN} == STATUS_UNKNOWN, status_body
        assert json.loads(responses[2][2]) == {'detail': 'Not Found'}
        assert responses[3][2] == payload, 'the pipelined download has the wrong bytes'
        assert json.loads(responses[4][2])['size'] == len(b'pipelined upload')
        assert json.loads(responses[5][2]) == {'detail': 'Download limit has been reached'}
        ids = [r[1].get('x-request-id') for r in responses]
        assert len(set(ids)) == len(ids), 'request ids repeat: %r' % ids
        assert_nobody_replaced(server, before)


def test_http2_upload_and_download_work():
    assert shutil.which('curl'), 'curl is not installed (scripts/deps.sh installs it)'
    with Redis() as redis, Server(redis) as server:
        before = server.full_tree()
        work = path('h2')
        os.makedirs(work)
        data = os.urandom(1536 * 1024 + 7)
        with open(os.path.join(work, 'blob.bin'), 'wb') as f:
            f.write(data)
        code, out, err = curl(['--http2-prior-knowledge', '-F', 'file=@blob.bin;filename=h2.bin',
                               '-F', 'expiry=5', '-F', 'uses=2', '-o', 'up.json',
                               '-D', 'up.headers', '-w', '%{http_version} %{http_code}',
                               'http://127.0.0.1:%d/upload/' % server.port], work)
        assert code == 0, (code, err)
        assert out == b'2 201', out
        with open(os.path.join(work, 'up.json'), 'rb') as f:
            up = json.loads(f.read())
        with open(os.path.join(work, 'up.headers'), encoding='latin-1') as f:
            _, headers = curl_headers(f.read())
        assert_upload_body(up, headers, server, data, 'h2.bin', 2, 5)
        code, out, err = curl(['--http2-prior-knowledge', '-o', 'down.bin', '-D', 'down.headers',
                               '-w', '%{http_version} %{http_code}', up['download_url']], work)
        assert code == 0, (code, err)
        assert out == b'2 200', out
        with open(os.path.join(work, 'down.bin'), 'rb') as f:
            got = f.read()
        assert got == data, 'h2 download: %d bytes, not the %d uploaded' % (len(got), len(data))
        with open(os.path.join(work, 'down.headers'), encoding='latin-1') as f:
            _, headers = curl_headers(f.read())
        assert headers.get('x-sha256') == sha256(data), headers
        assert headers.get('content-length') == str(len(data)), headers
        assert_common_headers('h2 download', headers, cache_control=DOWNLOAD_CACHE_CONTROL)
        # A malformed multipart body over h2 is answered like over HTTP/1.1.
        bad, ctype = multipart(b'hello', close=False)
        with open(os.path.join(work, 'bad.bin'), 'wb') as f:
            f.write(bad)
        code, out, err = curl(['--http2-prior-knowledge', '-H', 'Content-Type: ' + ctype,
                               '--data-binary', '@bad.bin', '-o', 'bad.json', '-D', 'bad.headers',
                               '-w', '%{http_code}',
                               'http://127.0.0.1:%d/upload/' % server.port], work)
        assert code == 0 and out == b'422', 'h2 malformed multipart: %r (curl %d %r)' % (
            out, code, err)
        with open(os.path.join(work, 'bad.json'), 'rb') as f, \
                open(os.path.join(work, 'bad.headers'), encoding='latin-1') as g:
            assert_422(422, curl_headers(g.read())[1], f.read(), [], 'h2 malformed multipart')
        assert_nobody_replaced(server, before)
