"""Configuration and the command line: settings from the YAML file (-c), the environment
and -s, in that order of precedence; -t checks them, -h prints the usage, -V the version
(each also as a long option); a bad option or setting stops the start with one line
naming it; missing directories are created at start."""

import os
import re

from harness import (ROOT, WORDLIST, Redis, Server, free_port, lines_of, parse_json_lines, path,
                     port_open, request_line, run, upload_ok, wait_until, write_file)


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


def test_listen_takes_64_addresses_and_serves_on_the_last_but_refuses_65():
    # 127.1.0.0/16 is loopback too, and no other test binds there, so only the served
    # address (the 64th, on 127.0.0.1) can race another test for its port.
    ports = [free_port() for _ in range(65)]
    addresses = ['127.1.0.%d:%d' % (i + 1, p) for i, p in enumerate(ports)]
    addresses[63] = '127.0.0.1:%d' % ports[63]
    code, _, stderr = run(['-t', '-s', 'LISTEN=' + ','.join(addresses)])
    assert code == 1 and len(lines_of(stderr)) == 1 and 'LISTEN=' in stderr, (code, stderr)
    with Redis() as redis, Server(redis, env={'LISTEN': ','.join(addresses[:64])},
                                  port=ports[63]) as server:
        status, _, body = server.request('GET', '/health/')
        assert status == 200, body


def test_check_flag_refuses_a_redis_url_the_store_clients_could_not_use():
    # (value, as the error shows it: a password never appears)
    for url, shown in (('unix:///run/r.sock?db=x', None), ('unix:///run/r.sock?db=16', None),
                       ('redis://localhost/16', None),
                       ('redis://:%zz@localhost', 'redis://***@localhost')):
        code, _, stderr = run(['-t'], env={'REDIS_URL': url})
        problem = one_line_naming(code, stderr, 'REDIS_URL', shown or url, '-t')
        assert not problem and code == 1, problem or 'exit status %s' % code


def test_check_flag_accepts_a_unix_socket_with_a_db():
    code, stdout, stderr = run(['-t'], env={'REDIS_URL': 'unix:///run/r.sock?db=2'})
    assert code == 0, 'exit status %s, stderr=%r' % (code, stderr)
    assert 'valid' in stdout, stdout


def _db_command(redis, db, *args):
    """One command on database db (the harness's Redis speaks to db 0)."""
    script = "redis.call('SELECT', ARGV[1]) return redis.call(unpack(ARGV, 2))"
    return redis.command('EVAL', script, 0, db, *args)


def test_a_unix_socket_url_with_a_db_keeps_every_record_in_that_db():
    with Redis(unix_socket=True) as redis, \
            Server(redis, env={'REDIS_URL': 'unix://%s?db=2' % redis.socket_path}) as server:
        body, _ = upload_ok(server, b'kept in db 2', uses=1)
        status, _, _ = server.request('GET', '/download/' + body['key'])
        assert status == 200
        # The worker recorded it there, and the shredder finds it there in the expiry
        # index (the last use made it due) and takes it out once the file is shredded.
        assert _db_command(redis, 2, 'KEYS', 'upload:{*}'), 'no record in db 2'
        wait_until(lambda: _db_command(redis, 2, 'ZCARD', 'expiries') == 0, 10,
                   message='the shredder to empty the expiry index of db 2')
        assert redis.command('DBSIZE') == 0, 'db 0 holds %r' % redis.command('KEYS', '*')


def test_help_flag_prints_usage_and_exits_0():
    for flag in ('-h', '--help'):
        code, stdout, stderr = run([flag])
        assert code == 0 and stderr == '', (flag, code, stderr)
        assert stdout.lower().startswith('usage: raven-zero'), stdout
        for option in ('-c', '--config', '-s', '--set', '-t', '--check', '-h', '--help', '-V',
                       '--version'):
            assert re.search(r'(^|[\s,\[])%s\b' % option, stdout), \
                'usage does not mention %s: %r' % (option, stdout)


def test_version_flag_prints_the_version_the_server_reports_and_exits_0():
    with open(os.path.join(ROOT, 'common', 'version.h')) as f:
        version = re.search(r'#define RZ_VERSION "([^"]+)"', f.read()).group(1)
    for flag in ('-V', '--version'):
        code, stdout, stderr = run([flag])
        assert (code, stdout, stderr) == (0, 'raven-zero %s\n' % version, ''), \
            (flag, code, stdout, stderr)


def test_an_unknown_option_or_a_missing_value_is_one_line_and_exit_2():
    cases = [(['--frob'], 'unknown option --frob'), (['--frob=1'], 'unknown option --frob'),
             (['-x'], 'unknown option -x'), (['-t', '-x'], 'unknown option -x'),
             (['--help=yes'], 'option --help takes no value'),
             (['-c'], 'option -c (--config) needs a value'),
             (['--set'], 'option -s (--set) needs a value'),
             (['surplus'], 'unexpected argument "surplus"')]
    for args, said in cases:
        code, stdout, stderr = run(args)
        assert code == 2 and stdout == '', (args, code, stdout)
        assert lines_of(stderr) == ['raven-zero: %s (see --help)' % said], (args, stderr)


def test_long_options_work_like_the_short_ones():
    good, bad = write_file('good.yaml', 'WORKERS: 3\n'), write_file('bad.yaml', 'WORKERS: 0\n')
    code, stdout, stderr = run(['--check', '--config', good])
    assert code == 0 and 'valid' in stdout, (code, stdout, stderr)
    code, _, stderr = run(['--check', '--config=' + bad])
    assert code == 1 and 'bad.yaml' in stderr and 'WORKERS=0:' in stderr, (code, stderr)
    code, _, stderr = run(['--check', '--config', good, '--set', 'WORKERS=0'])
    assert code == 1 and 'WORKERS=0:' in stderr, (code, stderr)
    code, _, stderr = run(['--check', '--set=MAX_FILE_SIZE=ten'])
    assert code == 1 and 'MAX_FILE_SIZE=ten:' in stderr, (code, stderr)


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


def test_yaml_syntax_error_is_named_with_its_line_and_column():
    conf = write_file('colons.yaml', 'workers: 2\na: b: c\n')
    code, _, stderr = run(['-t', '-c', conf])
    assert code == 1, 'exit status %s, stderr=%r' % (code, stderr)
    assert lines_of(stderr) == ['raven-zero: %s:2:5: YAML syntax error: mapping values are not allowed in '
                                'this context' % conf], stderr


def test_missing_config_file_is_an_error():
    code, _, stderr = run(['-c', path('nope.yaml')])
    assert code not in (0, None), 'exit status %s, stderr=%r' % (code, stderr)
    assert 'nope.yaml' in stderr, stderr


def test_missing_directories_are_created_at_start():
    base = path('fresh')
    env = {'STORAGE_PATH': os.path.join(base, 'storage', 'uploads'),
           'TEMP_PATH': os.path.join(base, 'storage', 'temp'),
           'LOG_PATH': os.path.join(base, 'logs', 'raven_zero.log')}
    with Redis() as redis, Server(redis, env=env, make_dirs=False) as server:
        for key in ('STORAGE_PATH', 'TEMP_PATH'):
            assert os.path.isdir(env[key]), '%s %s not created' % (key, env[key])
        wait_until(lambda: os.path.isfile(env['LOG_PATH']), 5, message='log file created')
        assert server.running()


def test_a_word_list_with_a_repeated_or_an_uppercase_word_stops_startup():
    with open(WORDLIST) as f:
        words = f.read().splitlines()
    cases = [(words + [words[len(words) // 2]], 'duplicate word'),
             (words[:100] + ['Upper'] + words[100:], 'line 101 is not a lowercase word')]
    for i, (lines, why) in enumerate(cases):
        p = write_file('words-%d.txt' % i, '\n'.join(lines) + '\n')
        code, _, stderr = run(['-t'], env={'DICEWARE_WORDLIST_PATH': p})
        assert code == 1 and len(lines_of(stderr)) == 1, (code, stderr)
        assert 'DICEWARE_WORDLIST_PATH=%s:' % p in stderr and why in stderr, stderr
