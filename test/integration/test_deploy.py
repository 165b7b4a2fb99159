"""Deployment files: the nginx example in front (TLS, the original client, the port
kept in the URLs handed out, metrics kept private), the Dockerfile, compose.yaml, the
systemd unit and `make install`, checked as far as this machine allows (no Docker
here: the image's build stage is replayed with the same commands on a copy of the
build context); and `make run`'s script with its private store."""

import fnmatch
import glob
import http.client
import ipaddress
import json
import os
import re
import shlex
import shutil
import ssl
import signal
import subprocess

import harness
from harness import (ROOT, WORDLIST, Nginx, Redis, Server, Via, free_port, listed_packages, make,
                     nginx_site, once, path, port_open, request_line, run, sh, timeout, wait_until)


ETC = os.path.join(ROOT, 'etc')


REL_BINARY = os.path.join(ROOT, 'raven-zero')  # what `make` (and the image) builds


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


PROXIED = {'TRUSTED_PROXIES': '127.0.0.1/32'}


PUBLIC_HOST = 'drop.example.test'


def test_nginx_in_front_uploads_and_downloads_with_its_host_and_the_original_client():
    nginx_port = free_port()
    with Redis() as redis, Server(redis, env=PROXIED) as server, \
            Nginx(nginx_site(server.port, nginx_port), nginx_port):
        via = Via(nginx_port)
        data = os.urandom(300 * 1024)  # over nginx's buffers: streamed both ways
        status, headers, body = via.upload(data, filename='report.bin', uses=2,
                                           headers={'Host': PUBLIC_HOST},
                                           source_address='127.0.0.2')
        assert status == 201, body
        key = body['key']
        assert body['download_url'] == 'http://%s/download/%s' % (PUBLIC_HOST, key), body
        assert body['preview_url'] == 'http://%s/preview/%s' % (PUBLIC_HOST, key), body
        assert headers.get('location') == body['download_url'], headers

        line = wait_until(lambda: request_line(server.log_lines(), headers['x-request-id']), 5,
                          message='the upload\'s log line')
        assert line['client'] == '127.0.0.2', line

        status, headers, got = via.request('GET', '/download/' + key,
                                           headers={'Host': PUBLIC_HOST},
                                           source_address='127.0.0.2')
        assert status == 200 and got == data, (status, len(got))
        assert headers.get('x-sha256') == body['sha256'], headers
        assert headers.get('content-length') == str(len(data)), headers
        assert 'filename="report.bin"' in headers.get('content-disposition', ''), headers

        # A client cannot pose as another through nginx: what it sends is kept on the left.
        status, headers, _ = via.request('GET', '/status/' + key,
                                         headers={'X-Forwarded-For': '10.9.9.9'},
                                         source_address='127.0.0.2')
        assert status == 200
        line = wait_until(lambda: request_line(server.log_lines(), headers['x-request-id']), 5,
                          message='the status log line')
        assert line['client'] == '127.0.0.2', line

        # curl -T through nginx, and the delete token back through it.
        status, headers, put = via.json('PUT', '/report.txt?uses=2', body=b'put via nginx\n',
                                        headers={'Host': PUBLIC_HOST,
                                                 'Accept': 'application/json'})
        assert status == 201, put
        assert put['share_url'] == 'http://%s/#%s' % (PUBLIC_HOST, put['key']), put
        status, _, _ = via.request('DELETE', '/download/' + put['key'],
                                   headers={'X-Delete-Token': put['delete_token']})
        assert status == 204, status
        assert via.request('GET', '/download/' + put['key'])[0] == 410


def test_nginx_in_front_blocks_the_original_client_and_only_it():
    nginx_port = free_port()
    env = dict(PROXIED, DOWNLOAD_FAIL_LIMIT='3')
    with Redis() as redis, Server(redis, env=env) as server, \
            Nginx(nginx_site(server.port, nginx_port), nginx_port):
        via = Via(nginx_port)
        for i in range(3):
            status, _, body = via.json('GET', '/download/no-such-key%d' % i,
                                       source_address='127.0.0.2')
            assert status == 404, (i, status, body)
        status, headers, body = via.json('GET', '/download/apple-banana-cherry',
                                         source_address='127.0.0.2')
        assert status == 429, (status, body)
        assert body['detail']['error'] == 'Too many failed attempts. Temporarily blocked.', body
        assert int(headers['retry-after']) > 0, headers
        status, _, body = via.json('GET', '/status/apple-banana-cherry',
                                   source_address='127.0.0.3')
        assert status == 200 and body['status'] == 'expired_or_burned', (status, body)
        status, _, _ = via.json('GET', '/download/apple-banana-cherry',
                                source_address='127.0.0.3')
        assert status == 404


def test_nginx_on_a_non_default_port_hands_out_urls_with_that_port():
    nginx_port = free_port()
    with Redis() as redis, Server(redis, env=PROXIED) as server, \
            Nginx(nginx_site(server.port, nginx_port), nginx_port):
        via = Via(nginx_port)
        host = '%s:%d' % (PUBLIC_HOST, nginx_port)  # as a browser sends it for this port
        status, headers, body = via.upload(b'port kept', headers={'Host': host})
        assert status == 201, body
        key = body['key']
        assert body['download_url'] == 'http://%s/download/%s' % (host, key), body
        assert body['preview_url'] == 'http://%s/preview/%s' % (host, key), body
        assert headers.get('location') == body['download_url'], headers
        status, _, preview = via.json('GET', '/preview/' + key, headers={'Host': host})
        assert status == 200 and preview['download_url'] == body['download_url'], preview
        assert preview['curl_example'] == 'curl -OJ ' + body['download_url'], preview


def test_nginx_example_with_tls_serves_https_urls_and_redirects_plain_http():
    if not shutil.which('openssl'):
        raise AssertionError('openssl (the Debian package) is needed to make a test certificate')
    cert, key = path('cert.pem'), path('key.pem')
    made = sh(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
               'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj',
               '/CN=' + PUBLIC_HOST, '-keyout', key, '-out', cert], timeout=30)
    assert made.returncode == 0, made.stderr
    http_port, tls_port = free_port(), free_port()
    with Redis() as redis, Server(redis, env=PROXIED) as server, \
            Nginx(nginx_site(server.port, http_port, tls_port, cert, key), tls_port):
        status, headers, _ = Via(http_port).request('GET', '/download/x',
                                                    headers={'Host': PUBLIC_HOST})
        assert status == 301 and headers['location'] == 'https://%s/download/x' % PUBLIC_HOST, \
            (status, headers)
        via = Via(tls_port, 'https')
        status, headers, body = via.upload(b'over tls', headers={'Host': PUBLIC_HOST})
        assert status == 201, body
        assert body['download_url'].startswith('https://%s/download/' % PUBLIC_HOST), body
        assert headers.get('strict-transport-security'), headers
        status, _, got = via.request('GET', '/download/' + body['key'],
                                     headers={'Host': PUBLIC_HOST})
        assert status == 200 and got == b'over tls'
        # Over HTTP/2 the host comes as :authority, here with the port: the URLs keep it.
        authority = '%s:%d' % (PUBLIC_HOST, tls_port)
        upload = harness.write_file('h2.txt', 'over h2\n')
        out = path('h2-upload.json')
        done = sh(['curl', '-sS', '--http2', '--insecure', '--max-time', '30',
                   '--resolve', authority + ':127.0.0.1', '-F', 'file=@' + upload,
                   '-o', out, '-w', '%{http_version} %{http_code}',
                   'https://%s/upload/' % authority])
        assert done.returncode == 0 and done.stdout == '2 201', (done.stdout, done.stderr)
        with open(out) as f:
            body = json.load(f)
        assert body['download_url'] == 'https://%s/download/%s' % (authority, body['key']), body


def test_nginx_example_keeps_metrics_private():
    nginx_port = free_port()
    with Redis() as redis, Server(redis, env=PROXIED) as server, \
            Nginx(nginx_site(server.port, nginx_port), nginx_port):
        for target in ('/metrics', '/metrics/'):
            status, _, _ = Via(nginx_port).request('GET', target)
            assert status == 404, (target, status)
        assert server.request('GET', '/metrics')[0] == 200


def dockerfile_stages():
    """[{'from': 'image AS name', 'ins': [(INSTRUCTION, args)]}] of the Dockerfile."""
    logical, cur = [], ''
    for line in read('Dockerfile').splitlines():
        s = line.strip()
        if s.startswith('#') or (not s and not cur):
            continue
        if s.endswith('\\'):
            cur += s[:-1] + ' '
            continue
        logical.append(cur + s)
        cur = ''
    stages = []
    for ins in logical:
        word, _, rest = ins.partition(' ')
        word = word.upper()
        if word == 'FROM':
            stages.append({'from': rest.strip(), 'ins': []})
        assert stages, 'instruction before FROM: %s' % ins
        stages[-1]['ins'].append((word, rest.strip()))
    return stages


def args_of(stage, word):
    return [rest for w, rest in stage['ins'] if w == word]


def apt_packages(stage):
    pkgs = []
    for run_args in args_of(stage, 'RUN'):
        for m in re.finditer(r'apt-get install ([^&;|]*)', run_args):
            pkgs += [p for p in m.group(1).split() if not p.startswith('-')]
    return pkgs


def env_of(stage):
    env = {}
    for rest in args_of(stage, 'ENV'):
        for tok in shlex.split(rest):
            k, _, v = tok.partition('=')
            env[k] = v
    return env


def package_of(file_path):
    """The Debian package owning a file (merged /usr aware)."""
    cands = [file_path, os.path.realpath(file_path)]
    for c in list(cands):
        if c.startswith('/lib'):
            cands.append('/usr' + c)
        elif c.startswith('/usr/lib'):
            cands.append(c[4:])
    for c in cands:
        r = sh(['dpkg', '-S', c], timeout=30)
        if r.returncode == 0:
            return r.stdout.split(':')[0].strip()
    raise AssertionError('no Debian package owns %s' % file_path)


def run_binary(binary, args, env, cwd=None):
    """Another binary than the one under test (an installed or image copy), settings
    only from env."""
    full = {k: v for k, v in os.environ.items() if k not in harness.SETTINGS}
    full.update(env)
    return sh([binary] + args, env=full, cwd=cwd or path(), timeout=30)


def with_dependencies(pkgs):
    """pkgs and every package apt installs with them (Depends and Pre-Depends, recursively)."""
    deps = set(pkgs)
    out = sh(['apt-cache', 'depends', '--recurse', '--no-recommends', '--no-suggests',
              '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances'] + sorted(pkgs)).stdout
    for line in out.splitlines():
        line = line.strip()
        deps.add((line.split(': ', 1)[1] if ': ' in line else line).split(':')[0])
    return deps


def linked_libraries(binary):
    r = sh(['ldd', binary], timeout=30)
    assert r.returncode == 0, r.stderr
    libs = []
    for line in r.stdout.splitlines():
        m = re.search(r'=>\s*(/\S+)', line) or re.match(r'\s*(/\S+)', line)
        if m:
            libs.append(m.group(1))
    assert libs, r.stdout
    return libs


@once
def test_dockerfile_has_a_debian_12_slim_build_stage_and_runtime_stage():
    stages = dockerfile_stages()
    assert len(stages) == 2, [s['from'] for s in stages]
    build, runtime = stages
    assert re.match(r'^debian:12-slim AS build$', build['from'], re.I), build['from']
    assert runtime['from'] == 'debian:12-slim', runtime['from']
    assert any('make all' in r for r in args_of(build, 'RUN'))
    assert not any(p.endswith('-dev') or p in ('gcc', 'make', 'pkg-config')
                   for p in apt_packages(runtime)), apt_packages(runtime)
    assert all('--no-install-recommends' in r for r in args_of(runtime, 'RUN') if 'apt-get install' in r)
    assert any('rm -rf /var/lib/apt/lists' in r for r in args_of(runtime, 'RUN'))
    copies = args_of(runtime, 'COPY')
    assert copies and all(c.startswith('--from=build ') for c in copies), copies


def deps_groups(stage):
    """The groups of the package list a stage installs with scripts/deps.sh."""
    groups = []
    for rest in args_of(stage, 'RUN'):
        for m in re.finditer(r'scripts/deps\.sh((?:\s+[a-z]+)+)', rest):
            groups += m.group(1).split()
    return groups


def listed_modules(group):
    """The pkg-config modules of a group (pkg-config:MODULE in the package list), which
    the Makefile compiles and links with."""
    names = []
    for line in read('scripts', 'packages.txt').splitlines():
        cols = line.split()
        if len(cols) == 3 and not line.startswith('#') and group in cols[0].split(',') \
                and cols[2].startswith('pkg-config:'):
            names.append(cols[2][len('pkg-config:'):])
    return names


@once
@timeout(180)  # dpkg and apt-cache read their databases: slow on a busy machine
def test_dockerfile_build_stage_installs_every_package_the_build_needs():
    build = dockerfile_stages()[0]
    assert deps_groups(build) == ['build'], deps_groups(build)
    # deps.sh and its list are copied before they run, ahead of the sources (so the
    # package layer is cached across source changes).
    ins = build['ins']
    run_at = next(i for i, (w, rest) in enumerate(ins) if w == 'RUN' and 'deps.sh' in rest)
    copied = ' '.join(rest for w, rest in ins[:run_at] if w == 'COPY').split()
    assert 'scripts/deps.sh' in copied and 'scripts/packages.txt' in copied, copied
    pkgs = set(apt_packages(build)) | set(listed_packages('build'))
    assert {'make', 'gcc', 'libc6-dev', 'pkg-config'} <= pkgs, pkgs
    names = listed_modules('build')
    assert 'libh2o-evloop' in names, names
    for name in names:
        pcdir = sh(['pkg-config', '--variable=pcfiledir', name]).stdout.strip()
        owner = package_of(os.path.join(pcdir, name + '.pc'))
        assert owner in pkgs, '%s.pc comes from %s, not installed by the build stage' % (
            name, owner)
    # Every header the sources include comes from those packages (or the C library): the
    # compiler listed them in the release build's dependency files (-MMD).
    headers = set()
    for d in ('common', 'master', 'worker', 'shredder'):
        dfiles = glob.glob(os.path.join(ROOT, 'build', 'rel', d, '*.d'))
        assert dfiles, 'build the release binary first (make)'
        for dep in dfiles:
            with open(dep) as f:
                headers |= {h for h in f.read().replace('\\\n', ' ').split()
                            if h.startswith('/usr/include')}
    owners = set()
    r = sh(['dpkg', '-S'] + sorted(headers))
    assert 'no path found' not in r.stderr, r.stderr
    for line in r.stdout.splitlines():
        owners |= {p.split(':')[0].strip() for p in line.split(': ')[0].split(',')}
    toolchain = re.compile(r'^(libc6-dev|linux-libc-dev|libgcc-\d+-dev|libcrypt-dev)$')
    # -dev packages pull their own -dev dependencies; check them through apt's eyes.
    deps = with_dependencies(pkgs)
    stray = {o for o in owners if o not in deps and not toolchain.match(o)}
    assert not stray, 'headers from packages the build stage does not install: %r' % stray


@once
@timeout(180)  # dpkg and apt-cache read their databases: slow on a busy machine
def test_dockerfile_runtime_stage_installs_every_library_the_binary_links():
    runtime = dockerfile_stages()[1]
    pkgs = set(apt_packages(runtime))
    # A library may come with another: libcurl4 brings libnghttp2-14 and the rest.
    installed = with_dependencies(pkgs)
    assert os.path.exists(REL_BINARY), 'build ./raven-zero first (make)'
    missing = {}
    for lib in linked_libraries(REL_BINARY):
        owner = package_of(lib)
        if owner not in installed:
            missing[lib] = owner
    assert not missing, 'libraries whose package the runtime stage lacks: %r' % missing
    # libmagic's database is data, not a linked library.
    assert package_of('/usr/lib/file/magic.mgc') in pkgs
    assert not any(p.endswith('-dev') for p in pkgs), pkgs


@once
def test_dockerfile_runs_unprivileged_exposes_8000_and_keeps_state_in_a_volume():
    runtime = dockerfile_stages()[1]
    user = args_of(runtime, 'USER')
    assert user and user[-1] not in ('root', '0'), user
    assert args_of(runtime, 'EXPOSE') == ['8000']
    volumes = json.loads(args_of(runtime, 'VOLUME')[-1])
    env = env_of(runtime)
    # Every address: the container's port is published (compose: on 127.0.0.1 only).
    assert env['LISTEN'] == '0.0.0.0:8000', env
    assert env['LOG_STDOUT'].lower() in ('1', 'true', 'yes', 'on'), env
    for name in ('STORAGE_PATH', 'TEMP_PATH'):
        assert any(env[name].startswith(v.rstrip('/') + '/') for v in volumes), (name, env[name])
    assert not env.get('SECRET_PATH'), 'the secret belongs in the store, not the volume: %r' % env
    assert args_of(runtime, 'STOPSIGNAL') == ['SIGQUIT']
    assert args_of(runtime, 'ENTRYPOINT') == ['["/usr/local/sbin/raven-zero"]']
    # The settings are valid for the binary (paths moved into this test's directory).
    settings = {k: (path('img') + v if v.startswith('/var/') else v) for k, v in env.items()}
    settings['DICEWARE_WORDLIST_PATH'] = WORDLIST
    code, out, err = run(['-t'], env=settings, defaults=False)
    assert code == 0, err


def test_dockerfile_healthcheck_passes_when_healthy_and_fails_when_degraded():
    runtime = dockerfile_stages()[1]
    hc = args_of(runtime, 'HEALTHCHECK')
    assert len(hc) == 1, hc
    m = re.match(r'^(--\S+\s+)*CMD\s+(\[.*\])$', hc[0])
    assert m, hc[0]
    argv = json.loads(m.group(2))
    assert '/health/' in ' '.join(argv) and '127.0.0.1/8000' in ' '.join(argv), argv
    # Healthy within seconds of a start, with the flags every builder knows (builders
    # before Docker 25, podman 4.3 among them, refuse --start-interval).
    flags = dict(re.findall(r'--([a-z-]+)=(\S+)', hc[0].split(' CMD ')[0]))
    assert set(flags) <= {'interval', 'timeout', 'start-period', 'retries'}, flags
    assert int(flags['interval'].rstrip('s')) <= 5 and 'start-period' in flags, flags
    redis = Redis()
    with redis, Server(redis) as server:
        here = [a.replace('127.0.0.1/8000', '127.0.0.1/%d' % server.port) for a in argv]
        r = sh(here, timeout=10)
        assert r.returncode == 0, (r.stdout, r.stderr)
        redis.stop()
        wait_until(lambda: sh(here, timeout=10).returncode != 0, 10,
                   message='the health check to fail with the store down')


def dockerignored(rel, patterns):
    parts = rel.split('/')
    prefixes = ['/'.join(parts[:i]) for i in range(1, len(parts) + 1)]
    for p in patterns:
        for pre in prefixes:
            if fnmatch.fnmatch(pre, p) or (p.startswith('**/') and
                                            fnmatch.fnmatch(pre.split('/')[-1], p[3:])):
                return True
    return False


def build_context():
    """A copy of the repository as `docker build .` would send it (.dockerignore applied)."""
    patterns = [l.strip() for l in read('.dockerignore').splitlines()
                if l.strip() and not l.startswith('#')]
    assert not any(p.startswith('!') for p in patterns), 'exceptions are not handled here'
    listed = sh(['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT).stdout.split('\n')
    ctx = path('context')
    for rel in filter(None, listed):
        src = os.path.join(ROOT, rel)
        if dockerignored(rel, patterns) or not os.path.isfile(src):
            continue
        os.makedirs(os.path.dirname(os.path.join(ctx, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(ctx, rel))
    return ctx


@once
@timeout(300)  # a full build of the project
def test_dockerfile_build_stage_builds_from_the_repository_alone():
    """The build stage's commands, replayed on the build context (Debian 12 has the same
    packages here); the runtime stage's COPY sources must then exist."""
    build, runtime = dockerfile_stages()
    ctx = build_context()
    out = path('out')
    assert not os.path.exists(os.path.join(ctx, 'build')), 'build output in the context'
    for rest in args_of(build, 'RUN'):
        if 'apt-get' in rest or 'deps.sh' in rest:  # packages: this machine has them
            continue
        r = sh(['sh', '-c', rest.replace('/out', out)], cwd=ctx, timeout=300)
        assert r.returncode == 0, 'RUN %s\n%s%s' % (rest, r.stdout[-3000:], r.stderr[-3000:])
    binary = None
    for copy in args_of(runtime, 'COPY'):
        src, dst = copy.split()[1:3]
        assert src.startswith('/out/'), copy
        assert os.path.exists(out + src[4:]), 'COPY source %s was not built' % src
        if dst.endswith('sbin/raven-zero'):
            binary = out + src[4:]
    env = env_of(runtime)
    wl = env['DICEWARE_WORDLIST_PATH']
    assert os.path.isfile(out + wl), '%s is not where the image copies the word list' % wl
    runtime_pkgs = with_dependencies(apt_packages(runtime))
    for lib in linked_libraries(binary):
        assert package_of(lib) in runtime_pkgs, lib
    r = run_binary(binary, ['-t'], {'DICEWARE_WORDLIST_PATH': out + wl})
    assert r.returncode == 0, r.stderr


def compose(name='compose.yaml'):
    """A compose file parsed by PyYAML: this Python's, or Debian's python3-yaml (make test)."""
    file_path = os.path.join(ROOT, name)
    try:
        import yaml
    except ImportError:
        r = sh(['/usr/bin/python3', '-c', 'import json, sys, yaml; '
                'json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)', file_path])
        assert r.returncode == 0, 'PyYAML is needed to parse compose.yaml (apt-get install ' \
            'python3-yaml, as make test does): %s' % r.stderr
        return json.loads(r.stdout)
    with open(file_path) as f:
        return yaml.safe_load(f)


def test_the_cluster_compose_file_wires_two_nodes_to_the_sentinels_and_one_bucket():
    doc = compose('compose.cluster.yaml')
    services = doc['services']
    apps = [n for n in services if n.startswith('app-')]
    assert len(apps) == 2
    sentinels = [n for n in services if n.startswith('sentinel-')]
    assert len(sentinels) == 3
    for name in sentinels:
        script = services[name]['command'][0]
        assert 'sentinel monitor raven-zero valkey-1 6379 2' in script
        assert 'down-after-milliseconds raven-zero 1000' in script
    assert '--replicaof' in services['valkey-2']['command']
    bucket = re.search(r'-name ([\w-]+)', services['bucket']['command'][0]).group(1)
    identity = json.loads(doc['configs']['s3-identities']['content'])['identities'][0]['credentials'][0]
    ports = set()
    for name in apps:
        env = services[name]['environment']
        assert env['REDIS_SENTINELS'].split(',') == sentinels
        assert env['REDIS_SENTINEL_MASTER'] == 'raven-zero'
        assert env['STORAGE_URL'] == 's3://' + bucket
        assert (env['S3_ACCESS_KEY'], env['S3_SECRET_KEY']) == (identity['accessKey'], identity['secretKey'])
        assert env['S3_ENDPOINT'] == 'http://seaweedfs:8333' and '-s3.port=8333' in services['seaweedfs']['command']
        gateway = doc['networks']['raven']['ipam']['config'][0]['gateway']
        assert env['TRUSTED_PROXIES'] == gateway + '/32'
        ports |= set(services[name]['ports'])
        code, out, err = run(['-t'], env={k: str(v) for k, v in env.items()})
        assert code == 0, (name, err)
    assert ports == {'127.0.0.1:8001:8000', '127.0.0.1:8002:8000'}


@once
def test_compose_runs_the_app_with_an_ephemeral_valkey_on_one_bridge_network():
    doc = compose()
    services = doc['services']
    assert set(services) == {'app', 'valkey'}, set(services)
    valkey, app = services['valkey'], services['app']
    assert valkey['image'] == 'valkey/valkey:9-alpine'
    cmd = valkey['command']
    assert cmd[0] == 'valkey-server' and cmd[cmd.index('--save') + 1] == '' and \
        cmd[cmd.index('--appendonly') + 1] == 'no', cmd
    # Capped, and never evicting: every key has a TTL, live records included
    # (test_guessing shows a full store answering 503 with every record kept).
    assert re.fullmatch(r'\d+[kmg]b', cmd[cmd.index('--maxmemory') + 1]), cmd
    assert cmd[cmd.index('--maxmemory-policy') + 1] == 'noeviction', cmd
    assert 'valkey-cli' in valkey['healthcheck']['test'] and 'ping' in valkey['healthcheck']['test']
    build = app['build']
    context = build if isinstance(build, str) else build.get('context', '.')
    assert os.path.isfile(os.path.join(ROOT, context, 'Dockerfile'))
    assert app['depends_on'] == {'valkey': {'condition': 'service_healthy'}}
    for s in (app, valkey):
        assert s['restart'] == 'on-failure'
    assert app['environment']['REDIS_URL'] == 'redis://valkey:6379/0'
    nets = doc['networks']
    assert len(nets) == 1
    (name, net), = nets.items()
    assert net['driver'] == 'bridge'
    assert app['networks'] == [name] and valkey['networks'] == [name]
    # The trusted proxy is the network's gateway, through which published ports arrive.
    gateway = net['ipam']['config'][0]['gateway']
    assert app['environment']['TRUSTED_PROXIES'] == gateway + '/32'


def docker_run_example():
    """The shell lines of docs/deploy.md's "Without Compose" block, continuations joined."""
    text = read('docs', 'deploy.md')
    block = re.search(r'Without Compose.*?```sh\n(.*?)```', text, re.S)
    assert block, 'no "Without Compose" example in docs/deploy.md'
    return [shlex.split(l) for l in block.group(1).replace('\\\n', ' ').splitlines() if l.strip()]


def option(argv, name):
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


@once
def test_docker_run_example_trusts_its_fixed_gateway_and_waits_for_a_graceful_stop():
    lines = docker_run_example()
    net = next(l for l in lines if l[:3] == ['docker', 'network', 'create'])
    gateway, = option(net, '--gateway')
    subnet, = option(net, '--subnet')
    assert ipaddress.ip_address(gateway) in ipaddress.ip_network(subnet), (gateway, subnet)
    app = next(l for l in lines if l[:2] == ['docker', 'run'] and l[-1] == 'raven-zero')
    assert option(app, '--network') == [net[-1]], app
    env = dict(e.split('=', 1) for e in option(app, '-e'))
    assert env['TRUSTED_PROXIES'] == gateway + '/32', env
    assert gateway + '/32' in env['METRICS_ALLOW'].split(','), env
    # Longer than the server's SHUTDOWN_TIMEOUT, as compose's stop_grace_period.
    grace = compose()['services']['app']['stop_grace_period']
    assert option(app, '--stop-timeout') == [grace.rstrip('s')], (app, grace)
    settings = {k: v for k, v in env.items() if k != 'REDIS_URL'}
    code, out, err = run(['-t'], env=settings)
    assert code == 0, err


@once
def test_compose_volumes_hold_what_the_image_writes_and_its_settings_are_valid():
    app = compose()['services']['app']
    runtime = dockerfile_stages()[1]
    env = dict(env_of(runtime))
    env.update({k: str(v) for k, v in app['environment'].items()})
    mounts = dict(v.split(':')[:2][::-1] for v in app['volumes'])  # container -> host
    assert mounts.get(os.path.dirname(env['LOG_PATH'])) == './logs', mounts
    storage = [c for c, h in mounts.items() if h == './storage']
    assert storage and all(env[k].startswith(storage[0] + '/')
                           for k in ('STORAGE_PATH', 'TEMP_PATH')), (storage, env)
    assert not env.get('SECRET_PATH'), 'the secret belongs in the store, not ./storage: %r' % env
    assert storage[0] in json.loads(args_of(runtime, 'VOLUME')[-1])
    assert app['ports'] == ['127.0.0.1:8000:8000'], app['ports']
    settings = {k: (path('img') + v if v.startswith('/var/') else v) for k, v in env.items()}
    settings['DICEWARE_WORDLIST_PATH'] = WORDLIST
    code, out, err = run(['-t'], env=settings, defaults=False)
    assert code == 0, err


def unit_directives(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(('#', '[')):
            continue
        k, _, v = line.partition('=')
        out.setdefault(k.strip(), []).append(v.strip())
    return out


HARDENING = {'NoNewPrivileges': 'yes', 'ProtectSystem': 'strict', 'ProtectHome': 'yes',
             'PrivateTmp': 'yes', 'PrivateDevices': 'yes', 'MemoryDenyWriteExecute': 'yes',
             'CapabilityBoundingSet': ''}


@once
def test_systemd_unit_is_type_notify_reloads_with_hup_and_is_hardened():
    d = unit_directives(read('etc', 'raven-zero.service'))
    assert d['Type'] == ['notify']
    assert d['ExecStart'] == ['/usr/local/sbin/raven-zero -c /etc/raven-zero/raven-zero.yaml']
    assert d['ExecReload'][-1] == '/bin/kill -HUP $MAINPID', d['ExecReload']
    assert d['KillSignal'] == ['SIGQUIT'] and d['KillMode'] == ['mixed']
    assert int(d['TimeoutStopSec'][0].rstrip('s')) > 30 + 5  # SHUTDOWN_TIMEOUT + the master's margin
    assert d['User'] == ['raven-zero']
    assert d['StateDirectory'] == ['raven-zero'] and d['LogsDirectory'] == ['raven-zero']
    for k, v in HARDENING.items():
        assert d.get(k) == [v], (k, d.get(k))
    assert set(d['RestrictAddressFamilies'][0].split()) == {'AF_INET', 'AF_INET6', 'AF_UNIX'}
    assert '@system-service' in d['SystemCallFilter']
    env = dict(e.split('=', 1) for e in d['Environment'])
    for k in ('STORAGE_PATH', 'TEMP_PATH'):
        assert env[k].startswith('/var/lib/raven-zero/'), (k, env[k])
    # The secret is in the store, never in the state directory; no core dumps either.
    assert 'SECRET_PATH' not in env, env
    assert d['LimitCORE'] == ['0'], d.get('LimitCORE')
    assert env['LOG_PATH'].startswith('/var/log/raven-zero/')


def make_install(dest, prefix='/usr/local'):
    """`make install` of the binary under test, as built: -o raven-zero, so that another
    PREFIX does not ask for a rebuild (which install refuses)."""
    assert os.path.exists(REL_BINARY), 'build ./raven-zero first (make)'
    r = make(['-o', 'raven-zero', 'install', 'DESTDIR=' + dest, 'PREFIX=' + prefix], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


@once
def test_systemd_analyze_verifies_the_installed_unit_and_rates_it_safe():
    dest = path('dest')
    make_install(dest)
    unit = os.path.join(dest, 'usr/local/lib/systemd/system/raven-zero.service')
    if not shutil.which('systemd-analyze'):
        print('systemd-analyze not available: unit checked by the directive test only')
        return
    # Point it at the copy installed under DESTDIR so that the binary exists.
    here = path('raven-zero.service')
    with open(unit) as f, open(here, 'w') as g:
        g.write(f.read().replace('/usr/local/', dest + '/usr/local/'))
    r = sh(['systemd-analyze', 'verify', here], timeout=60)
    assert r.returncode == 0 and 'raven-zero' not in r.stderr, r.stdout + r.stderr
    r = sh(['systemd-analyze', 'security', '--offline=yes', here], timeout=60)
    m = re.search(r'Overall exposure level for \S+: ([\d.]+)', r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, 'exposure %s:\n%s' % (m.group(1), r.stdout)


@once
def test_make_install_puts_binary_word_list_config_and_unit_where_they_belong():
    dest = path('dest')
    make_install(dest)
    sbin = os.path.join(dest, 'usr/local/sbin/raven-zero')
    share = os.path.join(dest, 'usr/local/share/raven-zero')
    conf = os.path.join(dest, 'etc/raven-zero/raven-zero.yaml')
    unit = os.path.join(dest, 'usr/local/lib/systemd/system/raven-zero.service')
    assert os.stat(sbin).st_mode & 0o777 == 0o755
    with open(sbin, 'rb') as a, open(REL_BINARY, 'rb') as b:
        assert a.read() == b.read()
    assert sorted(os.listdir(share)) == ['LICENSE.md', 'eff_large_wordlist.txt']
    # The example, listening on loopback only: nginx on the same host is the way in.
    installed, example = read(conf).splitlines(), read('etc', 'raven-zero.yaml').splitlines()
    assert len(installed) == len(example)
    changed = [(a, b) for a, b in zip(example, installed) if a != b]
    assert changed == [('  - 0.0.0.0:8000', '  - 127.0.0.1:8000')], changed
    assert unit_directives(open(unit).read())['ExecStart'] == \
        ['/usr/local/sbin/raven-zero -c /etc/raven-zero/raven-zero.yaml']
    # The installed binary, run outside a source tree, defaults to the installed list.
    empty = path('elsewhere')
    os.makedirs(empty)
    r = run_binary(sbin, ['-t', '-c', conf], {}, cwd=empty)
    installed = '/usr/local/share/raven-zero/eff_large_wordlist.txt'
    assert (r.returncode == 0 and os.path.isfile(installed)) or installed in r.stderr, r
    r = run_binary(sbin, ['-t', '-c', conf],
                   {'DICEWARE_WORDLIST_PATH': share + '/eff_large_wordlist.txt'}, cwd=empty)
    assert r.returncode == 0, r.stderr
    # An upgrade keeps the administrator's configuration.
    with open(conf, 'a') as f:
        f.write('# edited by the administrator\n')
    make_install(dest)
    assert open(conf).read().endswith('# edited by the administrator\n')


@once
def test_make_install_with_prefix_usr_puts_the_unit_in_usr_lib_systemd():
    dest = path('dest')
    make_install(dest, prefix='/usr')
    unit = os.path.join(dest, 'usr/lib/systemd/system/raven-zero.service')
    d = unit_directives(open(unit).read())
    assert d['ExecStart'] == ['/usr/sbin/raven-zero -c /etc/raven-zero/raven-zero.yaml']
    assert all('/usr/local' not in v for vs in d.values() for v in vs), d
    assert os.path.isfile(os.path.join(dest, 'usr/sbin/raven-zero'))
    assert os.path.isfile(os.path.join(dest, 'usr/share/raven-zero/eff_large_wordlist.txt'))


# =====================================================================================
# Locally: make run

class RunScript:
    """scripts/run.sh (what `make run` runs after building) in a tree of this test's own:
    its copy of the script, ./raven-zero a link to the binary under test, so that
    ./storage and ./logs are this test's. It leads its own process group, like a
    terminal's foreground job."""

    def __init__(self):
        self.tree = path('tree')
        os.makedirs(os.path.join(self.tree, 'scripts'))
        shutil.copy2(os.path.join(ROOT, 'scripts', 'run.sh'), os.path.join(self.tree, 'scripts'))
        os.symlink(harness.binary(), os.path.join(self.tree, 'raven-zero'))
        os.symlink(os.path.join(ROOT, 'wordlists'), os.path.join(self.tree, 'wordlists'))
        self.port = free_port()
        self.sock = os.path.join(self.tree, 'storage', 'redis.sock')
        env = {k: v for k, v in os.environ.items() if k not in harness.SETTINGS}
        env.update({'LISTEN': '127.0.0.1:%d' % self.port, 'WORKERS': '1'})
        self.out = path('run.sh.out')
        with open(self.out, 'wb') as out:
            self.proc = subprocess.Popen([os.path.join(self.tree, 'scripts', 'run.sh')],
                                         cwd=self.tree, env=env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         process_group=0)
        harness._register_pid(self.proc.pid)
        harness._register_artifact('run.sh', self.out, None,
                                   os.path.join(self.tree, 'logs', 'raven_zero.log'))
        self.http = Via(self.port)
        wait_until(lambda: self.running() and self.http.request('GET', '/health/')[0] == 200,
                   harness.START_TIMEOUT, interval=0.05, message='make run to serve')
        self.redis = [p for p in harness.children_of(self.proc.pid)
                      if harness.comm(p) == 'redis-server']
        for pid in self.redis:
            harness._register_pid(pid)

    def running(self):
        assert self.proc.poll() is None, read(self.out)
        return True

    def redis_cli(self, *args):
        r = sh(['redis-cli', '-s', self.sock] + list(args), timeout=10)
        assert r.returncode == 0, r.stderr
        return r.stdout.split('\n')

    def wait_exit(self, timeout=harness.START_TIMEOUT):
        return self.proc.wait(timeout)


def assert_stopped_with_its_store(run_sh, code, expected_code):
    assert code == expected_code, (code, read(run_sh.out))
    assert not any(harness.alive(p) for p in run_sh.redis), run_sh.redis
    assert not os.path.exists(run_sh.sock)
    assert not port_open(run_sh.port)


def check_private_store(run_sh):
    """One redis-server of its own, on the socket, keeping nothing, with the uploads."""
    assert len(run_sh.redis) == 1, run_sh.redis
    assert run_sh.redis_cli('CONFIG', 'GET', 'port')[:2] == ['port', '0']
    assert run_sh.redis_cli('CONFIG', 'GET', 'save')[:2] == ['save', '']
    assert run_sh.redis_cli('CONFIG', 'GET', 'appendonly')[:2] == ['appendonly', 'no']
    status, _, body = run_sh.http.upload(b'kept nowhere', uses=1)
    assert status == 201, body
    assert int(run_sh.redis_cli('DBSIZE')[0]) > 0


def test_make_run_serves_with_a_private_store_on_a_unix_socket_and_ctrl_c_stops_both():
    run_sh = RunScript()
    check_private_store(run_sh)
    os.killpg(run_sh.proc.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground job
    assert_stopped_with_its_store(run_sh, run_sh.wait_exit(), 130)


def test_make_run_stops_the_server_and_its_store_when_terminated():
    run_sh = RunScript()
    check_private_store(run_sh)
    run_sh.proc.terminate()  # the script alone, as a service manager or `kill` would
    assert_stopped_with_its_store(run_sh, run_sh.wait_exit(), 143)
