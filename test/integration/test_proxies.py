"""Who the client is: X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host are
believed only from TRUSTED_PROXIES, only their rightmost untrusted entry counts, and
the request log shows the client so attributed.

With the default TRUSTED_PROXIES (127.0.0.1/32, ::1/128) 127.0.0.1 (PROXY) plays a
trusted proxy and any other loopback address (CLIENT, OTHER) an untrusted peer."""

import json

from harness import (CLIENT, KEYED, OTHER, PROXY, Redis, Server, assert_blocked,
                     assert_nobody_replaced, assert_normal_miss, assert_upload_body, block,
                     in_one_window, logged_client, miss, retry_after, unknown_key,
                     upload_ok, xff)


def request_with_header_lines(server, method, target, lines, source=None):
    """A request carrying the same header name several times: lines = [(name, value)]."""
    conn = server.connection(source)
    try:
        conn.putrequest(method, target)
        for name, value in lines:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, hdrs, json.loads(data)
    finally:
        conn.close()


def test_spoofed_x_forwarded_for_from_an_untrusted_peer_cannot_lift_a_block():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        block(server, CLIENT)
        for forged in (None, '9.9.9.9', '9.9.9.9, 8.8.8.8', '127.0.0.1', '10.0.0.1, 127.0.0.1'):
            for endpoint in KEYED:
                status, headers, body = miss(server, endpoint, CLIENT, forwarded=forged)
                assert_blocked(status, headers, body, 60)
        for other_header in ({'X-Real-IP': '9.9.9.9'}, {'Forwarded': 'for=9.9.9.9'},
                             {'Client-IP': '9.9.9.9'}):
            status, headers, body = server.json('GET', '/status/' + unknown_key(),
                                                headers=other_header, source_address=CLIENT)
            assert_blocked(status, headers, body, 60)
        status, _, body = miss(server, 'status', OTHER)
        assert_normal_miss('status', status, body)


def test_rotating_x_forwarded_for_from_an_untrusted_peer_cannot_dodge_the_failure_count():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        for i in range(3):
            status, _, body = miss(server, 'download', CLIENT, forwarded='1.0.0.%d' % (i + 1))
            assert_normal_miss('download', status, body)
        status, headers, body = miss(server, 'download', CLIENT, forwarded='1.0.0.99')
        assert_blocked(status, headers, body, 60)
        status, headers, body = miss(server, 'download', CLIENT)
        assert_blocked(status, headers, body, 60)


def test_spoofed_x_forwarded_for_from_an_untrusted_peer_cannot_dodge_the_upload_rate_limit():
    with Redis() as redis, Server(redis, env={'UPLOAD_RATE_LIMIT': '2/minute'}) as server:
        def attempt(client):
            return [server.upload(b'data %d' % i, source_address=client,
                                  headers=xff('%d.%d.%d.%d' % (i + 1, i + 1, i + 1, i + 1)))
                    for i in range(3)]
        _, results = in_one_window(60, attempt, ['127.0.0.2', '127.0.0.12', '127.0.0.22'])
        assert [r[0] for r in results] == [201, 201, 429], [(s, b) for s, _, b in results]
        status, headers, body = results[2]
        assert body == {'detail': 'Rate limit exceeded'}, body
        assert 1 <= retry_after(headers) <= 60, headers


def test_a_trusted_proxy_gets_the_forwarded_client_blocked_and_other_forwarded_clients_served():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        block(server, PROXY, forwarded='10.0.0.1')
        for endpoint in KEYED:
            status, headers, body = miss(server, endpoint, PROXY, forwarded='10.0.0.1')
            assert_blocked(status, headers, body, 60)
        for endpoint in KEYED:
            status, _, body = miss(server, endpoint, PROXY, forwarded='10.0.0.2')
            assert_normal_miss(endpoint, status, body)
        status, _, body = miss(server, 'download', PROXY)  # the proxy's own requests
        assert_normal_miss('download', status, body)


def test_a_client_cannot_forge_its_way_out_through_a_trusted_proxy_by_prepending_entries():
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        block(server, PROXY, forwarded='10.0.0.1')
        # The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended the real peer.
        for forged in ('1.2.3.4, 10.0.0.1', '1.2.3.4,10.0.0.1', '5.6.7.8, 1.2.3.4, 10.0.0.1',
                       '10.0.0.1, 127.0.0.1'):  # the last: two proxy hops, both trusted
            status, headers, body = miss(server, 'status', PROXY, forwarded=forged)
            assert_blocked(status, headers, body, 60)
        # The same, with the forged value in a header line of its own.
        status, headers, body = request_with_header_lines(
            server, 'GET', '/status/' + unknown_key(),
            [('X-Forwarded-For', '1.2.3.4'), ('X-Forwarded-For', '10.0.0.1')], source=PROXY)
        assert_blocked(status, headers, body, 60)
        # What the proxy appended is the truth: here the client is 1.2.3.4, not blocked.
        status, _, body = miss(server, 'status', PROXY, forwarded='10.0.0.1, 1.2.3.4')
        assert_normal_miss('status', status, body)


def test_malformed_x_forwarded_for_is_served_as_an_unknown_client_never_as_the_proxy():
    env = {'DOWNLOAD_FAIL_LIMIT': '1000', 'WORKERS': '2'}
    with Redis() as redis, Server(redis, env=env) as server:
        before = server.full_tree()
        rightmost_garbage = ['garbage', '', ' ', ',', ',,,,', ' , , ', '999.1.1.1', '1.2.3.4:80',
                             '10.0.0.9, not-an-ip', '10.0.0.9, 1.2.3', 'unknown', '[::1',
                             '1.2.3.4 5.6.7.8', '::ffff:300.1.1.1', '10.0.0.9, ' + 'x' * 8000,
                             '1' * 300, '%00', '\t', '10.0.0.9,,', b'\xff\xfe10.0.0.9']
        other = ['garbage, 10.0.0.9', ' 10.0.0.9 ', '[2001:db8::7]', '10.0.0.9' + ', 1.1.1.1' * 500]
        for value in rightmost_garbage + other:
            for target in ('/health/', '/status/' + unknown_key(), '/download/' + unknown_key()):
                status, headers, data = server.request('GET', target, source_address=PROXY,
                                                       headers={'X-Forwarded-For': value})
                assert status in (200, 404), 'XFF %r on %s -> %d %r' % (value, target, status,
                                                                       data[:200])
                json.loads(data)  # still JSON
            if value in rightmost_garbage:
                client = logged_client(server, headers)
                assert client == 'unknown-forwarded', \
                    'XFF %r: the client is %r, expected unknown-forwarded' % (value[:40], client)
        assert_nobody_replaced(server, before)


def test_the_request_log_shows_the_attributed_client():
    with Redis() as redis, Server(redis) as server:
        cases = [(CLIENT, None, CLIENT),
                 (CLIENT, '9.9.9.9', CLIENT),
                 (PROXY, None, PROXY),
                 (PROXY, '10.0.0.1', '10.0.0.1'),
                 (PROXY, '1.2.3.4, 10.0.0.1', '10.0.0.1'),
                 (PROXY, '10.0.0.1, 127.0.0.1', '10.0.0.1'),
                 (PROXY, '2001:db8::1', '2001:db8::1')]
        for source, forwarded, expect in cases:
            for target in ('/health/', '/status/' + unknown_key(), '/no-such-path'):
                _, headers, _ = server.request('GET', target, source_address=source,
                                               headers=xff(forwarded))
                client = logged_client(server, headers)
                assert client == expect, 'peer %s, XFF %r, %s: logged client %r, expected %r' % (
                    source, forwarded, target, client, expect)


def test_trusted_proxies_setting_decides_whose_forwarded_headers_are_believed():
    env = {'TRUSTED_PROXIES': '127.0.0.3/32', 'DOWNLOAD_FAIL_LIMIT': '2',
           'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        cases = [(PROXY, '10.0.0.7', PROXY),                  # 127.0.0.1 is not trusted now
                 ('127.0.0.3', '10.0.0.7', '10.0.0.7'),
                 ('127.0.0.3', '10.0.0.7, 127.0.0.3', '10.0.0.7')]
        for source, forwarded, expect in cases:
            _, headers, _ = server.request('GET', '/health/', source_address=source,
                                           headers=xff(forwarded))
            assert logged_client(server, headers) == expect, (source, forwarded)
        block(server, '127.0.0.3', forwarded='10.0.0.7', limit=2)
        status, headers, body = miss(server, 'status', '127.0.0.3', forwarded='10.0.0.7')
        assert_blocked(status, headers, body, 60)
        # 127.0.0.1 claiming to forward for 10.0.0.7 is just 127.0.0.1: not blocked.
        status, _, body = miss(server, 'status', PROXY, forwarded='10.0.0.7')
        assert_normal_miss('status', status, body)

    with Redis() as redis, Server(redis, env={'TRUSTED_PROXIES': ''}) as server:
        _, headers, _ = server.request('GET', '/health/', source_address=PROXY,
                                       headers=xff('10.0.0.7'))
        assert logged_client(server, headers) == PROXY, 'TRUSTED_PROXIES="" trusts nobody'


def test_forwarded_proto_and_host_are_believed_only_from_a_trusted_proxy():
    forwarded = {'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'drop.example'}
    with Redis() as redis, Server(redis) as server:
        status, headers, body = server.upload(b'from a proxy', source_address=PROXY,
                                              headers=forwarded)
        assert status == 201, body
        assert body['download_url'] == 'https://drop.example/download/' + body['key'], body
        status, headers, body = server.upload(b'from anyone', source_address=CLIENT,
                                              headers=forwarded)
        assert status == 201, body
        assert body['download_url'] == 'http://127.0.0.1:%d/download/%s' % (
            server.port, body['key']), body
        assert 'drop.example' not in headers.get('location', ''), headers.get('location')


def test_upload_urls_honour_forwarded_headers_only_from_a_trusted_proxy():
    fwd = {'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'drop.example.org'}
    with Redis() as redis, Server(redis) as server:
        data = b'behind a proxy\n'
        # 127.0.0.1 is in the default TRUSTED_PROXIES.
        body, headers = upload_ok(server, data, headers=fwd, source_address='127.0.0.1')
        assert_upload_body(body, headers, server, data, 'x.bin', 1, 10,
                           base='https://drop.example.org')
        status, _, pv = server.json('GET', '/preview/' + body['key'], headers=fwd)
        assert status == 200 and pv['download_url'] == \
            'https://drop.example.org/download/' + body['key'], pv
        # 127.0.0.2 is not: its forwarded headers are ignored, Host is used.
        body, headers = upload_ok(server, data, headers=fwd, source_address='127.0.0.2')
        assert_upload_body(body, headers, server, data, 'x.bin', 1, 10)
        status, _, pv = server.json('GET', '/preview/' + body['key'], headers=fwd,
                                    source_address='127.0.0.2')
        assert status == 200 and pv['download_url'] == \
            'http://127.0.0.1:%d/download/%s' % (server.port, body['key']), pv


def test_a_malformed_forwarded_entry_never_lets_a_client_pass_for_the_proxy():
    """Through a trusted peer that relays the client's own header unchecked (socat, an
    ssh tunnel), "8.8.8.8, garbage" once made the client the proxy itself: loopback,
    allowed /metrics and blocked only with the proxy. Now it is one untrusted client,
    "unknown-forwarded", blocked on its own."""
    env = {'DOWNLOAD_FAIL_LIMIT': '3', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        for forged in ('8.8.8.8, garbage', 'garbage', '8.8.8.8, 127.0.0.1:80', ''):
            status, headers, body = server.json('GET', '/metrics', headers=xff(forged),
                                                source_address=PROXY)
            assert (status, body) == (403, {'detail': 'Forbidden'}), (forged, status, body)
            assert logged_client(server, headers) == 'unknown-forwarded', forged
        # Every request with a malformed chain counts against the same client...
        for forged in ('8.8.8.8, garbage', 'x', '1.2.3'):
            status, _, body = miss(server, 'status', PROXY, forwarded=forged)
            assert_normal_miss('status', status, body)
        status, headers, body = miss(server, 'download', PROXY, forwarded='9.9.9.9, junk')
        assert_blocked(status, headers, body, 60)
        # ...and no one else: the proxy's own requests and well-formed clients go on.
        status, _, body = miss(server, 'download', PROXY)
        assert_normal_miss('download', status, body)
        status, _, body = miss(server, 'download', PROXY, forwarded='10.0.0.7')
        assert_normal_miss('download', status, body)
        status, _, body = server.request('GET', '/metrics', source_address=PROXY)
        assert status == 200 and b'raven_zero_uploads_total' in body, status
