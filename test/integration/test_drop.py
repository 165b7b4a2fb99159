"""The drop: POST /upload/, GET /preview/{key}, GET /status/{key}, GET /download/{key}.

Every row of SPEC.md's tables for these endpoints, the keys, the headers every response
carries, and what the store and the disk may hold (DESIGN.md "Data"). Each test runs
the real binary against a real redis-server in its own temporary directory; run with
python3 test/run.py -k test_drop."""

import datetime
import hashlib
import hmac
import json
import os
import random
import re
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
import uuid
import zlib

from harness import (WORDLIST, Redis, Server, path, request_line, run, storage, temp, wait_until)

SEGMENT = 65536
TAG = 16
HEADER = 40
UUID4 = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')
ISO_WHOLE_Z = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
HEX64 = re.compile(r'^[0-9a-f]{64}$')
JSON_CT = 'application/json; charset=utf-8'
SPEC_CACHE = 'no-store, no-cache, must-revalidate, max-age=0'
DOWNLOAD_CACHE = 'no-store, no-cache, must-revalidate, max-age=0, no-transform'
UPLOAD_FIELDS = ('key', 'preview_url', 'download_url', 'expiry', 'uses', 'filename', 'size',
                 'created_at', 'sha256')
PREVIEW_FIELDS = ('key', 'filename', 'size', 'mime_type', 'expiry', 'uses', 'minutes_left',
                  'download_url', 'curl_example', 'created_at', 'sha256')
STATUS_FIELDS = ('key', 'status', 'remaining_uses', 'expires_at', 'is_accessible')
NOT_FOUND = 'File not found or link expired'
PREVIEW_NOT_FOUND = 'Upload not found or link expired'
SPENT = 'Download limit has been reached'
# Unknown keys count towards the brute-force block; tests that send many raise the limit.
MANY_FAILURES = {'DOWNLOAD_FAIL_LIMIT': '100000'}


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


# ---------------------------------------------------------------------------------
# Small helpers

def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def parse_iso(text):
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%SZ')


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def key_words(key):
    """The three list words a key is made of, or None (words may contain '-')."""
    if not re.match(r'^[a-z-]+$', key):
        return None
    for a in range(len(key)):
        if key[a] != '-' or key[:a] not in WORDSET:
            continue
        for b in range(a + 1, len(key)):
            if key[b] == '-' and key[a + 1:b] in WORDSET and key[b + 1:] in WORDSET:
                return key[:a], key[a + 1:b], key[b + 1:]
    return None


def unknown_key():
    """A key of the right shape that no upload has (7776^3 to one)."""
    return '-'.join(random.SystemRandom().choice(WORDS) for _ in range(3))


def url_path(url):
    return urllib.parse.urlsplit(url).path


def json_of(data):
    """Strict: the body must be UTF-8 JSON."""
    return json.loads(data.decode('utf-8'))


def assert_common_headers(headers, what, cache=SPEC_CACHE):
    """The SPEC's headers on every response, X-Request-ID a uuid v4, default CORS."""
    expect = {
        'cache-control': cache,
        'pragma': 'no-cache',
        'expires': '0',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'x-xss-protection': '1; mode=block',
        'referrer-policy': 'no-referrer',
        'access-control-allow-origin': '*',
    }
    wrong = {k: (headers.get(k), v) for k, v in expect.items() if headers.get(k) != v}
    assert not wrong, '%s: headers (got, want): %r; all: %r' % (what, wrong, headers)

    def items(name):
        return {x.strip().lower() for x in headers.get(name, '').split(',') if x.strip()}
    assert items('access-control-allow-methods') == {'get', 'post', 'options'}, (what, headers)
    assert items('access-control-allow-headers') == {'content-type', 'accept'}, (what, headers)
    assert items('access-control-expose-headers') == {
        'x-sha256', 'content-disposition', 'x-request-id'}, (what, headers)
    rid = headers.get('x-request-id', '')
    assert UUID4.match(rid.lower()), '%s: X-Request-ID %r is not a uuid v4' % (what, rid)


def assert_json_error(status, headers, body, want_status, detail, what):
    """A JSON error with the given status and detail (a string: exact; a callable: test)."""
    assert status == want_status, '%s: want %d, got %d %r' % (what, want_status, status, body)
    assert headers.get('content-type', '').replace(' ', '').lower() == \
        JSON_CT.replace(' ', ''), (what, headers)
    assert isinstance(body, dict) and 'detail' in body, (what, body)
    if callable(detail):
        assert detail(body['detail']), '%s: unexpected detail %r' % (what, body['detail'])
    else:
        assert body['detail'] == detail, '%s: detail %r, want %r' % (what, body['detail'], detail)
    assert_common_headers(headers, what)


def assert_422(status, headers, body, locs, what):
    """422 with the list-form detail naming every loc in locs (tuples)."""
    assert status == 422, '%s: want 422, got %d %r' % (what, status, body)
    assert headers.get('content-type', '').replace(' ', '').lower() == \
        JSON_CT.replace(' ', ''), (what, headers)
    detail = body.get('detail') if isinstance(body, dict) else None
    assert isinstance(detail, list) and detail, '%s: detail is not a list: %r' % (what, body)
    for item in detail:
        assert isinstance(item, dict), (what, body)
        assert isinstance(item.get('type'), str) and item['type'], (what, item)
        assert isinstance(item.get('msg'), str) and item['msg'], (what, item)
        assert isinstance(item.get('loc'), list) and item['loc'][:1] == ['body'], (what, item)
    got = [tuple(item['loc']) for item in detail]
    for loc in locs:
        assert loc in got, '%s: no error at %r in %r' % (what, loc, detail)
    assert_common_headers(headers, what)


# ---------------------------------------------------------------------------------
# Building multipart bodies by hand

def new_boundary():
    return '----rzTest' + uuid.uuid4().hex


def file_part(data, filename=b'x.bin', name=b'file', content_type=b'application/octet-stream',
              disposition=None):
    """A part's header block and data (bytes). disposition replaces the whole
    Content-Disposition value when given (for hostile names)."""
    if disposition is None:
        disposition = b'form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
    head = b'Content-Disposition: ' + disposition + b'\r\n'
    if content_type is not None:
        head += b'Content-Type: ' + content_type + b'\r\n'
    return head + b'\r\n' + data


def field_part(name, value):
    if isinstance(value, str):
        value = value.encode()
    elif not isinstance(value, bytes):
        value = str(value).encode()
    return b'Content-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n' + value


def form_body(boundary, parts, preamble=b'', epilogue=b''):
    b = boundary.encode() if isinstance(boundary, str) else boundary
    out = [preamble]
    for p in parts:
        out.append(b'--' + b + b'\r\n' + p + b'\r\n')
    out.append(b'--' + b + b'--\r\n' + epilogue)
    return b''.join(out)


def post_form(server, parts, boundary=None, content_type=None, target='/upload/', **kw):
    boundary = boundary or new_boundary()
    ct = content_type or 'multipart/form-data; boundary=' + boundary
    return server.json('POST', target, body=form_body(boundary, parts, **kw),
                       headers={'Content-Type': ct})


def upload_ok(server, data, filename='x.bin', expiry=None, uses=None, **kw):
    status, headers, body = server.upload(data, filename=filename, expiry=expiry, uses=uses,
                                          **kw)
    assert status == 201, 'upload of %d bytes: %d %r' % (len(data), status, body)
    return body, headers


def download(server, key, **kw):
    return server.request('GET', '/download/' + key, **kw)


# ---------------------------------------------------------------------------------
# The store and the disk

def secret(server):
    with open(server.settings['SECRET_PATH'], 'rb') as f:
        return f.read()


def drop_id(server, key):
    """DESIGN: id = first 16 bytes of HMAC-SHA256(secret, key), hex."""
    return hmac.new(secret(server), key.encode(), hashlib.sha256).digest()[:16].hex()


def stored_path(server, key):
    i = drop_id(server, key)
    return os.path.join(storage(server), i[:2], i)


def files_under(root):
    out = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            out.append(os.path.join(dirpath, n))
    return sorted(out)


def tree_snapshot(root):
    snap = {}
    for p in files_under(root):
        st = os.stat(p)
        with open(p, 'rb') as f:
            snap[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns, sha256(f.read()))
    return snap


def store_dump(redis):
    """Every key of the store and every value under it, as bytes."""
    out = []
    for k in redis.command('KEYS', '*') or []:
        kind = redis.command('TYPE', k)
        if kind == 'hash':
            vals = redis.command('HGETALL', k)
        elif kind == 'zset':
            vals = redis.command('ZRANGE', k, 0, -1, 'WITHSCORES')
        elif kind == 'string':
            vals = [redis.command('GET', k)]
        elif kind == 'list':
            vals = redis.command('LRANGE', k, 0, -1)
        elif kind == 'set':
            vals = redis.command('SMEMBERS', k)
        else:
            vals = []
        out.append((k, vals))
    return out


def as_bytes(v):
    if isinstance(v, bytes):
        return v
    return str(v).encode()


def store_bytes(redis):
    chunks = []
    for k, vals in store_dump(redis):
        chunks.append(as_bytes(k))
        chunks.extend(as_bytes(v) for v in vals or [])
    return b'\n'.join(chunks)


def assert_nothing_left(server, redis, what):
    """A failed upload leaves no file, no partial file and no record."""
    seen = []

    def clean():
        left = files_under(temp(server)) + files_under(storage(server))
        keys = redis.command('KEYS', 'upload:*')
        seen[:] = ['files %r, keys %r' % (left, keys)]
        return not left and not keys and not redis.command('ZCARD', 'expiries')
    try:
        wait_until(clean, 3, ignore=())
    except AssertionError:
        raise AssertionError('%s: something was left behind: %s' % (what, seen[0])) from None


# ---------------------------------------------------------------------------------
# Raw HTTP/1.1 for what http.client cannot do

def raw_exchange(port, chunks, pause=0.0, timeout=15.0):
    """Send the request in the given pieces (pausing between them) and read until the
    server closes; (status, headers, body, complete) where complete is False when the
    connection broke (reset) rather than closed."""
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data, complete = b'', True
    try:
        for i, c in enumerate(chunks):
            if i and pause:
                time.sleep(pause)  # a separate TCP segment, the point of the exercise
            s.sendall(c)
        while True:
            try:
                got = s.recv(65536)
            except ConnectionResetError:
                complete = False
                break
            if not got:
                break
            data += got
    finally:
        s.close()
    head, sep, body = data.partition(b'\r\n\r\n')
    assert sep, 'no complete response head: %r' % data[:300]
    lines = head.decode('latin-1').split('\r\n')
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        k = k.strip().lower()
        headers[k] = headers[k] + ', ' + v.strip() if k in headers else v.strip()
    return status, headers, body, complete


def raw_upload_request(port, body, boundary, extra=b''):
    head = (b'POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n'
            b'Content-Type: multipart/form-data; boundary=%s\r\n'
            b'Content-Length: %d\r\nConnection: close\r\n%s\r\n'
            % (port, boundary.encode(), len(body), extra))
    return head, body


# ---------------------------------------------------------------------------------
# Sample files

def png_bytes():
    """A minimal valid 1x1 PNG."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data +
                struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    ihdr = struct.pack('>IIBBBBB', 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b'\x00\xff\x00\x00')
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', idat) +
            chunk(b'IEND', b''))


PDF = (b'%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n'
       b'2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n'
       b'%%EOF\n')
TEXT = b'The quick brown fox jumps over the lazy dog.\n' * 40


# =================================================================================
# POST /upload/

def assert_upload_body(body, headers, server, data, filename, uses, expiry_minutes,
                       base=None):
    assert headers.get('content-type', '').replace(' ', '').lower() == \
        JSON_CT.replace(' ', ''), headers
    for field in UPLOAD_FIELDS:
        assert field in body, 'upload answer lacks %r: %r' % (field, body)
    key = body['key']
    assert isinstance(key, str) and key_words(key), \
        'key %r is not three words of the list joined by -' % key
    base = base or 'http://127.0.0.1:%d' % server.port
    assert body['preview_url'] == '%s/preview/%s' % (base, key), body
    assert body['download_url'] == '%s/download/%s' % (base, key), body
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
    assert_common_headers(headers, 'upload 201')


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


def test_upload_urls_honour_forwarded_headers_only_from_a_trusted_proxy():
    fwd = {'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'drop.example.org'}
    with Redis() as redis, Server(redis) as server:
        data = b'behind a proxy\n'
        # 127.0.0.1 is in the default TRUSTED_PROXIES.
        body, headers = upload_ok(server, data, headers=fwd, source_address='127.0.0.1')
        assert_upload_body(body, headers, server, data, 'x.bin', 1, 10,
                           base='https://drop.example.org')
        status, _, pv = server.json('GET', '/preview/' + body['key'], headers=fwd)
        assert status == 200 and pv['download_url'] == \
            'https://drop.example.org/download/' + body['key'], pv
        # 127.0.0.2 is not: its forwarded headers are ignored, Host is used.
        body, headers = upload_ok(server, data, headers=fwd, source_address='127.0.0.2')
        assert_upload_body(body, headers, server, data, 'x.bin', 1, 10)
        status, _, pv = server.json('GET', '/preview/' + body['key'], headers=fwd,
                                    source_address='127.0.0.2')
        assert status == 200 and pv['download_url'] == \
            'http://127.0.0.1:%d/download/%s' % (server.port, body['key']), pv


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
            status, headers, answer, _ = raw_exchange(server.port,
                                                      [request[:at], request[at:]],
                                                      pause=0.02)
            assert status == 201, 'split at %d of %d: %d %r' % (at, len(request), status,
                                                               answer[:300])
            parsed = json_of(answer)
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
            # DESIGN: a 40-byte header, then 64 KiB segments each with a 16-byte tag.
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


def test_upload_over_max_file_size_is_413_and_leaves_nothing():
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': '1000'}) as server:
        body, _ = upload_ok(server, os.urandom(1000))
        redis.command('FLUSHALL')
        os.unlink(stored_path(server, body['key']))
        for size in (1001, 5000, 200000):
            status, headers, body = server.upload(os.urandom(size))
            assert_json_error(status, headers, body, 413,
                              lambda d: isinstance(d, str) and d.startswith('File too large: ')
                              and d.endswith('(Max Size: 1000 bytes)'),
                              'file of %d bytes' % size)
            assert_nothing_left(server, redis, '413 for %d bytes' % size)


def test_content_length_over_the_limit_is_413_before_the_body_is_sent():
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': '1000'}) as server:
        head = (b'POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n'
                b'Content-Type: multipart/form-data; boundary=abc\r\n'
                b'Content-Length: 10000000\r\n\r\n' % server.port)
        s = socket.create_connection(('127.0.0.1', server.port), timeout=10)
        try:
            s.sendall(head)
            s.shutdown(socket.SHUT_WR)  # not one byte of the body
            data = b''
            while True:
                got = s.recv(65536)
                if not got:
                    break
                data += got
        finally:
            s.close()
        head, _, answer = data.partition(b'\r\n\r\n')
        assert head.split(b' ')[1] == b'413', data[:300]
        detail = json_of(answer)['detail']
        assert detail.startswith('File too large: ') and 'Max Size: 1000 bytes' in detail, detail
        assert_nothing_left(server, redis, '413 on Content-Length')


def chunked_upload(server, data, filename=b'c.bin', piece=4096):
    """An upload sent with Transfer-Encoding: chunked (no Content-Length)."""
    boundary = new_boundary()
    body = form_body(boundary, [file_part(data, filename=filename)])
    conn = server.connection()
    try:
        conn.request('POST', '/upload/', body=(body[i:i + piece]
                                               for i in range(0, len(body), piece)),
                     headers={'Content-Type': 'multipart/form-data; boundary=' + boundary},
                     encode_chunked=True)
        resp = conn.getresponse()
        raw = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, headers, json_of(raw)
    finally:
        conn.close()


def test_chunked_upload_works_and_over_the_limit_is_413():
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': '100000'}) as server:
        data = os.urandom(100000)
        status, headers, body = chunked_upload(server, data)
        assert status == 201, body
        assert_upload_body(body, headers, server, data, 'c.bin', 1, 10)
        status, _, got = download(server, body['key'])
        assert status == 200 and got == data
        redis.command('FLUSHALL')
        # (A chunked body far over the limit, cut off while streaming: test_abuse.)
        for size in (100001, 150000):
            status, headers, body = chunked_upload(server, os.urandom(size))
            assert_json_error(status, headers, body, 413,
                              lambda d: isinstance(d, str) and d.startswith('File too large: ')
                              and d.endswith('(Max Size: 100000 bytes)'),
                              'chunked upload of %d bytes' % size)
            assert_nothing_left(server, redis, 'chunked 413 of %d bytes' % size)


def curl(args, cwd, timeout=30):
    proc = subprocess.run(['curl', '-sS', '--max-time', str(timeout)] + args, cwd=cwd,
                          capture_output=True, timeout=timeout + 5)
    return proc.returncode, proc.stdout, proc.stderr


def curl_headers(text):
    """Status and lower-cased headers of the last response in a curl -D dump."""
    blocks = [b for b in text.replace('\r\n', '\n').split('\n\n') if b.strip()]
    lines = blocks[-1].split('\n')
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        k = k.strip().lower()
        headers[k] = headers[k] + ', ' + v.strip() if k in headers else v.strip()
    return lines[0], headers


def test_upload_over_the_limit_via_http2_is_413_or_refused_far_over():
    # libh2o 2.2.5 buffers an HTTP/2 body and refuses the stream (RST_STREAM) once it
    # passes MAX_FILE_SIZE plus 64 KiB of framing allowance, before any handler runs.
    # Within that allowance the answer is the contract's 413; far over it, the stream
    # is refused and nothing is stored.
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': '1000'}) as server:
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
            detail = json_of(f.read())['detail']
        assert detail.startswith('File too large: '), detail
        with open(os.path.join(work, 'headers.txt'), encoding='latin-1') as f:
            _, headers = curl_headers(f.read())
        assert_common_headers(headers, 'h2 413')
        assert_nothing_left(server, redis, 'h2 413')
        workers = server.children()['workers']
        code, out, err = curl(['--http2-prior-knowledge', '--retry', '0', '-F', 'file=@huge.bin',
                               '-o', 'answer2.json', '-w', '%{http_code}',
                               'http://127.0.0.1:%d/upload/' % server.port], work, timeout=20)
        assert code != 0 or out == b'413', 'far over the limit: %r %r' % (out, err)
        assert_nothing_left(server, redis, 'h2 refused')
        assert server.children()['workers'] == workers, 'a worker was replaced'
        status, _, _ = server.request('GET', '/health/')
        assert status == 200


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


def test_upload_rate_limit_is_429_with_retry_after():
    with Redis() as redis, Server(redis, env={'UPLOAD_RATE_LIMIT': '2/minute'}) as server:
        upload_ok(server, b'one')
        upload_ok(server, b'two')
        status, headers, body = server.upload(b'three')
        assert_json_error(status, headers, body, 429, 'Rate limit exceeded', 'third upload')
        assert re.match(r'^\d+$', headers.get('retry-after', '')) and \
            1 <= int(headers['retry-after']) <= 60, headers
        # Another client is not limited.
        upload_ok(server, b'four', source_address='127.0.0.2')
        assert len(redis.command('KEYS', 'upload:*')) == 3


def test_store_unreachable_is_503_and_an_upload_leaves_nothing():
    with Redis() as redis, Server(redis) as server:
        body, _ = upload_ok(server, b'before the outage')
        key = body['key']
        os.unlink(stored_path(server, key))
        redis.stop()
        started = time.monotonic()
        status, headers, body = server.upload(b'during the outage')
        assert_json_error(status, headers, body, 503, 'Service temporarily unavailable',
                          'upload with the store down')
        assert time.monotonic() - started < 5, 'the 503 took too long'
        for target in ('/download/', '/preview/', '/status/'):
            status, headers, body = server.json('GET', target + key)
            assert_json_error(status, headers, body, 503, 'Service temporarily unavailable',
                              target + ' with the store down')
        assert files_under(temp(server)) == [] and files_under(storage(server)) == [], \
            files_under(path('storage'))


def test_storage_not_writable_is_507_and_leaves_nothing():
    with Redis() as redis, Server(redis) as server:
        tmpdir, store = temp(server), storage(server)
        # TEMP_PATH gone: the upload cannot even start its file.
        os.rmdir(tmpdir)
        try:
            status, headers, body = server.upload(os.urandom(5000))
            assert_json_error(status, headers, body, 507, 'Insufficient storage',
                              'TEMP_PATH missing')
        finally:
            os.mkdir(tmpdir, 0o700)
        assert_nothing_left(server, redis, '507 without TEMP_PATH')
        # STORAGE_PATH gone: the sealed temp file cannot be moved into place.
        os.rename(store, store + '.away')
        try:
            status, headers, body = server.upload(os.urandom(5000))
            assert_json_error(status, headers, body, 507, 'Insufficient storage',
                              'STORAGE_PATH missing')
            wait_until(lambda: files_under(tmpdir) == [], 3, ignore=(),
                       message='the temp file of the failed upload removed')
        finally:
            os.rename(store + '.away', store)
        assert_nothing_left(server, redis, '507 without STORAGE_PATH')
        upload_ok(server, b'works again')


# --- file names --------------------------------------------------------------------

CD_RE = re.compile(r'^attachment; filename="([^"\\]*)"; '
                   r'filename\*=UTF-8\'\'([A-Za-z0-9!#$&+\-.^_`|~%]*)$')


def check_disposition(headers, what):
    """The Content-Disposition of a download: (ascii fallback, decoded filename*)."""
    cd = headers.get('content-disposition')
    assert cd is not None, '%s: no Content-Disposition' % what
    assert all(0x20 <= ord(c) < 0x7f for c in cd), \
        '%s: Content-Disposition has a control or non-ASCII character: %r' % (what, cd)
    m = CD_RE.match(cd)
    assert m, '%s: Content-Disposition %r is not attachment; filename="..."; ' \
        "filename*=UTF-8''..." % (what, cd)
    fallback = m.group(1)
    decoded = urllib.parse.unquote(m.group(2), encoding='utf-8', errors='strict')
    for name in (fallback, decoded):
        assert not any(ord(c) < 0x20 or ord(c) == 0x7f for c in name), (what, cd)
        assert '/' not in name and '\\' not in name and name not in ('', '.', '..'), (what, cd)
    return fallback, decoded


HOSTILE = [
    # (what, raw Content-Disposition of the file part, a check on the stored name)
    ('quote', b'form-data; name="file"; filename="a\\"b.txt"',
     lambda n: n.endswith('b.txt') and n.startswith('a')),
    ('percent-encoded quote', b'form-data; name="file"; filename="a%22b.txt"',
     lambda n: 'b.txt' in n),
    ('CR/LF via filename*', b"form-data; name=\"file\"; filename*=UTF-8''a%0D%0Ab.txt",
     lambda n: n.startswith('a') and n.endswith('b.txt')),
    ('control characters', b'form-data; name="file"; filename="a\x01\x1f\tb\x7f.txt"',
     lambda n: n.startswith('a') and n.endswith('b.txt')),
    ('path traversal', b'form-data; name="file"; filename="../../etc/passwd"',
     lambda n: n == 'passwd'),
    ('traversal via filename*',
     b"form-data; name=\"file\"; filename*=UTF-8''..%2F..%2Fetc%2Fshadow",
     lambda n: n == 'shadow'),
    ('dot dot', b'form-data; name="file"; filename=".."', lambda n: True),
    ('very long', b'form-data; name="file"; filename="' + b'A' * 996 + b'.txt"',
     lambda n: n.startswith('AAAA') and len(n.encode()) <= 1000),
    ('very long multibyte', b'form-data; name="file"; filename="' +
     '\u00e9'.encode() * 500 + b'"', lambda n: n.startswith('\u00e9')),
    ('non-UTF-8', b'form-data; name="file"; filename="caf\xe9 \xff\xfe.txt"',
     lambda n: n.startswith('caf') and n.endswith('.txt')),
    ('semicolons and commas', b'form-data; name="file"; filename="a;b,c=d.txt"',
     lambda n: n == 'a;b,c=d.txt'),
    ('percent sign', b'form-data; name="file"; filename="100%.txt"', lambda n: n == '100%.txt'),
    ('header injection text',
     b"form-data; name=\"file\"; filename*=UTF-8''x.txt%22%3B%20filename%3D%22evil.sh",
     lambda n: n.startswith('x.txt')),
]


def test_hostile_file_names_never_reach_the_header_raw():
    with Redis() as redis, Server(redis, env=MANY_FAILURES) as server:
        for what, disposition, check in HOSTILE:
            data = ('contents of %s\n' % what).encode()
            status, headers, body = post_form(
                server, [file_part(data, disposition=disposition), field_part('uses', 2)])
            assert status == 201, '%s: %d %r' % (what, status, body)
            name = body['filename']
            assert isinstance(name, str) and name, (what, body)
            assert not any(ord(c) < 0x20 or ord(c) == 0x7f for c in name), (what, name)
            assert '/' not in name and '\\' not in name, (what, name)
            assert check(name), '%s: stored name %r' % (what, name)
            status, _, raw = server.request('GET', '/preview/' + body['key'])
            assert status == 200, (what, raw)
            assert json_of(raw)['filename'] == name, (what, raw)
            status, headers, got = download(server, body['key'])
            assert status == 200 and got == data, (what, status)
            _, decoded = check_disposition(headers, what)
            assert decoded == name, '%s: filename* says %r, the upload said %r' % (
                what, decoded, name)


def test_nul_in_a_file_name_is_refused_or_removed():
    with Redis() as redis, Server(redis) as server:
        for disposition in (b"form-data; name=\"file\"; filename*=UTF-8''a%00b.txt",
                            b'form-data; name="file"; filename="a\x00b.txt"'):
            status, headers, body = post_form(server, [file_part(b'nul\n',
                                                                 disposition=disposition)])
            if status == 422:
                assert_422(status, headers, body, [], 'NUL in name %r' % disposition)
                continue
            assert status == 201, (disposition, status, body)
            assert '\x00' not in body['filename'] and body['filename'], body
            status, headers, got = download(server, body['key'])
            assert status == 200 and got == b'nul\n'
            check_disposition(headers, 'NUL name')
        assert server.running()
        upload_ok(server, b'still serving')


def test_unicode_file_name_round_trips_in_filename_star():
    with Redis() as redis, Server(redis) as server:
        name = 'r\u00e9sum\u00e9 \u5831\u544a \U0001f4c4.pdf'
        status, headers, body = post_form(server, [file_part(PDF, filename=name.encode())])
        assert status == 201, body
        assert body['filename'] == name, body
        status, headers, got = download(server, body['key'])
        assert status == 200 and got == PDF
        fallback, decoded = check_disposition(headers, 'unicode name')
        assert decoded == name, (decoded, name)
        assert fallback.endswith('.pdf') and fallback.startswith('r'), fallback


def test_keys_are_three_distinct_words_of_the_list():
    with Redis() as redis, Server(redis) as server:
        keys = []
        for i in range(25):
            body, _ = upload_ok(server, b'%d' % i)
            assert key_words(body['key']), body['key']
            keys.append(body['key'])
        assert len(set(keys)) == len(keys), keys
        words = [w for k in keys for w in key_words(k)]
        assert len(set(words)) > 40, 'keys reuse words suspiciously: %r' % keys


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
            assert_common_headers(headers, 'OPTIONS ' + target)
        status, _, pv = server.json('GET', '/preview/' + key)
        assert status == 200 and pv['uses'] == 1, pv
        status, _, got = download(server, key)
        assert status == 200 and got == data


# =================================================================================
# GET /preview/{key}

def test_preview_returns_every_field():
    with Redis() as redis, Server(redis) as server:
        up, _ = upload_ok(server, PDF, filename='report.pdf', expiry=30, uses=3)
        status, headers, pv = server.json('GET', '/preview/' + up['key'])
        assert status == 200, pv
        assert headers.get('content-type', '').replace(' ', '').lower() == \
            JSON_CT.replace(' ', ''), headers
        assert_common_headers(headers, 'preview 200')
        for field in PREVIEW_FIELDS:
            assert field in pv, 'preview lacks %r: %r' % (field, pv)
        assert pv['key'] == up['key'], pv
        assert pv['filename'] == 'report.pdf', pv
        assert is_int(pv['size']) and pv['size'] == len(PDF), pv
        assert pv['mime_type'] == 'application/pdf', pv
        assert pv['expiry'] == up['expiry'] and pv['created_at'] == up['created_at'], (pv, up)
        assert is_int(pv['uses']) and pv['uses'] == 3, pv
        assert is_int(pv['minutes_left']) and pv['minutes_left'] in (29, 30), pv
        assert pv['download_url'] == up['download_url'], pv
        assert pv['curl_example'] == 'curl -OJ ' + up['download_url'], pv
        assert pv['sha256'] == sha256(PDF), pv


def test_second_preview_is_404_already_accessed():
    with Redis() as redis, Server(redis) as server:
        up, _ = upload_ok(server, TEXT, uses=2)
        status, _, _ = server.json('GET', '/preview/' + up['key'])
        assert status == 200
        for _ in range(2):
            status, headers, body = server.json('GET', '/preview/' + up['key'])
            assert_json_error(status, headers, body, 404,
                              lambda d: isinstance(d, str) and 'already' in d.lower() and
                              'access' in d.lower(), 'second preview')


def test_preview_of_unknown_key_is_404():
    with Redis() as redis, Server(redis) as server:
        status, headers, body = server.json('GET', '/preview/' + unknown_key())
        assert_json_error(status, headers, body, 404, PREVIEW_NOT_FOUND, 'unknown preview')


def test_preview_never_consumes_a_download_and_reports_uses_left():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(1000)
        up, _ = upload_ok(server, data, uses=3)
        key = up['key']
        status, _, got = download(server, key)
        assert status == 200 and got == data
        status, _, pv = server.json('GET', '/preview/' + key)
        assert status == 200 and pv['uses'] == 2, pv
        status, _, st = server.json('GET', '/status/' + key)
        assert st['remaining_uses'] == 2, st
        for _ in range(2):
            status, _, got = download(server, key)
            assert status == 200 and got == data
        status, headers, body = server.json('GET', '/download/' + key)
        assert_json_error(status, headers, body, 410, SPENT, 'download after preview')
        # One use, previewed first: the download still works.
        up, _ = upload_ok(server, data)
        status, _, pv = server.json('GET', '/preview/' + up['key'])
        assert status == 200 and pv['uses'] == 1, pv
        status, _, got = download(server, up['key'])
        assert status == 200 and got == data


def test_racing_previews_exactly_one_succeeds():
    with Redis() as redis, Server(redis) as server:
        for _ in range(5):
            up, _ = upload_ok(server, TEXT)
            results = race(10, lambda: server.json('GET', '/preview/' + up['key']))
            ok = [r for r in results if r[0] == 200]
            rest = [r for r in results if r[0] != 200]
            assert len(ok) == 1, 'previews that succeeded: %d of 10: %r' % (
                len(ok), [(s, b) for s, _, b in results])
            assert ok[0][2]['key'] == up['key'] and ok[0][2]['uses'] == 1, ok[0][2]
            for status, headers, body in rest:
                assert_json_error(status, headers, body, 404,
                                  lambda d: 'already' in d.lower(), 'losing preview')
            status, _, st = server.json('GET', '/status/' + up['key'])
            assert st['remaining_uses'] == 1, st


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


# =================================================================================
# GET /status/{key}

def test_status_is_active_counts_down_and_never_consumes():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(3000)
        up, _ = upload_ok(server, data, uses=3, expiry=15)
        key = up['key']
        for _ in range(5):
            status, headers, st = server.json('GET', '/status/' + key)
            assert status == 200, st
            assert headers.get('content-type', '').replace(' ', '').lower() == \
                JSON_CT.replace(' ', ''), headers
            assert_common_headers(headers, 'status 200')
            for field in STATUS_FIELDS:
                assert field in st, 'status lacks %r: %r' % (field, st)
            assert st == {'key': key, 'status': 'active', 'remaining_uses': 3,
                          'expires_at': up['expiry'], 'is_accessible': True}, st
        for left in (2, 1):
            status, _, got = download(server, key)
            assert status == 200 and got == data
            status, _, st = server.json('GET', '/status/' + key)
            assert st['status'] == 'active' and st['remaining_uses'] == left, st
            assert st['is_accessible'] is True
        status, _, got = download(server, key)
        assert status == 200 and got == data
        for _ in range(3):
            status, _, st = server.json('GET', '/status/' + key)
            assert status == 200, st
            assert st == {'key': key, 'status': 'burned', 'remaining_uses': 0,
                          'expires_at': up['expiry'], 'is_accessible': False}, st


def test_status_of_unknown_key_is_200_expired_or_burned_with_null_expiry():
    with Redis() as redis, Server(redis) as server:
        key = unknown_key()
        status, headers, st = server.json('GET', '/status/' + key)
        assert status == 200, st
        assert_common_headers(headers, 'status unknown')
        assert st == {'key': key, 'status': 'expired_or_burned', 'remaining_uses': 0,
                      'expires_at': None, 'is_accessible': False}, st


def test_unknown_keys_count_as_failed_attempts_and_block_with_429():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '120'}
    with Redis() as redis, Server(redis, env=env) as server:
        data = b'guarded\n'
        up, _ = upload_ok(server, data, uses=2)
        key = up['key']
        attacker = '127.0.0.2'
        status, _, st = server.json('GET', '/status/' + unknown_key(), source_address=attacker)
        assert status == 200 and st['status'] == 'expired_or_burned', st
        status, _, _ = server.json('GET', '/preview/' + unknown_key(), source_address=attacker)
        assert status == 404
        status, _, _ = server.json('GET', '/download/' + unknown_key(), source_address=attacker)
        assert status == 404
        for target in ('/status/', '/preview/', '/download/'):
            status, headers, body = server.json('GET', target + key, source_address=attacker)
            assert status == 429, '%s of a live key from a blocked client: %d %r' % (
                target, status, body)
            detail = body['detail']
            assert isinstance(detail, dict), body
            assert detail.get('error') == 'Too many failed attempts. Temporarily blocked.', body
            assert is_int(detail.get('retry_after_seconds')) and \
                0 < detail['retry_after_seconds'] <= 120, body
            assert re.match(r'^\d+$', headers.get('retry-after', '')) and \
                0 < int(headers['retry-after']) <= 120, headers
            assert_common_headers(headers, target + ' 429')
        # Blocked requests consumed nothing, and other clients are not blocked.
        status, _, st = server.json('GET', '/status/' + key)
        assert status == 200 and st['remaining_uses'] == 2, st
        status, _, got = download(server, key)
        assert status == 200 and got == data


def test_expired_record_is_expired_in_status_and_404_elsewhere():
    with Redis() as redis, Server(redis) as server:
        data = b'short lived\n'
        up, _ = upload_ok(server, data, uses=2)
        spent, _ = upload_ok(server, data)
        status, _, _ = download(server, spent['key'])
        assert status == 200
        past = int(time.time()) - 5
        # Expiry is a time in the record; moving it into the past is what the clock does.
        for key in (up['key'], spent['key']):
            redis.command('HSET', 'upload:{%s}' % drop_id(server, key), 'e', past)
            status, headers, st = server.json('GET', '/status/' + key)
            assert status == 200, st
            assert st['status'] == 'expired' and st['remaining_uses'] == 0 and \
                st['is_accessible'] is False and st['expires_at'] == iso(past), st
            status, headers, body = server.json('GET', '/download/' + key)
            assert_json_error(status, headers, body, 404, NOT_FOUND, 'expired download')
        status, headers, body = server.json('GET', '/preview/' + up['key'])
        assert_json_error(status, headers, body, 404, PREVIEW_NOT_FOUND, 'expired preview')


# =================================================================================
# GET /download/{key}

def test_download_sends_the_headers_of_the_spec():
    with Redis() as redis, Server(redis) as server:
        up, _ = upload_ok(server, TEXT, filename='notes.txt', content_type='application/x-bogus')
        status, headers, got = download(server, up['key'])
        assert status == 200 and got == TEXT
        assert headers.get('content-type', '').split(';')[0] == 'text/plain', \
            'Content-Type is not the sniffed type: %r' % headers
        assert headers.get('content-length') == str(len(TEXT)), headers
        assert headers.get('x-sha256') == sha256(TEXT), headers
        assert headers.get('content-disposition') == \
            "attachment; filename=\"notes.txt\"; filename*=UTF-8''notes.txt", headers
        assert headers.get('content-encoding') == 'identity', headers
        assert 'transfer-encoding' not in headers, headers
        assert_common_headers(headers, 'download 200', cache=DOWNLOAD_CACHE)


def test_uses_3_allows_exactly_3_downloads_then_410_until_expiry():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(SEGMENT + 123)
        up, _ = upload_ok(server, data, uses=3, expiry=20)
        key = up['key']
        stored = stored_path(server, key)
        for n in range(3):
            assert os.path.exists(stored), 'stored file gone before download %d' % (n + 1)
            status, headers, got = download(server, key)
            assert status == 200 and got == data, 'download %d: %d' % (n + 1, status)
        assert not os.path.exists(stored), 'stored file still in STORAGE_PATH after the last use'
        assert files_under(storage(server)) == [], files_under(storage(server))
        for _ in range(3):
            status, headers, body = server.json('GET', '/download/' + key)
            assert_json_error(status, headers, body, 410, SPENT, 'download after the last use')
        status, _, st = server.json('GET', '/status/' + key)
        assert st['status'] == 'burned' and st['remaining_uses'] == 0, st
        ttl = redis.command('TTL', 'upload:{%s}' % drop_id(server, key))
        assert 20 * 60 - 30 <= ttl <= 20 * 60, 'tombstone TTL %r is not the original expiry' % ttl


def test_racing_downloads_exactly_uses_succeed():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(3 * SEGMENT + 999)
        # Several rounds: a race lost only now and then must still be caught.
        for uses in (2,) * 30 + (5,):
            up, _ = upload_ok(server, data, uses=uses)
            key = up['key']
            results = race(20, lambda: download(server, key, timeout=30))
            ok = [r for r in results if r[0] == 200]
            assert len(ok) == uses, '%d of 20 racing downloads of uses=%d succeeded: %r' % (
                len(ok), uses, sorted(r[0] for r in results))
            for status, headers, got in ok:
                assert got == data, 'a winning download got %d bytes, not the file' % len(got)
                assert headers.get('x-sha256') == sha256(data)
            for status, headers, got in results:
                if status != 200:
                    assert status == 410 and json_of(got)['detail'] == SPENT, \
                        (status, got[:200])
            assert not os.path.exists(stored_path(server, key))
            status, _, st = server.json('GET', '/status/' + key)
            assert st['status'] == 'burned', st


def test_download_of_unknown_key_is_404():
    with Redis() as redis, Server(redis) as server:
        status, headers, body = server.json('GET', '/download/' + unknown_key())
        assert_json_error(status, headers, body, 404, NOT_FOUND, 'unknown download')


def test_keys_of_the_wrong_shape_are_unknown_and_touch_nothing():
    with Redis() as redis, Server(redis, env=MANY_FAILURES) as server:
        data = os.urandom(2000)
        up, _ = upload_ok(server, data, uses=2)
        key = up['key']
        before = tree_snapshot(path('storage'))
        w = key_words(key)
        bad = ['../../etc', '..%2F..%2Fetc%2Fpasswd', 'UPPER-CASE-KEY', key.upper(), '%00',
               key + '%00', '%00' + key, key + '-' + w[0], '-'.join(w[:2]), w[0],
               key.replace('-', '_'), key.replace('-', '--'), '-' + key, key + '-',
               'abacus-abdomen-zzzzzzz', key + '%0D%0AX-Evil:%201', 'a-' * 1000 + 'a',
               key + '/x', '%C3%A9' + key]
        for b in bad:
            for target in ('/download/', '/preview/'):
                status, headers, raw = server.request('GET', target + b)
                assert status == 404, '%s%s -> %d %r' % (target, b[:60], status, raw[:200])
                json_of(raw)
                assert_common_headers(headers, target + b[:40])
            status, headers, raw = server.request('GET', '/status/' + b)
            assert status in (200, 404), (b, status)
            st = json_of(raw)
            if status == 200:
                assert st['status'] == 'expired_or_burned' and st['expires_at'] is None, (b, st)
                assert not any(ord(c) < 0x20 for c in st['key']), (b, st)
        assert tree_snapshot(path('storage')) == before, 'the disk changed'
        status, _, st = server.json('GET', '/status/' + key)
        assert st['remaining_uses'] == 2, st
        status, _, pv = server.json('GET', '/preview/' + key)
        assert status == 200, pv
        status, _, got = download(server, key)
        assert status == 200 and got == data


def flip(file_path, offset):
    with open(file_path, 'r+b') as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


def test_tampered_or_truncated_file_fails_before_any_byte_with_500():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(3 * SEGMENT)
        sealed = HEADER + 3 * (SEGMENT + TAG)

        def first_segment(p):
            flip(p, HEADER + 1000)

        def first_tag(p):
            flip(p, HEADER + SEGMENT + 5)

        def header_salt(p):
            flip(p, 20)

        def header_magic(p):
            flip(p, 0)

        def truncate_to_first_segment(p):
            os.truncate(p, HEADER + SEGMENT + TAG)

        def truncate_last_byte(p):
            os.truncate(p, sealed - 1)

        def truncate_into_header(p):
            os.truncate(p, 20)

        def extend(p):
            with open(p, 'ab') as f:
                f.write(os.urandom(SEGMENT + TAG))

        def swap_segments(p):
            with open(p, 'r+b') as f:
                f.seek(HEADER)
                a = f.read(SEGMENT + TAG)
                b = f.read(SEGMENT + TAG)
                f.seek(HEADER)
                f.write(b + a)

        for damage in (first_segment, first_tag, header_salt, header_magic,
                       truncate_to_first_segment, truncate_last_byte, truncate_into_header,
                       extend, swap_segments):
            up, _ = upload_ok(server, data, uses=2)
            p = stored_path(server, up['key'])
            assert os.path.getsize(p) == sealed
            damage(p)
            status, headers, raw = download(server, up['key'])
            assert status == 500, '%s: download answered %d with %d bytes' % (
                damage.__name__, status, len(raw))
            body = json_of(raw)
            assert isinstance(body.get('detail'), dict) and \
                body['detail'].get('error_code') == 'INTEGRITY_CHECK_FAILED', \
                (damage.__name__, body)
            assert data[:64] not in raw, damage.__name__
            assert_common_headers(headers, damage.__name__)
        assert server.running()


def test_tampered_later_segment_aborts_with_only_the_true_prefix_sent():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(3 * SEGMENT)
        for segment in (1, 2):
            up, _ = upload_ok(server, data)
            p = stored_path(server, up['key'])
            flip(p, HEADER + segment * (SEGMENT + TAG) + 777)
            request = (b'GET /download/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n'
                       b'Connection: close\r\n\r\n' % (up['key'].encode(), server.port))
            status, headers, got, _ = raw_exchange(server.port, [request])
            assert status == 200, status
            assert headers.get('content-length') == str(len(data)), headers
            assert len(got) < len(data), \
                'segment %d tampered, yet all %d bytes were sent' % (segment, len(got))
            assert len(got) <= segment * SEGMENT, \
                'segment %d tampered, %d bytes sent' % (segment, len(got))
            assert got == data[:len(got)], 'a byte that is not the file was sent'
        # Over HTTP/2 the stream is reset: curl reports an error, and what it saved is
        # still only a true prefix.
        up, _ = upload_ok(server, data)
        flip(stored_path(server, up['key']), HEADER + (SEGMENT + TAG) + 777)
        work = path('h2-tampered')
        os.makedirs(work)
        code, out, err = curl(['--http2-prior-knowledge', '-o', 'got.bin',
                               '-w', '%{http_version} %{http_code}', up['download_url']], work)
        assert code != 0, 'curl saw a complete h2 response from a tampered file: %r' % out
        with open(os.path.join(work, 'got.bin'), 'rb') as f:
            got = f.read()
        assert len(got) < len(data) and got == data[:len(got)], len(got)
        assert server.running()


def test_the_stored_file_holds_no_plaintext():
    with Redis() as redis, Server(redis) as server:
        marker = b'RAVEN-ZERO-PLAINTEXT-MARKER:0123456789abcdefghijklmnopqrstuvwxyz'[:64]
        assert len(marker) == 64
        data = marker * (3 * SEGMENT // 64)
        up, _ = upload_ok(server, data, filename='marker.txt')
        again, _ = upload_ok(server, data, filename='marker.txt')
        files = files_under(path('storage'))
        assert files, 'no stored file'
        stored = {}
        for p in files:
            with open(p, 'rb') as f:
                stored[p] = f.read()
        for p, blob in stored.items():
            for i in range(0, 64 - 16 + 1, 8):
                assert marker[i:i + 16] not in blob, '%s holds plaintext' % p
        a = stored[stored_path(server, up['key'])]
        b = stored[stored_path(server, again['key'])]
        segs = [a[HEADER + i * (SEGMENT + TAG):HEADER + (i + 1) * (SEGMENT + TAG)]
                for i in range(3)]
        assert len(set(segs)) == 3, 'equal plaintext segments sealed to equal ciphertext'
        assert a[HEADER:HEADER + 4096] != b[HEADER:HEADER + 4096], \
            'the same file sealed twice gives the same ciphertext'
        status, _, got = download(server, up['key'])
        assert status == 200 and got == data


def test_the_store_the_disk_and_the_log_hold_no_key_name_or_type():
    with Redis() as redis, Server(redis) as server:
        filename = 'quarterly-secret-plan-zq.pdf'
        up, headers = upload_ok(server, PDF, filename=filename, uses=2)
        key = up['key']
        status, pv_headers, pv = server.json('GET', '/preview/' + key)
        assert status == 200 and pv['mime_type'] == 'application/pdf', pv
        status, dl_headers, _ = download(server, key)
        assert status == 200
        secrets = [key.encode(), key.replace('-', '').encode(), filename.encode(),
                   b'quarterly-secret-plan', b'application/pdf', sha256(PDF).encode(),
                   bytes.fromhex(sha256(PDF))]
        dump = store_bytes(redis)
        assert b'upload:{' in dump, 'no record in the store: %r' % dump[:300]
        for s in secrets:
            assert s not in dump, 'the store holds %r in clear: %r' % (s, dump[:500])
        for p in files_under(path('storage')):
            assert key not in p and 'quarterly' not in p, p
            with open(p, 'rb') as f:
                content = f.read()
            for s in secrets:
                assert s not in content, '%s holds %r' % (p, s)
        for rid in (headers['x-request-id'], pv_headers['x-request-id'],
                    dl_headers['x-request-id']):
            wait_until(lambda: request_line(server.log_lines(), rid), 5,
                       message='request %s logged' % rid)
        with open(server.log_path, 'rb') as f:
            log = f.read()
        for s in (key.encode(), filename.encode(), b'quarterly-secret-plan'):
            assert s not in log, 'the log holds %r' % s


def test_the_server_secret_is_a_0600_file_of_32_bytes_and_one_readable_by_others_is_refused():
    with Redis() as redis, Server(redis) as server:
        st = os.stat(server.settings['SECRET_PATH'])
        assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
        assert st.st_size == 32, st.st_size
        up, _ = upload_ok(server, b'x')
        assert os.path.isfile(stored_path(server, up['key'])), \
            'the id is not HMAC-SHA256(secret, key)[:16] in hex'
    exposed = path('exposed.key')
    with open(exposed, 'wb') as f:
        f.write(os.urandom(32))
    os.chmod(exposed, 0o644)
    code, _, stderr = run([], env={'SECRET_PATH': exposed})
    assert code not in (0, None), 'started with a world-readable secret: %r' % stderr
    assert 'SECRET_PATH' in stderr, stderr


def test_uploads_survive_a_server_restart_with_the_same_secret():
    with Redis() as redis:
        data = os.urandom(SEGMENT + 5)
        server = Server(redis)
        with server:
            up, _ = upload_ok(server, data, uses=2)
        with Server(redis, env={'LISTEN': server.settings['LISTEN']},
                    port=server.port) as again:
            status, _, got = download(again, up['key'])
            assert status == 200 and got == data


def test_curl_upload_then_curl_oj_download_works_as_a_new_user_tries_it():
    with Redis() as redis, Server(redis) as server:
        work = path('curl-up')
        os.makedirs(work)
        data = b''.join(b'line %d of the report\n' % i for i in range(400))
        with open(os.path.join(work, 'report.txt'), 'wb') as f:
            f.write(data)
        code, out, err = curl(['-F', 'file=@report.txt', '-F', 'uses=2',
                               'http://127.0.0.1:%d/upload/' % server.port], work)
        assert code == 0, (code, err)
        up = json_of(out)
        assert up['filename'] == 'report.txt' and up['uses'] == 2, up
        assert up['sha256'] == sha256(data), up
        for n in (1, 2):
            into = path('curl-down-%d' % n)
            os.makedirs(into)
            code, out, err = curl(['-f', '-OJ', up['download_url']], into)
            assert code == 0, 'curl -OJ exit %d: %r' % (code, err)
            saved = os.listdir(into)
            assert saved == ['report.txt'], 'curl -OJ saved %r' % saved
            with open(os.path.join(into, 'report.txt'), 'rb') as f:
                assert f.read() == data
        status, _, _ = download(server, up['key'])
        assert status == 410


def test_http2_upload_and_download_with_curl():
    with Redis() as redis, Server(redis) as server:
        work = path('h2')
        os.makedirs(work)
        data = os.urandom(1536 * 1024 + 7)
        with open(os.path.join(work, 'blob.bin'), 'wb') as f:
            f.write(data)
        code, out, err = curl(['--http2-prior-knowledge', '-F', 'file=@blob.bin',
                               '-F', 'expiry=5', '-o', 'up.json', '-D', 'up.headers',
                               '-w', '%{http_version} %{http_code}',
                               'http://127.0.0.1:%d/upload/' % server.port], work)
        assert code == 0, (code, err)
        assert out == b'2 201', out
        with open(os.path.join(work, 'up.json'), 'rb') as f:
            up = json_of(f.read())
        with open(os.path.join(work, 'up.headers'), encoding='latin-1') as f:
            _, headers = curl_headers(f.read())
        assert_upload_body(up, headers, server, data, 'blob.bin', 1, 5)
        code, out, err = curl(['--http2-prior-knowledge', '-o', 'down.bin', '-D', 'down.headers',
                               '-w', '%{http_version} %{http_code}', up['download_url']], work)
        assert code == 0, (code, err)
        assert out == b'2 200', out
        with open(os.path.join(work, 'down.bin'), 'rb') as f:
            assert f.read() == data
        with open(os.path.join(work, 'down.headers'), encoding='latin-1') as f:
            _, headers = curl_headers(f.read())
        assert headers.get('x-sha256') == sha256(data), headers
        assert headers.get('content-length') == str(len(data)), headers
        assert_common_headers(headers, 'h2 download', cache=DOWNLOAD_CACHE)


def test_an_8_mib_download_matches_its_x_sha256():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(8 << 20)
        status, headers, up = server.upload(data, filename='big.bin')
        assert status == 201, up
        assert up['size'] == len(data) and up['sha256'] == sha256(data), up
        status, headers, got = download(server, up['key'], timeout=60)
        assert status == 200 and len(got) == len(data)
        assert headers.get('x-sha256') == sha256(got) == sha256(data), headers
