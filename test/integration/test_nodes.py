"""Several nodes: two servers behind nginx (the example site with the cluster upstream,
etc/nginx-raven-zero-cluster.conf) on one object storage (Swift's S3 API, started once
for the module) and one store that fails over (redis-server primary + replica and three
redis-sentinel). An upload through one node is downloaded through the other; a node
killed with SIGKILL mid-load, the store's primary stopped, the object store stopped:
each costs requests for a few seconds and loses nothing acknowledged. Each failure
prints what it cost as MEASURED."""

import os
import time

from harness import (Nginx, Sentinels, Server, Swift, UploadLoad, Via, assert_ledger, free_port,
                     kill_and_reap, nginx_site, path, timeout, upload_ok, wait_until)

SWIFT = None


def setup_module():
    global SWIFT
    SWIFT = Swift()


def teardown_module():
    if SWIFT is not None:
        SWIFT.stop()


class Cluster:
    """Sentinels, a bucket, nodes a and b, and nginx in front (.via talks to it)."""

    def __init__(self):
        self.sentinels = Sentinels()
        self.bucket = SWIFT.bucket()
        self.nodes = []
        try:
            for name in ('a', 'b'):
                env = dict(self.sentinels.settings)
                env.update(SWIFT.settings(self.bucket))
                env.update({'STORAGE_PATH': path(name, 'uploads'), 'TEMP_PATH': path(name, 'temp'),
                            'LOG_PATH': path(name, 'logs', 'raven_zero.log'),
                            'TRUSTED_PROXIES': '127.0.0.1/32'})
                self.nodes.append(Server(env=env))
            self.a, self.b = self.nodes
            port = free_port()
            # One test client stands for many: lift the site's per-client upload rate.
            site = nginx_site(None, port, cluster=[n.port for n in self.nodes])
            self.nginx = Nginx(site.replace('rate=1r/m', 'rate=100000r/s'), port)
            self.via = Via(port)
        except BaseException:
            self.stop()
            raise

    def kill(self, node):
        """SIGKILL every process of a node, as a machine that dies."""
        tree = node.children()
        kill_and_reap([tree['shredder']] + tree['workers'] + [node.pid])

    def stop(self):
        if getattr(self, 'nginx', None):
            self.nginx.stop()
        for n in self.nodes:
            n.stop()
        self.sentinels.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def steady(load, n=20):
    """Wait until the last n uploads of the load were all acknowledged."""
    wait_until(lambda: len(load.results) >= n and all(s == 201 for _, s in load.results[-n:]), 30, 0.05,
               message='%d uploads in a row acknowledged' % n)


def failures_after(load, t0):
    after = [(when - t0, status) for when, status in load.results if when >= t0]
    failed = [(when, status) for when, status in after if status != 201]
    return failed


@timeout(180)
def test_an_upload_through_one_node_is_downloaded_through_the_other_and_one_node_sweeps():
    with Cluster() as c:
        data = os.urandom(300000)
        body, _ = upload_ok(c.a, data, uses=2)
        status, _, got = c.b.request('GET', '/download/' + body['key'])
        assert (status, got) == (200, data)
        body, _ = upload_ok(c.via, data)
        status, _, got = c.via.request('GET', '/download/' + body['key'])
        assert (status, got) == (200, data)
        wait_until(lambda: [n for n in c.nodes if n.events('sweep_lease_taken', 'shredder')], 15,
                   message='a sweep lease holder')
        assert len([n for n in c.nodes if n.events('sweep_lease_taken', 'shredder')]) == 1


@timeout(180)
def test_a_node_killed_mid_load_fails_only_its_requests_in_flight_and_loses_nothing_acknowledged():
    with Cluster() as c:
        load = UploadLoad(c.via)
        steady(load)
        t0 = time.monotonic()
        c.kill(c.a)
        steady(load, 40)  # served by the other node from then on
        load.stop()
        failed = failures_after(load, t0)
        print('MEASURED: node killed under load: %d of %d uploads after the kill failed (%s)'
              % (len(failed), len([r for r in load.results if r[0] >= t0]),
                 ', '.join('%.2fs: %s' % f for f in failed) or 'none'))
        assert all(when < 10 for when, _ in failed), failed
        assert assert_ledger(c.via, load.ledger) == 0
        assert assert_ledger(c.b, {}) == 0
        # The survivor finishes the sweeps: it holds the lease (taken over or its own).
        wait_until(lambda: c.b.events('sweep_lease_taken', 'shredder'), 15, message='the lease on the survivor')


@timeout(180)
def test_the_stores_primary_stopped_under_load_costs_a_few_seconds_of_503():
    with Cluster() as c:
        load = UploadLoad(c.via)
        steady(load)
        old = c.sentinels.primary()
        t0 = time.monotonic()
        c.sentinels.kill(old)
        wait_until(lambda: c.sentinels.primary() != old, 20, 0.02, message='Sentinel promoting the replica')
        promoted = time.monotonic() - t0
        steady(load)
        load.stop()
        (first, last), odd = load.gap(t0)
        lost = assert_ledger(c.via, load.ledger)
        print('MEASURED: primary SIGKILLed behind nginx: Sentinel named the replica after %.2fs; '
              'uploads failed (503) from %.2fs to %.2fs; %d of %d acknowledged lost'
              % (promoted, first, last, lost, len(load.ledger)))
        assert odd == [], odd
        assert last < 10
        assert lost == 0


@timeout(180)
def test_the_object_store_stopped_answers_503_with_retry_after_then_recovers():
    with Cluster() as c:
        data = os.urandom(100000)
        body, _ = upload_ok(c.via, data, uses=1)
        SWIFT.stop_object()
        try:
            t0 = time.monotonic()
            status, headers, _ = c.via.request('GET', '/download/' + body['key'])
            assert status == 503 and 'retry-after' in headers, (status, headers)
            status, headers, _ = c.via.upload(os.urandom(1000))
            assert status == 503 and 'retry-after' in headers, (status, headers)
        finally:
            SWIFT.start_object()
        t1 = time.monotonic()
        wait_until(lambda: c.via.upload(os.urandom(1000))[0] == 201, 30, 0.1,
                   message='uploads acknowledged again')
        back = time.monotonic() - t1
        # The download refused during the outage spent nothing: its one use is still there.
        # The node that took the upload above is back; the other may need a moment more,
        # and a 503 from it spends nothing either (uses=1: a spent use would be a 410).
        def served():
            status, _, got = c.via.request('GET', '/download/' + body['key'])
            return None if status == 503 else (status, got)
        status, got = wait_until(served, 10, 0.1, message='the download served again')
        assert (status, got == data) == (200, True), status
        print('MEASURED: object store stopped: 503 with Retry-After at once; uploads acknowledged '
              '%.2fs after it was back (outage %.2fs)' % (back, t1 - t0))
