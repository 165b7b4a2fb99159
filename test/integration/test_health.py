"""GET /health/: every service online, degraded (503) while the store is down, and
back within 2 s once it returns."""

import datetime
import re
import time

from harness import (SERVICES, Redis, Server, is_int, parse_iso, wait_until)


ISO_Z = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$')


def health(server, path='/health/'):
    return server.json('GET', path)


def assert_health_body(body, expect_status, services):
    assert isinstance(body, dict), body
    for field in ('status', 'version', 'timestamp', 'services', 'uptime_seconds',
                  'started_at'):
        assert field in body, 'health lacks %r: %r' % (field, body)
    assert body['status'] == expect_status, body
    assert isinstance(body['version'], str) and re.match(r'^\d+\.\d+\.\d+', body['version']), body
    assert isinstance(body['timestamp'], str) and ISO_Z.match(body['timestamp']), body
    assert isinstance(body['started_at'], str) and ISO_Z.match(body['started_at']), body
    assert is_int(body['uptime_seconds']) and body['uptime_seconds'] >= 0, body
    assert body['services'] == services, body
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp, started = parse_iso(body['timestamp']), parse_iso(body['started_at'])
    assert abs((now - stamp).total_seconds()) < 10, 'timestamp %s is not now' % stamp
    assert started <= stamp, body
    assert abs((stamp - started).total_seconds() - body['uptime_seconds']) <= 2, body


ONLINE = {name: 'online' for name in SERVICES}
REDIS_DOWN = dict(ONLINE, redis='offline')


def test_health_reports_all_services_online():
    with Redis() as redis, Server(redis) as server:
        status, headers, body = health(server)
        assert status == 200, body
        assert headers.get('content-type', '').replace(' ', '').lower() == \
            'application/json;charset=utf-8', headers
        assert_health_body(body, 'healthy', ONLINE)


def test_health_answers_without_trailing_slash():
    with Redis() as redis, Server(redis) as server:
        status, _, body = health(server, '/health')
        assert status == 200, body
        assert_health_body(body, 'healthy', ONLINE)


def test_health_is_degraded_503_while_redis_is_down_and_recovers_within_2s():
    with Redis() as redis, Server(redis) as server:
        redis.stop()

        def degraded():
            status, _, body = health(server)
            return status == 503 and body
        body = wait_until(degraded, 5, message='health 503 after redis stopped')
        assert_health_body(body, 'degraded', REDIS_DOWN)

        redis.start()
        started = time.monotonic()
        # Every worker reconnects on its own: back means several answers in a row are
        # 200, whichever worker serves them.
        wait_until(lambda: all(health(server)[0] == 200 for _ in range(6)), 2.0,
                   message='health 200 on every worker within 2 s of redis coming back')
        status, _, body = health(server)
        assert status == 200, body
        assert_health_body(body, 'healthy', ONLINE)
        assert time.monotonic() - started < 3


def test_server_started_with_redis_down_starts_degraded_and_recovers():
    redis = Redis(start=False)
    with redis, Server(redis, wait='up') as server:
        status, _, body = health(server)
        assert status == 503, body
        assert_health_body(body, 'degraded', REDIS_DOWN)
        redis.start()
        # Six answers in a row may all come from one worker: wait for each to say it is
        # up (connected, and the server secret read) before the last look.
        workers = len(server.full_tree()['workers'])
        wait_until(lambda: len(server.events('store_up', process='worker')) == workers and
                   all(health(server)[0] == 200 for _ in range(6)), 2.0,
                   message='health 200 on every worker within 2 s of redis starting')
        status, _, body = health(server)
        assert_health_body(body, 'healthy', ONLINE)
