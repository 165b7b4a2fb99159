"""PUT /{filename} and PUT /upload/{filename}, as `curl -T` sends them: the raw body is
the file; the 201 as lines for a terminal or, asked for, as the JSON of POST /upload/;
expiry and uses from the query or from headers; the file name from the path; and every
error of POST /upload/ (413 from Content-Length before the body is read and while a
chunked body streams, 415, 422, 429, 503, 507), each leaving nothing behind."""

import datetime
import json
import os
import re
import signal
import socket
import subprocess
import time

from harness import (PDF, TEXT, Redis, Server, assert_422, assert_common_headers, assert_json_error,
                     assert_nothing_left, assert_upload_body, chunked, curl, curl_headers, download,
                     failing_calls, files_under, json_answer, key_words, one_response,
                     parse_responses, path, raw_connect, raw_exchange, read_response, sealed_bytes,
                     sha256, skip, spill_maps, temp, temp_files, unnamed_temp_files, upload_ok,
                     wait_until)

TEXT_CT = 'text/plain; charset=utf-8'
LINE = re.compile(r'^([a-z0-9]+) +(.*)$')


def lines_of_answer(text):
    """{label: value} of the 201's lines; each line is `label  value`, and there is
    nothing else."""
    assert text.endswith('\n'), 'the answer does not end with a newline: %r' % text[-80:]
    out = {}
    for line in text.splitlines():
        m = LINE.match(line)
        assert m, 'not a "label  value" line: %r' % line
        out[m.group(1)] = m.group(2)
    return out


def put(server, target, data, headers=None, **kw):
    return server.request('PUT', target, body=data, headers=headers, **kw)


def put_json(server, target, data, headers=None, **kw):
    """A PUT that asks for the JSON answer: (status, headers, parsed body)."""
    status, hdrs, body = put(server, target, data, dict(headers or {}, Accept='application/json'),
                             **kw)
    return status, hdrs, json_answer('PUT %s' % target, status, hdrs, body)


def forget_all(server, redis):
    """Drop every record and stored file, so that what a test does next must leave
    nothing behind."""
    redis.command('FLUSHALL')
    for root, _, names in os.walk(server.settings['STORAGE_PATH']):
        for name in names:
            os.unlink(os.path.join(root, name))


def put_head(target, length=None, extra=b''):
    head = b'PUT ' + target.encode() + b' HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n'
    if length is not None:
        head += b'Content-Length: %d\r\n' % length
    return head + extra + b'\r\n'


def test_curl_t_stores_the_raw_body_and_answers_lines_a_person_can_read_and_paste():
    with Redis() as redis, Server(redis) as server:
        base = 'http://127.0.0.1:%d' % server.port
        work = path('curl-t')
        os.makedirs(work)
        data = PDF + b'%' * 5000
        with open(os.path.join(work, 'report.pdf'), 'wb') as f:
            f.write(data)
        code, out, err = curl(['-T', 'report.pdf', '-D', 'head.txt', base + '/?uses=2'], work)
        assert code == 0, (code, err)
        with open(os.path.join(work, 'head.txt'), encoding='latin-1') as f:
            status_line, headers = curl_headers(f.read())
        assert ' 201' in status_line, (status_line, out)
        assert headers.get('content-type') == TEXT_CT, headers
        assert_common_headers('PUT 201 text', headers)
        lines = lines_of_answer(out.decode())
        assert list(lines) == ['key', 'share', 'download', 'expires', 'file', 'sha256', 'delete'], \
            lines
        key = lines['key']
        assert key_words(key), key
        assert lines['share'] == '%s/#%s' % (base, key), lines
        assert lines['download'] == '%s/download/%s' % (base, key), lines
        assert headers.get('location') == lines['download'], headers
        m = re.match(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC \(2 downloads\)$', lines['expires'])
        assert m, lines['expires']
        deadline = datetime.datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S').replace(
            tzinfo=datetime.timezone.utc)
        left = (deadline - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        assert 9 * 60 < left <= 10 * 60, 'deadline %s is not 10 minutes away' % deadline
        assert lines['file'] == 'report.pdf (%d bytes)' % len(data), lines
        assert lines['sha256'] == sha256(data), lines
        m = re.match(r"^curl -X DELETE -H 'X-Delete-Token: ([0-9a-f]{32})' '(.*)'$",
                     lines['delete'])
        assert m and m.group(2) == lines['download'], lines['delete']
        status, headers, got = download(server, key)
        assert status == 200 and got == data, status
        assert headers['content-type'] == 'application/pdf', headers  # sniffed, as for POST
        assert headers['content-disposition'] == \
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf", headers
        # The last line is a command a person pastes into a shell: it burns the file.
        code, out, err = curl(['-sS', '-o', '/dev/null', '-w', '%{http_code}',
                               '-X', 'DELETE', '-H', 'X-Delete-Token: ' + m.group(1),
                               m.group(2)], work)
        assert (code, out) == (0, b'204'), (code, out, err)
        shell = subprocess.run(lines['delete'] + ' -sS -w %{http_code}', shell=True,
                               capture_output=True, timeout=30, cwd=work)
        assert shell.stdout.endswith(b'410'), shell  # pasted again: burned already
        status, _, st = server.json('GET', '/status/' + key)
        assert st['status'] == 'burned', st


def test_put_answers_the_json_of_post_upload_when_accept_asks_for_it():
    with Redis() as redis, Server(redis) as server:
        data = TEXT
        for target in ('/notes.txt?uses=3&expiry=20', '/upload/notes.txt?uses=3&expiry=20'):
            status, headers, body = put_json(server, target, data)
            assert status == 201, (target, body)
            assert_upload_body(body, headers, server, data, 'notes.txt', 3, 20)
            status, _, got = download(server, body['key'])
            assert status == 200 and got == data
        for accept, wants_json in (('application/json;q=0.9, text/html', True),
                                   ('Application/JSON', True), ('*/*', False),
                                   ('application/json;q=0', False), ('text/plain', False),
                                   ('application/jsonx', False)):
            status, headers, body = put(server, '/n.txt', data, {'Accept': accept})
            assert status == 201, (accept, body)
            if wants_json:
                json_answer('Accept: ' + accept, status, headers, body)
            else:
                assert headers['content-type'] == TEXT_CT, (accept, headers)
                assert lines_of_answer(body.decode())['file'] == 'n.txt (%d bytes)' % len(data)


def test_expiry_and_uses_come_from_the_query_or_from_headers_and_the_query_wins():
    with Redis() as redis, Server(redis) as server:
        cases = [('/a.txt', {'Expiry': '30', 'Uses': '4'}, 4, 30),
                 ('/a.txt?uses=2', {'Uses': '5', 'Expiry': '7'}, 2, 7),
                 ('/a.txt?expiry=+15+&uses=%33', {}, 3, 15),
                 ('/a.txt?uses=9&uses=5', {}, 5, 10),  # the last one given
                 ('/a.txt?other=1&expiry=', {'Uses': ' 2 '}, 2, 10),  # empty: the default
                 ('/a.txt', {}, 1, 10)]
        for target, headers, uses, expiry in cases:
            status, hdrs, body = put_json(server, target, b'params\n', headers)
            assert status == 201, (target, headers, body)
            assert_upload_body(body, hdrs, server, b'params\n', 'a.txt', uses, expiry)
        status, headers, body = put(server, '/a.txt?expiry=0&uses=6', b'x\n')
        assert_422(status, headers, body, [('query', 'expiry'), ('query', 'uses')],
                   'query out of range')
        status, headers, body = put(server, '/a.txt', b'x\n', {'Uses': 'many', 'Expiry': '61'})
        parsed = assert_422(status, headers, body, [('header', 'uses'), ('header', 'expiry')],
                            'headers out of range')
        assert {i['type'] for i in parsed['detail']} == {'int_parsing', 'less_than_equal'}, parsed
        status, headers, body = put(server, '/a.txt?uses=2', b'')
        parsed = assert_422(status, headers, body, [('body',)], 'an empty body')
        assert parsed['detail'][0]['msg'] == 'File is empty', parsed
        forget_all(server, redis)
        put(server, '/a.txt?uses=x', b'refused\n')
        assert_nothing_left(server, redis, 'a 422 of a PUT')


def test_put_on_a_path_another_route_names_is_405_and_put_upload_takes_any_name():
    with Redis() as redis, Server(redis) as server:
        for target in ('/upload', '/upload/', '/health', '/metrics/', '/openapi.json'):
            status, headers, body = put(server, target, b'where does this go?\n')
            parsed = assert_json_error(status, headers, body, 405, what='PUT ' + target)
            assert 'PUT /upload/{filename}' in parsed['detail'], parsed
            assert 'PUT' not in [m.strip() for m in headers['allow'].split(',')], headers
        assert_nothing_left(server, redis, 'PUT answered 405')
        for name in ('upload', 'health', 'openapi.json'):
            status, _, body = put_json(server, '/upload/' + name, b'any name\n')
            assert status == 201 and body['filename'] == name, (name, body)
        # Only PUT takes any name: other methods there still find nothing.
        status, headers, body = server.request('GET', '/report.pdf')
        assert_json_error(status, headers, body, 404, 'Not Found', 'GET /report.pdf')
        status, headers, body = server.request('GET', '/upload/report.pdf')
        assert_json_error(status, headers, body, 405, 'Method Not Allowed',
                          'GET /upload/report.pdf')
        assert headers['allow'] == 'PUT, OPTIONS', headers


def test_the_file_name_is_percent_decoded_cleaned_and_never_logged():
    with Redis() as redis, Server(redis) as server:
        cases = [('/r%C3%A9sum%C3%A9%20final.txt', 'résumé final.txt'),
                 ('/upload/tab%09and%0d%0aX-Injected:%201.txt', 'tabandX-Injected: 1.txt'),
                 ('/a%00b.txt', 'ab.txt'),
                 ('/upload/back%5Cslash%5Cname.txt', 'name.txt'),
                 ('/%FF%FE.txt', '\ufffd\ufffd.txt')]
        ids = []
        for target, stored in cases:
            status, headers, body = put_json(server, target, b'named\n')
            assert status == 201 and body['filename'] == stored, (target, body)
            ids.append(headers['x-request-id'])
        for rid in ids:
            line = wait_until(lambda: [x for x in server.log_lines()
                                       if x.get('request_id') == rid], 5)[0]
            assert line['path'] in ('/{name}', '/upload/{name}'), line
        with open(server.log_path, 'rb') as f:
            log = f.read()
        for word in ('résumé'.encode(), b'Injected', b'slash', b'final.txt', b'ab.txt'):
            assert word not in log, 'the log holds part of a file name: %r' % word


def test_a_content_length_over_max_file_size_is_413_before_the_body_even_with_expect():
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': '1000'}) as server:
        status, _, body = put_json(server, '/limit.bin', os.urandom(1000))
        assert status == 201, body  # exactly the limit
        forget_all(server, redis)
        for length, extra in ((10 ** 12, b''), (10_000_000, b'Expect: 100-continue\r\n'),
                              (70_000, b'Expect: 100-continue\r\n')):
            what = 'Content-Length %d %r' % (length, extra)
            started = time.monotonic()
            received, end = raw_exchange(server, put_head('/big.bin', length, extra),
                                         responses=1)
            assert received, '%s: no answer (%s)' % (what, end)
            assert b'100 Continue' not in received, '%s: the body was asked for' % what
            status, headers, data = one_response(received, what)
            assert_json_error(status, headers, data, 413,
                              'File too large: %d bytes (Max Size: 1000 bytes)' % length, what)
            assert time.monotonic() - started < 2, '%s: answered late' % what
        # Just over the limit: refused the same, nothing written.
        for size in (1001, 5000):
            status, headers, data = put(server, '/big.bin', os.urandom(size))
            assert_json_error(status, headers, data, 413,
                              'File too large: %d bytes (Max Size: 1000 bytes)' % size,
                              'a body of %d bytes' % size)
        assert_nothing_left(server, redis, 'PUT over MAX_FILE_SIZE')


def test_expect_100_continue_gets_its_100_and_curl_sends_a_large_file_whole():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(300_000)
        sock = raw_connect(server)
        try:
            sock.sendall(put_head('/continued.bin', len(data), b'Expect: 100-continue\r\n'))
            got = b''
            while b'\r\n\r\n' not in got:
                chunk = sock.recv(4096)
                assert chunk, 'closed before the 100'
                got += chunk
            assert got.startswith(b'HTTP/1.1 100 Continue\r\n'), got
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            rest = got.split(b'\r\n\r\n', 1)[1]
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
        finally:
            sock.close()
        status, headers, body = one_response(rest, 'PUT after 100 Continue')
        assert status == 201, body
        assert lines_of_answer(body.decode())['sha256'] == sha256(data)
        # curl sends Expect: 100-continue for bodies over 1 MiB.
        work = path('big')
        os.makedirs(work)
        big = os.urandom(3 * 1024 * 1024 + 7)
        with open(os.path.join(work, 'big.bin'), 'wb') as f:
            f.write(big)
        code, out, err = curl(['-v', '-T', 'big.bin', '-H', 'Accept: application/json',
                               'http://127.0.0.1:%d/upload/' % server.port], work)
        assert code == 0, (code, err)
        assert b'Expect: 100-continue' in err and b'100 Continue' in err, err[-2000:]
        assert out.endswith(b'}\n'), out[-100:]
        status, _, got = download(server, json.loads(out)['key'])
        assert status == 200 and got == big


def test_a_chunked_put_over_max_file_size_is_413_while_streaming_and_leaves_nothing():
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': '100000'}) as server:
        def chunked_put(data, piece):
            received, end = raw_exchange(server, put_head(
                '/streamed.bin', extra=b'Transfer-Encoding: chunked\r\nAccept: application/json'
                b'\r\n') + chunked(data, piece))
            assert received, 'no answer (%s)' % end
            return one_response(received, 'a chunked PUT of %d bytes' % len(data))
        data = os.urandom(100000)
        status, headers, body = chunked_put(data, 4096)
        created = json_answer('a chunked PUT of the limit', status, headers, body)
        assert status == 201 and created['sha256'] == sha256(data), created
        forget_all(server, redis)
        for size, piece in ((100001, 4096), (400_000, 16384)):
            status, headers, body = chunked_put(os.urandom(size), piece)
            assert_json_error(status, headers, body, 413, lambda d: d.startswith(
                'File too large: ') and d.endswith('(Max Size: 100000 bytes)'),
                'a chunked PUT of %d bytes' % size)
            assert_nothing_left(server, redis, 'a chunked PUT of %d bytes' % size)


def test_put_sniffs_the_type_and_refuses_one_not_allowed_with_415():
    with Redis() as redis, Server(redis, env={'ALLOWED_MIME_TYPES': 'text/plain'}) as server:
        status, headers, body = put(server, '/paper.txt', PDF)
        assert_json_error(status, headers, body, 415, 'File type not supported: application/pdf',
                          'a PDF named .txt')
        assert_nothing_left(server, redis, '415 of a PUT')
        status, _, body = put_json(server, '/notes.bin', TEXT)
        assert status == 201, body


def test_put_counts_toward_the_upload_rate_limit_with_post():
    with Redis() as redis, Server(redis, env={'UPLOAD_RATE_LIMIT': '2/hour'}) as server:
        upload_ok(server, b'first, by POST')
        status, _, body = put_json(server, '/second.txt', b'second, by PUT')
        assert status == 201, body
        status, headers, body = put(server, '/third.txt', b'third, by PUT')
        assert_json_error(status, headers, body, 429, 'Rate limit exceeded', 'third upload')
        assert headers.get('retry-after', '').isdigit(), headers
        status, _, _ = server.upload(b'fourth, by POST')
        assert status == 429


def test_put_with_the_store_down_is_503_and_with_no_storage_507_leaving_nothing():
    with Redis() as redis, Server(redis) as server:
        os.rmdir(temp(server))
        try:
            status, headers, body = put(server, '/a.bin', os.urandom(5000))
            assert_json_error(status, headers, body, 507, 'Insufficient storage',
                              'PUT with TEMP_PATH missing')
        finally:
            os.mkdir(temp(server), 0o700)
        assert_nothing_left(server, redis, '507 of a PUT')
        redis.stop()
        started = time.monotonic()
        status, headers, body = put(server, '/a.bin', os.urandom(5000))
        assert_json_error(status, headers, body, 503, 'Service temporarily unavailable',
                          'PUT with the store down')
        assert time.monotonic() - started < 5, 'the 503 took too long'
        assert temp_files(server) == [], temp_files(server)


def test_put_over_http2_is_stored_and_over_the_limit_is_413():
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': '1000'}) as server:
        work = path('h2put')
        os.makedirs(work)
        with open(os.path.join(work, 'small.txt'), 'wb') as f:
            f.write(b'over h2\n')
        with open(os.path.join(work, 'big.bin'), 'wb') as f:
            f.write(os.urandom(30000))
        url = 'http://127.0.0.1:%d/' % server.port
        code, out, err = curl(['--http2-prior-knowledge', '-T', 'small.txt', url], work)
        assert code == 0, (code, err)
        key = lines_of_answer(out.decode())['key']
        status, _, got = download(server, key)
        assert status == 200 and got == b'over h2\n'
        code, out, err = curl(['--http2-prior-knowledge', '-T', 'big.bin', '-o', 'answer.json',
                               '-D', 'head.txt', '-w', '%{http_version} %{http_code}', url],
                              work)
        assert (code, out) == (0, b'2 413'), (code, out, err)
        with open(os.path.join(work, 'answer.json'), 'rb') as f:
            answer = f.read()
        with open(os.path.join(work, 'head.txt'), encoding='latin-1') as f:
            _, headers = curl_headers(f.read())
        assert_json_error(413, headers, answer, 413,
                          'File too large: 30000 bytes (Max Size: 1000 bytes)', 'h2 PUT 413')


# ---------------------------------------------------------------------------------
# The body sealed as it arrives (plain HTTP/1 with a Content-Length)

def put_paused(server, name, data, sent, arriving):
    """PUT data as /name, pausing after `sent` bytes to call arriving() while the rest is
    still to come; then the rest: its 201 answer, checked, and its file downloaded whole."""
    sock = raw_connect(server)
    try:
        sock.sendall(b'PUT /%s HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n'
                     b'Content-Length: %d\r\n\r\n' % (name, len(data)) + data[:sent])
        arriving()
        sock.sendall(data[sent:])
        status, _, body = read_response(sock, 'PUT')
    finally:
        sock.close()
    assert status == 201, body
    answer = json.loads(body)
    assert answer['size'] == len(data) and answer['sha256'] == sha256(data), answer
    status, _, got = download(server, answer['key'])
    assert (status, got == data) == (200, True), status


def test_a_put_body_is_sealed_as_it_arrives_and_never_spills():
    with Redis() as redis, Server(redis, env={'WORKERS': '1', 'BODY_MEMORY_MAX': '64K'}) as server:
        worker = server.full_tree()['workers'][0]

        def arriving():
            # Two thirds sent: most of it is sealed in TEMP_PATH already, and nothing of
            # it is held in a spill file (libh2o alone would hold all of it there).
            wait_until(lambda: sealed_bytes(server) >= 1 << 20, 5, message='the body sealed as it came')
            assert spill_maps(worker) == [], spill_maps(worker)
        put_paused(server, b'arriving.bin', os.urandom(3 << 20), 2 << 20, arriving)


def test_a_streamed_put_its_client_abandons_leaves_nothing():
    with Redis() as redis, Server(redis, env={'WORKERS': '1'}) as server:
        data = os.urandom(3 << 20)
        sock = raw_connect(server)
        try:
            sock.sendall(b'PUT /left.bin HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n' % len(data) +
                         data[:1 << 20])
            wait_until(lambda: sealed_bytes(server) > 0, 5, message='the body sealed as it came')
        finally:
            sock.close()
        assert_nothing_left(server, redis, 'a streamed PUT abandoned halfway')
        upload_ok(server, os.urandom(100 << 10))


def test_a_body_being_sealed_has_no_name_in_temp_path_and_goes_with_a_killed_worker():
    with Redis() as redis, Server(redis, env={'WORKERS': '1'}) as server:
        try:
            os.close(os.open(temp(server), os.O_TMPFILE | os.O_WRONLY, 0o600))
        except OSError as e:
            return skip('TEMP_PATH\'s file system makes no unnamed files (%s): a named one '
                        'is used, as the sweep tests show' % e.strerror)
        worker = server.full_tree()['workers'][0]
        data = os.urandom(3 << 20)
        sock = raw_connect(server)
        try:
            sock.sendall(b'PUT /unnamed.bin HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n'
                         % len(data) + data[:1 << 20])
            held = wait_until(lambda: unnamed_temp_files(server), 5,
                              message='the body sealed into a file with no name')
            assert [who.split(':')[0] for who, _ in held] == [str(worker)], held
            assert files_under(temp(server)) == [], files_under(temp(server))
            os.kill(worker, signal.SIGKILL)
            server.full_tree()
        finally:
            sock.close()
        # Nothing named was left for a sweep, and no process holds the file.
        assert_nothing_left(server, redis, 'a worker killed while it sealed a PUT')
        upload_ok(server, os.urandom(100 << 10))


def test_where_temp_path_makes_no_unnamed_files_the_body_is_sealed_under_a_name_and_renamed():
    # As on a file system without O_TMPFILE: every unnamed open fails with EOPNOTSUPP.
    # The worker seals into a named file in TEMP_PATH instead, renames it into place,
    # and keeps doing so for the next upload.
    env = dict(failing_calls('O_TMPFILE'), WORKERS='1')
    with Redis() as redis, Server(redis, env=env) as server:
        def arriving():
            named = wait_until(lambda: files_under(temp(server)), 5,
                               message='the body sealed into a named file in TEMP_PATH')
            assert [os.path.basename(f)[:3] for f in named] == ['up-'], named
            assert unnamed_temp_files(server) == [], unnamed_temp_files(server)
        put_paused(server, b'named.bin', os.urandom(3 << 20), 1 << 20, arriving)
        assert temp_files(server) == [], temp_files(server)
        again = os.urandom(100 << 10)
        status, _, got = download(server, upload_ok(server, again)[0]['key'])
        assert (status, got == again) == (200, True), status
        assert temp_files(server) == [], temp_files(server)


def test_puts_sent_back_to_back_on_one_connection_each_get_their_own_body():
    with Redis() as redis, Server(redis, env={'WORKERS': '1'}) as server:
        files = [os.urandom(n) for n in (300 << 10, 70 << 10, 1 << 20)]
        wire = b''.join(b'PUT /f%d.bin HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n'
                        b'Content-Length: %d\r\n\r\n' % (i, len(f)) + f for i, f in enumerate(files))
        # Pipelined: each body followed at once by the next head.
        received, how = raw_exchange(server, wire, responses=len(files))
        answers = parse_responses(received)
        assert (how, len(answers)) == ('answered', len(files)), (how, received[:300])
        for f, (status, _, body) in zip(files, answers):
            assert status == 201, body
            answer = json.loads(body)
            assert answer['sha256'] == sha256(f), answer
            status, _, got = download(server, answer['key'])
            assert (status, got == f) == (200, True), status


def test_a_streamed_put_refused_for_its_type_reads_the_rest_and_leaves_nothing():
    # The type is known from the first 4 KiB, long before a 3 MiB body is in: the rest
    # is read and dropped, nothing more is written, and the 415 comes once it is in.
    with Redis() as redis, Server(redis, env={'WORKERS': '1', 'ALLOWED_MIME_TYPES': 'text/plain'}) as server:
        data = PDF + os.urandom(3 << 20)
        status, headers, body = put(server, '/paper.txt', data)
        assert_json_error(status, headers, body, 415, 'File type not supported: application/pdf',
                          'a 3 MiB PDF named .txt')
        assert_nothing_left(server, redis, '415 of a streamed PUT')
        status, _, body = put_json(server, '/notes.txt', b'plain words\n' * 100000)
        assert status == 201, body
