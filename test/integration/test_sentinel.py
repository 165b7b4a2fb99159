"""A store that fails over: with REDIS_SENTINELS the workers and the shredder find the
primary through Sentinel (never the REDIS_URL host, never a replica) and follow a
failover without a restart. Real engines: redis-server primary + replica and three
redis-sentinel on loopback (harness.Sentinels).

The failover tests measure the gap a client sees: requests answered 503 from the
SIGKILL of the primary until the service is back; each prints it as MEASURED."""

import time

from harness import (Sentinels, Server, UploadLoad, assert_ledger, download, lines_of, path, run,
                     upload_ok, wait_until, timeout)


def measure_failover(sentinels, server, what):
    """SIGKILL the primary under load; the gap, asserted to close within seconds."""
    load = UploadLoad(server)
    wait_until(lambda: load.successes_after(0) >= 20, 10, message='uploads before the failover')
    old = sentinels.primary()
    t0 = time.monotonic()
    sentinels.kill(old)
    wait_until(lambda: sentinels.primary() != old, 20, 0.02, message='Sentinel promoting the replica')
    t_promoted = time.monotonic() - t0
    wait_until(lambda: load.successes_after(time.monotonic() - 0.3) >= 5 and
               load.results[-1][1] == 201, 20, 0.05, message='uploads answered again')
    load.stop()
    (first, last), odd = load.gap(t0)
    print('MEASURED: %s: Sentinel named the replica %.2fs after the SIGKILL; uploads failed (503) '
          'from %.2fs to %.2fs' % (what, t_promoted, first, last))
    assert odd == [], 'answers during the failover other than 201 and 503: %r' % odd
    assert last < 10, 'service back %.2fs after the primary died' % last
    return old, load


def test_the_primary_is_found_through_the_sentinels_not_the_redis_url_host():
    with Sentinels() as sentinels, Server(env=sentinels.settings) as server:
        body, _ = upload_ok(server, b'found through sentinel')
        status, _, data = download(server, body['key'])
        assert (status, data) == (200, b'found through sentinel')
        # REDIS_URL named the replica: had anything gone there it would have been refused.
        assert int(sentinels.command(sentinels.primary(), 'DBSIZE')) > 0
        wait_until(lambda: server.events('sweep_lease_taken', 'shredder'), 10,
                   message='the shredder on the primary, holding the sweep lease')


@timeout(120)
def test_a_killed_primary_is_replaced_without_a_restart_and_nothing_acknowledged_is_served_wrong():
    with Sentinels() as sentinels, Server(env=sentinels.settings) as server:
        old, load = measure_failover(sentinels, server, 'worker, primary SIGKILLed')
        assert server.events('store_down', 'worker')
        lost = assert_ledger(server, load.ledger)
        print('MEASURED: %d of %d uploads acknowledged were lost in the failover' % (lost, len(load.ledger)))
        # The shredder follows too: it is back on the new primary, holding its lease.
        wait_until(lambda: len(server.events('store_up', 'shredder')) >= 1, 15,
                   message='the shredder reconnected')
        lease = 'lease:shredder:*'
        wait_until(lambda: sentinels.command(sentinels.primary(), 'KEYS', lease), 15,
                   message='the lease renewed on the new primary')
        # The old primary comes back as a replica: uploads go on, waiting for it again
        # (one it is slow to confirm, just after its sync, answers 503: retried here).
        sentinels.reattach(old)
        status, _, body = wait_until(lambda: (lambda r: r if r[0] == 201 else None)(
            server.upload(b'after the old primary came back')), 10, message='an upload with the replica back')
        assert download(server, body['key'])[2] == b'after the old primary came back'


@timeout(120)
def test_a_planned_switchover_is_followed_and_the_demoted_primary_is_not_written_to():
    with Sentinels() as sentinels, Server(env=sentinels.settings) as server:
        load = UploadLoad(server)
        wait_until(lambda: load.successes_after(0) >= 20, 10, message='uploads before the switch')
        old = sentinels.primary()
        t0 = time.monotonic()
        sentinels.command(sentinels.sentinel_ports[0], 'SENTINEL', 'FAILOVER', Sentinels.MASTER)
        wait_until(lambda: sentinels.primary() != old, 20, 0.02, message='the switch')
        wait_until(lambda: 'role:slave' in sentinels.command(old, 'INFO', 'replication'), 30, 0.05,
                   message='the old primary demoted')
        t_demoted = time.monotonic()
        wait_until(lambda: load.successes_after(time.monotonic() - 0.3) >= 5, 20, 0.05,
                   message='uploads answered after the switch')
        load.stop()
        (first, last), odd = load.gap(t0)
        print('MEASURED: planned switchover: uploads failed from %.2fs to %.2fs' % (first, last))
        assert odd == [], odd
        assert last < 10
        assert all(status == 201 for when, status in load.results if when > t_demoted + 2)
        assert assert_ledger(server, load.ledger) == 0  # a planned switch loses nothing
        # Every worker heard of it on its sentinel link (+switch-master).
        assert len(server.events('store_failover', 'worker')) == 2


def test_bad_sentinel_settings_are_refused_at_start_up_with_one_line_naming_them():
    for env, name in (({'REDIS_SENTINELS': '127.0.0.1:0'}, 'REDIS_SENTINELS='),
                      ({'REDIS_SENTINELS': 'a,,b'}, 'REDIS_SENTINELS='),
                      ({'REDIS_SENTINEL_MASTER': 'my master'}, 'REDIS_SENTINEL_MASTER='),
                      ({'REDIS_SENTINEL_PASSWORD': 'a\tb'}, 'REDIS_SENTINEL_PASSWORD=***'),
                      ({'REDIS_SENTINELS': '127.0.0.1', 'REDIS_URL': 'unix:///run/redis.sock'},
                       'REDIS_SENTINELS:')):
        code, out, err = run(['-t'], env=env)
        assert code != 0, env
        assert len(lines_of(err)) == 1 and name in err, err
        assert 'a\tb' not in err


def test_uploads_wait_for_the_replica_while_there_is_one_and_go_on_without_it_when_it_is_gone():
    def median_upload_ms(server, n=150):
        times = []
        for i in range(n):
            t = time.monotonic()
            upload_ok(server, b'%d' % i)
            times.append(time.monotonic() - t)
        return sorted(times)[n // 2] * 1000
    with Sentinels() as sentinels, Server(env=sentinels.settings) as server:
        with_replica = median_upload_ms(server)
        t0 = time.monotonic()
        sentinels.kill(sentinels.replica_port)
        # Without a replica to confirm them, uploads answer 503 for a while: it might be
        # a replica promoted away, the primary about to be demoted. Then the primary alone
        # is all there is, and they are served again.
        wait_until(lambda: all(server.upload(b'x')[0] == 201 for _ in range(10)), 20, 0.1,
                   message='uploads without a replica, on every worker')
        took = time.monotonic() - t0
        alone = median_upload_ms(server)
        print('MEASURED: median upload %.2f ms waiting for the replica (WAIT 1), %.2f ms without one; '
              'uploads failed for %.1fs after the replica died' % (with_replica, alone, took))
        assert took < 15


@timeout(120)
def test_the_stores_and_the_sentinels_passwords_are_used_through_a_failover_and_never_logged():
    with Sentinels(password='data-pass-1', sentinel_password='sentinel-pass-2') as sentinels, \
            Server(env=sentinels.settings) as server:
        body, _ = upload_ok(server, b'behind two passwords')
        assert download(server, body['key'])[2] == b'behind two passwords'
        measure_failover(sentinels, server, 'with passwords')
        wait_until(lambda: len(server.events('store_up', 'shredder')) >= 1, 15, message='the shredder reconnected')
        with open(server.log_path, 'rb') as f:
            text = f.read()
        assert b'data-pass-1' not in text and b'sentinel-pass-2' not in text
    # Without the Sentinels' password nothing is found: the store counts as down.
    with Sentinels(sentinel_password='sentinel-pass-2') as sentinels:
        env = dict(sentinels.settings, REDIS_SENTINEL_PASSWORD=None, LOG_PATH=path('second', 'raven_zero.log'))
        with Server(env=env, wait='up') as server:
            status, _, body = server.json('GET', '/health/')
            assert status == 503, body
            line = wait_until(lambda: server.events('store_down', 'worker'), 10)[0]
            assert 'the sentinel named no primary: NOAUTH' in line['message'], line


def test_with_every_sentinel_gone_the_store_still_serves_and_the_workers_say_so():
    with Sentinels() as sentinels, Server(env=sentinels.settings) as server:
        upload_ok(server, b'before')
        for port in sentinels.sentinel_ports:
            sentinels.kill(port)
        wait_until(lambda: len(server.events('sentinel_unreachable', 'worker')) == 2, 15,
                   message='each worker saying no sentinel answers')
        body, _ = upload_ok(server, b'without sentinels')
        assert download(server, body['key'])[2] == b'without sentinels'
        assert server.events('store_down', 'worker') == []


@timeout(120)
def test_sentinels_and_a_primary_known_by_host_name_are_resolved_off_the_loop_and_followed():
    with Sentinels(hostnames=True) as sentinels, Server(env=sentinels.settings) as server:
        assert sentinels.settings['REDIS_SENTINELS'].startswith('localhost:')
        named = sentinels.command(sentinels.sentinel_ports[0], 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', Sentinels.MASTER)
        assert named[0] == 'localhost', named
        body, _ = upload_ok(server, b'by name')
        assert download(server, body['key'])[2] == b'by name'
        measure_failover(sentinels, server, 'host names')
