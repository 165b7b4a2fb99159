"""POST /upload/: the 201 and every field of it, the defaults and ranges of expiry and
uses (422 outside), multipart as browsers and curl send it (any field order, quoted
boundaries, preamble, bytes that look like boundaries, TCP writes split anywhere,
chunked), MAX_FILE_SIZE (413 on each transport) and ALLOWED_MIME_TYPES (415)."""

import json
import os
import re
import struct
import time
import zlib

from harness import (HEADER, PDF, SEGMENT, TAG, TEXT, Redis, Server, assert_422,
                     assert_json_error, assert_nobody_replaced, assert_nothing_left,
                     assert_upload_body, chunked, curl, curl_headers, download, drop_id,
                     field_part, file_part, form_body, json_answer, multipart, new_boundary,
                     one_response, parse_iso, path, post_form, raw_exchange, request_line,
                     sha256, stored_path, upload_ok, wait_until)


def png_bytes():
    """A minimal valid 1x1 PNG."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data +
                struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    ihdr = struct.pack('>IIBBBBB', 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b'\x00\xff\x00\x00')
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', idat) +
            chunk(b'IEND', b''))


def raw_upload_request(port, body, boundary, extra=b''):
    head = (b'POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n'
            b'Content-Type: multipart/form-data; boundary=%s\r\n'
            b'Content-Length: %d\r\nConnection: close\r\n%s\r\n'
            % (port, boundary.encode(), len(body), extra))
    return head, body


def test_upload_returns_201_with_every_field_and_a_location_header():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(5000)
        status, headers, body = server.upload(data, filename='document.bin', expiry=25, uses=3)
        assert status == 201, body
        assert_upload_body(body, headers, server, data, 'document.bin', 3, 25)


def test_upload_defaults_are_expiry_10_minutes_and_one_use():
    with Redis() as redis, Server(redis) as server:
        data = b'defaults\n'
        body, headers = upload_ok(server, data, filename='d.txt')
        assert_upload_body(body, headers, server, data, 'd.txt', 1, 10)
        status, _, st = server.json('GET', '/status/' + body['key'])
        assert status == 200 and st['remaining_uses'] == 1, st
        assert st['expires_at'] == body['expiry'], (st, body)
        ttl = redis.command('TTL', 'upload:{%s}' % drop_id(server, body['key']))
        assert 590 <= ttl <= 600, 'store TTL %r is not the 10 min expiry' % ttl


def test_upload_accepts_the_ends_of_the_ranges():
    with Redis() as redis, Server(redis) as server:
        for expiry, uses in ((1, 1), (60, 5), (1, 5), (60, 1)):
            data = os.urandom(100)
            body, headers = upload_ok(server, data, expiry=expiry, uses=uses)
            assert_upload_body(body, headers, server, data, 'x.bin', uses, expiry)


def test_upload_urls_use_public_url_when_set():
    public = 'https://drop.example.com/rz'
    with Redis() as redis, Server(redis, env={'PUBLIC_URL': public + '/'}) as server:
        data = b'public url\n'
        body, headers = upload_ok(server, data, uses=2, headers={
            'X-Forwarded-Host': 'evil.example.net', 'X-Forwarded-Proto': 'http'})
        assert_upload_body(body, headers, server, data, 'x.bin', 2, 10, base=public)
        status, _, pv = server.json('GET', '/preview/' + body['key'])
        assert status == 200, pv
        assert pv['download_url'] == '%s/download/%s' % (public, body['key']), pv
        assert pv['curl_example'] == 'curl -OJ ' + pv['download_url'], pv


def test_upload_fields_may_come_in_any_order():
    with Redis() as redis, Server(redis) as server:
        for order in (('file', 'expiry', 'uses'), ('expiry', 'file', 'uses'),
                      ('uses', 'expiry', 'file'), ('file', 'uses', 'expiry')):
            data = os.urandom(70000)
            body, headers = upload_ok(server, data, filename='o.bin', expiry=7, uses=4,
                                      fields_order=order)
            assert_upload_body(body, headers, server, data, 'o.bin', 4, 7)
            status, _, got = download(server, body['key'])
            assert status == 200 and got == data, 'order %r: %d' % (order, status)


BAD_VALUES = [('expiry', '0'), ('expiry', '61'), ('expiry', 'abc'), ('expiry', '-1'),
              ('expiry', '1.5'), ('expiry', '99999999999999999999'),
              ('uses', '0'), ('uses', '6'), ('uses', 'x'), ('uses', '-3'), ('uses', '2x')]


def test_out_of_range_or_non_integer_expiry_and_uses_are_422():
    with Redis() as redis, Server(redis) as server:
        for field, value in BAD_VALUES:
            kw = {field: value}
            status, headers, body = server.upload(b'data\n', **kw)
            assert_422(status, headers, body, [('body', field)], '%s=%r' % (field, value))
        status, headers, body = server.upload(b'data\n', expiry='0', uses='6')
        assert_422(status, headers, body, [('body', 'expiry'), ('body', 'uses')],
                   'both fields bad')
        assert_nothing_left(server, redis, 'rejected fields')


def test_missing_file_part_is_422():
    with Redis() as redis, Server(redis) as server:
        status, headers, body = post_form(server, [field_part('expiry', 5),
                                                   field_part('uses', 2)])
        assert_422(status, headers, body, [('body', 'file')], 'no file part')
        assert [i['type'] for i in body['detail'] if i['loc'] == ['body', 'file']] == \
            ['missing'], body
        # A file part under another name is not the file.
        status, headers, body = post_form(server, [file_part(b'abc', name=b'document')])
        assert_422(status, headers, body, [('body', 'file')], 'file under another name')
        # An empty body.
        status, headers, body = server.json(
            'POST', '/upload/', body=b'',
            headers={'Content-Type': 'multipart/form-data; boundary=abc'})
        assert status == 422, (status, body)
        assert_422(status, headers, body, [], 'empty body')
        assert_nothing_left(server, redis, 'no file part')


def test_empty_file_is_422():
    with Redis() as redis, Server(redis) as server:
        status, headers, body = server.upload(b'', filename='empty.txt')
        assert_422(status, headers, body, [('body', 'file')], 'empty file')
        assert_nothing_left(server, redis, 'empty file')


def test_file_part_without_filename_is_422_missing():
    with Redis() as redis, Server(redis) as server:
        status, headers, body = server.upload(b'no name here\n', filename=None)
        assert_422(status, headers, body, [('body', 'file')], 'file part without filename')
        assert [i['type'] for i in body['detail'] if i['loc'] == ['body', 'file']] == \
            ['missing'], body
        assert_nothing_left(server, redis, 'file without filename')


def test_unknown_extra_fields_are_ignored():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(3000)
        parts = [field_part('comment', 'hello there'),
                 file_part(b'not the file', filename=b'other.txt', name=b'attachment'),
                 field_part('expiry', 3),
                 field_part('password', 'x' * 5000),
                 file_part(data, filename=b'real.bin'),
                 field_part('uses', 2),
                 field_part('Expiry', 'nonsense')]
        status, headers, body = post_form(server, parts)
        assert status == 201, body
        assert_upload_body(body, headers, server, data, 'real.bin', 2, 3)
        status, _, got = download(server, body['key'])
        assert status == 200 and got == data


def test_quoted_and_unquoted_boundaries_are_accepted():
    with Redis() as redis, Server(redis) as server:
        cases = [
            ('----WebKitFormBoundary7MA4YWxkTrZu0gW',
             'multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW'),
            ('simple', 'multipart/form-data;boundary=simple'),
            ("rz 'quoted' (b)+_,-./:=?",
             'multipart/form-data; boundary="rz \'quoted\' (b)+_,-./:=?"'),
            ('qq', 'multipart/form-data; boundary="qq"; charset=utf-8'),
            ('UPPER', 'Multipart/Form-Data; charset=utf-8; BOUNDARY=UPPER'),
            ('x' * 70, 'multipart/form-data; boundary=' + 'x' * 70),
        ]
        for boundary, ct in cases:
            data = os.urandom(2000) + b'\r\n--' + boundary.encode()[:-1] + b'!'
            status, headers, body = post_form(server, [file_part(data), field_part('uses', 2)],
                                              boundary=boundary, content_type=ct)
            assert status == 201, '%r: %d %r' % (ct, status, body)
            assert_upload_body(body, headers, server, data, 'x.bin', 2, 10)
            status, _, got = download(server, body['key'])
            assert status == 200 and got == data, ct


def test_preamble_and_epilogue_are_ignored():
    with Redis() as redis, Server(redis) as server:
        data = b'between the boundaries\r\n'
        status, headers, body = post_form(
            server, [file_part(data, filename=b'p.txt')],
            preamble=b'This is the preamble.\r\nIt is to be ignored.\r\n',
            epilogue=b'This is the epilogue.\r\n--not a boundary--\r\n')
        assert status == 201, body
        assert_upload_body(body, headers, server, data, 'p.txt', 1, 10)
        status, _, got = download(server, body['key'])
        assert status == 200 and got == data


def test_malformed_multipart_is_422_and_leaves_nothing():
    with Redis() as redis, Server(redis) as server:
        b = new_boundary()
        good = form_body(b, [file_part(b'payload' * 100)])
        cases = [
            ('no closing boundary', good[:-len(b) - 6], 'multipart/form-data; boundary=' + b),
            ('no boundary at all', b'just some bytes', 'multipart/form-data; boundary=' + b),
            ('boundary missing from Content-Type', good, 'multipart/form-data'),
            ('not multipart', good, 'application/octet-stream'),
            ('json', b'{"file": "x"}', 'application/json'),
            ('part without Content-Disposition',
             form_body(b, [b'Content-Type: text/plain\r\n\r\nabc']),
             'multipart/form-data; boundary=' + b),
            ('bare LF in part header',
             form_body(b, [b'Content-Disposition: form-data; name="file"; filename="a"\n\nabc']),
             'multipart/form-data; boundary=' + b),
        ]
        for what, body_bytes, ct in cases:
            status, headers, body = server.json('POST', '/upload/', body=body_bytes,
                                                headers={'Content-Type': ct})
            assert_422(status, headers, body, [], what)
        # no Content-Type at all
        status, headers, body = server.json('POST', '/upload/', body=good)
        assert_422(status, headers, body, [], 'no Content-Type')
        assert_nothing_left(server, redis, 'malformed multipart')


def test_upload_split_across_tcp_writes_at_many_offsets():
    with Redis() as redis, Server(redis) as server:
        boundary = new_boundary()
        data = b'line one\r\nline two\r\n--' + boundary.encode()[:10] + b'\r\n\r\nend\r'
        body = form_body(boundary, [field_part('expiry', 7), file_part(data, filename=b's.txt'),
                                    field_part('uses', 2)])
        head, body = raw_upload_request(server.port, body, boundary)
        request = head + body
        marks = set()
        for token in (b'--' + boundary.encode(), b'\r\n\r\n', b'\r\n', b'name="uses"'):
            start = 0
            while True:
                i = body.find(token, start)
                if i < 0:
                    break
                marks.update((i, i + 1, i + len(token) // 2, i + len(token) - 1))
                start = i + 1
        offsets = sorted({len(head) + m for m in marks if 0 < m < len(body)})
        # About 20: spread evenly over what was found, plus the head and the last byte.
        step = max(1, len(offsets) // 18)
        chosen = sorted(set(offsets[::step]) | {len(head) // 2, len(head), len(request) - 1,
                                                len(request) - len(boundary) // 2})
        for at in chosen:
            received, _ = raw_exchange(server, [request[:at], request[at:]], pause=0.02)
            status, headers, answer = one_response(received, 'split at %d' % at)
            assert status == 201, 'split at %d of %d: %d %r' % (at, len(request), status,
                                                               answer[:300])
            parsed = json_answer('split at %d' % at, status, headers, answer)
            assert parsed['sha256'] == sha256(data) and parsed['size'] == len(data), \
                'split at %d: %r' % (at, parsed)
            assert parsed['uses'] == 2 and parsed['filename'] == 's.txt', parsed
            assert abs((parse_iso(parsed['expiry']) - parse_iso(parsed['created_at']))
                       .total_seconds() - 420) <= 1, parsed
        status, _, got = download(server, parsed['key'])
        assert status == 200 and got == data


def test_crlf_and_boundary_like_bytes_in_file_data_round_trip_exactly():
    with Redis() as redis, Server(redis) as server:
        boundary = new_boundary()
        bb = boundary.encode()
        data = (b'--' + bb + b'\r\n' +             # boundary text, not after a CRLF
                b'\r\n\r\n\r\r\n\n\r' +
                b'\r\n--' + bb[:-1] + b'\r\n' +    # one byte short of the delimiter
                b'\r\n-' + bb + b'\r\n' +          # one dash short
                b'\n--' + bb + b'\r\n' +           # LF only
                b'\r--' + bb + b'--\r\n' +         # CR only
                os.urandom(SEGMENT) +
                b'\r\n--' + bb[:len(bb) // 2] +
                b'\r\n')                           # ends in CRLF right before the delimiter
        status, headers, body = post_form(server, [file_part(data, filename=b'c.bin')],
                                          boundary=boundary)
        assert status == 201, body
        assert_upload_body(body, headers, server, data, 'c.bin', 1, 10)
        status, _, got = download(server, body['key'])
        assert status == 200
        assert got == data, 'round trip changed the bytes (%d vs %d)' % (len(got), len(data))


def test_binary_files_round_trip_at_segment_edges():
    with Redis() as redis, Server(redis) as server:
        for size in (1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT):
            data = os.urandom(size)
            body, _ = upload_ok(server, data, filename='b%d.bin' % size)
            assert body['size'] == size and body['sha256'] == sha256(data), body
            # The sealed layout: a 40-byte header, then 64 KiB segments each with a
            # 16-byte tag.
            p = stored_path(server, body['key'])
            assert os.path.isfile(p), 'stored file %s missing' % p
            nsegs = (size + SEGMENT - 1) // SEGMENT
            assert os.path.getsize(p) == HEADER + size + TAG * nsegs, \
                (size, os.path.getsize(p))
            with open(p, 'rb') as f:
                assert f.read(4) == b'RZ0F'
            status, headers, got = download(server, body['key'])
            assert status == 200, (size, status)
            assert got == data, 'size %d: bytes differ' % size
            assert headers.get('content-length') == str(size), headers
            assert headers.get('x-sha256') == sha256(data), headers


def post_upload_head(content_type, length=None, extra=b''):
    head = (b'POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n'
            b'Content-Type: ' + content_type.encode() + b'\r\n')
    if length is not None:
        head += b'Content-Length: ' + str(length).encode() + b'\r\n'
    return head + extra + b'\r\n'


def chunked_upload(server, data, piece):
    """An upload sent with Transfer-Encoding: chunked (no Content-Length), `piece`
    bytes a chunk: (status, headers, body bytes)."""
    body, ctype = multipart(data)
    received, end = raw_exchange(server, post_upload_head(
        ctype, extra=b'Transfer-Encoding: chunked\r\n') + chunked(body, piece))
    assert received, 'a chunked upload of %d bytes: no answer (%s)' % (len(data), end)
    return one_response(received, 'a chunked upload of %d bytes' % len(data))


def test_chunked_upload_is_stored_exactly():
    with Redis() as redis, Server(redis) as server:
        for size, piece in ((5000, 7), (300_000, 4096), (2 * 1024 * 1024, 65536)):
            payload = os.urandom(size)
            status, headers, resp = chunked_upload(server, payload, piece)
            created = json_answer('chunked upload of %d bytes' % size, status, headers, resp)
            assert status == 201, 'chunked upload of %d bytes: %d %r' % (size, status, created)
            assert created['size'] == size and created['sha256'] == sha256(payload), created
            status, _, got = download(server, created['key'])
            assert status == 200 and got == payload


# --- MAX_FILE_SIZE, on each transport: the file may have that many bytes, not one more

def too_large(limit, size=None):
    """The 413's detail: the size when it is known before the body (Content-Length),
    else "more than" the limit or the size read when the limit was passed."""
    def check(detail):
        if size is not None:
            return detail == 'File too large: %d bytes (Max Size: %d bytes)' % (size, limit)
        return re.match(r'^File too large: (\d+|more than %d) bytes \(Max Size: %d bytes\)$'
                        % (limit, limit), detail)
    return check


def test_content_length_over_max_file_size_answers_413_json_before_the_body_is_sent():
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': '1000'}) as server:
        before = server.full_tree()
        body, _ = upload_ok(server, os.urandom(1000))  # exactly the limit: accepted
        os.unlink(stored_path(server, body['key']))
        redis.command('FLUSHALL')
        # The whole body sent: Content-Length counts the multipart framing too.
        for size in (1001, 5000, 200000):
            status, headers, body = server.upload(os.urandom(size))
            assert_json_error(status, headers, body, 413,
                              lambda d: isinstance(d, str) and d.startswith('File too large: ')
                              and d.endswith('(Max Size: 1000 bytes)'),
                              'file of %d bytes' % size)
            assert_nothing_left(server, redis, '413 for %d bytes' % size)
        # Only the head sent (once with the write side shut): answered at once, from
        # Content-Length alone, which the detail then names.
        for length, half_close in ((10 ** 12, False), (10_000_000, True), (100000, False)):
            what = 'Content-Length %d%s' % (length, ' then EOF' if half_close else '')
            started = time.monotonic()
            received, end = raw_exchange(server, post_upload_head(
                'multipart/form-data; boundary=b', length), half_close=half_close,
                responses=1)
            took = time.monotonic() - started
            assert received, '%s: no answer (%s)' % (what, end)
            status, headers, data = one_response(received, what)
            assert_json_error(status, headers, data, 413, too_large(1000, length), what)
            assert took < 2, '%s: answered after %.2fs' % (what, took)
            rid = headers['x-request-id']
            line = wait_until(lambda: request_line(server.log_lines(), rid), 5,
                              message='the 413 logged')
            assert line['status_code'] == 413, line
            assert sum(1 for x in server.log_lines() if x.get('request_id') == rid) == 1
            assert_nothing_left(server, redis, what)
        assert_nobody_replaced(server, before)


def test_a_chunked_body_over_max_file_size_answers_413_json_while_streaming():
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': '100000'}) as server:
        before = server.full_tree()
        data = os.urandom(100000)  # exactly the limit: accepted
        status, headers, resp = chunked_upload(server, data, 4096)
        created = json_answer('chunked upload of the limit', status, headers, resp)
        assert status == 201, created
        # (post_upload_head sends Host: 127.0.0.1, hence the base of the URLs.)
        assert_upload_body(created, headers, server, data, 'x.bin', 1, 10,
                           base='http://127.0.0.1')
        status, _, got = download(server, created['key'])
        assert status == 200 and got == data
        redis.command('FLUSHALL')
        for size, piece in ((100001, 4096), (150000, 1024), (400_000, 16384)):
            status, headers, resp = chunked_upload(server, os.urandom(size), piece)
            what = 'chunked upload of %d bytes' % size
            assert_json_error(status, headers, resp, 413, too_large(100000), what)
            assert_nothing_left(server, redis, what)
        assert_nobody_replaced(server, before)


def test_upload_over_the_limit_via_http2_is_413_or_refused_far_over():
    # libh2o 2.2.5 buffers an HTTP/2 body and refuses the stream (RST_STREAM) once it
    # passes MAX_FILE_SIZE plus 64 KiB of framing allowance, before any handler runs.
    # Within that allowance the answer is the contract's 413; far over it, the stream
    # is refused and nothing is stored.
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': '1000'}) as server:
        before = server.full_tree()
        work = path('h2big')
        os.makedirs(work)
        with open(os.path.join(work, 'big.bin'), 'wb') as f:
            f.write(os.urandom(30000))
        with open(os.path.join(work, 'huge.bin'), 'wb') as f:
            f.write(os.urandom(300000))
        code, out, err = curl(['--http2-prior-knowledge', '-F', 'file=@big.bin',
                               '-o', 'answer.json', '-D', 'headers.txt',
                               '-w', '%{http_version} %{http_code}',
                               'http://127.0.0.1:%d/upload/' % server.port], work, timeout=20)
        assert code == 0, 'curl exit %d: %r' % (code, err)
        assert out == b'2 413', 'h2 upload over the limit: curl says %r %r' % (out, err)
        with open(os.path.join(work, 'answer.json'), 'rb') as f:
            answer = f.read()
        with open(os.path.join(work, 'headers.txt'), encoding='latin-1') as f:
            _, headers = curl_headers(f.read())
        assert_json_error(413, headers, answer, 413, too_large(1000), 'h2 413')
        assert_nothing_left(server, redis, 'h2 413')
        code, out, err = curl(['--http2-prior-knowledge', '--retry', '0', '-F', 'file=@huge.bin',
                               '-o', 'answer2.json', '-w', '%{http_code}',
                               'http://127.0.0.1:%d/upload/' % server.port], work, timeout=20)
        assert code != 0 or out == b'413', 'far over the limit: %r %r' % (out, err)
        if out == b'413':
            with open(os.path.join(work, 'answer2.json'), 'rb') as f:
                detail = json.loads(f.read())['detail']
            assert too_large(1000)(detail), detail
        assert_nothing_left(server, redis, 'h2 refused')
        assert_nobody_replaced(server, before)


def test_mime_type_not_allowed_is_415_and_an_allowed_image_is_accepted():
    with Redis() as redis, Server(redis, env={'ALLOWED_MIME_TYPES': 'image/*'}) as server:
        for data in (TEXT, PDF, os.urandom(100000)):
            status, headers, body = server.upload(data, filename='x.png',
                                                  content_type='image/png')
            assert_json_error(status, headers, body, 415,
                              lambda d: isinstance(d, str) and
                              re.match(r'^File type not supported: \S+/\S+$', d) and
                              not d.endswith(': image/png'), 'disallowed type')
            assert_nothing_left(server, redis, '415')
        status, headers, body = server.upload(TEXT, filename='x.txt')
        assert body['detail'] == 'File type not supported: text/plain', body
        png = png_bytes()
        body, headers = upload_ok(server, png, filename='dot.png', uses=2)
        assert_upload_body(body, headers, server, png, 'dot.png', 2, 10)
        status, _, pv = server.json('GET', '/preview/' + body['key'])
        assert status == 200 and pv['mime_type'] == 'image/png', pv
        status, headers, got = download(server, body['key'])
        assert status == 200 and got == png
        assert headers.get('content-type') == 'image/png', headers
