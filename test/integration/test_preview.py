"""GET /preview/{key}: every field, once only (404 after), never a download."""

import os

from harness import (JSON_CT, PDF, PREVIEW_NOT_FOUND, SPENT, TEXT, Redis, Server,
                     assert_common_headers, assert_json_error, download, is_int, race,
                     sha256, unknown_key, upload_ok)


PREVIEW_FIELDS = ('key', 'filename', 'size', 'mime_type', 'expiry', 'uses', 'minutes_left',
                  'download_url', 'curl_example', 'created_at', 'sha256')


def test_preview_returns_every_field():
    with Redis() as redis, Server(redis) as server:
        up, _ = upload_ok(server, PDF, filename='report.pdf', expiry=30, uses=3)
        status, headers, pv = server.json('GET', '/preview/' + up['key'])
        assert status == 200, pv
        assert headers.get('content-type', '').replace(' ', '').lower() == \
            JSON_CT.replace(' ', ''), headers
        assert_common_headers('preview 200', headers)
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
