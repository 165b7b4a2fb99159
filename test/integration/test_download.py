"""GET /download/{key}: the headers, exactly `uses` downloads (also when they race),
404 for an unknown key, big files intact, and curl as a new user runs it."""

import http.client
import json
import os

from harness import (DOWNLOAD_CACHE_CONTROL, NOT_FOUND, SEGMENT, SPENT, TEXT, Redis, Server,
                     assert_common_headers, assert_json_error, curl, download, drop_id,
                     files_under, path, race, sha256, storage, stored_path, unknown_key,
                     upload_ok, wait_until)


def test_download_sends_the_headers_of_the_spec():
    with Redis() as redis, Server(redis) as server:
        up, _ = upload_ok(server, TEXT, filename='notes.txt', content_type='application/x-bogus')
        status, headers, got = download(server, up['key'])
        assert status == 200 and got == TEXT
        assert headers.get('content-type', '').split(';')[0] == 'text/plain', \
            'Content-Type is not the sniffed type: %r' % headers
        assert headers.get('content-length') == str(len(TEXT)), headers
        assert headers.get('x-sha256') == sha256(TEXT), headers
        assert headers.get('content-disposition') == \
            "attachment; filename=\"notes.txt\"; filename*=UTF-8''notes.txt", headers
        assert headers.get('content-encoding') == 'identity', headers
        assert 'transfer-encoding' not in headers, headers
        assert_common_headers('download 200', headers, cache_control=DOWNLOAD_CACHE_CONTROL)


def test_uses_3_allows_exactly_3_downloads_then_410_until_expiry():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(SEGMENT + 123)
        up, _ = upload_ok(server, data, uses=3, expiry=20)
        key = up['key']
        stored = stored_path(server, key)
        for n in range(3):
            assert os.path.exists(stored), 'stored file gone before download %d' % (n + 1)
            status, headers, got = download(server, key)
            assert status == 200 and got == data, 'download %d: %d' % (n + 1, status)
        assert not os.path.exists(stored), 'stored file still in STORAGE_PATH after the last use'
        assert files_under(storage(server)) == [], files_under(storage(server))
        for _ in range(3):
            status, headers, body = server.json('GET', '/download/' + key)
            assert_json_error(status, headers, body, 410, SPENT, 'download after the last use')
        status, _, st = server.json('GET', '/status/' + key)
        assert st['status'] == 'burned' and st['remaining_uses'] == 0, st
        ttl = redis.command('TTL', 'upload:{%s}' % drop_id(server, key))
        assert 20 * 60 - 30 <= ttl <= 20 * 60, 'tombstone TTL %r is not the original expiry' % ttl


def test_racing_downloads_exactly_uses_succeed():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(3 * SEGMENT + 999)
        # Several rounds: a race lost only now and then must still be caught.
        for uses in (2,) * 30 + (5,):
            up, _ = upload_ok(server, data, uses=uses)
            key = up['key']
            results = race(20, lambda: download(server, key, timeout=30))
            ok = [r for r in results if r[0] == 200]
            assert len(ok) == uses, '%d of 20 racing downloads of uses=%d succeeded: %r' % (
                len(ok), uses, sorted(r[0] for r in results))
            for status, headers, got in ok:
                assert got == data, 'a winning download got %d bytes, not the file' % len(got)
                assert headers.get('x-sha256') == sha256(data)
            for status, headers, got in results:
                if status != 200:
                    assert status == 410 and json.loads(got)['detail'] == SPENT, \
                        (status, got[:200])
            assert not os.path.exists(stored_path(server, key))
            status, _, st = server.json('GET', '/status/' + key)
            assert st['status'] == 'burned', st


def test_download_of_unknown_key_is_404():
    with Redis() as redis, Server(redis) as server:
        status, headers, body = server.json('GET', '/download/' + unknown_key())
        assert_json_error(status, headers, body, 404, NOT_FOUND, 'unknown download')


def test_curl_upload_then_curl_oj_download_works_as_a_new_user_tries_it():
    with Redis() as redis, Server(redis) as server:
        work = path('curl-up')
        os.makedirs(work)
        data = b''.join(b'line %d of the report\n' % i for i in range(400))
        with open(os.path.join(work, 'report.txt'), 'wb') as f:
            f.write(data)
        code, out, err = curl(['-F', 'file=@report.txt', '-F', 'uses=2',
                               'http://127.0.0.1:%d/upload/' % server.port], work)
        assert code == 0, (code, err)
        up = json.loads(out)
        assert up['filename'] == 'report.txt' and up['uses'] == 2, up
        assert up['sha256'] == sha256(data), up
        for n in (1, 2):
            into = path('curl-down-%d' % n)
            os.makedirs(into)
            code, out, err = curl(['-f', '-OJ', up['download_url']], into)
            assert code == 0, 'curl -OJ exit %d: %r' % (code, err)
            saved = os.listdir(into)
            assert saved == ['report.txt'], 'curl -OJ saved %r' % saved
            with open(os.path.join(into, 'report.txt'), 'rb') as f:
                assert f.read() == data
        status, _, _ = download(server, up['key'])
        assert status == 410


def test_curl_foj_no_clobber_lands_the_bytes_beside_a_file_of_the_same_name():
    # The README's download command. curl learns the name from Content-Disposition,
    # after the server has taken the use: plain -OJ then refuses to overwrite and the
    # use is lost; with --no-clobber the use is spent and the bytes land in NAME.1.
    with Redis() as redis, Server(redis) as server:
        data = b'the downloaded report\n' * 50
        up, _ = upload_ok(server, data, filename='report.txt', uses=3)
        into = path('clobber')
        os.makedirs(into)
        with open(os.path.join(into, 'report.txt'), 'wb') as f:
            f.write(b'mine, not to be overwritten\n')

        def uses_left():
            return server.json('GET', '/status/' + up['key'])[2]['remaining_uses']
        code, _, err = curl(['-OJ', up['download_url']], into)
        assert code == 23, 'plain curl -OJ over an existing file: exit %d %r' % (code, err)
        assert uses_left() == 2, 'the refused download did not spend its use'
        assert sorted(os.listdir(into)) == ['report.txt']
        code, _, err = curl(['-fOJ', '--no-clobber', up['download_url']], into)
        assert code == 0, 'curl -fOJ --no-clobber: exit %d %r' % (code, err)
        assert uses_left() == 1
        assert sorted(os.listdir(into)) == ['report.txt', 'report.txt.1'], os.listdir(into)
        with open(os.path.join(into, 'report.txt'), 'rb') as f:
            assert f.read() == b'mine, not to be overwritten\n'
        with open(os.path.join(into, 'report.txt.1'), 'rb') as f:
            assert f.read() == data
        assert download(server, up['key'])[0] == 200
        # Spent: -f keeps the 410 from becoming a file.
        code, _, err = curl(['-fOJ', '--no-clobber', up['download_url']], into)
        assert code == 22, 'curl -f on a 410: exit %d %r' % (code, err)
        assert sorted(os.listdir(into)) == ['report.txt', 'report.txt.1'], os.listdir(into)


def test_an_8_mib_download_matches_its_x_sha256():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(8 << 20)
        status, headers, up = server.upload(data, filename='big.bin')
        assert status == 201, up
        assert up['size'] == len(data) and up['sha256'] == sha256(data), up
        status, headers, got = download(server, up['key'], timeout=60)
        assert status == 200 and len(got) == len(data)
        assert headers.get('x-sha256') == sha256(got) == sha256(data), headers


def _cached(stored):
    """Whether the page cache holds the stored file's first page (a read that would
    wait for the disk fails with RWF_NOWAIT)."""
    fd = os.open(stored, os.O_RDONLY)
    try:
        os.preadv(fd, [bytearray(4096)], 0, os.RWF_NOWAIT)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _evict(stored):
    """Drop the file from the page cache. Pages just written may still sit in the
    per-CPU batch of the CPU that wrote them, which only that CPU's DONTNEED drains:
    so it is given from every CPU in turn."""
    cpus = os.sched_getaffinity(0)
    fd = os.open(stored, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages stay cached: write them back first
        for cpu in sorted(cpus):
            os.sched_setaffinity(0, {cpu})
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.sched_setaffinity(0, cpus)
        os.close(fd)


def test_a_file_no_longer_in_the_page_cache_is_read_from_the_disk_whole():
    # The worker reads what the page cache holds on its loop and leaves a read that
    # would wait for the disk to a helper thread: the first chunk, when the file was
    # evicted before the download, and the later ones, when it is evicted while the
    # client has read only the start (the kernel may have read the rest ahead before).
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(64 * SEGMENT + 4321)
        up, _ = upload_ok(server, data, uses=3)
        stored = stored_path(server, up['key'])
        # The advice is only advice: given again until the first page is gone.
        wait_until(lambda: (_evict(stored), not _cached(stored))[1], 10, interval=0.1,
                   message='the stored file to leave the page cache')
        status, headers, got = download(server, up['key'], timeout=30)
        assert status == 200 and got == data, 'download from the disk: %d' % status

        conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=30)
        conn.request('GET', '/download/' + up['key'])
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        got = resp.read(SEGMENT)
        _evict(stored)
        got += resp.read()
        conn.close()
        assert got == data, 'download evicted after its first segment: %d of %d bytes, %s' % (
            len(got), len(data), 'intact' if data.startswith(got) else 'different')

        status, headers, got = download(server, up['key'], timeout=30)
        assert status == 200 and got == data, 'download from the page cache: %d' % status
