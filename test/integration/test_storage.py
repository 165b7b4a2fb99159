"""What the disk and the store hold: sealed files (a 40-byte header, then 64 KiB
segments each with a 16-byte tag) with no plaintext, no key, file name or type in the
store, on disk or in the log; a damaged file fails its download before any byte (or,
past the first segment, after only the true prefix); uploads that survive a restart.
Where the server secret lives is test_secret.py's."""

import json
import os

from harness import (HEADER, PDF, SEGMENT, TAG, Redis, Server, assert_common_headers, curl,
                     download, files_under, one_response, path, raw_exchange, request_line,
                     sha256, stored_path, upload_ok, wait_until)


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
            body = json.loads(raw)
            assert isinstance(body.get('detail'), dict) and \
                body['detail'].get('error_code') == 'INTEGRITY_CHECK_FAILED', \
                (damage.__name__, body)
            assert data[:64] not in raw, damage.__name__
            assert_common_headers(damage.__name__, headers)
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
            received, _ = raw_exchange(server, request)
            status, headers, got = one_response(received, 'segment %d tampered' % segment)
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


def test_uploads_survive_a_server_restart_the_store_keeping_the_secret():
    with Redis() as redis:
        data = os.urandom(SEGMENT + 5)
        server = Server(redis)
        with server:
            up, _ = upload_ok(server, data, uses=2)
        with Server(redis, env={'LISTEN': server.settings['LISTEN']},
                    port=server.port) as again:
            status, _, got = download(again, up['key'])
            assert status == 200 and got == data
