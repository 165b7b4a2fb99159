"""Shredders on several nodes do not fight: the expiry and orphan sweeps of one storage
are done by one shredder at a time, the holder of a lease in the store, and the lease
passes to another when its holder dies (it runs out) or stops (it is given back).
A file burned or expired through one node is finished by whichever holds the lease.

Two servers share one store and one STORAGE_PATH here, as two nodes share object
storage; each has its own TEMP_PATH, trash and log."""

import os
import signal
import time

from harness import (Redis, Server, kill_and_reap, path, upload_ok, wait_until)

LEASE_S = 5  # SHREDDER_LEASE_MS


def two_nodes(redis, env=None):
    shared = path('shared', 'uploads')
    nodes = []
    for name in ('a', 'b'):
        settings = {'STORAGE_PATH': shared, 'TEMP_PATH': path(name, 'temp'),
                    'LOG_PATH': path(name, 'logs', 'raven_zero.log')}
        settings.update(env or {})
        nodes.append(Server(redis, env=settings))
    return nodes


def holders(nodes):
    return [n for n in nodes if n.events('sweep_lease_taken', 'shredder')]


def stored_ids(server):
    out = set()
    for _, _, files in os.walk(server.settings['STORAGE_PATH']):
        out |= set(files)
    return out


def expire_through(redis, node):
    """Upload through node, make it due at once; its id."""
    before = stored_ids(node)
    upload_ok(node, os.urandom(5000))
    (file_id,) = stored_ids(node) - before
    now = int(time.time())
    redis.command('HSET', 'upload:{%s}' % file_id, 'e', str(now))
    redis.command('ZADD', 'expiries', str(now), file_id)
    return file_id


def file_gone(server, file_id):
    return not os.path.exists(os.path.join(server.settings['STORAGE_PATH'], file_id[:2], file_id))


def test_one_shredder_sweeps_at_a_time_and_the_lease_passes_when_its_holder_is_killed():
    with Redis() as redis:
        a, b = nodes = two_nodes(redis)
        try:
            (holder,) = wait_until(lambda: holders(nodes), 10, message='one lease holder')
            other = b if holder is a else a
            key = redis.command('KEYS', 'lease:shredder:*')
            assert len(key) == 1 and redis.command('GET', key[0]).endswith(':%d' % holder.children()['shredder'])
            # The startup sweep of the shared storage: done by the holder alone.
            wait_until(lambda: [x for x in holder.events('orphans_swept', 'shredder') if x['where'] == 'storage'],
                       10, message="the holder's storage sweep")
            # A file uploaded through the other node, expired: the holder finishes it.
            file_id = expire_through(redis, other)
            wait_until(lambda: file_gone(holder, file_id), 10, message='the expired file shredded')
            wait_until(lambda: holder.events('expired_shredded', 'shredder'), 5, message='logged by the holder')
            assert other.events('expired_shredded', 'shredder') == []
            assert [x for x in other.events('orphans_swept', 'shredder') if x['where'] == 'storage'] == []
            assert other.events('sweep_lease_taken', 'shredder') == []

            # kill -9 the holder's whole node, its shredder first (a master that dies first
            # has its children stopped cleanly): its lease runs out and the other takes it.
            tree = holder.children()
            t0 = time.monotonic()
            kill_and_reap([tree['shredder']] + tree['workers'] + [holder.pid])
            wait_until(lambda: other.events('sweep_lease_taken', 'shredder'), LEASE_S + 5, 0.05,
                       message='the lease handed over')
            took = time.monotonic() - t0
            print('MEASURED: sweep lease handed over %.2fs after its holder was killed (lease %ds)'
                  % (took, LEASE_S))
            assert LEASE_S - 1.5 < took < LEASE_S + 3  # it ran out: renewed at most a tick before
            file_id = expire_through(redis, other)
            wait_until(lambda: file_gone(other, file_id), 10, message='the new holder shredding')
        finally:
            for n in nodes:
                n.stop()


def test_a_holder_that_stops_cleanly_gives_the_lease_back_at_once():
    with Redis() as redis:
        nodes = two_nodes(redis)
        try:
            (holder,) = wait_until(lambda: holders(nodes), 10, message='one lease holder')
            other = nodes[1] if holder is nodes[0] else nodes[0]
            t0 = time.monotonic()
            holder.signal(signal.SIGTERM)
            holder.wait_exit(15)
            assert holder.events('sweep_lease_given_back', 'shredder')
            wait_until(lambda: other.events('sweep_lease_taken', 'shredder'), LEASE_S, 0.05,
                       message='the lease taken over')
            took = time.monotonic() - t0
            print('MEASURED: lease taken over %.2fs after its holder was stopped' % took)
        finally:
            for n in nodes:
                n.stop()
