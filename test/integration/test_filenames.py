"""File names: hostile, NUL, Unicode and invalid UTF-8 names are stored as clean UTF-8
and reach Content-Disposition only encoded."""

import json
import os
import re
import urllib.parse

from harness import (MANY_FAILURES, PDF, Redis, Server, assert_422, assert_nobody_replaced,
                     download, field_part, file_part, multipart, post_form, upload_ok)


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
            assert json.loads(raw)['filename'] == name, (what, raw)
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


def test_invalid_utf8_and_control_bytes_in_a_filename_are_stored_as_clean_utf8():
    with Redis() as redis, Server(redis) as server:
        before = server.full_tree()
        payload = os.urandom(2000)
        # Invalid sequences (lone continuation, truncated, overlong, surrogate) and C0
        # controls; raw CR/LF would break the part header itself, so those are left out.
        raw_name = b'r\xe9sum\xc3(\xff\xfe\xc0\xaf\xed\xa0\x80\x01\x1b[31m\x7f.txt'
        body, ctype = multipart(payload, filename=raw_name, fields=[('uses', 2)])
        status, headers, created = server.json('POST', '/upload/', body=body,
                                               headers={'Content-Type': ctype})
        assert status == 201, 'upload with an invalid UTF-8 name: %d %r' % (status, created)
        name = created['filename']
        encoded = name.encode('utf-8')  # a str from JSON: valid UTF-8 by construction
        assert encoded.decode('utf-8') == name
        controls = [c for c in name if ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f]
        assert not controls, 'control characters kept in the stored name: %r' % name
        assert name.startswith('r') and name.endswith('[31m.txt'), name
        assert '\ufffd' in name, 'invalid bytes were not replaced by U+FFFD: %r' % name
        status, _, preview = server.json('GET', '/preview/' + created['key'])
        assert status == 200 and preview['filename'] == name, (status, preview)
        status, headers, data = download(server, created['key'])
        assert status == 200 and data == payload, status
        disposition = headers.get('content-disposition', '')
        assert all(0x20 <= ord(c) < 0x7f for c in disposition), \
            'Content-Disposition carries non-ASCII or control bytes: %r' % disposition
        assert "filename*=UTF-8''" in disposition, disposition
        assert_nobody_replaced(server, before)


def test_bidirectional_controls_are_dropped_so_a_name_reads_as_it_is():
    """"\u202egpj.exe" is shown as "exe.jpg" by anything that renders it: an executable
    passed off as a picture. Every bidirectional control goes, however it is sent."""
    rlo = '\u202e'
    cases = [  # (raw Content-Disposition of the file part, the name stored)
        (b'form-data; name="file"; filename="' + (rlo + 'gpj.exe').encode() + b'"', 'gpj.exe'),
        (b"form-data; name=\"file\"; filename*=UTF-8''%E2%80%AEgpj.exe", 'gpj.exe'),
        (b'form-data; name="file"; filename="' +
         'a\u200eb\u200fc\u202ad\u202be\u202cf\u202dg\u2066h\u2067i\u2068j\u2069k\u061cl.txt'
         .encode() + b'"', 'abcdefghijkl.txt'),
    ]
    with Redis() as redis, Server(redis) as server:
        for disposition, want in cases:
            status, _, body = post_form(server, [file_part(b'MZ\x90\x00', disposition=disposition)])
            assert status == 201 and body['filename'] == want, (disposition, status, body)
            status, raw = server.request('GET', '/preview/' + body['key'])[::2]
            assert status == 200 and json.loads(raw)['filename'] == want, raw
            status, headers, _ = download(server, body['key'])
            assert status == 200, status
            fallback, decoded = check_disposition(headers, want)
            assert (fallback, decoded) == (want, want), headers['content-disposition']
            assert '%E2%80%AE' not in headers['content-disposition'].upper()
