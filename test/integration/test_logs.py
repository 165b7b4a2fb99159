"""The log: one JSON line per request with every field, reopened on SIGUSR1, rotated
at LOG_MAX_BYTES keeping LOG_BACKUPS, mirrored to stdout with LOG_STDOUT."""

import os
import re
import signal

from harness import (Redis, Server, is_int, parse_json_bytes, parse_json_lines,
                     request_line, wait_until)


ISO_UTC = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$')


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def test_every_request_is_logged_with_all_request_fields():
    with Redis() as redis, Server(redis) as server:
        _, headers, _ = server.request('GET', '/health/')
        rid = headers['x-request-id']
        _, headers2, _ = server.request('GET', '/no-such-path', source_address='127.0.0.2')
        rid2 = headers2['x-request-id']
        line = wait_until(lambda: request_line(server.log_lines(), rid), 5,
                          message='log line of request %s' % rid)
        for field in ('timestamp', 'level', 'event', 'request_id', 'method', 'path',
                      'status_code', 'duration', 'client'):
            assert field in line, 'request line lacks %r: %r' % (field, line)
        assert ISO_UTC.match(line['timestamp']), line
        assert line['level'] == 'info', line
        assert line['method'] == 'GET', line
        assert line['path'] == '/health/', line
        assert is_int(line['status_code']) and line['status_code'] == 200, line
        assert is_number(line['duration']) and 0 <= line['duration'] < 10, line
        assert line['client'] == '127.0.0.1', line
        line2 = wait_until(lambda: request_line(server.log_lines(), rid2), 5,
                           message='log line of request %s' % rid2)
        assert line2['status_code'] == 404 and line2['client'] == '127.0.0.2', line2
        for any_line in server.log_lines():
            for field in ('timestamp', 'level', 'event'):
                assert field in any_line, 'log line lacks %r: %r' % (field, any_line)
            assert any_line['level'] in ('debug', 'info', 'warning', 'error'), any_line


def test_the_log_names_each_request_by_its_route_and_never_by_its_key():
    with Redis() as redis, Server(redis) as server:
        status, _, up = server.upload(b'logged by route', uses=1)
        assert status == 201, up
        key = up['key']
        expected = [('GET', '/preview/' + key, '/preview/{key}'),
                    ('GET', '/status/%s/' % key, '/status/{key}'),
                    ('HEAD', '/status/' + key, '/status/{key}'),
                    ('POST', '/download/' + key, '/download/{key}'),
                    ('OPTIONS', '/download/' + key, '/download/{key}'),
                    ('GET', '/download/' + key, '/download/{key}'),
                    ('GET', '/health/?key=' + key, '/health/'),
                    ('PUT', '/upload', '/upload'),
                    ('GET', '/' + key, '{unrouted}'),
                    ('GET', '/?' + key, '/'),
                    ('GET', '/assets/' + key, '/assets/{name}'),
                    ('GET', '/mounted/download/' + key, '{unrouted}'),
                    ('GET', '//download/' + key, '{unrouted}'),
                    ('GET', '/download/%s/%s' % (key, key), '{unrouted}'),
                    ('GET', '/upload/' + key, '/upload/{name}'),
                    ('PUT', '/upload/' + key, '/upload/{name}'),
                    ('PUT', '/' + key, '/{name}'),
                    ('DELETE', '/download/' + key, '/download/{key}'),
                    ('GET', '/download/' + key, '/download/{key}'),
                    ('DELETE', '/%s/status/x' % key, '{unrouted}')]
        ids = []
        for method, target, _ in expected:
            _, headers, _ = server.request(method, target)
            ids.append(headers['x-request-id'])
        for (method, target, shown), rid in zip(expected, ids):
            line = wait_until(lambda: request_line(server.log_lines(), rid), 5,
                              message='log line of %s %s' % (method, target))
            assert line['path'] == shown, '%s %s logged as %r' % (method, target, line['path'])
        with open(server.log_path, 'rb') as f:
            log = f.read()
        assert key.encode() not in log, 'the log holds the key'


def test_sigusr1_reopens_the_log_file():
    with Redis() as redis, Server(redis) as server:
        _, headers, _ = server.request('GET', '/health/')
        wait_until(lambda: request_line(server.log_lines(), headers['x-request-id']), 5,
                   message='first request logged')
        moved = server.log_path + '.moved'
        os.rename(server.log_path, moved)
        server.signal(signal.SIGUSR1)
        ids = []

        def new_file_gets_lines():
            _, hdrs, _ = server.request('GET', '/health/')
            ids.append(hdrs['x-request-id'])
            if not os.path.exists(server.log_path):
                return False
            lines = server.log_lines()
            return any(request_line(lines, i) for i in ids)
        wait_until(new_file_gets_lines, 5, interval=0.05,
                   message='a new %s receiving request lines' % server.log_path)
        assert server.running()


def test_log_rotates_at_max_bytes_keeping_backups():
    with Redis() as redis, Server(redis, env={'LOG_MAX_BYTES': '4096',
                                              'LOG_BACKUPS': '2'}) as server:
        rid = None
        for i in range(200):
            _, headers, _ = server.request('GET', '/no-such-path-%d' % i)
            rid = headers['x-request-id']
        files = [server.log_path, server.log_path + '.1', server.log_path + '.2']

        def last_logged():
            return any(request_line(parse_json_lines(f), rid) for f in files)
        wait_until(last_logged, 5, message='the last request logged')
        for f in files:
            assert os.path.exists(f), '%s missing' % f
        assert not os.path.exists(server.log_path + '.3'), 'more backups than LOG_BACKUPS'
        for f in files:
            parse_json_lines(f)  # fails on any line that is not JSON
            with open(f, 'rb') as fh:
                data = fh.read()
            assert data.endswith(b'\n'), '%s ends in a partial line' % f
            assert len(data) <= 4096 + 4096, '%s is %d bytes' % (f, len(data))
        for f in files[1:]:
            assert os.path.getsize(f) <= 4096, '%s exceeds LOG_MAX_BYTES: %d' % (
                f, os.path.getsize(f))


def test_log_stdout_mirrors_lines_to_stdout():
    with Redis() as redis, Server(redis, env={'LOG_STDOUT': '1'}) as server:
        _, headers, _ = server.request('GET', '/health/')
        rid = headers['x-request-id']

        def mirrored():
            with open(server.stdout_path, 'rb') as f:
                return request_line(parse_json_bytes(f.read(), 'stdout'), rid)
        line = wait_until(mirrored, 5, message='request line on stdout')
        in_file = wait_until(lambda: request_line(server.log_lines(), rid), 5,
                             message='the same line in LOG_PATH')
        assert line == in_file, (line, in_file)
