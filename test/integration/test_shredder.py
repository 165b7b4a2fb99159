"""The shredder: burned files are overwritten in place within seconds, expired files
within 10 seconds, orphans and temp leftovers are swept (old ones only), nothing a
download still reads is touched, and a killed or stopped shredder finishes later.

"In place" is seen through a hard link kept outside STORAGE_PATH: after the shred the
link still names the old inode, whose every 4 KiB block must have changed."""

import hashlib
import os
import signal
import time

from harness import (MIB, Redis, Server, SlowDownload, path, server_secret, storage, trash,
                     upload_ok, wait_until)


BLOCK = 4096


# --- helpers --------------------------------------------------------------------

def stored_files(server):
    out = []
    for root, _, files in os.walk(storage(server)):
        out += [os.path.join(root, f) for f in files]
    return sorted(out)


def the_stored_file(server):
    files = stored_files(server)
    assert len(files) == 1, files
    return files[0]


def read(p):
    with open(p, 'rb') as f:
        return f.read()


def link_aside(p, name='link'):
    """A hard link to p outside the server's directories: the old inode, kept."""
    target = path(name)
    os.link(p, target)
    return target


def every_block_differs(before, now):
    if len(before) != len(now):
        return False
    return all(before[i:i + BLOCK] != now[i:i + BLOCK] for i in range(0, len(before), BLOCK))


def has_zero_block(p):
    """Does the file hold a 4 KiB run of zeros (what it held before a full overwrite)?"""
    zeros = bytes(BLOCK)
    with open(p, 'rb') as f:
        while True:
            chunk = f.read(8 * MIB)
            if not chunk:
                return False
            if zeros in chunk:
                return True


def wait_overwritten(link, before, gone, timeout):
    """Poll until the inode behind link is overwritten everywhere and the name `gone`
    no longer exists; seconds it took."""
    start = time.monotonic()

    def done():
        return not os.path.exists(gone) and every_block_differs(before, read(link))
    wait_until(done, timeout, interval=0.005, message='file overwritten in place and unlinked')
    return time.monotonic() - start


def set_expired(redis, file_id, when):
    redis.command('HSET', 'upload:{%s}' % file_id, 'e', str(when))
    redis.command('ZADD', 'expiries', str(when), file_id)


def make_file(p, data, age_s=0):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, 'wb') as f:
        f.write(data)
    if age_s:
        t = time.time() - age_s
        os.utime(p, (t, t))


def shredder_pid(server, not_pid=None):
    def found():
        pid = server.children()['shredder']
        return pid if pid and pid != not_pid else None
    return wait_until(found, 15, message='a shredder process')


BIG = {'MAX_FILE_SIZE': str(16 * MIB)}


# --- burn -----------------------------------------------------------------------

def test_burned_file_is_overwritten_in_place_within_seconds_of_the_last_download():
    with Redis() as redis, Server(redis) as server:
        body = upload_ok(server, os.urandom(300000), uses=2)[0]
        stored = the_stored_file(server)
        before = read(stored)
        link = link_aside(stored)
        for _ in range(2):
            status, headers, data = server.request('GET', '/download/' + body['key'])
            assert status == 200 and hashlib.sha256(data).hexdigest() == headers['x-sha256']
        took = wait_overwritten(link, before, stored, timeout=5)
        print('burn -> overwritten in place: %.0f ms after the last download ended' % (took * 1000))
        assert os.path.getsize(link) == len(before)
        # unlinked (and its directory removed) just after the overwrite
        wait_until(lambda: os.listdir(trash(server)) == [], 5)
        wait_until(lambda: not os.path.exists(os.path.dirname(stored)), 5,
                   message='the empty <id[0:2]> directory removed')
        assert stored_files(server) == []
        wait_until(lambda: server.events('burn_shredded', 'shredder'), 5)
        status, _, _ = server.request('GET', '/download/' + body['key'])
        assert status == 410


def reading_a_new_upload(server, uses):
    """Upload 8 MiB and start a download that reads its first 64 KiB and pauses:
    (data, upload body, stored path, stored bytes, a hard link to them, the download)."""
    data = os.urandom(8 * MIB)
    body = upload_ok(server, data, uses=uses)[0]
    stored = the_stored_file(server)
    before = read(stored)
    link = link_aside(stored)
    slow = SlowDownload(server, body['key'], rcvbuf=16384)
    assert slow.status == 200, slow.headers
    slow.read(65536)
    return data, body, stored, before, link, slow


def test_burn_while_another_download_still_reads_waits_for_it_and_both_get_correct_bytes():
    with Redis() as redis, Server(redis, env=BIG) as server:
        data, body, stored, before, link, slow = reading_a_new_upload(server, uses=2)
        status, headers, fast = server.request('GET', '/download/' + body['key'])  # the last use
        assert status == 200 and fast == data
        assert not os.path.exists(stored)  # out of the namespace at once
        time.sleep(2.5)  # the shredder has looked at the trash several times meanwhile
        assert read(link) == before, 'overwritten while a download was reading it'
        got = slow.finish()
        assert hashlib.sha256(got).hexdigest() == slow.headers['x-sha256'] == body['sha256']
        assert got == data
        took = wait_overwritten(link, before, stored, timeout=5)
        print('burn with a reader: overwritten %.0f ms after the reader let go' % (took * 1000))


# --- expiry ---------------------------------------------------------------------

def test_expired_file_is_overwritten_in_place_within_10_seconds_of_its_expiry():
    with Redis() as redis, Server(redis) as server:
        body = upload_ok(server, os.urandom(200000))[0]
        stored = the_stored_file(server)
        file_id = os.path.basename(stored)
        before = read(stored)
        link = link_aside(stored)
        expiry = int(time.time())
        set_expired(redis, file_id, expiry)
        wait_overwritten(link, before, stored, timeout=10)
        late = time.time() - expiry
        print('expiry -> overwritten in place: %.0f ms after the expiry second began' % (late * 1000))
        assert late < 10
        wait_until(lambda: redis.command('ZSCORE', 'expiries', file_id) is None, 5,
                   message='the id to leave the expiries set once its file is gone')
        assert stored_files(server) == []
        line = wait_until(lambda: server.events('expired_shredded', 'shredder'), 5)[0]
        assert line['count'] == 1 and line['latency_ms'] < 10000, line
        status, _, _ = server.request('GET', '/download/' + body['key'])
        assert status == 404


def test_download_in_progress_at_expiry_still_receives_correct_bytes():
    with Redis() as redis, Server(redis, env=BIG) as server:
        data, body, stored, before, link, slow = reading_a_new_upload(server, uses=3)
        set_expired(redis, os.path.basename(stored), int(time.time()) - 5)
        time.sleep(3)  # several ticks: the shredder found it due but locked (it logs nothing then)
        assert os.path.exists(stored) and read(link) == before, 'shredded under a reader'
        got = slow.finish()
        assert got == data and hashlib.sha256(got).hexdigest() == slow.headers['x-sha256']
        took = wait_overwritten(link, before, stored, timeout=5)
        print('expiry with a reader: overwritten %.0f ms after the reader let go' % (took * 1000))


# --- orphans --------------------------------------------------------------------

def test_startup_sweep_shreds_old_orphans_and_spares_young_live_and_unknown_files():
    with Redis() as redis:
        store = path('storage', 'uploads')
        ids = {name: hashlib.md5(name.encode()).hexdigest()
               for name in ('old', 'young', 'live', 'burned')}
        files = {name: os.path.join(store, i[:2], i) for name, i in ids.items()}
        make_file(files['old'], b'o' * 50000, age_s=3600)
        make_file(files['young'], b'y' * 1000)
        make_file(files['live'], b'l' * 1000, age_s=3600)
        make_file(files['burned'], b'b' * 1000, age_s=3600)
        unknown = [os.path.join(store, 'README'), os.path.join(store, 'zz', ids['old']),
                   os.path.join(store, ids['young'][:2], 'not-an-id'),
                   os.path.join(store, ids['young'][:2], ids['old'])]  # id in the wrong directory
        for p in unknown:
            make_file(p, b'?', age_s=3600)
        future = int(time.time()) + 600
        redis.command('HSET', 'upload:{%s}' % ids['live'], 'u', '1', 'e', str(future), 'b', '0')
        redis.command('HSET', 'upload:{%s}' % ids['burned'], 'u', '0', 'e', str(future), 'b', '1')
        link = link_aside(files['old'])
        with Server(redis, env={'ORPHAN_AGE_MINUTES': '1'}) as server:
            wait_until(lambda: not os.path.exists(files['old']) and
                       not os.path.exists(files['burned']), 10)
            assert every_block_differs(b'o' * 50000, read(link))
            line = wait_until(lambda: [ln for ln in server.events('orphans_swept', 'shredder')
                                       if ln.get('where') == 'storage'], 5)[0]
            assert line['count'] == 2 and line['young'] == 1 and line['live'] == 1, line
            assert line['unknown_names'] == len(unknown), line
            for name in ('young', 'live'):
                assert os.path.exists(files[name]), name
            for p in unknown:
                assert os.path.exists(p), p
            if ids['old'][:2] != ids['young'][:2]:
                assert not os.path.exists(os.path.dirname(files['old'])), 'empty directory left'


def test_temp_leftovers_older_than_the_orphan_age_are_shredded_young_ones_spared():
    tmpdir = path('storage', 'temp')
    old = [os.path.join(tmpdir, 'up-abc123'), os.path.join(tmpdir, '.body.XyZ123')]
    young = os.path.join(tmpdir, 'up-young1')
    for p in old:
        make_file(p, b't' * 20000, age_s=120)
    make_file(young, b'y' * 100)
    link = link_aside(old[0])
    with Redis() as redis, Server(redis, env={'ORPHAN_AGE_MINUTES': '1'}) as server:
        wait_until(lambda: not any(os.path.exists(p) for p in old), 10)
        assert every_block_differs(b't' * 20000, read(link))
        assert os.path.exists(young)
        # Log lines reach the file through the master's pipe: poll, do not assume.
        lines = wait_until(lambda: [ln for ln in server.events('orphans_swept', 'shredder') if ln.get('where') == 'temp'],
                           5, message='the temp sweep logged')
        line = lines[0]
        assert line['count'] == 2 and line['young'] == 1, line


def test_store_down_defers_the_storage_sweep_and_keeps_the_heartbeat():
    redis = Redis(start=False)
    store = path('storage', 'uploads')
    orphan_id = 'ab' + '0' * 30
    orphan = os.path.join(store, 'ab', orphan_id)
    make_file(orphan, b'x' * 10000, age_s=3600)
    leftover = os.path.join(path('storage', 'temp'), 'up-crashed')
    make_file(leftover, b'x' * 100, age_s=3600)
    with Server(redis, env={'ORPHAN_AGE_MINUTES': '1'}, wait='up') as server:
        wait_until(lambda: not os.path.exists(leftover), 10)  # temp needs no store
        status, _, body = server.json('GET', '/health/')
        assert body['services']['scheduler'] == 'online', body
        # The storage sweep has been tried (and deferred) before we look at the orphan.
        wait_until(lambda: server.events('orphan_sweep_deferred', 'shredder'), 10, message='the sweep deferred')
        time.sleep(1.5)  # and retried at later ticks: it must keep refusing
        assert os.path.exists(orphan), 'treated as an orphan while the store could not say'
        assert len(server.events('orphan_sweep_deferred', 'shredder')) == 1
        assert len(server.events('store_down', 'shredder')) == 1
        redis.start()  # empty: the file is an orphan now, and is found without waiting
        wait_until(lambda: not os.path.exists(orphan), 10)
        wait_until(lambda: server.events('store_up', 'shredder'), 5)
        assert server.events('shred_failed', 'shredder') == []
        redis.stop()


def test_store_restarted_empty_turns_files_into_orphans_that_are_swept():
    with Redis() as redis, Server(redis, env={'ORPHAN_AGE_MINUTES': '1'}) as server:
        keys = [upload_ok(server, os.urandom(5000))[0]['key'] for _ in range(3)]
        files = stored_files(server)
        assert len(files) == 3
        old = time.time() - 3600
        for p in files:
            os.utime(p, (old, old))
        redis.stop()
        redis.start()
        # The restarted shredder's start-up sweep finds them (a running one also sweeps
        # when its store connection comes back).
        first = shredder_pid(server)
        os.kill(first, signal.SIGKILL)
        shredder_pid(server, not_pid=first)
        wait_until(lambda: stored_files(server) == [], 15)
        for key in keys:
            status, _, _ = server.request('GET', '/download/' + key)
            assert status == 404
        assert server.events('shred_failed', 'shredder') == []
        assert len(server.events('store_down', 'shredder')) <= 1


# --- crashes and stops ----------------------------------------------------------

def put_big_in_trash(server, size):
    """A file of zeros moved into the trash; (trash path, hard link to it)."""
    src = path('big')
    with open(src, 'wb') as f:
        f.truncate(size)
    link = link_aside(src)
    dst = os.path.join(trash(server), 'f' * 32 + '.0123456789abcdef')
    os.rename(src, dst)
    return dst, link


def wait_mid_shred(link):
    with open(link, 'rb') as f:
        wait_until(lambda: f.seek(0) == 0 and f.read(BLOCK) != bytes(BLOCK), 20, interval=0.002,
                   message='the shred to begin')


def test_shredder_killed_mid_shred_finishes_the_job_after_the_master_restarts_it():
    env = {'SECURE_SHRED_PASSES': '4'}
    with Redis() as redis, Server(redis, env=env) as server:
        first = shredder_pid(server)
        dst, link = put_big_in_trash(server, 512 * MIB)
        wait_mid_shred(link)
        os.kill(first, signal.SIGKILL)
        assert os.path.exists(dst), 'finished before it could be killed: use a bigger file'
        shredder_pid(server, not_pid=first)
        wait_until(lambda: not os.path.exists(dst), 40)
        assert os.path.getsize(link) == 512 * MIB
        assert not has_zero_block(link), 'a part of the file was never overwritten'
        wait_until(lambda: any(ln.get('kind') == 'shredder' for ln in server.events('child_died', 'master')), 5,
                   message='the shredder death logged')


def test_sigterm_mid_shred_stops_at_once_and_the_next_start_redoes_it():
    env = {'SECURE_SHRED_PASSES': '4'}
    with Redis() as redis:
        server = Server(redis, env=env)
        try:
            dst, link = put_big_in_trash(server, 512 * MIB)
            wait_mid_shred(link)
            start = time.monotonic()
            server.signal(signal.SIGTERM)
            assert server.wait_exit(10) == 0
            took = time.monotonic() - start
            assert took < 2.5, 'stop took %.1fs' % took
            assert os.path.exists(dst), 'finished before the stop: use a bigger file'
        finally:
            server.stop()
        with Server(redis, env=env) as again:
            wait_until(lambda: not os.path.exists(dst), 40)
            assert not has_zero_block(link)
            assert again.events('shred_failed', 'shredder') == []


# --- heartbeat ------------------------------------------------------------------

def test_health_reports_the_scheduler_offline_within_seconds_of_a_stopped_shredder():
    with Redis() as redis, Server(redis) as server:
        status, _, body = server.json('GET', '/health/')
        assert status == 200 and body['services']['scheduler'] == 'online', body
        pid = shredder_pid(server)
        os.kill(pid, signal.SIGSTOP)
        try:
            stopped = time.monotonic()

            def offline():
                st, _, b = server.json('GET', '/health/')
                return st == 503 and b['services']['scheduler'] == 'offline'
            wait_until(offline, 8, interval=0.2)
            print('scheduler offline %.1fs after SIGSTOP' % (time.monotonic() - stopped))
        finally:
            os.kill(pid, signal.SIGCONT)

        def online():
            st, _, b = server.json('GET', '/health/')
            return st == 200 and b['services']['scheduler'] == 'online'
        wait_until(online, 5, interval=0.1)


# --- least privilege --------------------------------------------------------------

def listening_inodes(port):
    """Inodes of the sockets listening on this TCP port (IPv4 and IPv6)."""
    inodes = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == '0A' and int(fields[1].rsplit(':', 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def socket_inodes(pid):
    inodes = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except FileNotFoundError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[len('socket:['):-1])
    return inodes


def memory_holds(pid, needle, region_max=64 * MIB):
    """Does any writable mapping of pid (up to region_max bytes each, which skips the
    sanitizer's reserved shadow) hold needle? Read through /proc/PID/mem."""
    with open('/proc/%d/maps' % pid) as maps, open('/proc/%d/mem' % pid, 'rb', 0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split('-'))
            if not fields[1].startswith('rw') or end - start > region_max:
                continue
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except OSError:
                continue
    return False


def test_the_shredder_holds_neither_the_listening_socket_nor_the_server_secret():
    with Redis() as redis, Server(redis, env={'WORKERS': '1'}) as server:
        listeners = listening_inodes(server.port)
        assert listeners, 'no socket listens on port %d' % server.port
        kids = server.children()
        worker, shredder = kids['workers'][0], kids['shredder']
        assert listeners <= socket_inodes(worker), 'the worker does not hold the listener'
        assert not listeners & socket_inodes(shredder), 'the shredder holds the listener'
        secret = server_secret(server)
        assert memory_holds(worker, secret), 'the secret is not found in the worker'
        assert not memory_holds(shredder, secret), 'the shredder holds the secret'
