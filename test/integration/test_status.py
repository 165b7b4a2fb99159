"""GET /status/{key}: active with the uses left, burned, expired, and the same 200 for
a key nobody has; it never consumes anything."""

import datetime
import os
import re
import time

from harness import (CLIENT, JSON_CT, NOT_FOUND, OTHER, PREVIEW_NOT_FOUND, Redis, Server,
                     assert_blocked, assert_common_headers, assert_json_error,
                     assert_normal_miss, download, drop_id, miss, unknown_key, upload_ok,
                     wait_until)


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


def calls(redis, command):
    """How often the store has run command (INFO commandstats); 0 before the first."""
    m = re.search(r'^cmdstat_%s:calls=(\d+),' % command, redis.command('INFO', 'commandstats'),
                  re.M)
    return int(m.group(1)) if m else 0


def test_the_status_of_a_live_expired_or_burned_key_runs_no_script_and_answers_as_before():
    with Redis() as redis, Server(redis) as server:
        live, _ = upload_ok(server, b'live', uses=2, expiry=15)
        burned, _ = upload_ok(server, b'burned')
        assert download(server, burned['key'])[0] == 200
        expired, _ = upload_ok(server, b'expired', uses=3)
        past = int(time.time()) - 5
        redis.command('HSET', 'upload:{%s}' % drop_id(server, expired['key']), 'e', past)
        want = {live['key']: {'key': live['key'], 'status': 'active', 'remaining_uses': 2,
                              'expires_at': live['expiry'], 'is_accessible': True},
                burned['key']: {'key': burned['key'], 'status': 'burned', 'remaining_uses': 0,
                                'expires_at': burned['expiry'], 'is_accessible': False},
                expired['key']: {'key': expired['key'], 'status': 'expired',
                                 'remaining_uses': 0, 'expires_at': iso(past),
                                 'is_accessible': False}}
        scripts, reads = calls(redis, 'evalsha'), calls(redis, 'hmget')
        for key in want:
            for _ in range(20):
                status, _, st = server.json('GET', '/status/' + key)
                assert (status, st) == (200, want[key]), (status, st)
        assert calls(redis, 'evalsha') == scripts, 'a status of a live record ran a script'
        assert calls(redis, 'hmget') == reads + 60, 'the records were not read'
        # An unknown key still runs the script: it alone counts the failure.
        for n in (1, 2):
            status, _, st = server.json('GET', '/status/' + unknown_key())
            assert status == 200 and st['status'] == 'expired_or_burned', st
            assert calls(redis, 'evalsha') == scripts + n
        assert redis.command('GET', 'fail:{127.0.0.1}') == '2'


def test_unknown_keys_on_status_alone_block_the_client_then_even_a_live_key_answers_429():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        up, _ = upload_ok(server, b'a real file', uses=2)
        for _ in range(3):
            status, _, body = miss(server, 'status', CLIENT)
            assert_normal_miss('status', status, body)
        scripts = calls(redis, 'evalsha')
        for key in (up['key'], unknown_key()):
            status, headers, body = server.json('GET', '/status/' + key, source_address=CLIENT)
            assert_blocked(status, headers, body, 60)
        assert calls(redis, 'evalsha') == scripts, 'the block was not read without the script'
        assert not redis.command('KEYS', 'fail:*'), 'a blocked client was counted again'
        status, _, body = server.json('GET', '/status/' + up['key'], source_address=OTHER)
        assert status == 200 and body['status'] == 'active' and body['remaining_uses'] == 2, body


def test_the_status_of_a_live_key_in_a_store_that_lost_its_secret_is_refused_and_counts_nothing():
    with Redis() as redis, Server(redis, env={'WORKERS': '1'}) as server:
        up, _ = upload_ok(server, b'its record outlives the secret', uses=2)
        record = 'upload:{%s}' % drop_id(server, up['key'])
        redis.command('DEL', 'secret')  # the records stay: only the secret went
        status, headers, _ = server.json('GET', '/status/' + up['key'])
        assert status == 503 and 'retry-after' in headers, status
        assert not redis.command('KEYS', 'fail*'), 'a stale look-up counted as a failure'
        assert redis.command('HGET', record, 'u') == '2'
        wait_until(lambda: server.events('store_secret_changed'), 5, message='the change noticed')
