"""Keys: three distinct words of the list; anything of another shape is an unknown key
that touches nothing."""

import json
import os

from harness import (MANY_FAILURES, Redis, Server, assert_common_headers, download,
                     files_under, key_words, path, sha256, upload_ok)


def tree_snapshot(root):
    snap = {}
    for p in files_under(root):
        st = os.stat(p)
        with open(p, 'rb') as f:
            snap[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns, sha256(f.read()))
    return snap


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
                json.loads(raw)
                assert_common_headers(target + b[:40], headers)
            status, headers, raw = server.request('GET', '/status/' + b)
            assert status in (200, 404), (b, status)
            st = json.loads(raw)
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
