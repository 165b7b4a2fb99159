"""Object storage (STORAGE_URL): the sealed file written as an object of a real S3 API
(OpenStack Swift with s3api, started once for the module on loopback) and read back
segment by segment, each authenticated before it is sent; a storage outage answers
503 with Retry-After and spends no use; burn and expiry delete the object; the
orphan sweep deletes objects no record names."""

import hashlib
import os
import re
import time

from harness import (HEADER, SEGMENT, TAG, Redis, Server, SlowDownload, Swift, download, drop_id,
                     lines_of, once, path, run, timeout, upload_ok, wait_until)

MIB = 1024 * 1024
PART = 5 * MIB
SWIFT = None


def setup_module():
    global SWIFT
    SWIFT = Swift()


def teardown_module():
    if SWIFT is not None:
        SWIFT.stop()


def s3_server(redis, bucket, **env):
    settings = SWIFT.settings(bucket)
    settings.update({'S3_PART_SIZE': str(PART), 'MAX_FILE_SIZE': str(64 * MIB), 'S3_DELETE_DELAY': '1'})
    settings.update({k: str(v) for k, v in env.items()})
    return Server(redis, env=settings)


def sealed_size(n):
    return HEADER + n + TAG * ((n + SEGMENT - 1) // SEGMENT)


def round_trip(server, bucket, data):
    body = upload_ok(server, data, filename='f.bin')[0]
    file_id = drop_id(server, body['key'])
    objects = SWIFT.objects(bucket)
    assert list(objects) == [file_id], objects.keys()
    assert len(objects[file_id]) == sealed_size(len(data))
    if len(data) >= 32:  # a byte or two of plaintext appears in random bytes by chance
        assert data[:32] not in objects[file_id]  # sealed, not the plaintext
    status, headers, got = download(server, body['key'])
    assert status == 200, (status, got[:200])
    assert got == data and headers['x-sha256'] == hashlib.sha256(data).hexdigest()
    return body, file_id


def test_files_of_one_byte_a_few_segments_one_part_and_several_parts_round_trip_through_object_storage():
    bucket = SWIFT.bucket()
    with Redis() as redis, s3_server(redis, bucket) as server:
        # exactly one part: the sealed file is S3_PART_SIZE to the byte
        one_part = PART - HEADER - TAG * (PART // (SEGMENT + TAG) + 1)
        assert sealed_size(one_part) == PART
        for size in (1, 3 * SEGMENT + 5, one_part, 2 * PART + 12345):
            data = os.urandom(size)
            body, file_id = round_trip(server, bucket, data)
            # one use: taken, and the object goes once the delete delay has passed
            status, _, _ = download(server, body['key'])
            assert status == 410
            wait_until(lambda: SWIFT.objects(bucket) == {}, 15,
                       message='the burned object of %d bytes to be deleted' % size)


def test_a_put_upload_round_trips_and_no_multipart_upload_is_left_behind():
    bucket = SWIFT.bucket()
    with Redis() as redis, s3_server(redis, bucket) as server:
        data = os.urandom(3 * PART)
        status, _, body = server.json('PUT', '/big.bin', body=data, headers={'Accept': 'application/json'})
        assert status == 201, body
        status, _, got = download(server, body['key'])
        assert status == 200 and got == data
        status, listing = SWIFT.s3('GET', '/%s?uploads=' % bucket)
        assert status == 200 and b'<UploadId>' not in listing, listing


def tamper(bucket, file_id, offset):
    obj = bytearray(SWIFT.objects(bucket)[file_id])
    obj[offset] ^= 1
    status, _ = SWIFT.s3('PUT', '/%s/%s' % (bucket, file_id), body=bytes(obj))
    assert status == 200


def test_a_tampered_object_fails_before_the_headers_or_aborts_mid_stream_and_never_sends_bad_bytes():
    bucket = SWIFT.bucket()
    with Redis() as redis, s3_server(redis, bucket) as server:
        data = os.urandom(20 * SEGMENT)
        body = upload_ok(server, data, uses=5)[0]
        file_id = drop_id(server, body['key'])
        tamper(bucket, file_id, HEADER + 100)  # the first segment
        status, _, got = download(server, body['key'])
        assert status == 500 and b'INTEGRITY_CHECK_FAILED' in got, (status, got[:200])

        body = upload_ok(server, data, uses=5)[0]
        file_id = drop_id(server, body['key'])
        tamper(bucket, file_id, HEADER + 10 * (SEGMENT + TAG) + 7)  # the eleventh
        slow = SlowDownload(server, body['key'])
        assert slow.status == 200
        assert not slow.read(slow.length - len(slow.body)), 'the whole body came'
        got = bytes(slow.body)
        slow.close()
        # the true prefix, up to (not into) the tampered segment
        assert 0 < len(got) <= 10 * SEGMENT and data.startswith(got), len(got)


def health_storage(server):
    status, _, body = server.json('GET', '/health/')
    return body['services']['storage']


def uses_left(redis, file_id):
    return int(redis.command('HGET', 'upload:{%s}' % file_id, 'u'))


def test_an_object_storage_outage_answers_503_with_retry_after_spends_no_use_and_health_says_offline():
    bucket = SWIFT.bucket()
    with Redis() as redis, s3_server(redis, bucket) as server:
        data = os.urandom(3 * SEGMENT)
        body = upload_ok(server, data, uses=2)[0]
        file_id = drop_id(server, body['key'])
        assert health_storage(server) == 'online'
        SWIFT.stop_object()
        try:
            for _ in range(3):
                status, headers, got = download(server, body['key'])
                assert status == 503 and headers.get('retry-after') == '5', (status, headers, got[:200])
            assert uses_left(redis, file_id) == 2
            status, headers, got = server.upload(os.urandom(1000))
            assert status == 503 and headers.get('retry-after') == '5', (status, got[:200])
            # each worker probes on its own: poll until the one answering has noticed
            wait_until(lambda: server.json('GET', '/health/')[0] == 503 and health_storage(server) == 'offline',
                       10, message='health to say storage: offline (503, degraded)')
        finally:
            SWIFT.start_object()
        wait_until(lambda: health_storage(server) == 'online', 30, message='health to say storage: online again')
        status, _, got = wait_until(lambda: (lambda r: r if r[0] == 200 else None)(download(server, body['key'])),
                                    30, message='a download once the storage is back')
        assert got == data
        assert uses_left(redis, file_id) == 1
        assert list(SWIFT.objects(bucket)) == [file_id]  # the failed upload left nothing


def test_a_burn_and_an_expiry_delete_the_object_after_the_delete_delay():
    bucket = SWIFT.bucket()
    with Redis() as redis, s3_server(redis, bucket, S3_DELETE_DELAY=3) as server:
        burned = upload_ok(server, os.urandom(1000), uses=3)[0]
        expired = upload_ok(server, os.urandom(1000), uses=3)[0]
        kept = upload_ok(server, os.urandom(1000), uses=3)[0]
        ids = {k: drop_id(server, b['key']) for k, b in (('burned', burned), ('expired', expired), ('kept', kept))}
        status, _, _ = server.request('DELETE', '/download/' + burned['key'],
                                      headers={'X-Delete-Token': burned['delete_token']})
        assert status == 204
        now = int(time.time())
        redis.command('HSET', 'upload:{%s}' % ids['expired'], 'e', str(now))
        redis.command('ZADD', 'expiries', str(now), ids['expired'])
        assert sorted(SWIFT.objects(bucket)) == sorted(ids.values())  # the delay has not passed
        began = time.time()
        wait_until(lambda: sorted(SWIFT.objects(bucket)) == [ids['kept']], 20,
                   message='the burned and the expired object to be deleted')
        print('deleted %.1f s after the burn and the expiry (S3_DELETE_DELAY=3)' % (time.time() - began))
        assert time.time() - now >= 3


def test_a_download_in_progress_completes_with_correct_bytes_while_another_takes_the_last_use_or_it_expires():
    bucket = SWIFT.bucket()
    with Redis() as redis, s3_server(redis, bucket, S3_DELETE_DELAY=30) as server:
        data = os.urandom(2 * PART + 1000)  # a multipart object: its parts are separate in Swift
        body = upload_ok(server, data, uses=2)[0]
        slow = SlowDownload(server, body['key'], rcvbuf=16384)
        assert slow.status == 200
        slow.read(65536)
        status, _, got = download(server, body['key'])  # the last use
        assert status == 200 and got == data
        got = slow.finish()
        assert got == data

        body = upload_ok(server, data, uses=2)[0]
        file_id = drop_id(server, body['key'])
        slow = SlowDownload(server, body['key'], rcvbuf=16384)
        assert slow.status == 200
        slow.read(65536)
        now = int(time.time())
        redis.command('HSET', 'upload:{%s}' % file_id, 'e', str(now))
        redis.command('ZADD', 'expiries', str(now), file_id)
        wait_until(lambda: download(server, body['key'])[0] == 404, 5, message='the key to answer as expired')
        assert slow.finish() == data


def refused(env, naming):
    code, _, stderr = run(['-t'], env=env)
    lines = lines_of(stderr)
    assert code == 1 and len(lines) == 1 and re.match(r'raven-zero: %s[=:]' % naming, lines[0]), (code, stderr)
    return lines[0]


@once
def test_bad_object_storage_settings_stop_startup_with_one_line_naming_the_setting_and_never_the_secret():
    good = {'STORAGE_URL': 's3://drop-files/prod', 'S3_ENDPOINT': 'http://127.0.0.1:9',
            'S3_ACCESS_KEY': 'AKIDEXAMPLE', 'S3_SECRET_KEY': 'wJalrXUtnFEMI'}
    code, _, stderr = run(['-t'], env=good)
    assert code == 0, stderr
    for url in ('http://bucket', 's3://B', 's3://ab', 's3://bucket/a//b', 's3://bucket/../x', 's3://bucket/a b'):
        refused(dict(good, STORAGE_URL=url), 'STORAGE_URL')
    refused(dict(good, S3_ENDPOINT='ftp://host'), 'S3_ENDPOINT')
    refused(dict(good, S3_ENDPOINT='http://host/path'), 'S3_ENDPOINT')
    refused(dict(good, S3_PART_SIZE='1M'), 'S3_PART_SIZE')
    refused(dict(good, MAX_FILE_SIZE='100G'), 'S3_PART_SIZE')  # over 1000 parts of 8 MiB
    refused(dict(good, S3_DELETE_DELAY='0'), 'S3_DELETE_DELAY')
    line = refused(dict(good, S3_SECRET_KEY='has space secret-value'), 'S3_SECRET_KEY')
    assert 'secret-value' not in line and '***' in line, line
    refused(dict(good, S3_SECRET_KEY=''), 'S3_SECRET_KEY')
    refused(dict(good, S3_ACCESS_KEY=''), 'S3_ACCESS_KEY')
    creds = path('s3.credentials')
    with open(creds, 'w') as f:
        f.write('# the store\nS3_ACCESS_KEY=test:tester\nS3_SECRET_KEY=wJalrXUtnFEMI\n')
    os.chmod(creds, 0o640)
    no_keys = dict(good, S3_ACCESS_KEY=None, S3_SECRET_KEY=None, S3_CREDENTIALS_FILE=creds)
    line = refused(no_keys, 'S3_CREDENTIALS_FILE')
    assert 'owner alone' in line and 'wJalr' not in line, line
    os.chmod(creds, 0o600)
    code, _, stderr = run(['-t'], env=no_keys)
    assert code == 0, stderr
    refused(dict(no_keys, S3_ACCESS_KEY='AKIDEXAMPLE'), 'S3_CREDENTIALS_FILE')


@timeout(180)
def test_the_orphan_sweep_deletes_old_objects_without_a_record_and_aborts_stale_multipart_uploads():
    bucket = SWIFT.bucket()
    env = {'ORPHAN_AGE_MINUTES': 1, 'CLEANUP_INTERVAL_MINUTES': 60}
    with Redis() as redis:
        with s3_server(redis, bucket, **env) as server:
            live = upload_ok(server, os.urandom(5000), expiry=60)[0]
            live_id = drop_id(server, live['key'])
        orphan_id = hashlib.sha256(b'orphan').hexdigest()[:32]
        assert SWIFT.s3('PUT', '/%s/%s' % (bucket, orphan_id), body=os.urandom(3000))[0] == 200
        assert SWIFT.s3('PUT', '/%s/README' % bucket, body=b'not ours')[0] == 200
        status, reply = SWIFT.s3('POST', '/%s/%s?uploads=' % (bucket, hashlib.sha256(b'half').hexdigest()[:32]))
        assert status == 200 and b'<UploadId>' in reply, reply
        made = time.time()
        # The sweep takes only what is older than ORPHAN_AGE_MINUTES (one minute at
        # least), by the store's clock: a new server's start-up sweep, a minute on.
        wait_until(lambda: time.time() - made > 62, 70, interval=1, message='the objects to be a minute old')
        young_id = hashlib.sha256(b'young').hexdigest()[:32]
        assert SWIFT.s3('PUT', '/%s/%s' % (bucket, young_id), body=os.urandom(3000))[0] == 200
        with s3_server(redis, bucket, LOG_PATH=path('logs', 'second.log'), **env) as server:
            line = wait_until(lambda: [e for e in server.events('orphans_swept', 'shredder')
                                       if e.get('where') == 'storage'], 30)[0]
            assert (line['count'], line['live'], line['young'], line['unknown_names'], line['uploads_aborted']) == \
                (1, 1, 1, 1, 1), line
            assert sorted(SWIFT.objects(bucket)) == sorted(['README', live_id, young_id])
            status, listing = SWIFT.s3('GET', '/%s?uploads=' % bucket)
            assert status == 200 and b'<UploadId>' not in listing, listing
            status, _, _ = download(server, live['key'])
            assert status == 200
