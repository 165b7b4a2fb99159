"""GET /metrics: Prometheus counters summed over the workers, only for the addresses
METRICS_ALLOW lets in, and with METRICS_LISTEN only on sockets of its own."""

import http.client
import os
import re
import signal

from harness import (Redis, Server, exchange, free_port, path, run, wait_until, write_file)


def metrics(server, source_address=None, headers=None):
    status, hdrs, body = server.request('GET', '/metrics', headers=headers,
                                        source_address=source_address)
    assert status == 200, (status, body[:300])
    assert hdrs['content-type'].startswith('text/plain; version=0.0.4'), hdrs
    values, types = {}, {}
    for line in body.decode().splitlines():
        if line.startswith('# TYPE '):
            _, _, name, kind = line.split(' ')
            types[name] = kind
        elif line and not line.startswith('#'):
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?) (\S+)$', line)
            assert m, 'not a Prometheus sample line: %r' % line
            values[m.group(1)] = float(m.group(3))
    for sample in values:
        base = re.sub(r'(_bucket|_sum|_count)$', '', sample.split('{')[0])
        assert sample.split('{')[0] in types or base in types, 'no # TYPE for %s' % sample
    return values


COUNTERS = ('uploads', 'upload_bytes', 'downloads', 'download_bytes', 'burns',
            'expired_shredded', 'orphans_shredded', 'blocked_requests', 'store_errors',
            'worker_restarts')


def test_metrics_count_uploads_downloads_bytes_and_responses_summed_over_workers():
    with Redis() as redis, Server(redis, env={'WORKERS': '3'}) as server:
        before = metrics(server)
        for name in COUNTERS:
            assert 'raven_zero_%s_total' % name in before, name
        data = os.urandom(70000)
        keys = []
        for _ in range(4):  # separate connections: several workers take part
            status, _, body = server.upload(data, uses=1)
            assert status == 201, body
            keys.append(body['key'])
        for k in keys:
            status, _, got = server.request('GET', '/download/' + k)
            assert status == 200 and got == data
        assert server.request('GET', '/download/' + keys[0])[0] == 410
        assert server.request('GET', '/download/no-such-thing')[0] == 404
        expected = {
            'raven_zero_uploads_total': 4,
            'raven_zero_upload_bytes_total': 4 * len(data),
            'raven_zero_downloads_total': 4,
            'raven_zero_download_bytes_total': 4 * len(data),
            'raven_zero_responses_total{endpoint="upload",class="2xx"}': 4,
            'raven_zero_responses_total{endpoint="download",class="2xx"}': 4,
            'raven_zero_responses_total{endpoint="download",class="4xx"}': 2,
        }

        # A response is counted when its request is logged, just after its last byte
        # left: a scrape on another connection may come a moment before that.
        def counted():
            m = metrics(server)
            return m if all(m[k] - before.get(k, 0) >= v for k, v in expected.items()) else None
        after = wait_until(counted, 5, message='the requests counted')

        def delta(name):
            return after[name] - before.get(name, 0)
        for name, value in expected.items():
            assert delta(name) == value, (name, delta(name), value)
        assert delta('raven_zero_request_duration_seconds_count') >= 10
        buckets = sorted((float(k.split('"')[1]) if '+Inf' not in k else float('inf'), v)
                         for k, v in after.items()
                         if k.startswith('raven_zero_request_duration_seconds_bucket'))
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), 'buckets not cumulative: %r' % buckets
        assert counts[-1] == after['raven_zero_request_duration_seconds_count']
        # The burns are counted once the shredder has overwritten the files.
        wait_until(lambda: metrics(server)['raven_zero_burns_total'] >= 4, 15,
                   message='4 burns counted')


def test_metrics_count_blocked_requests_store_errors_and_worker_restarts():
    redis = Redis()
    with redis, Server(redis, env={'DOWNLOAD_FAIL_LIMIT': '2'}) as server:
        for i in range(2):
            server.request('GET', '/status/unknown-key%d' % i)
        assert server.request('GET', '/status/unknown-key')[0] == 429
        assert metrics(server)['raven_zero_blocked_requests_total'] == 1

        worker = server.children()['workers'][0]
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: metrics(server)['raven_zero_worker_restarts_total'] == 1, 10,
                   message='the restart counted')

        redis.stop()
        wait_until(lambda: server.request('GET', '/status/apple-banana-cherry')[0] == 503, 5,
                   message='503 with the store down')
        wait_until(lambda: metrics(server)['raven_zero_store_errors_total'] >= 1, 5,
                   message='the store error counted')


def test_metrics_count_every_route_under_its_own_label_and_unknown_paths_as_other():
    with Redis() as redis, Server(redis) as server:
        status, _, up = server.upload(b'counted by route', uses=1)
        assert status == 201, up
        key = up['key']
        before = metrics(server)
        requests = [('GET', '/preview/' + key, 'preview', '2xx'),
                    ('OPTIONS', '/preview/' + key, 'preview', '2xx'),
                    ('GET', '/status/' + key, 'status', '2xx'),
                    ('HEAD', '/status/%s/' % key, 'status', '2xx'),
                    ('HEAD', '/download/' + key, 'download', '4xx'),
                    ('GET', '/download/' + key, 'download', '2xx'),
                    ('GET', '/health', 'health', '2xx'),
                    ('GET', '/openapi.json', 'openapi', '2xx'),
                    ('GET', '/', 'page', '2xx'),
                    ('GET', '/assets/drop.js', 'assets', '2xx'),
                    ('GET', '/assets/nothing.js', 'assets', '4xx'),
                    ('POST', '/metrics/', 'metrics', '4xx'),
                    ('GET', '/upload/', 'upload', '4xx'),
                    ('DELETE', '/download/' + key, 'delete', '4xx'),
                    ('PUT', '/counted.txt', 'put', '2xx'),
                    ('PUT', '/upload/counted.txt', 'put_upload', '2xx'),
                    ('GET', '/upload/counted.txt', 'put_upload', '4xx'),
                    ('GET', '/nonexistent', 'other', '4xx'),
                    ('GET', '/counted.txt', 'other', '4xx'),
                    ('GET', '/download/%s/extra' % key, 'other', '4xx')]
        expected = {}
        for method, target, label, cls in requests:
            server.request(method, target, body=b'counted\n' if method == 'PUT' else None)
            sample = 'raven_zero_responses_total{endpoint="%s",class="%s"}' % (label, cls)
            expected[sample] = expected.get(sample, 0) + 1

        def counted():
            m = metrics(server)
            return m if all(m[k] - before[k] >= v for k, v in expected.items()) else None
        after = wait_until(counted, 5, message='every response counted')
        for sample, n in expected.items():
            assert after[sample] - before[sample] == n, (sample, after[sample] - before[sample], n)
        labels = {re.search(r'endpoint="([^"]*)"', k).group(1)
                  for k in after if k.startswith('raven_zero_responses_total{')}
        assert labels == {'upload', 'put_upload', 'preview', 'download', 'delete', 'status',
                          'health', 'openapi', 'metrics', 'put', 'page', 'assets', 'other'}, labels


def test_metrics_refused_403_to_clients_outside_metrics_allow():
    env = {'METRICS_ALLOW': '127.0.0.1/32', 'TRUSTED_PROXIES': '127.0.0.1/32'}
    with Redis() as redis, Server(redis, env=env) as server:
        status, headers, body = server.json('GET', '/metrics', source_address='127.0.0.2')
        assert status == 403 and body == {'detail': 'Forbidden'}, (status, body)
        assert headers['content-type'].replace(' ', '') == 'application/json;charset=utf-8'
        # Relayed by a trusted proxy, the client is the forwarded one.
        status, _, _ = server.json('GET', '/metrics', headers={'X-Forwarded-For': '127.0.0.2'})
        assert status == 403
        metrics(server)  # the loopback scraper itself
        metrics(server, headers={'X-Forwarded-For': '127.0.0.1'})


def on_port(port, method, target, source=None, headers=None):
    """One request to another port of the server (METRICS_LISTEN's)."""
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10,
                                      source_address=(source, 0) if source else None)
    try:
        return exchange(conn, method, target, headers=headers)
    finally:
        conn.close()


def test_metrics_listen_serves_metrics_only_there_and_nothing_else_there():
    mport = free_port()
    env = {'METRICS_LISTEN': '127.0.0.1:%d' % mport, 'METRICS_ALLOW': '127.0.0.1/32'}
    with Redis() as redis, Server(redis, env=env) as server:
        for target in ('/metrics', '/metrics/'):
            status, headers, body = server.request('GET', target)
            assert status == 404 and b'Not Found' in body, (target, status, body)
        status, headers, _ = server.request('POST', '/metrics')
        assert status == 404 and 'allow' not in headers, (status, headers)
        status, headers, body = on_port(mport, 'GET', '/metrics')
        assert status == 200 and b'raven_zero_uploads_total' in body, (status, body[:200])
        assert headers['content-type'].startswith('text/plain; version=0.0.4'), headers
        # Still only for METRICS_ALLOW, and never for a malformed forwarded chain.
        assert on_port(mport, 'GET', '/metrics', source='127.0.0.2')[0] == 403
        assert on_port(mport, 'GET', '/metrics',
                       headers={'X-Forwarded-For': '8.8.8.8, garbage'})[0] == 403
        # Nothing of the drop answers there.
        for method, target in (('GET', '/health/'), ('GET', '/openapi.json'),
                               ('GET', '/status/abacus-abdomen-abide'), ('POST', '/upload/')):
            assert on_port(mport, method, target)[0] == 404, (method, target)
        # The main listener's 404 for /metrics counts as an unrouted request.
        m = dict(re.findall(r'^(raven_zero_responses_total\{endpoint="(?:metrics|other)",'
                            r'class="4xx"\}) (\S+)$', on_port(mport, 'GET', '/metrics')[2].decode(),
                            re.M))
        assert float(m['raven_zero_responses_total{endpoint="other",class="4xx"}']) >= 3, m
        # A reload keeps the socket (the same METRICS_LISTEN) and the split.
        server.signal(signal.SIGHUP)
        wait_until(lambda: server.events('reloaded'), 10, message='the reload')
        wait_until(lambda: on_port(mport, 'GET', '/metrics')[0] == 200, 10, message='metrics')
        assert server.request('GET', '/metrics')[0] == 404


def test_metrics_listen_on_a_listen_address_is_refused_in_one_line():
    port = free_port()
    code, _, stderr = run(['-t'], env={'LISTEN': '127.0.0.1:%d' % port,
                                       'METRICS_LISTEN': '127.0.0.1:%d' % port})
    assert code == 1 and stderr.strip() == (
        'raven-zero: METRICS_LISTEN=127.0.0.1:%d: expected addresses apart from LISTEN\'s' % port), stderr
    code, _, stderr = run(['-t'], env={'METRICS_LISTEN': 'nowhere'})
    assert code == 1 and stderr.startswith('raven-zero: METRICS_LISTEN=nowhere: expected'), stderr
    conf = write_file('metrics.yaml', 'metrics_listen:\n  - 127.0.0.1:%d\n' % free_port())
    assert run(['-t', '-c', conf])[0] == 0
    assert os.path.exists(path('metrics.yaml'))
