"""Rate limits and blocks: UPLOAD_RATE_LIMIT and HEALTH_RATE_LIMIT (429 with
Retry-After), MAX_UPLOADS_PER_CLIENT, DOWNLOAD_FAIL_LIMIT failed lookups on download,
preview and status together then a block for DOWNLOAD_BLOCK_WINDOW; all of them hold
across workers and across nodes sharing the store."""

import json
import os
import re
import socket
import struct
import time

from harness import (CLIENT, KEYED, OTHER, Redis, Server, assert_blocked,
                     assert_common_headers, assert_json_error, assert_normal_miss, block,
                     download, exchange, in_one_window, is_int, miss, multipart,
                     retry_after, unknown_key, upload_ok, wait_until)


def _tcp_hex(addr):
    ip, port = addr[0], addr[1]
    return '%08X:%04X' % (struct.unpack('<I', socket.inet_aton(ip))[0], port)


def serving_worker(server, sock, workers):
    """Which worker holds the server side of this client socket (from /proc)."""
    local, remote = _tcp_hex(('127.0.0.1', server.port)), _tcp_hex(sock.getsockname())
    inode = None
    with open('/proc/net/tcp') as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                inode = fields[9]
    if inode is None:
        return None
    tag = 'socket:[%s]' % inode
    for pid in workers:
        try:
            for fd in os.listdir('/proc/%d/fd' % pid):
                try:
                    if os.readlink('/proc/%d/fd/%s' % (pid, fd)) == tag:
                        return pid
                except OSError:
                    pass
        except OSError:
            pass
    return None


def connections_on_distinct_workers(server, source, workers, tries=200):
    """Keep-alive connections from `source`, each held by a different worker: [(pid, conn)].
    New connections go to whichever worker accepts first; collect one per worker."""
    held = {}
    for _ in range(tries):
        conn = server.connection(source)
        status, _, _ = exchange(conn, 'OPTIONS', '/')  # served; counts toward nothing
        assert status == 204, status
        pid = serving_worker(server, conn.sock, workers)
        if pid is not None and pid not in held:
            held[pid] = conn
        else:
            conn.close()
        if len(held) == len(workers):
            break
    assert len(held) >= 2, 'after %d connections only workers %r served them' % (tries, list(held))
    return sorted(held.items())


def test_upload_rate_limit_answers_429_with_retry_after_and_spares_other_clients():
    with Redis() as redis, Server(redis, env={'UPLOAD_RATE_LIMIT': '2/minute'}) as server:
        answered, answered_at = [], []

        def attempt(client):
            results = [server.upload(b'upload %d' % i, source_address=client) for i in range(3)]
            answered.extend(status for status, _, _ in results)
            answered_at.append(time.time())
            return results
        _, results = in_one_window(60, attempt, ['127.0.0.2', '127.0.0.12', '127.0.0.22'])
        assert [r[0] for r in results] == [201, 201, 429], [(s, b) for s, _, b in results]
        status, headers, body = results[2]
        assert_json_error(status, headers, body, 429, 'Rate limit exceeded', 'third upload')
        # The window's time left when the answer came, in whole seconds rounded up
        # (windows are aligned to the epoch; in_one_window kept the run in one).
        left = 60 - answered_at[-1] % 60
        assert 1 <= retry_after(headers) <= 60 and left <= retry_after(headers) <= left + 1.5, \
            (headers.get('retry-after'), left)
        status, _, body = server.upload(b'another client', source_address=OTHER)
        assert status == 201, body
        # A refused upload leaves no record.
        assert len(redis.command('KEYS', 'upload:*')) == answered.count(201) + 1


def test_health_rate_limit_answers_429_with_retry_after_and_resets_with_its_window():
    with Redis() as redis, Server(redis, env={'HEALTH_RATE_LIMIT': '2/second'}) as server:
        def attempt(client):
            return [server.json('GET', '/health/', source_address=client) for _ in range(3)]
        clients = ['127.0.0.%d' % n for n in range(10, 20)]
        client, results = in_one_window(1, attempt, clients, early=0.5)
        assert [r[0] for r in results] == [200, 200, 429], [(s, b) for s, _, b in results]
        _, headers, body = results[2]
        assert body == {'detail': 'Rate limit exceeded'}, body
        assert retry_after(headers) == 1, headers
        status, _, body = server.json('GET', '/health/', source_address=OTHER)
        assert status == 200, body
        # The limited client is served again once its one-second window has passed.
        wait_until(lambda: server.request('GET', '/health/', source_address=client)[0] == 200,
                   3, message='health served again after the window')


def test_the_hosts_own_health_probe_is_never_rate_limited_but_every_client_is():
    """A container's HEALTHCHECK probes from 127.0.0.1 with no X-Forwarded-For; a probe
    repeated within the window must not make the service look down. Clients, direct or
    forwarded by a proxy on that same address, keep their limit."""
    with Redis() as redis, Server(redis, env={'HEALTH_RATE_LIMIT': '1/second'}) as server:
        def attempt(client):
            own = [server.json('GET', '/health/')[0] for _ in range(4)]
            direct = [server.json('GET', '/health/', source_address=client)[0]
                      for _ in range(2)]
            forwarded = [server.json('GET', '/health/', headers={'X-Forwarded-For': fwd})[0]
                         for fwd in ('203.0.113.9', '203.0.113.9')]
            return own, direct, forwarded
        clients = ['127.0.0.%d' % n for n in range(20, 30)]
        _, (own, direct, forwarded) = in_one_window(1, attempt, clients, early=0.5)
        assert own == [200] * 4, 'the host itself was limited: %r' % own
        assert direct == [200, 429], 'a direct client: %r' % direct
        assert forwarded == [200, 429], 'a client forwarded by a proxy on 127.0.0.1: %r' \
            % forwarded
        status, _, body = server.json('GET', '/health/')
        assert status == 200 and body['services']['redis'] == 'online', body


def test_limits_and_blocks_hold_across_workers():
    env = {'WORKERS': '4', 'UPLOAD_RATE_LIMIT': '2/hour', 'DOWNLOAD_FAIL_LIMIT': '4',
           'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        workers = server.full_tree(4)['workers']

        def attempt(client):
            conns = connections_on_distinct_workers(server, client, workers)
            statuses = []
            for i in range(4):
                body, ctype = multipart(b'across workers %d' % i)
                _, conn = conns[i % len(conns)]
                statuses.append(exchange(conn, 'POST', '/upload/', body,
                                         {'Content-Type': ctype})[0])
            return conns, statuses
        _, (conns, statuses) = in_one_window(3600, attempt, [CLIENT, '127.0.0.12'])
        assert statuses == [201, 201, 429, 429], \
            'uploads alternating over workers %r: %r' % ([p for p, _ in conns], statuses)

        for i in range(4):
            _, conn = conns[i % len(conns)]
            status, _, data = exchange(conn, 'GET', '/download/' + unknown_key())
            assert_normal_miss('download', status, json.loads(data))
        for pid, conn in conns:
            for endpoint in KEYED:
                status, headers, data = exchange(conn, 'GET', '/%s/%s' % (endpoint, unknown_key()))
                assert_blocked(status, headers, json.loads(data), 60)
        for pid, conn in conns:
            conn.close()
        for _ in range(3):  # another client, on new connections (any worker)
            status, _, body = miss(server, 'status', OTHER)
            assert_normal_miss('status', status, body)


def test_a_client_uploading_one_at_a_time_is_never_refused_as_too_many_in_progress():
    # Every finished upload gives its slot back, rejected ones included, before the
    # client has its answer: the next upload may land on the other worker at once.
    with Redis() as redis, Server(redis, env={'MAX_UPLOADS_PER_CLIENT': '1'}) as server:
        answers = []
        for i in range(40):
            status, _, body = server.upload(b'one at a time %d' % i, source_address=CLIENT)
            answers.append((201, status, body))
            status, _, body = server.json('POST', '/upload/', body=b'not multipart at all',
                                          headers={'Content-Type':
                                                   'multipart/form-data; boundary=zz'},
                                          source_address=CLIENT)
            answers.append((422, status, body))
        wrong = [(n, want, got, body) for n, (want, got, body) in enumerate(answers)
                 if got != want]
        assert not wrong, 'sequential uploads from one client (MAX_UPLOADS_PER_CLIENT=1, ' \
            'WORKERS=2), (request#, expected, got, body): %r' % wrong


def test_too_many_uploads_in_progress_for_a_client_answers_429_and_spares_other_clients():
    with Redis() as redis, Server(redis, env={'MAX_UPLOADS_PER_CLIENT': '2'}) as server:
        # An upload in progress holds a slot in the store (white box: the set the gate
        # script reads, scored by lease deadlines in ms), so it holds across workers;
        # simulate two that are still running.
        slots = 'slots:{%s}' % CLIENT
        deadline = int(time.time() * 1000) + 60_000
        redis.command('ZADD', slots, deadline, 'running-1', deadline, 'running-2')
        status, headers, body = server.upload(b'a third at once', source_address=CLIENT)
        assert status == 429, body
        assert body == {'detail': 'Too many uploads in progress'}, body
        assert retry_after(headers) >= 1, headers
        assert_common_headers('429 too many uploads', headers)
        status, _, body = server.upload(b'another client', source_address=OTHER)
        assert status == 201, body
        redis.command('ZREM', slots, 'running-1')  # one of them finished
        status, _, body = server.upload(b'after one finished', source_address=CLIENT)
        assert status == 201, body


def test_limits_and_blocks_hold_across_nodes_sharing_the_store():
    env = {'WORKERS': '1', 'UPLOAD_RATE_LIMIT': '2/hour', 'DOWNLOAD_FAIL_LIMIT': '3',
           'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as a, Server(redis, env=env) as b:
        nodes = (a, b)

        def attempt(client):
            return [nodes[i % 2].upload(b'two nodes %d' % i, source_address=client)[0]
                    for i in range(4)]
        _, statuses = in_one_window(3600, attempt, [CLIENT, '127.0.0.12'])
        assert statuses == [201, 201, 429, 429], 'uploads alternating over two nodes: %r' % statuses
        for i in range(3):
            status, _, body = miss(nodes[i % 2], 'preview', CLIENT)
            assert_normal_miss('preview', status, body)
        for node in nodes:
            status, headers, body = miss(node, 'preview', CLIENT)
            assert_blocked(status, headers, body, 60)
            status, _, body = miss(node, 'preview', OTHER)
            assert_normal_miss('preview', status, body)


def test_the_failure_that_reaches_the_limit_gets_its_normal_answer_then_the_client_is_blocked():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        for i in range(3):
            status, _, body = miss(server, 'download', CLIENT)
            assert_normal_miss('download', status, body)
        status, headers, body = miss(server, 'download', CLIENT)
        assert_blocked(status, headers, body, 60)
        assert body['detail']['retry_after_seconds'] >= 55, body


def test_failures_are_counted_on_download_preview_and_status_together():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        for endpoint in KEYED:
            status, _, body = miss(server, endpoint, CLIENT)
            assert_normal_miss(endpoint, status, body)
        for endpoint in KEYED:
            status, headers, body = miss(server, endpoint, CLIENT)
            assert_blocked(status, headers, body, 60)
        # Keys that do not even have the shape of a key count as well.
        for endpoint, key in zip(KEYED, ('x', 'NOT-A-KEY', 'a-b-c-d-e-f')):
            status, _, body = miss(server, endpoint, OTHER, key=key)
            assert_normal_miss(endpoint, status, body)
        status, headers, body = miss(server, 'status', OTHER)
        assert_blocked(status, headers, body, 60)


def test_a_block_applies_to_download_preview_and_status_even_for_a_real_key():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        status, _, up = server.upload(b'a real file', uses=1, source_address=OTHER)
        assert status == 201, up
        block(server, CLIENT, endpoint='status')
        for endpoint in KEYED:
            status, headers, body = server.json('GET', '/%s/%s' % (endpoint, up['key']),
                                                source_address=CLIENT)
            assert_blocked(status, headers, body, 60)
        # Nothing was consumed by the blocked attempts.
        status, _, body = server.json('GET', '/status/' + up['key'], source_address=OTHER)
        assert status == 200 and body['status'] == 'active' and body['remaining_uses'] == 1, body
        status, _, body = server.json('GET', '/preview/' + up['key'], source_address=OTHER)
        assert status == 200, body
        status, _, data = server.request('GET', '/download/' + up['key'], source_address=OTHER)
        assert status == 200 and data == b'a real file', (status, data[:100])


def test_a_blocked_client_can_still_upload_and_check_health():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        block(server, CLIENT, endpoint='download')
        status, headers, body = miss(server, 'download', CLIENT)
        assert_blocked(status, headers, body, 60)
        status, _, body = server.upload(b'blocked but uploading', source_address=CLIENT)
        assert status == 201, body
        status, _, body = server.json('GET', '/health/', source_address=CLIENT)
        assert status == 200, body
        status, _, _ = server.request('OPTIONS', '/download/' + unknown_key(),
                                      source_address=CLIENT)
        assert status == 204, status
        status, _, body = server.json('GET', '/no-such-path', source_address=CLIENT)
        assert status == 404, body


def test_a_block_expires_after_the_block_window_and_counting_starts_over():
    window = 2
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': str(window)}
    with Redis() as redis, Server(redis, env=env) as server:
        block(server, CLIENT, endpoint='download')
        blocked_at = time.monotonic()
        status, headers, body = miss(server, 'download', CLIENT)
        assert_blocked(status, headers, body, window)

        answers = []

        def served_again():
            status, headers, body = miss(server, 'download', CLIENT)
            answers.append(status)
            return status != 429 and (status, body)
        status, body = wait_until(served_again, window + 3, interval=0.05,
                                  message='the block of %d s to expire' % window)
        elapsed = time.monotonic() - blocked_at
        assert_normal_miss('download', status, body)
        assert elapsed >= window - 1, 'block lifted after %.2fs, window is %ds' % (elapsed, window)
        assert set(answers[:-1]) <= {429}, answers
        # That answer was failure 1 of a new count: two more, then blocked again.
        for _ in range(2):
            status, _, body = miss(server, 'download', CLIENT)
            assert_normal_miss('download', status, body)
        status, headers, body = miss(server, 'download', CLIENT)
        assert_blocked(status, headers, body, window)


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
            assert_common_headers(target + ' 429', headers)
        # Blocked requests consumed nothing, and other clients are not blocked.
        status, _, st = server.json('GET', '/status/' + key)
        assert status == 200 and st['remaining_uses'] == 2, st
        status, _, got = download(server, key)
        assert status == 200 and got == data
