"""Request bodies that would fill the disk, then memory: the bytes held per client and
per worker are capped, so are the spill files and the bodies one client sends at once;
an HTTP/2 body has a deadline like an HTTP/1 request; a client lately answered 429 is
refused at the head of its next body. Each is answered while the body still arrives:
over HTTP/2 with the JSON answer and the stream closed, over HTTP/1 with the JSON
answer and the connection closed."""

import json
import os
import time

from harness import (CLIENT, H2, OTHER, Redis, Server, assert_json_error, assert_nobody_replaced,
                     chunked, in_one_window, multipart, one_response, raw_connect, read_response,
                     retry_after, sealed_bytes, spill_maps, upload_ok, wait_until)
from test_openapi import check_response, spec

MIB = 1 << 20
THIRD = '127.0.0.4'
TOO_MUCH = 'Too much request data in progress, try again later'


def head_of(body, ctype, target='/upload/', forwarded=None):
    extra = 'X-Forwarded-For: %s\r\n' % forwarded if forwarded else ''
    return ('POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n'
            % (target, ctype, len(body), extra)).encode()


class PartialUpload:
    """An HTTP/1 upload whose head and first `sent` bytes of body go out now; the rest
    when the test says. A Content-Length upload is sealed as it arrives; one sent
    chunked, or whose form names no boundary, arrives whole and spills (the README)."""

    def __init__(self, server, source, size, sent, forwarded=None, put=None, chunked_body=False, ctype=None):
        """put: a file name, to send the file as the raw body of PUT /upload/NAME."""
        self.method = 'PUT' if put else 'POST'
        if put:
            self.body = os.urandom(size)
            head = ('PUT /upload/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n'
                    % (put, size)).encode()
        else:
            self.body, form_type = multipart(os.urandom(size))
            head = head_of(self.body, ctype or form_type, forwarded=forwarded)
        if chunked_body:
            self.body = chunked(self.body, 64 * 1024)
            head = b'\r\n'.join(line for line in head.split(b'\r\n') if not line.startswith(b'Content-Length:'))
            head = head.replace(b'Host: 127.0.0.1', b'Host: 127.0.0.1\r\nTransfer-Encoding: chunked')
        self.sock = raw_connect(server, source)
        try:
            self.sock.sendall(head + self.body[:sent])
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered at the head and closed before all of it was sent: answer_now reads it
        self.sent = sent

    def answer_now(self, timeout):
        """(status, headers, body) of an answer that comes while the body is incomplete,
        the connection closed after it."""
        received = b''
        self.sock.settimeout(timeout)
        try:
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except ConnectionResetError:
                    break  # the answer came first; the reset of a connection refused mid-body
                if not chunk:
                    break
                received += chunk
        finally:
            self.sock.close()
        assert received, 'no answer before the body was complete'
        return one_response(received, 'an answer before the body was complete')

    def finish(self):
        self.sock.sendall(self.body[self.sent:])
        try:
            return read_response(self.sock, self.method)
        finally:
            self.sock.close()


def settled(server):
    """Once this round trip is answered, the worker has read what was sent to it before
    (its event loop took the earlier sockets' data first): a body sent after it is the
    newer, the one refused over a cap."""
    assert server.request('HEAD', '/openapi.json', source_address=THIRD)[0] == 200


def h2_upload_head(h2, stream, body, ctype):
    return h2.request_head(stream, 'POST', '/upload/', [('content-type', ctype),
                                                        ('content-length', str(len(body)))])


def store_commands(redis):
    """Commands the store has run, INFO itself left out."""
    stats = redis.command('INFO', 'commandstats')
    return sum(int(line.split('calls=')[1].split(',')[0]) for line in stats.splitlines()
               if line.startswith('cmdstat_') and not line.startswith('cmdstat_info:'))


def detail_of(stream):
    return json.loads(stream['body'])['detail']


def test_eight_http2_streams_left_open_keep_only_what_one_client_may_hold():
    # The attack: one connection, eight uploads of 9.5 MiB each, no END_STREAM. libh2o
    # alone kept them all (8 spill files of 16 MiB) and never cut them off. Now four
    # (MAX_UPLOADS_PER_CLIENT) are kept, the newer four refused at once, and the kept
    # ones end at BODY_TIMEOUT like an HTTP/1 request would.
    env = {'WORKERS': '1', 'BODY_TIMEOUT': '8', 'IDLE_TIMEOUT': '30'}
    with Redis() as redis, Server(redis, env=env) as server:
        before = server.full_tree()
        worker = before['workers'][0]
        body, ctype = multipart(os.urandom(9 * MIB + MIB // 2))
        h2 = H2(server, CLIENT)
        try:
            streams = [1 + 2 * i for i in range(8)]
            started = time.monotonic()
            h2.send(b''.join(h2_upload_head(h2, s, body, ctype) + h2.data_frames(s, body[:16384])
                             for s in streams))
            refused, kept = streams[4:], streams[:4]
            assert h2.read(lambda c: all(c.answered(s) for s in refused), 5), h2.streams
            for s in refused:
                st = h2.streams[s]
                assert (st['status'], detail_of(st)) == (429, 'Too many uploads in progress'), (s, st)
            for s in kept:
                # 2 MiB more each: enough to hold a spill file open (a busy test machine
                # sends the whole 9.5 MiB too slowly to see the deadline).
                assert h2.send(h2.data_frames(s, body[16384:2 * MIB])), 'closed'
            sent = time.monotonic() - started
            assert sent < 6, 'the test took %.1fs to send, too slow to see the deadline' % sent
            assert not any(h2.answered(s) for s in kept), h2.streams
            wait_until(lambda: sum(size for _, size, _ in spill_maps(worker)) >= 4 * 2 * MIB, 5,
                       message='the four kept bodies spilled')
            held = sum(size for _, size, _ in spill_maps(worker))
            assert held <= 4 * 16 * MIB + MIB, 'the worker maps %d bytes of spill files' % held
            assert not any(h2.answered(s) for s in kept), h2.streams
            assert h2.read(lambda c: all(c.answered(s) for s in kept), 10), h2.streams
            took = time.monotonic() - started
            for s in kept:
                st = h2.streams[s]
                assert (st['status'], detail_of(st)) == (408, 'Request body timeout'), (s, st)
            assert 7.5 <= took <= 11, 'the open bodies were cut after %.1fs (BODY_TIMEOUT=8)' % took
            wait_until(lambda: not spill_maps(worker), 5, message='the spill files released')
        finally:
            h2.close()
        assert_nobody_replaced(server, before)


def test_a_body_over_the_clients_cap_is_refused_at_once_and_the_clients_others_go_on():
    env = {'WORKERS': '1', 'MAX_BODY_BYTES_PER_CLIENT': '3M'}
    with Redis() as redis, Server(redis, env=env) as server:
        before = server.full_tree()
        first = PartialUpload(server, CLIENT, 2 * MIB, MIB)
        wait_until(lambda: server.events('request') is not None and sealed_bytes(server) >= MIB // 2, 5,
                   message='the first upload half received')
        started = time.monotonic()
        second = PartialUpload(server, CLIENT, 2 * MIB, 64 * 1024)
        status, headers, data = second.answer_now(5)
        assert time.monotonic() - started < 2, 'the refusal took %.1fs' % (time.monotonic() - started)
        assert_json_error(status, headers, data, 503, TOO_MUCH, what='a body over the client cap')
        assert 1 <= retry_after(headers) <= 60, headers
        check_response(spec(), '/upload/', 'post', status, headers, data, set())
        # Another client is not concerned, and the first upload completes.
        upload_ok(server, os.urandom(2 * MIB), source_address=OTHER)
        status, _, data = first.finish()
        assert status == 201, data
        assert_nobody_replaced(server, before)


def test_raw_put_bodies_count_against_the_clients_cap_like_post_bodies():
    env = {'WORKERS': '1', 'MAX_BODY_BYTES_PER_CLIENT': '3M'}
    with Redis() as redis, Server(redis, env=env) as server:
        before = server.full_tree()
        first = PartialUpload(server, CLIENT, 2 * MIB, MIB, put='first.bin')
        wait_until(lambda: sealed_bytes(server) >= MIB // 2, 5, message='the first PUT half received')
        second = PartialUpload(server, CLIENT, 2 * MIB, 64 * 1024, put='second.bin')
        status, headers, data = second.answer_now(5)
        assert_json_error(status, headers, data, 503, TOO_MUCH, what='a PUT body over the client cap')
        assert 1 <= retry_after(headers) <= 60, headers
        check_response(spec(), '/upload/{filename}', 'put', status, headers, data, set())
        status, _, data = first.finish()
        assert status == 201, data
        assert_nobody_replaced(server, before)


def test_bodies_over_the_workers_cap_are_refused_whoever_sends_them():
    env = {'WORKERS': '1', 'MAX_BODY_BYTES_PER_WORKER': '3M'}
    with Redis() as redis, Server(redis, env=env) as server:
        before = server.full_tree()
        first = PartialUpload(server, CLIENT, 2 * MIB, MIB)
        settled(server)
        body, ctype = multipart(os.urandom(2 * MIB))
        h2 = H2(server, OTHER)
        try:
            h2.send(h2_upload_head(h2, 1, body, ctype) + h2.data_frames(1, body[:64 * 1024]))
            assert h2.read(lambda c: c.answered(1), 5), h2.streams
            assert (h2.streams[1]['status'], detail_of(h2.streams[1])) == (503, TOO_MUCH), h2.streams
            # The connection itself goes on: the worker answers its next request.
            h2.send(h2.request_head(3, 'GET', '/health/', end_stream=True))
            assert h2.read(lambda c: c.answered(3), 5) and h2.streams[3]['status'] == 200, h2.streams
        finally:
            h2.close()
        status, _, data = first.finish()
        assert status == 201, data
        assert_nobody_replaced(server, before)


def test_more_bodies_at_once_than_max_uploads_per_client_are_refused_at_their_head():
    env = {'WORKERS': '1', 'MAX_UPLOADS_PER_CLIENT': '2'}
    with Redis() as redis, Server(redis, env=env) as server:
        before = server.full_tree()
        uploads = [PartialUpload(server, CLIENT, MIB, 4096) for _ in range(2)]
        settled(server)
        third = PartialUpload(server, CLIENT, MIB, 4096)
        status, headers, data = third.answer_now(5)
        assert_json_error(status, headers, data, 429, 'Too many uploads in progress',
                          what='a third body at once')
        check_response(spec(), '/upload/', 'post', status, headers, data, set())
        assert headers.get('retry-after') == '1', headers
        for u in uploads:
            status, _, data = u.finish()
            assert status == 201, data
        assert_nobody_replaced(server, before)


def test_addresses_of_one_ipv6_network_share_one_clients_bodies():
    # Through the trusted proxy 127.0.0.1, as Linux lets a test bind only ::1.
    env = {'WORKERS': '1', 'MAX_UPLOADS_PER_CLIENT': '1', 'IPV6_PREFIX': '64'}
    with Redis() as redis, Server(redis, env=env) as server:
        first = PartialUpload(server, '127.0.0.1', MIB, 4096, forwarded='2001:db8:1:2::1')
        settled(server)
        status, headers, data = PartialUpload(server, '127.0.0.1', MIB, 4096,
                                              forwarded='2001:db8:1:2:ffff::9').answer_now(5)
        assert_json_error(status, headers, data, 429, 'Too many uploads in progress',
                          what='a second body from the same /64')
        other = PartialUpload(server, '127.0.0.1', MIB, 4096, forwarded='2001:db8:1:3::1')
        for upload in (first, other):
            status, _, data = upload.finish()
            assert status == 201, data


def test_a_client_answered_429_has_its_next_bodies_refused_at_their_head():
    def attempt(client):
        with Redis() as redis, Server(redis, env={'WORKERS': '1', 'UPLOAD_RATE_LIMIT': '1/minute'}) \
                as server:
            upload_ok(server, b'the one allowed', source_address=client)
            status, headers, body = server.upload(b'one too many', source_address=client)
            assert (status, body) == (429, {'detail': 'Rate limit exceeded'}), (status, body)
            limit = retry_after(headers)
            # HTTP/1: the answer comes while the body is still arriving.
            started = time.monotonic()
            status, headers, data = PartialUpload(server, client, 3 * MIB, MIB).answer_now(5)
            took = time.monotonic() - started
            assert_json_error(status, headers, data, 429, 'Rate limit exceeded',
                              what='a body after a 429')
            assert 1 <= retry_after(headers) <= limit, (headers, limit)
            # HTTP/2 likewise.
            body, ctype = multipart(os.urandom(3 * MIB))
            h2 = H2(server, client)
            try:
                h2.send(h2_upload_head(h2, 1, body, ctype) + h2.data_frames(1, body[:MIB]))
                assert h2.read(lambda c: c.answered(1), 5), h2.streams
            finally:
                h2.close()
            assert (h2.streams[1]['status'], detail_of(h2.streams[1])) == \
                (429, 'Rate limit exceeded'), h2.streams
            # A whole body is refused without asking the store.
            scripts = store_commands(redis)
            status, _, body = server.upload(b'small and whole', source_address=client)
            assert (status, body) == (429, {'detail': 'Rate limit exceeded'}), (status, body)
            assert store_commands(redis) == scripts, 'the store was asked'
            # Other clients upload as before.
            upload_ok(server, b'someone else', source_address=OTHER)
            return took
    _, took = in_one_window(60, attempt, [CLIENT, THIRD], early=40)
    assert took < 2, 'the 429 came %.1fs after the head' % took


def test_an_http2_body_trickling_a_byte_at_a_time_is_cut_off_at_body_timeout():
    env = {'WORKERS': '1', 'BODY_TIMEOUT': '2', 'IDLE_TIMEOUT': '30'}
    with Redis() as redis, Server(redis, env=env) as server:
        before = server.full_tree()
        body, ctype = multipart(os.urandom(1000))
        h2 = H2(server, CLIENT)
        try:
            h2.send(h2_upload_head(h2, 1, body, ctype))
            started = time.monotonic()
            sent = 0
            while not h2.answered(1) and time.monotonic() - started < 10 and sent < len(body) - 1:
                h2.send(h2.data_frames(1, body[sent:sent + 1]))
                sent += 1
                h2.read(lambda c: c.answered(1), 0.25)
            took = time.monotonic() - started
            assert h2.answered(1), 'a trickling HTTP/2 body still open after %.1fs' % took
            assert (h2.streams[1]['status'], detail_of(h2.streams[1])) == \
                (408, 'Request body timeout'), h2.streams
            assert 1.5 <= took <= 4, 'cut off after %.1fs with BODY_TIMEOUT=2' % took
            assert sent < 20, '%d bytes trickled in' % sent
            h2.send(h2.request_head(3, 'GET', '/health/', end_stream=True))
            assert h2.read(lambda c: c.answered(3), 5) and h2.streams[3]['status'] == 200, h2.streams
        finally:
            h2.close()
        assert_nobody_replaced(server, before)


def test_a_body_that_would_spill_past_spill_max_bytes_is_refused_not_kept_in_memory():
    env = {'WORKERS': '1', 'BODY_MEMORY_MAX': '64K', 'SPILL_MAX_BYTES': '4M'}
    with Redis() as redis, Server(redis, env=env) as server:
        before = server.full_tree()
        worker = before['workers'][0]
        first = PartialUpload(server, CLIENT, 3 * MIB, 5 * MIB // 2, chunked_body=True)  # a 4 MiB spill file
        wait_until(lambda: sum(size for _, size, _ in spill_maps(worker)) >= 4 * MIB, 5,
                   message='the first body spilled')
        late = PartialUpload(server, OTHER, MIB, 4096, ctype='application/octet-stream')  # would spill
        status, headers, data = late.answer_now(5)
        assert_json_error(status, headers, data, 503, TOO_MUCH, what='a body past the spill cap')
        # A body small enough to stay in memory is not concerned.
        upload_ok(server, os.urandom(16 * 1024), source_address=THIRD)
        status, _, data = first.finish()
        assert status == 201, data
        assert_nobody_replaced(server, before)


def test_body_refusals_are_logged_and_counted():
    env = {'WORKERS': '1', 'MAX_BODY_BYTES_PER_CLIENT': '1M'}
    with Redis() as redis, Server(redis, env=env) as server:
        status, headers, _ = PartialUpload(server, CLIENT, 2 * MIB, 4096).answer_now(5)
        assert status == 503
        logged = wait_until(lambda: server.events('bodies_refused'), 5,
                            message='the refusal logged')
        assert 'MAX_BODY_BYTES_PER_CLIENT' in logged[0]['message'], logged
        line = wait_until(lambda: [x for x in server.events('request')
                                   if x.get('request_id') == headers['x-request-id']], 5,
                          message='the request line')[0]
        assert (line['path'], line['status_code'], line['client']) == ('/upload/', 503, CLIENT), line
        status, _, text = server.request('GET', '/metrics')
        assert status == 200
        counts = dict(x.rsplit(' ', 1) for x in text.decode().splitlines() if x and x[0] != '#')
        assert counts['raven_zero_bodies_refused_total'] == '1', counts
        assert counts['raven_zero_store_errors_total'] == '0', 'a refusal counted as a store error'
