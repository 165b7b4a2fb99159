"""Keys: KEY_WORDS words of the list (three by default); keys of 3 to 6 words are looked
up, so raising KEY_WORDS breaks no key handed out; anything of another shape is an
unknown key that touches nothing."""

import json
import os

from harness import (MANY_FAILURES, WORDS, Redis, Server, assert_common_headers, download,
                     files_under, key_words, lines_of, path, run, sha256, upload_ok)


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
            assert key_words(body['key'], 3), body['key']
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
        w = key_words(key, 3)
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


def test_key_words_sets_the_length_of_new_keys_and_keys_of_3_to_6_words_keep_working():
    with Redis() as redis:
        with Server(redis, env=MANY_FAILURES) as server:
            three, _ = upload_ok(server, b'drawn with three words', uses=3)
            assert key_words(three['key'], 3), three['key']
        # Raised: new keys get six words; the three-word key still opens its file.
        with Server(redis, env=dict(MANY_FAILURES, KEY_WORDS='6')) as server:
            for i in range(5):
                six, _ = upload_ok(server, b'six %d' % i, uses=2)
                assert key_words(six['key'], 6) and len(six['key']) <= 6 * 20 + 5, six['key']
                assert download(server, six['key'])[2] == b'six %d' % i
            status, _, st = server.json('GET', '/status/' + three['key'])
            assert status == 200 and st['remaining_uses'] == 3, st
            assert download(server, three['key'])[2] == b'drawn with three words'
            # Four and five words are keys too (unknown ones); two and seven are not keys:
            # all are answered alike.
            for n in (2, 4, 5, 7):
                key = '-'.join(WORDS[i * 97 % len(WORDS)] for i in range(1, n + 1))
                status, _, raw = server.request('GET', '/download/' + key)
                assert (status, json.loads(raw)) == (
                    404, {'detail': 'File not found or link expired'}), (n, status, raw)
        # Lowered again: six-word keys keep working until they expire.
        with Server(redis, env=MANY_FAILURES) as server:
            assert download(server, six['key'])[2] == b'six 4'


def test_key_words_outside_3_to_6_is_refused_at_start_up_in_one_line():
    for bad in ('2', '7', '0', 'four'):
        code, _, stderr = run(['-t'], env={'KEY_WORDS': bad})
        assert code == 1 and len(lines_of(stderr)) == 1, (bad, code, stderr)
        assert stderr.startswith('raven-zero: KEY_WORDS=%s: expected' % bad), stderr
    for good in ('3', '4', '5', '6'):
        assert run(['-t'], env={'KEY_WORDS': good})[0] == 0, good
