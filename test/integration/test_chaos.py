"""Chaos: about a minute of mixed load (uploads of 1 KiB to 4 MiB, downloads, status and
health polls from ten clients) while workers are killed, the shredder is killed, the
master reloads and the store restarts. A ledger keeps every upload acknowledged with
201 (key, sha256, uses). Afterwards every acknowledged upload still downloads byte-exact
as many times as it has uses left, then answers 410; no upload slot is left in the
store, and TEMP_PATH holds nothing written after the last worker kill.

The store restarts keeping its data (SHUTDOWN SAVE, then started again from the same
dump): a store that restarts empty loses every record by design, and a ledger could
then only vouch for the uploads made after its last restart. A worker killed in the
middle of an upload cannot remove its temp file; the orphan sweep takes such files
once they are ORPHAN_AGE_MINUTES old, so only newer ones count as left behind."""

import http.client
import os
import random
import signal
import threading
import time

from harness import Redis, RedisError, Server, once, sha256, temp, timeout, wait_until

LOAD_S = 40
CLIENTS = 10
MIN_SIZE, MAX_SIZE = 1024, 4 << 20


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.keys = {}  # key -> [sha256, uses left, downloads that may have taken a use]
        self.busy = set()

    def add(self, key, digest, uses):
        with self.lock:
            self.keys[key] = [digest, uses, 0]

    def take(self, rng):
        """A key with a use to spare, not being downloaded by another client."""
        with self.lock:
            free = [k for k, v in self.keys.items() if v[1] - v[2] > 1 and k not in self.busy]
            if not free:
                return None
            key = rng.choice(free)
            self.busy.add(key)
            return key

    def downloaded(self, key, ok):
        with self.lock:
            self.busy.discard(key)
            if ok:
                self.keys[key][1] -= 1
            else:
                self.keys[key][2] += 1


def client(server, ledger, n, halt, counts, wrong):
    rng = random.Random(n)
    source = '127.0.0.%d' % (20 + n)
    while not halt.is_set():
        what = rng.choices(('upload', 'download', 'status', 'health'), (4, 3, 2, 1))[0]
        try:
            if what == 'upload':
                size = int(MIN_SIZE * (MAX_SIZE / MIN_SIZE) ** rng.random())
                data = rng.randbytes(size)
                uses = rng.randint(1, 3)
                status, _, body = server.upload(data, uses=uses, source_address=source)
                if status == 201:
                    ledger.add(body['key'], sha256(data), uses)
            elif what == 'download':
                key = ledger.take(rng)
                if key is None:
                    continue
                status, ok = None, False
                try:
                    status, _, got = server.request('GET', '/download/' + key, source_address=source)
                    ok = status == 200
                    if ok and sha256(got) != ledger.keys[key][0]:
                        wrong.append('download of an acknowledged upload: wrong bytes')
                    if status not in (200, 503):
                        wrong.append('download of an acknowledged upload: %d' % status)
                finally:
                    ledger.downloaded(key, ok)
            elif what == 'status':
                # A known key: an unknown one would count towards the client's block.
                with ledger.lock:
                    known = list(ledger.keys)
                if not known:
                    continue
                status, _, _ = server.request('GET', '/status/' + rng.choice(known), source_address=source)
            else:
                status, _, _ = server.request('GET', '/health/', source_address=source)
        except (OSError, http.client.HTTPException):
            status = 'broken'  # cut short by a fault
        counts[(what, status)] = counts.get((what, status), 0) + 1


def restart_store(redis):
    try:
        redis.command('SHUTDOWN', 'SAVE')
    except (OSError, RedisError):
        pass  # the store closes the connection without a reply
    redis.proc.wait(10)
    redis.start()


@once
@timeout(180)
def test_under_kills_reloads_and_store_restarts_no_acknowledged_upload_is_lost_or_left_behind():
    with Redis() as redis, Server(redis) as server:
        ledger, halt, counts, wrong = Ledger(), threading.Event(), {}, []
        threads = [threading.Thread(target=client, args=(server, ledger, n, halt, counts, wrong),
                                    daemon=True) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        faults = {'worker killed': 0, 'shredder killed': 0, 'reload': 0, 'store restarted': 0}
        last_kill = time.time()
        rng = random.Random(15)
        started = time.monotonic()
        try:
            while time.monotonic() - started < LOAD_S:
                time.sleep(rng.uniform(0.5, 1.5))
                fault = rng.choices(list(faults), (4, 2, 2, 1))[0]
                kids = server.children()
                if fault == 'worker killed' and kids['workers']:
                    os.kill(rng.choice(kids['workers']), signal.SIGKILL)
                    last_kill = time.time()
                elif fault == 'shredder killed' and kids['shredder']:
                    os.kill(kids['shredder'], signal.SIGKILL)
                elif fault == 'reload':
                    server.signal(signal.SIGHUP)
                    last_kill = time.time()  # the workers replaced may be cut short too
                elif fault == 'store restarted':
                    restart_store(redis)
                else:
                    continue
                faults[fault] += 1
        finally:
            halt.set()
            for t in threads:
                t.join(60)
        assert not any(t.is_alive() for t in threads), 'a client hangs'
        assert not wrong, wrong[:10]
        server.full_tree()
        wait_until(lambda: server.json('GET', '/health/')[0] == 200, 10, message='healthy again')

        # Every acknowledged upload: its uses left, byte-exact, then 410. A download cut
        # short by a fault may or may not have spent its use.
        assert len(ledger.keys) >= 50, 'only %d uploads acknowledged' % len(ledger.keys)
        checked = 0
        for key, (digest, left, maybe) in ledger.keys.items():
            got = 0
            while True:
                status, _, body = server.request('GET', '/download/' + key)
                if status != 200:
                    break
                assert sha256(body) == digest, 'an acknowledged upload came back changed'
                got += 1
                checked += 1
            assert status == 410, 'after %d downloads: %d %r' % (got, status, body[:200])
            assert left - maybe <= got <= left, 'downloaded %d times, %d uses left (%d unsure)' % (
                got, left, maybe)

        # No upload slot outlives its lease, and nothing written since the last worker
        # kill is left in TEMP_PATH.
        wait_until(lambda: redis.command('KEYS', 'slots:*') == [], 6, message='no upload slot left')
        left = [os.path.join(temp(server), f) for f in os.listdir(temp(server))]
        late = [f for f in left if os.stat(f).st_mtime > last_kill + 0.1]
        assert late == [], 'left in TEMP_PATH: %d files written after the last kill' % len(late)
        print('%s; %d uploads acknowledged, %d downloads checked after; %d crash leftovers in '
              'TEMP_PATH for the sweep; requests: %s' % (
                  ', '.join('%s %d' % kv for kv in faults.items()), len(ledger.keys), checked,
                  len(left), ', '.join('%s %s: %d' % (w, s, n) for (w, s), n in sorted(
                      counts.items(), key=str))))
