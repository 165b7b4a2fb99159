"""DELETE /download/{key} with X-Delete-Token: 204 and the file burned at once (status
burned, download 410, the file out of the storage and then shredded); a wrong or
missing token 403, counted toward the client's block exactly like an unknown key; an
unknown key 404; burned already 410; a download running when the delete arrives
finishes with the right bytes; a blocked client 429; the store down 503."""

import os
import threading

from harness import (CLIENT, NOT_FOUND, OTHER, PREVIEW_NOT_FOUND, SPENT, Redis, Server,
                     SlowDownload, assert_blocked, assert_common_headers, assert_json_error,
                     assert_normal_miss, download, drop_id, files_under, miss, sha256,
                     stored_path, trash, unknown_key, upload_ok, wait_until)

FORBIDDEN = 'Invalid or missing delete token'
BURNED = 'Already burned'
GUARD = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}


def delete(server, key, token=None, **kw):
    headers = {} if token is None else {'X-Delete-Token': token}
    return server.request('DELETE', '/download/' + key, headers=headers, **kw)


def test_delete_with_its_token_burns_the_file_at_once_and_answers_204():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(200_000)
        up, _ = upload_ok(server, data, uses=3)
        key, stored = up['key'], stored_path(server, up['key'])
        assert os.path.exists(stored)
        status, headers, body = delete(server, key, up['delete_token'])
        assert (status, body) == (204, b''), (status, body)
        assert_common_headers('DELETE 204', headers)
        assert not os.path.exists(stored), 'the file is still in the storage after the delete'
        status, _, st = server.json('GET', '/status/' + key)
        assert status == 200 and st['status'] == 'burned' and st['remaining_uses'] == 0, st
        assert st['is_accessible'] is False and st['expires_at'] == up['expiry'], st
        status, headers, body = download(server, key)
        assert_json_error(status, headers, body, 410, SPENT, 'download after the delete')
        status, headers, body = server.request('GET', '/preview/' + key)
        assert_json_error(status, headers, body, 404, PREVIEW_NOT_FOUND, 'preview after delete')
        record = 'upload:{%s}' % drop_id(server, key)
        assert redis.command('HGET', record, 'salt') is None, 'the salt outlived the burn'
        assert redis.command('HGET', record, 'meta') is None, 'the metadata outlived the burn'
        wait_until(lambda: files_under(trash(server)) == [] and not os.path.exists(stored), 10,
                   ignore=(), message='the burned file shredded')


def test_a_wrong_or_missing_token_is_403_counted_like_an_unknown_key_and_spends_nothing():
    with Redis() as redis, Server(redis, env=GUARD) as server:
        data = b'guarded by a token\n'
        up, _ = upload_ok(server, data, uses=2)
        other, _ = upload_ok(server, b'another upload\n')
        key = up['key']
        for token in (None, '0' * 32, other['delete_token']):
            status, headers, body = delete(server, key, token, source_address=CLIENT)
            assert_json_error(status, headers, body, 403, FORBIDDEN, 'token %r' % token)
        # The third failure blocked the client, on every keyed endpoint and on DELETE.
        status, headers, body = miss(server, 'status', CLIENT)
        assert_blocked(status, headers, body, 60)
        status, headers, body = server.json('DELETE', '/download/' + key,
                                            headers={'X-Delete-Token': up['delete_token']},
                                            source_address=CLIENT)
        assert_blocked(status, headers, body, 60)
        # Nothing was spent or burned, for anyone.
        status, _, st = server.json('GET', '/status/' + key, source_address=OTHER)
        assert st['status'] == 'active' and st['remaining_uses'] == 2, st
        status, _, got = download(server, key, source_address=OTHER)
        assert status == 200 and got == data


def test_an_unknown_or_malformed_key_is_404_and_counted():
    with Redis() as redis, Server(redis, env=GUARD) as server:
        up, _ = upload_ok(server, b'not this one\n')
        for key in (unknown_key(), 'not-a-key'):
            status, headers, body = delete(server, key, up['delete_token'], source_address=CLIENT)
            assert_json_error(status, headers, body, 404, NOT_FOUND, 'DELETE of %r' % key)
        status, _, body = miss(server, 'status', CLIENT)
        assert_normal_miss('status', status, body)  # the third failure still answers
        status, headers, body = miss(server, 'status', CLIENT)
        assert_blocked(status, headers, body, 60)


def test_burned_already_answers_410_to_the_right_token_and_403_to_a_wrong_one():
    with Redis() as redis, Server(redis) as server:
        up, _ = upload_ok(server, b'twice\n', uses=2)
        assert delete(server, up['key'], up['delete_token'])[0] == 204
        status, headers, body = delete(server, up['key'], up['delete_token'])
        assert_json_error(status, headers, body, 410, BURNED, 'a second delete')
        status, headers, body = delete(server, up['key'], 'f' * 32, source_address=CLIENT)
        assert_json_error(status, headers, body, 403, FORBIDDEN, 'a wrong token when burned')
        # Burned by its last download: the same.
        up, _ = upload_ok(server, b'downloaded\n', uses=1)
        assert download(server, up['key'])[0] == 200
        status, headers, body = delete(server, up['key'], up['delete_token'])
        assert_json_error(status, headers, body, 410, BURNED, 'a delete after the last use')


def test_a_download_running_when_the_delete_arrives_finishes_with_the_right_bytes():
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': '16M'}) as server:
        data = os.urandom(8 << 20)
        up, _ = upload_ok(server, data, filename='big.bin', uses=3)
        key = up['key']
        slow = SlowDownload(server, key)
        try:
            assert slow.status == 200, slow.status
            assert slow.read(1 << 20)
            assert delete(server, key, up['delete_token'])[0] == 204
            assert not os.path.exists(stored_path(server, key))
            # Held open by the download: in the trash, and not overwritten under it.
            assert len(files_under(trash(server))) == 1, files_under(trash(server))
            status, _, _ = download(server, key)
            assert status == 410, 'a download after the delete got %d' % status
            got = slow.finish()
        finally:
            slow.close()
        assert got == data and sha256(got) == slow.headers['x-sha256'], 'bytes differ'
        wait_until(lambda: files_under(trash(server)) == [], 10, ignore=(),
                   message='the file shredded once the download let go')


def test_downloads_racing_a_delete_get_the_whole_file_or_410_never_bad_bytes():
    with Redis() as redis, Server(redis) as server:
        data = os.urandom(3 * 65536 + 17)
        for _ in range(10):
            # Fewer downloads than uses: only the delete can end it.
            up, _ = upload_ok(server, data, uses=5)
            barrier = threading.Barrier(5)
            results = []

            def fetch():
                barrier.wait(10)
                results.append(download(server, up['key'], timeout=30))

            def burn():
                barrier.wait(10)
                results.append(('delete', delete(server, up['key'], up['delete_token'])[0]))
            threads = [threading.Thread(target=fetch) for _ in range(4)]
            threads.append(threading.Thread(target=burn))
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert len(results) == 5, 'a request did not finish'
            assert ('delete', 204) in results, [r[:2] for r in results]
            for r in results:
                if r[0] == 'delete':
                    continue
                status, _, body = r
                assert status in (200, 410), status
                if status == 200:
                    assert body == data, 'a download racing the delete got other bytes'
            assert download(server, up['key'])[0] == 410


def test_delete_with_the_store_down_is_503():
    with Redis() as redis, Server(redis) as server:
        up, _ = upload_ok(server, b'store away\n')
        stored = stored_path(server, up['key'])  # its name needs the secret, in the store
        redis.stop()
        wait_until(lambda: delete(server, up['key'], up['delete_token'])[0] == 503, 10,
                   message='503 once the store is down')
        status, headers, body = delete(server, up['key'], up['delete_token'])
        assert_json_error(status, headers, body, 503, 'Service temporarily unavailable',
                          'DELETE with the store down')
        assert os.path.exists(stored), 'deleted without the store'


def test_a_preflight_from_another_origin_allows_delete_with_its_token_header():
    with Redis() as redis, Server(redis) as server:
        status, headers, _ = server.request('OPTIONS', '/download/' + unknown_key(), headers={
            'Origin': 'https://app.example', 'Access-Control-Request-Method': 'DELETE',
            'Access-Control-Request-Headers': 'x-delete-token'})
        assert status == 204, status
        assert_common_headers('preflight of a DELETE', headers)
        assert 'DELETE' in headers['access-control-allow-methods'], headers
        assert 'X-Delete-Token' in headers['access-control-allow-headers'], headers
