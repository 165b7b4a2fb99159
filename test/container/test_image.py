"""The image as an administrator gets it: built by podman from the repository's
Dockerfile on a debian:12-slim made with debootstrap from Debian's mirror (imported under
the name the FROM lines use), run against a real store, reloaded, and stopped the way a
container runtime stops it. Only `make test-container` runs these (minutes: README).

Everything podman keeps is under build/container/: the base tarball (keyed by
scripts/debian-base.sh, the mirror and debootstrap's version, so it is made once) and
podman's store and configuration (keyed by that configuration). Nothing goes to /etc."""

import hashlib
import json
import os
import secrets
import subprocess
import threading
import time

from harness import (MIB, ROOT, PacedDownload, Redis, Server, free_port, path, sha256,
                     timeout, wait_until)

WORK = os.path.join(ROOT, 'build', 'container')
MIRROR = os.environ.get('DEBIAN_MIRROR', 'http://deb.debian.org/debian')
BASE = 'debian:12-slim'
IMAGE = 'localhost/raven-zero:test'
BASE_LABEL = 'raven-zero.test.base'


def sh(argv, timeout=120, env=None, check=True):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout, env=env)
    if check:
        assert r.returncode == 0, '%s -> %d\n%s\n%s' % (' '.join(argv), r.returncode,
                                                       r.stdout[-3000:], r.stderr[-3000:])
    return r


def podman_env():
    """A private podman set-up under build/container/: runc, cgroupfs and file events
    (no systemd here), ulimits within the caller's hard limits (a container may not
    raise them), storage and temporary files of its own. podman records some of these
    paths in its database on first use, so the directory is named by the configuration."""
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    conf = '''[containers]
default_ulimits = ["nofile=%d:%d", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{dir}/run/events.log"
tmp_dir = "{dir}/tmp"
volume_path = "{dir}/root/volumes"
[network]
network_backend = "netavark"
network_config_dir = "{dir}/networks"
''' % (nofile, nofile)
    storage = '''[storage]
driver = "overlay"
graphroot = "{dir}/root"
runroot = "{dir}/run"
'''
    key = hashlib.sha256((conf + storage).encode()).hexdigest()[:12]
    d = os.path.join(WORK, 'podman-' + key)
    os.makedirs(os.path.join(d, 'tmp'), exist_ok=True)
    for name, text in (('containers.conf', conf), ('storage.conf', storage)):
        with open(os.path.join(d, name), 'w') as f:
            f.write(text.replace('{dir}', d))
    env = dict(os.environ)
    env.update(CONTAINERS_CONF=os.path.join(d, 'containers.conf'),
               CONTAINERS_STORAGE_CONF=os.path.join(d, 'storage.conf'),
               TMPDIR=os.path.join(d, 'tmp'))
    return env


ENV = podman_env()


def podman(*args, timeout=120, check=True):
    return sh(['podman'] + list(args), timeout=timeout, env=ENV, check=check)


def base_tarball():
    """The debootstrapped root file system, made only when its inputs changed."""
    script = os.path.join(ROOT, 'scripts', 'debian-base.sh')
    with open(script, 'rb') as f:
        inputs = f.read() + MIRROR.encode() + sh(['debootstrap', '--version']).stdout.encode()
    key = hashlib.sha256(inputs).hexdigest()[:12]
    out = os.path.join(WORK, 'debian-12-slim-%s.tar' % key)
    if not os.path.exists(out):
        started = time.monotonic()
        sh(['sh', script, out, MIRROR], timeout=1800)
        print('debootstrap: %.0fs' % (time.monotonic() - started))
    return out, key


def base_image():
    """debian:12-slim in podman's store, imported from the tarball of the current key."""
    tarball, key = base_tarball()
    r = podman('image', 'inspect', '--format', '{{index .Labels "%s"}}' % BASE_LABEL, BASE,
               check=False)
    if r.returncode != 0 or r.stdout.strip() != key:
        started = time.monotonic()
        podman('import', '--change', 'LABEL %s=%s' % (BASE_LABEL, key), tarball, BASE,
               timeout=600)
        print('import: %.0fs' % (time.monotonic() - started))


def build_image():
    """The image, built from the repository as `docker build .` would (the docker image
    format keeps the HEALTHCHECK); the build's output."""
    base_image()
    started = time.monotonic()
    r = podman('build', '--format', 'docker', '--pull=never', '-t', IMAGE, ROOT, timeout=1800)
    print('build: %.0fs' % (time.monotonic() - started))
    return r.stdout + r.stderr


def image_built():
    if podman('image', 'exists', IMAGE, check=False).returncode != 0:
        build_image()


class Container:
    """The image running detached, published on 127.0.0.1, with the store's unix socket
    and a named volume mounted. Requests go through the published port with the
    harness's HTTP helpers."""
    connection = Server.connection
    request = Server.request
    json = Server.json
    upload = Server.upload

    def __init__(self, redis, env=None):
        self.name = 'rz-test-' + secrets.token_hex(4)
        self.volume = self.name + '-state'
        self.host, self.port = '127.0.0.1', free_port()
        # The image's user (10001) must reach the socket the host's redis-server made.
        os.chmod(redis.dir, 0o755)
        os.chmod(redis.socket_path, 0o777)
        settings = {'REDIS_URL': 'unix:///run/redis/' + os.path.basename(redis.socket_path)}
        settings.update(env or {})
        argv = ['run', '-d', '--name', self.name, '-p', '%s:%d:8000' % (self.host, self.port),
                '-v', redis.dir + ':/run/redis', '-v', self.volume + ':/var/lib/raven-zero']
        for k, v in settings.items():
            argv += ['-e', '%s=%s' % (k, v)]
        podman(*argv, IMAGE, timeout=120)

    def healthcheck(self):
        return podman('healthcheck', 'run', self.name, check=False).returncode

    def inspect(self, fmt):
        return podman('inspect', '--format', fmt, self.name).stdout.strip()

    def events(self, name):
        out = podman('logs', self.name, check=False).stdout
        return [e for e in (json.loads(l) for l in out.splitlines() if l.startswith('{'))
                if e.get('event') == name]

    def wait_healthy(self, timeout=60):
        wait_until(lambda: self.healthcheck() == 0, timeout,
                   message='podman healthcheck run %s to pass' % self.name)

    def volume_dir(self):
        return podman('volume', 'inspect', '--format', '{{.Mountpoint}}', self.volume).stdout.strip()

    def remove(self):
        podman('rm', '-f', '-t', '0', self.name, check=False)
        podman('volume', 'rm', '-f', self.volume, check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


@timeout(3600)  # cold: debootstrap (minutes) and a build that installs the toolchain
def test_the_image_builds_on_a_debootstrapped_debian_12_slim_and_keeps_its_health_check():
    out = build_image()
    assert 'is greater than SYS_' not in out, 'useradd or groupadd warned:\n' + out
    assert 'HEALTHCHECK is not supported' not in out, out
    hc = json.loads(podman('image', 'inspect', '--format', '{{json .HealthCheck}}',
                           IMAGE).stdout)
    assert hc and hc['Interval'] <= 5 * 10**9 and hc.get('StartPeriod'), hc
    cfg = json.loads(podman('image', 'inspect', '--format', '{{json .Config}}', IMAGE).stdout)
    assert cfg['User'] == 'raven-zero' and cfg['StopSignal'] == 'SIGQUIT', cfg


@timeout(900)
def test_the_container_serves_as_uid_10001_keeps_its_state_in_the_volume_and_reloads_on_hup():
    image_built()
    with Redis(unix_socket=True) as redis, Container(redis) as c:
        c.wait_healthy()
        # Probes in a row from the image's own check are never rate-limited.
        assert [c.healthcheck() for _ in range(3)] == [0, 0, 0]
        assert c.inspect('{{.State.Health.Status}}') == 'healthy'
        status, _, body = c.json('GET', '/health/')
        assert status == 200 and body['status'] == 'healthy', body
        uids = podman('exec', c.name, 'sh', '-c',
                      'grep ^Uid: /proc/1/status; id -u').stdout.split()
        assert uids[1:5] == ['10001'] * 4 and uids[5] == '10001', uids
        data = os.urandom(300 * 1024)
        status, _, body = c.upload(data, uses=2)
        assert status == 201, body
        key = body['key']
        status, _, got = c.request('GET', '/download/' + key)
        assert status == 200 and got == data
        # Uploads are in the volume, owned by the image's user; the server secret is not
        # (it lives in the store: the volume alone opens nothing).
        vol = c.volume_dir()
        stored = [os.path.join(vol, 'uploads', n) for n in os.listdir(os.path.join(vol, 'uploads'))]
        assert len(stored) == 1, stored
        for p in stored:
            assert os.stat(p).st_uid == 10001, p
        assert not os.path.exists(os.path.join(vol, 'secret.key'))
        secret = redis.command('GET', 'secret')
        secret = secret.encode() if isinstance(secret, str) else secret
        assert isinstance(secret, bytes) and len(secret) == 32, 'no secret in the store'
        for root, _, names in os.walk(vol):
            for n in names:
                with open(os.path.join(root, n), 'rb') as f:
                    assert secret not in f.read(), 'the secret is on the volume: ' + n
        podman('kill', '--signal', 'HUP', c.name)
        wait_until(lambda: c.events('reloaded'), 30, message='the reload in the log')
        wait_until(lambda: c.json('GET', '/health/')[0] == 200, 30,
                   message='healthy after the reload')
        status, _, got = c.request('GET', '/download/' + key)
        assert status == 200 and got == data, 'the second use after the reload'


@timeout(900)
def test_podman_stop_lets_an_in_flight_download_finish_before_the_container_goes():
    """`podman stop -t 40` sends the image's STOPSIGNAL (SIGQUIT); the container's
    network goes with its last process, so every byte must be delivered before it."""
    image_built()
    with Redis(unix_socket=True) as redis, \
            Container(redis, env={'MAX_FILE_SIZE': str(16 * MIB)}) as c:
        c.wait_healthy()
        data = os.urandom(8 * MIB)
        status, _, body = c.upload(data)
        assert status == 201, body
        client = PacedDownload(c.host, c.port, body['key'], 'close', rate=MIB, patience=10)
        client.start()
        wait_until(lambda: len(client.got) >= MIB, 30, message='1 MiB into the download')
        stopped = {}

        def stop():
            started = time.monotonic()
            stopped['rc'] = podman('stop', '-t', '40', c.name, timeout=120,
                                   check=False).returncode
            stopped['took'] = time.monotonic() - started
        stopper = threading.Thread(target=stop, daemon=True)
        stopper.start()
        client.join(60)
        stopper.join(60)
        report = 'status %r, %d of %d bytes, %s; podman stop %r' % (
            client.status, len(client.got), len(data), client.ending, stopped)
        print(report)
        assert client.status == 200 and client.complete and client.ending == 'closed', report
        assert sha256(bytes(client.got)) == sha256(data), 'wrong bytes'
        assert stopped.get('rc') == 0 and stopped['took'] < 40, report
        assert c.inspect('{{.State.ExitCode}}') == '0', 'the master did not exit cleanly'
        assert not c.events('stop_timeout'), 'children had to be killed'
