"""HTTP/2 rapid reset (CVE-2023-44487; Debian's libh2o 2.2.5 is not patched): streams
opened and reset at once by the thousand. The connection is told GOAWAY once most of
its streams end before their answer, the store operations a worker has waiting are
capped (STORE_MAX_PENDING: 503 at once beyond), and HTTP2=false speaks HTTP/1.1 only."""

import os
import signal
import socket
import time

from harness import (CLIENT, OTHER, H2, H2_CANCEL, H2_ENHANCE_YOUR_CALM, H2_PREFACE, Redis, Server,
                     assert_nobody_replaced, curl, path, raw_connect, rss_kib, unknown_key,
                     wait_until)

FLOOD = 20000
BATCH = 500


def store_commands(redis):
    """Commands the store has run, INFO itself left out."""
    stats = redis.command('INFO', 'commandstats')
    return sum(int(line.split('calls=')[1].split(',')[0]) for line in stats.splitlines()
               if line.startswith('cmdstat_') and not line.startswith('cmdstat_info:'))


def metric(server, name):
    status, _, text = server.request('GET', '/metrics')
    assert status == 200, text
    for line in text.decode().splitlines():
        if line.startswith('raven_zero_%s ' % name):
            return int(line.split()[1])
    raise AssertionError('no metric %s' % name)


def test_a_rapid_reset_flood_is_told_goaway_early_and_costs_the_store_little():
    # The attack: HEADERS + RST_STREAM pairs for keyed lookups, each of which costs a
    # store script if it reaches the handler. Before: 60,000 pairs ran 60,087 scripts
    # and took the worker from 15 to 59 MB.
    with Redis() as redis, Server(redis, env={'WORKERS': '1'}) as server:
        before = server.full_tree()
        worker = before['workers'][0]
        rss_before = rss_kib(worker)
        commands_before = store_commands(redis)
        h2 = H2(server, CLIENT)
        sent = 0
        started = time.monotonic()
        try:
            while sent < FLOOD and not h2.closed and h2.goaway is None:
                frames = []
                for i in range(BATCH):
                    stream = 1 + 2 * (sent + i)
                    frames.append(h2.request_head(stream, 'GET', '/status/' + unknown_key(),
                                                  end_stream=True))
                    frames.append(h2.rst(stream, H2_CANCEL))
                if not h2.send(b''.join(frames)):
                    break
                sent += BATCH
                h2.read(lambda c: c.goaway is not None, 0.001)
            # GOAWAY, then the connection closes whatever the client sends (the GOAWAY
            # itself may be lost: a close with the client's frames unread is a reset).
            deadline = time.monotonic() + 5
            while not h2.closed and time.monotonic() < deadline:
                h2.send(h2.request_head(1 + 2 * sent, 'GET', '/health/', end_stream=True) +
                        h2.rst(1 + 2 * sent))
                sent += 1
                h2.read(lambda c: False, 0.05)
            assert h2.closed, 'the connection is still open %.1fs after GOAWAY' % (
                time.monotonic() - started)
            assert h2.goaway is None or h2.goaway[1] == H2_ENHANCE_YOUR_CALM, h2.goaway
        finally:
            h2.close()
        took = time.monotonic() - started
        commands = store_commands(redis) - commands_before
        rss_after = rss_kib(worker)
        print('flood: %d streams sent in %.2fs before the connection closed (GOAWAY %r); '
              '%d store commands; worker RSS %d -> %d KiB' % (sent, took, h2.goaway, commands,
                                                             rss_before, rss_after))
        assert sent <= 4 * BATCH, '%d streams sent before the connection closed' % sent
        assert commands < 1000, '%d store commands for a flood' % commands
        assert rss_after - rss_before < 8 * 1024, 'RSS %d -> %d KiB' % (rss_before, rss_after)
        # Others are served, and the flood is logged and counted.
        status, _, _ = server.request('GET', '/status/' + unknown_key(), source_address=OTHER)
        assert status == 200, status
        assert wait_until(lambda: server.events('reset_flood'), 5, message='the flood logged')
        assert metric(server, 'reset_floods_total') == 1
        assert_nobody_replaced(server, before)


def test_a_browser_cancelling_some_requests_is_not_taken_for_a_flood():
    with Redis() as redis, Server(redis, env={'WORKERS': '1'}) as server:
        h2 = H2(server, CLIENT)
        try:
            # 200 lookups, one in four cancelled at once: a page navigated away from.
            for i in range(200):
                stream = 1 + 2 * i
                frames = h2.request_head(stream, 'GET', '/status/' + unknown_key(), end_stream=True)
                if i % 4 == 0:
                    frames += h2.rst(stream)
                assert h2.send(frames)
                if i % 16 == 15:
                    assert h2.read(lambda c, n=i: all(c.answered(1 + 2 * j) for j in range(n + 1)
                                                      if j % 4 != 0), 10), h2.streams
            assert h2.goaway is None and not h2.closed
        finally:
            h2.close()
        assert metric(server, 'reset_floods_total') == 0


def test_requests_beyond_store_max_pending_are_answered_503_at_once():
    env = {'WORKERS': '1', 'STORE_MAX_PENDING': '16'}
    with Redis() as redis, Server(redis, env=env) as server:
        before = server.full_tree()
        conns = [H2(server, source) for source in (CLIENT, OTHER)]
        os.kill(redis.proc.pid, signal.SIGSTOP)  # every store operation now waits
        try:
            started = time.monotonic()
            for h2 in conns:
                h2.send(b''.join(h2.request_head(1 + 2 * i, 'GET', '/status/' + unknown_key(),
                                                 end_stream=True) for i in range(16)))
            # 32 lookups, 16 may wait: the others are answered before the store's timeout
            # (1 s) could fail them.
            def quick():
                return sum(1 for h2 in conns for st in h2.streams.values() if st['status'] == 503)
            for h2 in conns:
                h2.read(lambda c: quick() >= 16, 0.5)
            assert quick() >= 16 and time.monotonic() - started < 0.9, \
                (quick(), time.monotonic() - started)
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
            for h2 in conns:
                h2.close()
        # The worker adds what its store client shed to the metric on its next tick.
        wait_until(lambda: metric(server, 'store_shed_total') >= 16, 5,
                   message='store_shed_total counting the 503s')
        assert wait_until(lambda: server.events('store_shed'), 5, message='the shedding logged')
        assert server.request('GET', '/status/' + unknown_key())[0] == 200
        assert_nobody_replaced(server, before)


def h2c_answer(server):
    """What the server first sends to a connection opening with the HTTP/2 preface."""
    sock = raw_connect(server, CLIENT)
    try:
        sock.sendall(H2_PREFACE)
        sock.settimeout(5)
        received = b''
        while True:
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
            if len(received) >= 9:
                break
        return received
    finally:
        sock.close()


def test_an_http1_connection_upgraded_to_h2c_goes_on_in_http2():
    # The worker reads an HTTP/1 connection itself; once libh2o hands it to HTTP/2
    # (here through "Upgrade: h2c") libh2o reads it again. curl upgrades the first
    # request and sends the next ones on the same connection.
    with Redis() as redis, Server(redis, env={'WORKERS': '1'}) as server:
        url = 'http://127.0.0.1:%d/health/' % server.port
        code, out, err = curl(['--http2', '-o', '/dev/null', '-o', '/dev/null', '-o', '/dev/null', '-w',
                               '%{http_version} %{response_code} %{num_connects}\n', url, url, url],
                              cwd=path())
        assert code == 0, err
        assert out.decode().split('\n')[:3] == ['2 200 1', '2 200 0', '2 200 0'], out


def test_http2_false_refuses_h2c_and_speaks_http1_only():
    with Redis() as redis:
        with Server(redis, env={'WORKERS': '1'}) as server:
            assert h2c_answer(server)[3] == 4, 'HTTP/2 on: the answer opens with SETTINGS'
        with Server(redis, env={'WORKERS': '1', 'HTTP2': 'false'}) as server:
            answer = h2c_answer(server)
            assert answer.startswith(b'HTTP/1.1 400'), answer[:80]
            status, headers, _ = server.request('GET', '/health/', headers={
                'Connection': 'Upgrade, HTTP2-Settings', 'Upgrade': 'h2c', 'HTTP2-Settings': ''})
            assert status == 200 and 'upgrade' not in headers, (status, headers)
            assert server.request('GET', '/status/' + unknown_key())[0] == 200
