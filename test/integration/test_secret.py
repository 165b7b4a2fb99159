"""The server secret. By default it lives in the store (created once with SET NX), so
the data volume never holds it: a copy of the volume alone decrypts nothing and names
no key. Pinned in a file only off the data volume (tmpfs, a systemd credential), never
through a link, owned by this user or root, mode 0600 or stricter. In memory: one
locked page left out of core dumps, in processes that are not dumpable and dump no
core; the shredder holds none. An upload that straddles a store restart, or a store
emptied under it, is refused (503) and records nothing, never a file under a secret
the store no longer has."""

import hashlib
import hmac
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading

from harness import (MIB, SEGMENT, Redis, Server, download, drop_id, files_under, lines_of, path,
                     run, server_secret, storage, temp, temp_files, timeout, tmp,
                     unnamed_temp_files, upload_ok, wait_until)

ASAN = os.environ.get('RZ_FLAVOUR') == 'asan'  # AddressSanitizer makes mlock a no-op
NOBODY = 65534


def mac(secret, key):
    return hmac.new(secret, key.encode(), hashlib.sha256).digest()[:16].hex()


def as_bytes(v):
    return v.encode() if isinstance(v, str) else v  # RESP strings round-trip exactly


def holders(root, needles, skip=()):
    """Files under root (outside the directories in skip) holding any of needles."""
    out = []
    for p in files_under(root):
        if any(p.startswith(s + os.sep) for s in skip):
            continue
        try:
            with open(p, 'rb') as f:
                content = f.read()
        except FileNotFoundError:
            continue  # the shredder took it (a burned file in trash/) since the listing
        out += [(p, n[:8]) for n in needles if n in content]
    return out


def forms(secret):
    return [secret, secret.hex().encode(), secret.hex().upper().encode()]


def memory_hits(pid, needle):
    """The VmFlags of the mapping around each place pid's writable memory holds needle."""
    maps, flags = [], {}
    with open('/proc/%d/smaps' % pid) as f:
        for line in f:
            m = re.match(r'^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ', line)
            if m:
                maps.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
            elif line.startswith('VmFlags:') and maps:
                flags[maps[-1]] = line.split(':', 1)[1].split()
    hits = []
    with open('/proc/%d/mem' % pid, 'rb', 0) as mem:
        for region in maps:
            start, end, perms = region
            if not perms.startswith('rw') or end - start > 256 * MIB:
                continue  # the sanitizers' shadow is reserved, not ours
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except OSError:
                continue
            hits += [flags.get(region, [])] * data.count(needle)
    return hits


def assert_kept_in_a_locked_page(what, pid, secret):
    hits = memory_hits(pid, secret)
    assert hits, '%s (pid %d) does not hold the secret' % (what, pid)
    for vmflags in hits:
        assert 'dd' in vmflags, '%s holds the secret in a mapping core dumps include: %r' % (what, vmflags)
        assert ASAN or 'lo' in vmflags, '%s holds the secret in memory that may be swapped: %r' % (
            what, vmflags)


def core_limit(pid):
    with open('/proc/%d/limits' % pid) as f:
        line = next(x for x in f if x.startswith('Max core file size'))
    return line.split()[4:6]


def shm_dir():
    """A fresh directory on tmpfs, or None if /dev/shm is not another file system."""
    if not os.path.isdir('/dev/shm') or os.stat('/dev/shm').st_dev == os.stat(tmp()).st_dev:
        return None
    return tempfile.mkdtemp(prefix='rz-secret-', dir='/dev/shm')


def refused(env, why):
    """The server does not start, and says why in one line naming SECRET_PATH."""
    code, _, stderr = run([], env=env)
    lines = lines_of(stderr)
    assert code == 1, 'started (%s): %r' % (code, stderr)
    assert len(lines) == 1, stderr
    assert lines[0].startswith('raven-zero: SECRET_PATH=%s: ' % env['SECRET_PATH']), lines
    assert why in lines[0], (why, lines[0])


def test_the_secret_lives_in_the_store_and_nothing_on_the_data_volume_holds_it():
    with Redis() as redis, Server(redis) as server:
        ups = [upload_ok(server, os.urandom(n), uses=2)[0] for n in (10, SEGMENT + 7, 3 * MIB)]
        burned, _ = upload_ok(server, b'burn me')
        assert download(server, burned['key'])[0] == 200  # renamed into the trash, then shredded
        secret = as_bytes(redis.command('GET', 'secret'))
        assert isinstance(secret, bytes) and len(secret) == 32, secret
        names = {os.path.basename(p) for p in files_under(storage(server))}
        assert {mac(secret, u['key']) for u in ups} <= names, 'ids are not HMAC(store secret, key)'
        assert not os.path.exists(path('storage', 'secret.key'))
        redis_dirs = [os.path.join(tmp(), d) for d in os.listdir(tmp()) if d.startswith('redis-')]
        assert not holders(tmp(), forms(secret), skip=redis_dirs), \
            'files of the test (volume, temp, trash, log, output) hold the secret'


def test_the_data_volume_alone_decrypts_nothing_and_identifies_no_key():
    files = {}
    with Redis() as redis:
        with Server(redis) as server:
            for n in (1000, 2 * SEGMENT + 3):
                data = os.urandom(n)
                files[upload_ok(server, data, uses=3)[0]['key']] = data
            secret = server_secret(server)
            records = {k: as_bytes(redis.command('DUMP', 'upload:{%s}' % drop_id(server, k)))
                       for k in files}
        shutil.copytree(path('storage'), path('stolen'))
    # The store is gone (nothing persisted): what the thief has is the volume.
    stolen = path('stolen')
    names = {os.path.basename(p) for p in files_under(stolen)}
    assert not holders(stolen, forms(secret)), 'the volume holds the secret'
    for key in files:
        assert mac(secret, key) in names  # with the secret the file is found...
        guesses = [mac(b'', key), mac(bytes(32), key), mac(os.urandom(32), key),
                   hashlib.sha256(key.encode()).hexdigest()[:32],
                   hashlib.md5(key.encode()).hexdigest()]
        assert not names & set(guesses), 'a file is named by its key alone'  # ...without, not

    def attempt(secret_in_store, where):
        """The stolen volume and even the records, served under secret_in_store."""
        shutil.copytree(stolen, path(where))
        uploads = os.path.join(path(where), 'uploads')
        with Redis() as store:
            store.command('SET', 'secret', secret_in_store)
            for key, dump in records.items():
                old, new = mac(secret, key), mac(secret_in_store, key)
                os.makedirs(os.path.join(uploads, new[:2]), exist_ok=True)
                os.rename(os.path.join(uploads, old[:2], old), os.path.join(uploads, new[:2], new))
                store.command('RESTORE', 'upload:{%s}' % new, 0, dump)
            env = {'STORAGE_PATH': uploads, 'TEMP_PATH': os.path.join(path(where), 'temp')}
            with Server(store, env=env) as server:
                return {key: download(server, key) for key in files}

    for key, (status, _, body) in attempt(os.urandom(32), 'wrong').items():
        assert status == 500, 'a wrong secret opened %s: %d' % (key, status)
        assert files[key][:64] not in body
    for key, (status, _, body) in attempt(secret, 'right').items():
        assert status == 200 and body == files[key], 'the control failed: %d' % status


def test_a_pinned_secret_on_the_data_volume_is_refused_in_one_line():
    for where in (path('storage', 'secret.key'), path('elsewhere', 'secret.key')):
        refused({'SECRET_PATH': where}, 'on the file system of STORAGE_PATH')
        assert not os.path.exists(where), 'a refused secret was created'
    code, _, stderr = run([], env={'SECRET_PATH': path('storage', 'uploads', 'k')})
    assert code == 1 and 'expected a path outside STORAGE_PATH' in stderr, stderr


def test_a_pinned_secret_through_a_link_of_another_owner_or_open_to_others_is_refused():
    d = shm_dir()
    if d is None:
        print('SKIP: /dev/shm is not a tmpfs of its own')
        return
    try:
        good = os.path.join(d, 'good.key')
        with open(good, 'wb') as f:
            f.write(os.urandom(32))
        os.chmod(good, 0o600)
        link = os.path.join(d, 'link.key')
        os.symlink(good, link)
        refused({'SECRET_PATH': link}, 'a symbolic link')
        for mode in (0o640, 0o604, 0o660):
            os.chmod(good, mode)
            refused({'SECRET_PATH': good}, 'mode %04o gives group or others access' % mode)
        os.chmod(good, 0o600)
        if os.geteuid() == 0:
            os.chown(good, NOBODY, NOBODY)
            refused({'SECRET_PATH': good}, 'owned by uid %d' % NOBODY)
        else:
            print('SKIP: (part) not root: cannot give the file away')
    finally:
        shutil.rmtree(d)


@timeout(180)  # every writable mapping of every process is read: ~300 MiB each under ASan
def test_a_pinned_secret_off_the_data_volume_is_used_kept_locked_and_never_stored():
    d = shm_dir()
    if d is None:
        print('SKIP: /dev/shm is not a tmpfs of its own')
        return
    try:
        pinned = os.path.join(d, 'secret.key')
        with Redis() as redis, Server(redis, env={'SECRET_PATH': pinned}) as server:
            st = os.stat(pinned)
            assert st.st_mode & 0o777 == 0o600 and st.st_size == 32, oct(st.st_mode)
            with open(pinned, 'rb') as f:
                secret = f.read()
            up, _ = upload_ok(server, b'pinned', uses=2)
            assert os.path.exists(os.path.join(storage(server), mac(secret, up['key'])[:2],
                                               mac(secret, up['key'])))
            assert download(server, up['key'])[2] == b'pinned'
            status, _, st = server.json('GET', '/status/' + up['key'])  # read with no secret check
            assert status == 200 and st['status'] == 'active' and st['remaining_uses'] == 1, st
            assert redis.command('EXISTS', 'secret') == 0, 'a pinned secret went into the store'
            kids = server.full_tree()
            assert_kept_in_a_locked_page('the master', server.pid, secret)
            for w in kids['workers']:
                assert_kept_in_a_locked_page('worker %d' % w, w, secret)
            assert not memory_hits(kids['shredder'], secret), 'the shredder holds the secret'
    finally:
        shutil.rmtree(d)


@timeout(180)  # every writable mapping of every process is read: ~300 MiB each under ASan
def test_the_store_secret_sits_only_in_a_locked_page_of_each_worker_and_no_core_is_dumped():
    with Redis() as redis:
        secret = os.urandom(32)  # another node made it: no worker here offers one
        redis.command('SET', 'secret', secret)
        with Server(redis) as server:
            for i in range(5):
                up, _ = upload_ok(server, os.urandom(SEGMENT + i))
                assert download(server, up['key'])[0] == 200
            server.request('GET', '/status/' + up['key'])
            kids = server.full_tree()
            for w in kids['workers']:
                assert_kept_in_a_locked_page('worker %d' % w, w, secret)
            for what, pid in (('the master', server.pid), ('the shredder', kids['shredder'])):
                assert not memory_hits(pid, secret), '%s holds the secret' % what
            for pid in [server.pid, kids['shredder']] + kids['workers']:
                assert core_limit(pid) == ['0', '0'], (pid, core_limit(pid))


def test_no_process_of_the_server_is_dumpable():
    """Not dumpable: the kernel gives /proc/PID/environ (and mem, maps...) to root, and
    nobody else of the same user may read or trace the process. Seen from outside by
    running the server as an unprivileged user: a dumpable process of that user (the
    control) owns its files."""
    if os.geteuid() != 0 or not shutil.which('setpriv'):
        prefix, user = [], os.geteuid()
    else:
        prefix = ['setpriv', '--reuid=%d' % NOBODY, '--regid=%d' % NOBODY, '--clear-groups']
        user = NOBODY
        os.chmod(tmp(), 0o711)
        for d in ('storage', 'logs'):
            os.makedirs(path(d), exist_ok=True)
            os.chown(path(d), NOBODY, NOBODY)
    if user == 0:
        print('SKIP: running as root without setpriv: every owner is root')
        return
    control = subprocess.Popen(prefix + ['sleep', '30'])
    try:
        wait_until(lambda: os.stat('/proc/%d/environ' % control.pid).st_uid == user, 5,
                   message='the control to run as %d' % user)
        with Redis() as redis, Server(redis, prefix=prefix, make_dirs=False) as server:
            kids = server.full_tree()
            for pid in [server.pid, kids['shredder']] + kids['workers']:
                with open('/proc/%d/status' % pid) as f:
                    uid = next(x for x in f if x.startswith('Uid:')).split()[1]
                assert int(uid) == user, (pid, uid)
                assert os.stat('/proc/%d/environ' % pid).st_uid == 0, 'pid %d is dumpable' % pid
                assert core_limit(pid) == ['0', '0'], (pid, core_limit(pid))
            up, _ = upload_ok(server, b'served as nobody')
            assert download(server, up['key'])[2] == b'served as nobody'
    finally:
        control.kill()
        control.wait()


def test_an_upload_straddling_a_store_restart_fails_cleanly_and_records_nothing():
    env = {'WORKERS': '1', 'MAX_FILE_SIZE': str(64 * MIB)}
    data = os.urandom(48 * MIB)
    with Redis() as redis, Server(redis, env=env) as server:
        worker = server.full_tree()['workers'][0]
        before = server_secret(server)

        def sealing():
            return ([n for n in os.listdir(temp(server)) if n.startswith('up-')] +
                    unnamed_temp_files(server))
        caught = None
        for _ in range(5):
            result = {}
            sender = threading.Thread(target=lambda: result.update(
                answer=server.upload(data, filename='big.bin')), daemon=True)
            sender.start()
            wait_until(sealing, 30, interval=0.001, message='the upload to be sealed')
            os.kill(worker, signal.SIGSTOP)  # mid-seal: sealed under the old secret
            try:
                caught = sealing()
                if caught:  # still being sealed, so not recorded yet
                    redis.stop()
                    redis.start()
            finally:
                os.kill(worker, signal.SIGCONT)
            sender.join(60)
            if caught:
                break
        assert caught, 'never caught an upload mid-seal'
        status, headers, body = result['answer']
        assert status == 503 and 'retry-after' in headers, (status, headers, body)
        assert body == {'detail': 'Service temporarily unavailable'}, body
        wait_until(lambda: not sealing() and not files_under(storage(server)), 5,
                   message='nothing left of the refused upload')
        assert not redis.command('KEYS', 'upload:*'), 'the refused upload was recorded'
        wait_until(lambda: server.json('GET', '/health/')[0] == 200, 5, message='health')
        after = server_secret(server)
        assert after != before, 'the restarted store kept the old secret?'
        up, _ = upload_ok(server, b'after the restart')
        assert redis.command('EXISTS', 'upload:{%s}' % mac(after, up['key'])) == 1
        assert download(server, up['key'])[2] == b'after the restart'


def test_an_upload_made_under_a_secret_the_store_no_longer_has_is_refused_not_recorded():
    with Redis() as redis, Server(redis, env={'WORKERS': '1'}) as server:
        first, _ = upload_ok(server, b'first')
        old = server_secret(server)
        redis.command('FLUSHALL')  # emptied under a live connection: no reconnect to notice
        status, headers, body = server.upload(b'sealed under the old secret')
        assert status == 503 and 'retry-after' in headers, (status, body)
        assert not files_under(storage(server)) or all(
            os.path.basename(p) == mac(old, first['key']) for p in files_under(storage(server)))
        assert not redis.command('KEYS', 'upload:*'), 'recorded under a secret the store lost'
        # The worker logged it before it answered; the master writes it to LOG_PATH after.
        wait_until(lambda: server.events('store_secret_changed'), 5, message='the change noticed')
        new = server_secret(server)
        assert new != old
        up, _ = upload_ok(server, b'under the new secret')
        assert redis.command('EXISTS', 'upload:{%s}' % mac(new, up['key'])) == 1
        assert download(server, up['key'])[2] == b'under the new secret'
        assert download(server, first['key'])[0] == 404  # its record went with the store
        # A look-up under a lost secret is refused too, and counts no failure.
        redis.command('FLUSHALL')
        status, headers, _ = server.json('GET', '/status/' + up['key'])
        assert status == 503 and 'retry-after' in headers, status
        assert not redis.command('KEYS', 'fail:*'), 'a stale look-up counted as a failure'


def test_a_delete_or_a_put_under_a_secret_the_store_no_longer_has_is_refused_and_writes_nothing():
    with Redis() as redis, Server(redis, env={'WORKERS': '1'}) as server:
        up, _ = upload_ok(server, b'not to be burned under another secret', uses=2)
        record = 'upload:{%s}' % mac(server_secret(server), up['key'])
        stored = files_under(storage(server))
        # Replaced under a live connection: the worker still derives ids under the old one.
        redis.command('SET', 'secret', os.urandom(32))
        status, headers, body = server.request('DELETE', '/download/' + up['key'],
                                               headers={'X-Delete-Token': up['delete_token']})
        assert status == 503 and 'retry-after' in headers, (status, body)
        assert as_bytes(redis.command('HGET', record, 'b')) == b'0', 'burned under a stale secret'
        assert redis.command('HGET', record, 'salt') is not None, 'the salt went'
        assert not redis.command('KEYS', 'fail*'), 'a stale delete counted as a failure'
        assert files_under(storage(server)) == stored, 'the file moved'
        wait_until(lambda: len(server.events('store_secret_changed')) == 1, 5,
                   message='the change noticed')
        wait_until(lambda: server.json('GET', '/health/')[0] == 200, 5, message='health')
        # Again, now under a PUT: sealed under the secret the worker holds, not recorded.
        redis.command('SET', 'secret', os.urandom(32))
        status, headers, body = server.request('PUT', '/put.bin', body=b'sealed under a lost secret')
        assert status == 503 and 'retry-after' in headers, (status, body)
        assert redis.command('KEYS', 'upload:*') == [record], 'the refused PUT was recorded'
        wait_until(lambda: files_under(storage(server)) == stored and not temp_files(server),
                   5, message='nothing left of the refused PUT')
        wait_until(lambda: len(server.events('store_secret_changed')) == 2, 5,
                   message='the change noticed')


def test_a_secret_of_the_wrong_shape_in_the_store_stops_service_until_it_is_removed():
    with Redis() as redis:
        redis.command('SET', 'secret', 'not 32 bytes')
        with Server(redis, wait='up') as server:
            status, _, body = server.json('GET', '/health/')
            assert status == 503 and body['services']['redis'] == 'offline', body
            status, headers, body = server.upload(b'x')
            assert status == 503 and 'retry-after' in headers, (status, body)
            status, headers, _ = server.json('GET', '/status/abacus-abdomen-abide')
            assert status == 503 and 'retry-after' in headers, status
            wait_until(lambda: len(server.events('store_secret_invalid')) == 2, 10,
                       message='each worker to say so')
            assert as_bytes(redis.command('GET', 'secret')) == b'not 32 bytes', 'overwritten'
            redis.command('DEL', 'secret')
            # Each worker drops its connection and reads the secret on the next one.
            wait_until(lambda: len(server.events('store_up')) == 2, 10, message='both workers back')
            assert server.json('GET', '/health/')[0] == 200
            up, _ = upload_ok(server, b'ok again')
            assert download(server, up['key'])[2] == b'ok again'
            assert len(server.events('store_secret_invalid')) == 2, 'said more than once'


def test_a_secret_file_of_an_earlier_version_is_named_in_a_warning_and_never_read():
    old = path('storage', 'secret.key')
    os.makedirs(os.path.dirname(old), exist_ok=True)
    with open(old, 'wb') as f:
        f.write(os.urandom(32))
    os.chmod(old, 0o600)
    with open(old, 'rb') as f:
        stale = f.read()
    with Redis() as redis, Server(redis) as server:
        warned = wait_until(lambda: server.events('secret_file_unused'), 5, message='the warning')
        assert old in warned[0]['message'] and 'shred' in warned[0]['message'], warned
        up, _ = upload_ok(server, b'new')
        assert drop_id(server, up['key']) != mac(stale, up['key'])
        assert download(server, up['key'])[2] == b'new'


def test_a_reload_never_changes_the_secret():
    d = shm_dir() or path('elsewhere')
    conf = path('raven.yaml')
    with open(conf, 'w') as f:
        f.write('secret_path: ""\n')
    try:
        with Redis() as redis, Server(redis, args=['-c', conf]) as server:
            up, _ = upload_ok(server, b'before', uses=2)
            with open(conf, 'w') as f:
                f.write('secret_path: %s/secret.key\n' % d)
            server.signal(signal.SIGHUP)
            failed = wait_until(lambda: server.events('reload_failed'), 10, message='the refusal')
            assert 'SECRET_PATH=' in failed[0]['message'], failed
            assert download(server, up['key'])[2] == b'before'
            assert not os.path.exists(os.path.join(d, 'secret.key'))
    finally:
        if d.startswith('/dev/shm/'):
            shutil.rmtree(d)
