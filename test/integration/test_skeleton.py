"""The skeleton: health, request ids, configuration, signals, the process tree, logs.

Each test gets a fresh temporary directory (the harness's tmp()); run with
python3 test/run.py -k test_skeleton."""

import datetime
import os
import re
import signal
import threading
import time

from harness import (Redis, Server, alive, comm, free_port, lines_of, parse_json_bytes,
                     parse_json_lines, path, port_open, request_line, run, wait_until,
                     write_file)

UUID4 = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')
ISO_Z = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$')
ISO_UTC = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$')
SERVICES = ('redis', 'storage', 'scheduler', 'diceware')


def parse_iso(text):
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def health(server, path='/health/'):
    return server.json('GET', path)


def assert_health_body(body, expect_status, services):
    assert isinstance(body, dict), body
    for field in ('status', 'version', 'timestamp', 'services', 'uptime_seconds',
                  'started_at'):
        assert field in body, 'health lacks %r: %r' % (field, body)
    assert body['status'] == expect_status, body
    assert isinstance(body['version'], str) and re.match(r'^\d+\.\d+\.\d+', body['version']), body
    assert isinstance(body['timestamp'], str) and ISO_Z.match(body['timestamp']), body
    assert isinstance(body['started_at'], str) and ISO_Z.match(body['started_at']), body
    assert is_int(body['uptime_seconds']) and body['uptime_seconds'] >= 0, body
    assert body['services'] == services, body
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp, started = parse_iso(body['timestamp']), parse_iso(body['started_at'])
    assert abs((now - stamp).total_seconds()) < 10, 'timestamp %s is not now' % stamp
    assert started <= stamp, body
    assert abs((stamp - started).total_seconds() - body['uptime_seconds']) <= 2, body


ONLINE = {name: 'online' for name in SERVICES}
REDIS_DOWN = dict(ONLINE, redis='offline')


# --- health ---------------------------------------------------------------------

def test_health_reports_all_services_online():
    with Redis() as redis, Server(redis) as server:
        status, headers, body = health(server)
        assert status == 200, body
        assert headers.get('content-type', '').replace(' ', '').lower() == \
            'application/json;charset=utf-8', headers
        assert_health_body(body, 'healthy', ONLINE)


def test_health_answers_without_trailing_slash():
    with Redis() as redis, Server(redis) as server:
        status, _, body = health(server, '/health')
        assert status == 200, body
        assert_health_body(body, 'healthy', ONLINE)


def test_health_is_degraded_503_while_redis_is_down_and_recovers_within_2s():
    with Redis() as redis, Server(redis) as server:
        redis.stop()

        def degraded():
            status, _, body = health(server)
            return status == 503 and body
        body = wait_until(degraded, 5, message='health 503 after redis stopped')
        assert_health_body(body, 'degraded', REDIS_DOWN)

        redis.start()
        started = time.monotonic()
        # Every worker reconnects on its own: back means several answers in a row are
        # 200, whichever worker serves them.
        wait_until(lambda: all(health(server)[0] == 200 for _ in range(6)), 2.0,
                   message='health 200 on every worker within 2 s of redis coming back')
        status, _, body = health(server)
        assert status == 200, body
        assert_health_body(body, 'healthy', ONLINE)
        assert time.monotonic() - started < 3


def test_server_started_with_redis_down_starts_degraded_and_recovers():
    redis = Redis(start=False)
    with redis, Server(redis, wait='up') as server:
        status, _, body = health(server)
        assert status == 503, body
        assert_health_body(body, 'degraded', REDIS_DOWN)
        redis.start()
        wait_until(lambda: all(health(server)[0] == 200 for _ in range(6)), 2.0,
                   message='health 200 on every worker within 2 s of redis starting')
        status, _, body = health(server)
        assert_health_body(body, 'healthy', ONLINE)


# --- every response ----------------------------------------------------------------

def test_every_response_has_a_unique_uuid4_request_id():
    with Redis() as redis, Server(redis) as server:
        ids = []
        for method, target in [('GET', '/health/'), ('GET', '/health'),
                               ('GET', '/no-such-path'), ('GET', '/status/not-a-key'),
                               ('POST', '/health/'), ('OPTIONS', '/health/')] * 5:
            status, headers, _ = server.request(method, target)
            rid = headers.get('x-request-id')
            assert rid is not None, '%s %s -> %d has no X-Request-ID' % (method, target, status)
            assert UUID4.match(rid.lower()), '%s %s: X-Request-ID %r is not a uuid v4' % (
                method, target, rid)
            ids.append(rid.lower())
        assert len(set(ids)) == len(ids), 'repeated request ids: %r' % ids


# --- configuration ---------------------------------------------------------------

BAD_SETTINGS = [
    ('MAX_FILE_SIZE', 'ten'),
    ('WORKERS', '0'),
    ('REDIS_URL', 'http://x'),
    ('UPLOAD_RATE_LIMIT', '5/fortnight'),
    ('LOG_LEVEL', 'loud'),
    ('LISTEN', 'nonsense'),
]


def one_line_naming(code, stderr, name, value, how):
    """'' if the run failed the right way, else why not."""
    problems = []
    if code is None:
        problems.append('still running after the timeout')
    elif code == 0:
        problems.append('exit status 0')
    lines = lines_of(stderr)
    if len(lines) != 1:
        problems.append('%d stderr lines instead of 1' % len(lines))
    if '%s=%s:' % (name, value) not in stderr:
        problems.append('stderr does not name "%s=%s:"' % (name, value))
    if problems:
        return '%s %s=%s: %s; stderr=%r' % (how, name, value, ', '.join(problems),
                                              stderr[-400:])
    return ''


def test_bad_settings_stop_startup_with_one_line_naming_the_setting():
    failures = []
    for name, value in BAD_SETTINGS:
        code, _, stderr = run([], env={name: value})
        failures.append(one_line_naming(code, stderr, name, value, 'env'))
        code, _, stderr = run(['-s', '%s=%s' % (name, value)])
        failures.append(one_line_naming(code, stderr, name, value, '-s'))
    failures = [f for f in failures if f]
    assert not failures, '\n'.join(failures)


def test_check_flag_exits_0_for_valid_config_and_1_for_invalid():
    code, _, stderr = run(['-t'])
    assert code == 0, 'valid config: -t exited %s, stderr=%r' % (code, stderr)
    code, _, stderr = run(['-t'], env={'MAX_FILE_SIZE': 'ten'})
    assert code == 1, 'invalid config: -t exited %s, stderr=%r' % (code, stderr)
    assert len(lines_of(stderr)) == 1 and 'MAX_FILE_SIZE=ten:' in stderr, stderr
    code, _, stderr = run(['-t', '-s', 'WORKERS=0'])
    assert code == 1, 'invalid -s: -t exited %s, stderr=%r' % (code, stderr)
    assert 'WORKERS=0:' in stderr, stderr


def test_help_flag_prints_usage_and_exits_0():
    code, stdout, stderr = run(['-h'])
    assert code == 0, (code, stderr)
    assert 'usage' in stdout.lower(), stdout
    for flag in ('-c', '-t', '-s', '-h'):
        assert flag in stdout, 'usage does not mention %s: %r' % (flag, stdout)


def test_yaml_file_sets_settings_in_any_case():
    port = free_port()
    log_path = path('yaml-logs', 'from_yaml.log')
    os.makedirs(os.path.dirname(log_path))
    conf = write_file('rz.yaml', 'listen: "127.0.0.1:%d"\nLOG_PATH: %s\n' % (port, log_path))
    with Redis() as redis, Server(redis, env={'LISTEN': None, 'LOG_PATH': None},
                                  args=['-c', conf], port=port) as server:
        status, headers, _ = server.request('GET', '/health/')
        assert status == 200
        rid = headers['x-request-id']
        wait_until(lambda: request_line(parse_json_lines(log_path), rid), 5,
                   message='request logged in the LOG_PATH named by the YAML file')


def test_environment_overrides_yaml():
    yaml_port, env_port = free_port(), free_port()
    conf = write_file('rz.yaml', 'LISTEN: "127.0.0.1:%d"\n' % yaml_port)
    with Redis() as redis, Server(redis, env={'LISTEN': '127.0.0.1:%d' % env_port},
                                  args=['-c', conf], port=env_port):
        assert not port_open(yaml_port), 'the YAML port is bound although env overrides it'


def test_command_line_overrides_environment():
    yaml_port, env_port, cli_port = free_port(), free_port(), free_port()
    conf = write_file('rz.yaml', 'LISTEN: "127.0.0.1:%d"\n' % yaml_port)
    with Redis() as redis, Server(redis, env={'LISTEN': '127.0.0.1:%d' % env_port},
                                  args=['-c', conf, '-s', 'LISTEN=127.0.0.1:%d' % cli_port],
                                  port=cli_port):
        assert not port_open(env_port), 'the env port is bound although -s overrides it'
        assert not port_open(yaml_port), 'the YAML port is bound although -s overrides it'


def test_bad_value_in_yaml_names_the_file_and_the_setting():
    conf = write_file('bad.yaml', 'workers: 2\nmax_file_size: ten\n')
    code, _, stderr = run(['-c', conf], env={'MAX_FILE_SIZE': None})
    assert code not in (0, None), 'exit status %s, stderr=%r' % (code, stderr)
    lines = lines_of(stderr)
    assert len(lines) == 1, 'expected one stderr line: %r' % stderr
    assert conf in lines[0] or os.path.basename(conf) in lines[0], \
        'the error does not name the file: %r' % lines[0]
    assert 'max_file_size=ten:' in lines[0].lower(), lines[0]
    code, _, stderr = run(['-t', '-c', conf], env={'MAX_FILE_SIZE': None})
    assert code == 1, 'exit status %s, stderr=%r' % (code, stderr)


def test_malformed_yaml_names_the_file():
    conf = write_file('broken.yaml', 'workers: 2\nlisten: [127.0.0.1:1\n  - : :\n')
    code, _, stderr = run(['-c', conf])
    assert code not in (0, None), 'exit status %s, stderr=%r' % (code, stderr)
    lines = lines_of(stderr)
    assert len(lines) == 1, 'expected one stderr line: %r' % stderr
    assert conf in lines[0] or os.path.basename(conf) in lines[0], lines[0]


def test_missing_config_file_is_an_error():
    code, _, stderr = run(['-c', path('nope.yaml')])
    assert code not in (0, None), 'exit status %s, stderr=%r' % (code, stderr)
    assert 'nope.yaml' in stderr, stderr


# --- processes and signals --------------------------------------------------------

def full_tree(server, workers=2):
    """Wait until the master has `workers` workers and a shredder; return children()."""
    def complete():
        kids = server.children()
        return len(kids['workers']) == workers and kids['shredder'] and kids
    return wait_until(complete, 10, message='%d rz-worker and one rz-shredder' % workers)


def test_master_forks_the_configured_workers_and_one_shredder():
    with Redis() as redis, Server(redis, env={'WORKERS': '3'}) as server:
        kids = full_tree(server, 3)
        assert kids['other'] == [], 'unexpected children: %r' % [
            (p, comm(p)) for p in kids['other']]
        assert comm(server.pid) not in ('rz-worker', 'rz-shredder'), comm(server.pid)


def assert_stops(server, sig, timeout):
    kids = full_tree(server)
    pids = kids['workers'] + [kids['shredder']]
    server.signal(sig)
    started = time.monotonic()
    code = server.wait_exit(timeout)
    assert code == 0, 'master exited with %s after %s' % (code, sig.name)
    wait_until(lambda: not any(alive(p) for p in pids), 2,
               message='workers and shredder gone after %s' % sig.name)
    assert not port_open(server.port), 'port still accepts after the master exited'
    return time.monotonic() - started


def test_sigterm_stops_fast_with_exit_0_and_no_children_left():
    with Redis() as redis, Server(redis) as server:
        assert_stops(server, signal.SIGTERM, 5)


def test_sigint_stops_fast_with_exit_0_and_no_children_left():
    with Redis() as redis, Server(redis) as server:
        assert_stops(server, signal.SIGINT, 5)


def test_sigquit_stops_gracefully_with_exit_0():
    with Redis() as redis, Server(redis, env={'SHUTDOWN_TIMEOUT': '5'}) as server:
        assert_stops(server, signal.SIGQUIT, 15)


class Load(threading.Thread):
    """Sequential requests on fresh connections until stopped; records every failure."""

    def __init__(self, server, target='/no-such-path', expect=404):
        super().__init__(daemon=True)
        self.server, self.target, self.expect = server, target, expect
        self.done = 0
        self.failures = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                status, _, body = self.server.request('GET', self.target, timeout=5)
                if status != self.expect:
                    self.failures.append('status %d: %r' % (status, body[:200]))
            except Exception as e:  # every refused or broken request counts
                self.failures.append(repr(e))
            self.done += 1

    def stop(self):
        self.halt.set()
        self.join(30)


def test_sighup_replaces_workers_and_shredder_without_failing_a_request():
    with Redis() as redis, Server(redis) as server:
        before = full_tree(server)
        load = Load(server)
        load.start()
        try:
            wait_until(lambda: load.done >= 50, 20, message='50 requests before SIGHUP')
            server.signal(signal.SIGHUP)

            def replaced():
                kids = server.children()
                return (len(kids['workers']) == 2 and kids['shredder']
                        and not set(kids['workers']) & set(before['workers'])
                        and kids['shredder'] != before['shredder'] and kids)
            after = wait_until(replaced, 15, message='new workers and a new shredder')
            wait_until(lambda: not any(alive(p) for p in before['workers']), 15,
                       message='old workers to exit')
            at_reload = load.done
            wait_until(lambda: load.done >= max(300, at_reload + 100), 30,
                       message='requests after the reload')
        finally:
            load.stop()
        assert load.failures == [], '%d of %d requests failed across SIGHUP: %r' % (
            len(load.failures), load.done, load.failures[:10])
        assert server.running(), 'master exited on SIGHUP'
        assert after['shredder'] != before['shredder']
        status, _, _ = health(server)
        assert status == 200


def test_killed_worker_is_replaced_and_service_continues():
    with Redis() as redis, Server(redis) as server:
        before = full_tree(server)
        victim = before['workers'][0]
        os.kill(victim, signal.SIGKILL)

        def replaced():
            kids = server.children()
            return len(kids['workers']) == 2 and victim not in kids['workers'] and kids
        after = wait_until(replaced, 10, message='a replacement for worker %d' % victim)
        assert before['workers'][1] in after['workers'], 'the other worker was not kept'
        assert after['shredder'] == before['shredder'], 'the shredder was restarted'
        for _ in range(20):
            status, _, body = health(server)
            assert status == 200, body


# --- logs ----------------------------------------------------------------------------

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


def test_missing_directories_are_created_at_start():
    base = path('fresh')
    env = {'STORAGE_PATH': os.path.join(base, 'storage', 'uploads'),
           'TEMP_PATH': os.path.join(base, 'storage', 'temp'),
           'SECRET_PATH': os.path.join(base, 'storage', 'secret.key'),
           'LOG_PATH': os.path.join(base, 'logs', 'raven_zero.log')}
    with Redis() as redis, Server(redis, env=env, make_dirs=False) as server:
        for key in ('STORAGE_PATH', 'TEMP_PATH'):
            assert os.path.isdir(env[key]), '%s %s not created' % (key, env[key])
        assert os.path.isfile(env['SECRET_PATH'])
        assert os.stat(env['SECRET_PATH']).st_mode & 0o777 == 0o600, \
            oct(os.stat(env['SECRET_PATH']).st_mode)
        wait_until(lambda: os.path.isfile(env['LOG_PATH']), 5, message='log file created')
        assert server.running()
