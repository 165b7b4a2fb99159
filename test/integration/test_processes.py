"""The process tree and its signals: the master forks the workers and one shredder,
replaces a killed worker, reloads on SIGHUP without failing a request, stops fast on
SIGTERM/SIGINT and gracefully on SIGQUIT (letting a download finish), and tells systemd
through NOTIFY_SOCKET when it is ready, reloading and stopping."""

import os
import signal
import socket
import threading
import time
import uuid

import harness
from harness import (MIB, PacedDownload, Redis, Server, SlowDownload, Timeout, alive, comm,
                     failing_calls, lines_of, path, port_open, run, sha256, upload_ok, wait_until)


def test_master_forks_the_configured_workers_and_one_shredder():
    with Redis() as redis, Server(redis, env={'WORKERS': '3'}) as server:
        kids = server.full_tree(3)
        assert kids['other'] == [], 'unexpected children: %r' % [
            (p, comm(p)) for p in kids['other']]
        assert comm(server.pid) not in ('rz-worker', 'rz-shredder'), comm(server.pid)


def assert_stops(server, sig, timeout):
    kids = server.full_tree()
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


def test_a_failing_sigprocmask_stops_start_up_with_one_line():
    code, _, stderr = run([], env=failing_calls('sigprocmask'))
    assert code == 1, (code, stderr)
    assert lines_of(stderr) == ['raven-zero: cannot set up signal handling: Invalid argument'], stderr


def test_a_signal_the_master_fails_to_send_is_logged_with_the_child_and_the_error():
    with Redis() as redis, Server(redis, env=failing_calls('kill')) as server:
        old = server.children()['workers']
        server.signal(signal.SIGHUP)  # the old workers are then sent SIGQUIT

        def failed():
            lines = [line for line in server.log_lines() if line.get('event') == 'signal_failed']
            return lines if {line.get('pid') for line in lines} >= set(old) else None
        lines = wait_until(failed, 10, message='signal_failed logged for every old worker')
        for line in lines:
            assert line['level'] == 'error' and line['signal'] == signal.SIGQUIT, line
            assert line['error'] == 'Operation not permitted', line


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
        before = server.full_tree()
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
        status, _, _ = server.json('GET', '/health/')
        assert status == 200


def test_killed_worker_is_replaced_and_service_continues():
    with Redis() as redis, Server(redis) as server:
        before = server.full_tree()
        victim = before['workers'][0]
        os.kill(victim, signal.SIGKILL)

        def replaced():
            kids = server.children()
            return len(kids['workers']) == 2 and victim not in kids['workers'] and kids
        after = wait_until(replaced, 10, message='a replacement for worker %d' % victim)
        assert before['workers'][1] in after['workers'], 'the other worker was not kept'
        assert after['shredder'] == before['shredder'], 'the shredder was restarted'
        for _ in range(20):
            status, _, body = server.json('GET', '/health/')
            assert status == 200, body


def connections_held(port, pids):
    """({pid: how many established connections to port it holds}, how many wait in the
    listening socket's queue, accepted by none), from /proc."""
    inodes, backlog = set(), 0
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(':', 1)[1], 16) != port:
                    continue
                if fields[3] == '01':
                    inodes.add(fields[9])
                elif fields[3] == '0A':
                    backlog += int(fields[4].split(':')[1], 16)
    held = {}
    for pid in pids:
        n = 0
        for fd in os.listdir('/proc/%d/fd' % pid):
            try:
                link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
            except OSError:
                continue
            n += link.startswith('socket:[') and link[8:-1] in inodes
        held[pid] = n
    return held, backlog


def wait_held(server, workers, done, message):
    """Poll connections_held until done(held) is true; on time-out say what each worker
    held, what waited in the backlog, and what each worker was doing."""
    last = {}

    def check():
        last['held'], last['backlog'] = connections_held(server.port, workers)
        return done(last['held'])
    limit = 5
    try:
        wait_until(check, limit, message=message)
    except Timeout:
        states = {}
        for pid in workers:
            with open('/proc/%d/stat' % pid) as f:
                states[pid] = f.read().rsplit(')', 1)[1].split()[0]
            with open('/proc/%d/wchan' % pid) as f:
                states[pid] += ' ' + f.read()
        raise Timeout('timed out after %ds waiting for %s: held %r, backlog %d, workers %r'
                      % (limit, message, last['held'], last['backlog'], states)) from None
    return last['held']


def both_workers_accept(server):
    """Wait until each worker accepts (each connects to the store first); their pids."""
    workers = server.children()['workers']
    socks, owners = [], set()
    try:
        deadline = time.monotonic() + 10
        while owners != set(workers):
            assert time.monotonic() < deadline, 'only %r of %r accept' % (owners, workers)
            before = connections_held(server.port, workers)[0]
            socks.append(socket.create_connection(('127.0.0.1', server.port), timeout=5))
            after = wait_held(server, workers,
                              lambda h: sum(h.values()) == sum(before.values()) + 1,
                              'the connection accepted')
            owners |= {pid for pid in workers if after[pid] > before[pid]}
    finally:
        for s in socks:
            s.close()
    wait_held(server, workers, lambda h: sum(h.values()) == 0,
              'the workers to see those connections closed')
    return workers


def open_connections(server, n):
    socks = []
    for _ in range(n):
        socks.append(socket.create_connection(('127.0.0.1', server.port), timeout=5))
    return socks


def test_a_burst_of_connections_is_shared_between_the_workers():
    with Redis() as redis, Server(redis) as server:
        workers = both_workers_accept(server)
        socks = []
        try:
            for burst in range(3):
                socks += open_connections(server, 16)
                held = wait_held(server, workers, lambda h: sum(h.values()) == len(socks),
                                 'every connection accepted')
                counts = sorted(held.values())
                assert counts[-1] - counts[0] <= 4, \
                    'burst %d: the workers hold %r of %d connections' % (burst, held, len(socks))
        finally:
            for s in socks:
                s.close()


def test_a_stopped_worker_is_not_waited_for_new_connections_go_to_the_other():
    with Redis() as redis, Server(redis) as server:
        workers = both_workers_accept(server)
        socks = open_connections(server, 8)
        stopped = None
        try:
            wait_held(server, workers, lambda h: sum(h.values()) == 8,
                      'every connection accepted')
            stopped = workers[0]
            os.kill(stopped, signal.SIGSTOP)
            socks += open_connections(server, 16)
            held = wait_held(server, workers, lambda h: h[workers[1]] == 24 - h[stopped],
                             'the running worker to take every new connection')
            assert held[stopped] <= 6, held
            os.kill(stopped, signal.SIGCONT)
            stopped = None
            status, _, body = server.json('GET', '/health/')
            assert status == 200, body
        finally:
            if stopped is not None:
                os.kill(stopped, signal.SIGCONT)
            for s in socks:
                s.close()


def test_sigquit_during_a_large_download_lets_it_finish_then_the_master_exits_0():
    env = {'MAX_FILE_SIZE': str(64 * MIB), 'SHUTDOWN_TIMEOUT': '30'}
    with Redis() as redis, Server(redis, env=env) as server:
        kids = server.full_tree()
        data = os.urandom(32 * MIB)
        key = upload_ok(server, data)[0]['key']
        dl = SlowDownload(server, key)
        try:
            assert dl.status == 200 and dl.length == len(data), (dl.status, dl.headers)
            dl.read(MIB)
            server.signal(signal.SIGQUIT)
            quit_at = time.monotonic()
            # No new connections...
            wait_until(lambda: not port_open(server.port), 5, interval=0.05,
                       message='the listening socket closed after SIGQUIT')
            closed_after = time.monotonic() - quit_at
            # ... while the download goes on, slowly: about 4 s for 31 MiB.
            halfway = dl.length // 2 - len(dl.body)
            assert dl.read(halfway, pause=0.03), 'the download was cut at %d bytes' % len(dl.body)
            assert server.running(), 'the master exited with a download in flight'
            assert dl.read(dl.length - len(dl.body), pause=0.03), \
                'the download was cut at %d of %d bytes' % (len(dl.body), dl.length)
            finished = time.monotonic()
            rest = dl.sock.recv(1)
            assert rest == b'', 'bytes after the announced length'
        finally:
            dl.close()
        assert sha256(dl.body) == sha256(data), 'the download completed with the wrong bytes'
        assert finished - quit_at < 30, 'the download took %.1fs' % (finished - quit_at)
        code = server.wait_exit(10)
        assert code == 0, 'master exited with %s after SIGQUIT' % code
        print('listener closed %.2fs after SIGQUIT; download finished %.1fs after it; master '
              'exited %.2fs later' % (closed_after, finished - quit_at, time.monotonic() - finished))
        wait_until(lambda: not any(alive(p) for p in kids['workers'] + [kids['shredder']]), 5,
                   message='workers and shredder gone')
        assert server.events('stop_timeout') == [], 'children had to be killed'


def test_sigterm_stops_promptly_and_cleanly_even_with_a_download_in_flight():
    env = {'MAX_FILE_SIZE': str(64 * MIB), 'SHUTDOWN_TIMEOUT': '30'}
    with Redis() as redis, Server(redis, env=env) as server:
        kids = server.full_tree()
        data = os.urandom(16 * MIB)
        key = upload_ok(server, data)[0]['key']
        dl = SlowDownload(server, key)
        try:
            dl.read(MIB)
            server.signal(signal.SIGTERM)
            started = time.monotonic()
            code = server.wait_exit(5)
            took = time.monotonic() - started
            # The download connection is closed, not left hanging.
            try:
                while dl.read(MIB):
                    if len(dl.body) >= dl.length:
                        break
            except ConnectionResetError:
                pass
        finally:
            dl.close()
        assert code == 0, 'master exited with %s after SIGTERM' % code
        assert took < 5, 'SIGTERM took %.1fs' % took
        wait_until(lambda: not any(alive(p) for p in kids['workers'] + [kids['shredder']]), 2,
                   message='workers and shredder gone after SIGTERM')
        assert not port_open(server.port)
        names = [x.get('event') for x in server.log_lines()]
        assert 'stopping' in names and 'stopped' in names, names[-5:]
        assert 'stop_timeout' not in names, 'children had to be killed'
        assert server.stderr_text().strip() == '', server.stderr_text()[-500:]


@harness.timeout(120)
def test_a_graceful_stop_delivers_every_byte_before_the_network_dies_with_the_master():
    """As in a container: the server has a network namespace of its own, deleted (veth
    first, so in-flight packets are lost) the moment the master exits. Three slow
    clients download while SIGQUIT arrives: HTTP/1.1 closing, HTTP/1.1 keep-alive and
    HTTP/2. Each must get every byte and then a clean close, as the log's 200 says."""
    why = harness.NetNamespace.unavailable()
    if why:
        print('SKIP: ' + why)
        return
    env = {'MAX_FILE_SIZE': str(16 * MIB), 'SHUTDOWN_TIMEOUT': '30'}
    with Redis(unix_socket=True) as redis, harness.NetNamespace() as net, \
            Server(redis, env=env, net=net) as server:
        data = os.urandom(8 * MIB)
        key = upload_ok(server, data, uses=3)[0]['key']
        clients = [PacedDownload(server.host, server.port, key, mode)
                   for mode in ('close', 'keep-alive', 'h2')]
        for c in clients:
            c.start()
        wait_until(lambda: all(len(c.got) >= MIB for c in clients), 20,
                   message='every client 1 MiB into its download')
        exited = {}

        def watch():  # what a container runtime does when the container's pid 1 exits
            exited['code'] = server.proc.wait()
            exited['at'] = time.monotonic()
            net.delete()
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        server.signal(signal.SIGQUIT)
        quit_at = time.monotonic()
        for c in clients:
            c.join(60)
        watcher.join(40)
        report = ['%s: status %r, %d of %d bytes, %s' % (c.mode, c.status, len(c.got),
                                                          len(data), c.ending)
                  for c in clients]
        print('master exited %.1fs after SIGQUIT; %s'
              % (exited.get('at', quit_at) - quit_at, '; '.join(report)))
        assert exited.get('code') == 0, 'master exit: %r' % exited
        for c in clients:
            assert c.status == 200 and c.complete and c.ending == 'closed', '\n'.join(report)
            assert sha256(bytes(c.got)) == sha256(data), '%s: wrong bytes' % c.mode
        logged = [x for x in server.log_lines() if x.get('event') == 'request' and
                  x.get('path', '').startswith('/download/')]
        assert [x['status_code'] for x in logged] == [200] * 3, logged
        assert server.events('stop_timeout') == [], 'children had to be killed'


class NotifySocket:
    """A fake systemd: a datagram socket that collects the master's notifications."""

    def __init__(self, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = 'rz-notify-' + uuid.uuid4().hex
            self.sock.bind('\0' + name)
            self.address = '@' + name
        else:
            self.address = path('notify.sock')
            self.sock.bind(self.address)
        self.messages = []

    def receive(self, key, timeout=harness.START_TIMEOUT):
        """Wait for the next message holding key (e.g. 'READY'); it, parsed to a dict."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('no %s=1 within %.0fs; received %r'
                                     % (key, timeout, self.messages))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            msg = dict(line.split('=', 1) for line in data.decode().split('\n') if '=' in line)
            self.messages.append(msg)
            if key in msg:
                return msg

    def close(self):
        self.sock.close()


def test_master_notifies_ready_once_listening_then_reloading_ready_on_hup_and_stopping_on_term():
    notify = NotifySocket()
    with Redis() as redis:
        server = Server(redis, env={'NOTIFY_SOCKET': notify.address}, wait=None)
        try:
            ready = notify.receive('READY')
            assert ready['READY'] == '1', ready
            assert 'workers' in ready.get('STATUS', ''), ready
            # Ready means the socket accepts now: no connection may be refused.
            assert port_open(server.port), 'READY=1 sent before the port accepts'
            status, _, _ = server.request('GET', '/health/')
            assert status in (200, 503), status

            server.wait_ready()
            server.signal(signal.SIGHUP)
            reloading = notify.receive('RELOADING')
            assert reloading['RELOADING'] == '1', reloading
            usec = int(reloading['MONOTONIC_USEC'])
            assert abs(usec - time.monotonic() * 1e6) < 10e6, \
                'MONOTONIC_USEC %d is not CLOCK_MONOTONIC' % usec
            assert 'READY' not in reloading, reloading
            again = notify.receive('READY')
            assert again['READY'] == '1', again
            status, _, body = server.request('GET', '/health/')
            assert status == 200, 'not serving after the reload: %r' % body

            server.signal(signal.SIGTERM)
            stopping = notify.receive('STOPPING', timeout=10)
            assert stopping['STOPPING'] == '1', stopping
            assert server.wait_exit(15) == 0
        finally:
            server.stop()
            notify.close()
    kinds = [next(iter(m)) for m in notify.messages]
    assert kinds == ['READY', 'RELOADING', 'READY', 'STOPPING'], notify.messages


def test_master_notifies_an_abstract_socket_and_stopping_on_graceful_quit():
    notify = NotifySocket(abstract=True)
    try:
        with Redis() as redis, Server(redis, env={'NOTIFY_SOCKET': notify.address}) as server:
            assert notify.receive('READY')['READY'] == '1'
            server.signal(signal.SIGQUIT)
            assert notify.receive('STOPPING', timeout=10)['STOPPING'] == '1'
            assert server.wait_exit(40) == 0
    finally:
        notify.close()


def test_reload_with_a_bad_configuration_still_reports_ready_and_keeps_serving():
    notify = NotifySocket()
    conf = harness.write_file('rz.yaml', 'workers: 2\n')
    try:
        with Redis() as redis, Server(redis, env={'NOTIFY_SOCKET': notify.address},
                                      args=['-c', conf]) as server:
            notify.receive('READY')
            harness.write_file('rz.yaml', 'workers: banana\n')
            server.signal(signal.SIGHUP)
            notify.receive('RELOADING')
            assert notify.receive('READY', timeout=10)['READY'] == '1'
            status, _, _ = server.request('GET', '/health/')
            assert status == 200
            wait_until(lambda: any(l.get('event') == 'reload_failed' for l in server.log_lines()),
                       5, message='reload_failed logged')
    finally:
        notify.close()


def test_without_notify_socket_nothing_changes():
    with Redis() as redis, Server(redis, env={'NOTIFY_SOCKET': None}) as server:
        server.signal(signal.SIGHUP)
        wait_until(lambda: any(l.get('event') == 'reloaded' for l in server.log_lines()), 10,
                   message='reloaded logged')
        assert server.request('GET', '/health/')[0] == 200
