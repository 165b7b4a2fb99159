"""Guessing keys from many addresses: an IPv6 client is its IPV6_PREFIX network (20,000
addresses of one /64 are one client, blocked at DOWNLOAD_FAIL_LIMIT); a failure budget
across all clients (GLOBAL_FAIL_LIMIT) that, once spent, slows every request naming a
key and stops new clients' failure counters from being created; and a store that never
evicts a record to make room (compose's `maxmemory` with `noeviction`).

Many addresses come from one trusted proxy (127.0.0.1) through X-Forwarded-For: Linux
lets a test bind any of 127.0.0.0/8 but only ::1 of IPv6, and X-Forwarded-For from a
trusted proxy is exactly how the server learns a client it cannot see."""

import os
import re
import threading
import time

from harness import (PROXY, Redis, RedisError, Server, assert_blocked, assert_normal_miss,
                     download, in_one_window, logged_client, miss, raw_connect, unknown_key,
                     upload_ok, wait_until)

ONE_64 = '2001:db8:1:2:%x:%x:%x:%x'


def guess(client, endpoint='download'):
    """A raw GET of an unknown key for client, as the trusted proxy forwards it."""
    return (b'GET /%s/%s HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: %s\r\n\r\n'
            % (endpoint.encode(), unknown_key().encode(), client.encode()))


def pipelined(server, requests, connections):
    """Send requests from the trusted proxy, pipelined over `connections` connections
    (request i on connection i % connections); the status of each, in order, and the
    seconds from the start to each answer."""
    statuses, times, errors = [None] * len(requests), [None] * len(requests), []
    started = time.monotonic()

    def run(k):
        mine = range(k, len(requests), connections)
        s = raw_connect(server, PROXY, timeout=60)
        try:
            threading.Thread(target=s.sendall, args=(b''.join(requests[i] for i in mine),),
                             daemon=True).start()
            buf = b''
            for i in mine:
                while True:
                    head = buf.find(b'\r\n\r\n')
                    if head >= 0:
                        length = re.search(rb'(?im)^content-length:\s*(\d+)', buf[:head])
                        end = head + 4 + int(length.group(1))
                        if len(buf) >= end:
                            break
                    chunk = s.recv(1 << 16)
                    assert chunk, 'connection %d closed before answer %d' % (k, i)
                    buf += chunk
                statuses[i] = int(buf.split(b' ', 2)[1])
                times[i] = time.monotonic() - started
                buf = buf[end:]
        except Exception as e:  # re-raised in the test's thread below
            errors.append(e)
        finally:
            s.close()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    return statuses, times


def keys(redis, pattern):
    return sorted(redis.command('KEYS', pattern))


def test_20000_guesses_from_20000_addresses_of_one_64_are_one_client_blocked_at_the_fail_limit():
    # The attack that worked: every guess from another address of one /64 ran at full
    # speed, never blocked, and left a fail key each (20,300 of them).
    with Redis() as redis, Server(redis) as server:  # IPV6_PREFIX 64, DOWNLOAD_FAIL_LIMIT 10
        requests = [guess(ONE_64 % (i >> 12, i & 0xfff, i % 7, i)) for i in range(20000)]
        statuses, _ = pipelined(server, requests, 8)
        counts = {s: statuses.count(s) for s in set(statuses)}
        assert counts == {404: 10, 429: 19990}, counts
        assert keys(redis, 'fail:*') == [], keys(redis, 'fail:*')[:5]
        assert keys(redis, 'block:*') == ['block:{2001:db8:1:2::/64}']
        # One more address of the /64 is blocked too; the log names the address itself.
        status, headers, body = miss(server, 'download', forwarded='2001:db8:1:2::beef')
        assert_blocked(status, headers, body, 1800)
        assert logged_client(server, headers) == '2001:db8:1:2::beef'
        # The neighbouring /64 is another client.
        status, _, body = miss(server, 'download', forwarded='2001:db8:1:3::beef')
        assert_normal_miss('download', status, body)


def test_ipv6_prefix_128_makes_each_address_its_own_client_again():
    env = {'IPV6_PREFIX': '128', 'DOWNLOAD_FAIL_LIMIT': '3'}
    with Redis() as redis, Server(redis, env=env) as server:
        for i in range(6):
            status, _, body = miss(server, 'status', forwarded='2001:db8:1:2::%x' % (i + 1))
            assert_normal_miss('status', status, body)
        assert len(keys(redis, 'fail:*')) == 6


def test_upload_rate_limit_counts_an_ipv6_client_by_its_prefix():
    env = {'UPLOAD_RATE_LIMIT': '2/hour', 'IPV6_PREFIX': '48'}
    with Redis() as redis, Server(redis, env=env) as server:
        def attempt(n):
            return [server.upload(b'upload %d' % i, headers={'X-Forwarded-For': '2001:db8:%x:%x::1'
                                                               % (n, i)})[0] for i in range(3)]
        _, statuses = in_one_window(3600, attempt, [1, 2, 3])
        assert statuses == [201, 201, 429], statuses
        status, _, body = server.upload(b'another /48', headers={'X-Forwarded-For': '2001:db9::1'})
        assert status == 201, body


def test_guesses_from_ever_new_addresses_spend_the_failure_budget_which_slows_every_keyed_request():
    # Addresses no prefix groups (IPv4 here: one guess each) are what the budget of all
    # clients is for. Past GLOBAL_FAIL_LIMIT: a warning once, every request naming a key
    # waits a second (a hit as much as a miss, so an early answer tells nothing), fail
    # keys stop growing, and a client counted before is still blocked at its limit.
    budget, guessers, connections = 100, 1000, 100

    def attempt(window):
        # One worker: it sees every answer, so it knows at once that the budget is spent.
        env = {'GLOBAL_FAIL_LIMIT': '%d/hour' % budget, 'WORKERS': '1'}
        with Redis() as redis, Server(redis, env=env) as server:
            data = os.urandom(5000)
            created, _ = upload_ok(server, data)
            repeat = '10.%d.255.1' % window
            for _ in range(9):  # one short of DOWNLOAD_FAIL_LIMIT, before the budget is spent
                status, _, body = miss(server, 'status', forwarded=repeat)
                assert_normal_miss('status', status, body)
            requests = [guess('10.%d.%d.%d' % (window, i >> 8, i & 255), 'status')
                        for i in range(guessers)]
            statuses, times = pipelined(server, requests, connections)
            assert statuses == [200] * guessers, {s: statuses.count(s) for s in set(statuses)}
            fail_keys = len(keys(redis, 'fail:*'))
            window_fails = [int(redis.command('GET', k)) for k in keys(redis, 'fails:*')]
            # Every connection's last answer came after a wait of a second per request.
            slowest = max(times)
            started = time.monotonic()
            status, _, got = download(server, created['key'])
            hit_took = time.monotonic() - started
            assert status == 200 and got == data, status
            started = time.monotonic()
            status, _, body = miss(server, 'status', forwarded=repeat)
            miss_took = time.monotonic() - started
            assert_normal_miss('status', status, body)
            status, headers, body = miss(server, 'status', forwarded=repeat)
            assert_blocked(status, headers, body, 1800)
            warnings = wait_until(lambda: server.events('failure_budget_exceeded'), 5,
                                  message='the failure budget warning')
            _, _, metrics = server.request('GET', '/metrics')
            return (fail_keys, window_fails, slowest, hit_took, miss_took, warnings,
                    metrics.decode(), len(server.events('failure_budget_exceeded')))
    _, result = in_one_window(3600, attempt, [1, 2, 3])
    fail_keys, window_fails, slowest, hit_took, miss_took, warnings, metrics, logged = result
    # The repeat client's key, and one per guesser until the budget was spent.
    assert fail_keys == budget - 9 + 1, fail_keys
    assert window_fails == [9 + guessers], window_fails
    assert logged == 1, 'the budget warning was logged %d times' % logged
    assert 'GLOBAL_FAIL_LIMIT=%d' % budget in warnings[0]['message'], warnings[0]
    assert hit_took >= 0.9 and miss_took >= 0.9, (hit_took, miss_took)
    # Each connection carried 10 guesses: most of them waited, so the last answers came
    # many seconds in, where unhindered they come within a second.
    assert slowest >= 5, slowest
    assert re.search(r'(?m)^raven_zero_failure_budget_exceeded_total 1$', metrics), metrics
    delayed = int(re.search(r'(?m)^raven_zero_failure_budget_delayed_total (\d+)$', metrics)[1])
    assert delayed >= guessers - budget - 2 * connections, delayed


def test_a_store_at_its_memory_limit_answers_503_and_evicts_no_record():
    # compose sets maxmemory with noeviction (test_deploy checks it): every key here has
    # a TTL, records included, so a volatile-* policy would evict live records and lose
    # their files. With noeviction a full store refuses writes instead: 503, nothing
    # lost, and everything works again once there is room.
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(2000)
        created, _ = upload_ok(server, data, uses=2)
        filled = 32
        for i in range(filled):
            redis.command('SET', 'filler:%d' % i, 'x' * 65536)
        used = int(re.search(r'used_memory:(\d+)', redis.command('INFO', 'memory'))[1])
        redis.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')
        redis.command('CONFIG', 'SET', 'maxmemory', str(used - (512 << 10)))
        try:
            redis.command('SET', 'one', 'more')
            raise AssertionError('the store took a write over its maxmemory')
        except RedisError as e:
            assert 'OOM' in str(e), e
        try:
            status, _, _ = download(server, created['key'])
            assert status == 503, status
            status, _, _ = server.upload(b'no room')
            assert status == 503, status
            assert redis.command('EXISTS', 'upload:{%s}' % _id_of(redis)) == 1
        finally:
            for i in range(filled):
                redis.command('DEL', 'filler:%d' % i)
        status, _, got = download(server, created['key'])
        assert status == 200 and got == data, status


def _id_of(redis):
    """The one upload's id, from its record's key name."""
    (name,) = keys(redis, 'upload:*')
    return name[len('upload:{'):-1]
