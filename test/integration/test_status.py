"""GET /status/{key}: active with the uses left, burned, expired, and the same 200 for
a key nobody has; it never consumes anything."""

import datetime
import os
import time

from harness import (JSON_CT, NOT_FOUND, PREVIEW_NOT_FOUND, Redis, Server,
                     assert_common_headers, assert_json_error, download, drop_id,
                     unknown_key, upload_ok)


STATUS_FIELDS = ('key', 'status', 'remaining_uses', 'expires_at', 'is_accessible')


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%SZ')


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
            assert_common_headers('status 200', headers)
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
        assert_common_headers('status unknown', headers)
        assert st == {'key': key, 'status': 'expired_or_burned', 'remaining_uses': 0,
                      'expires_at': None, 'is_accessible': False}, st


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
