"""Plaintext on disk: a request body above BODY_MEMORY_MAX that arrives whole (HTTP/2,
or HTTP/1 chunked; an HTTP/1 upload with a Content-Length is sealed as it arrives
instead) spills to an unlinked file under SPILL_PATH, which is overwritten with zeros once the answer is decided (sealed,
refused) or the client goes away. The file is opened by the test through
/proc/PID/map_files while the request is in flight: that descriptor keeps the file
alive after libh2o lets it go, so what the file held at that moment can be read."""

import os

from harness import (CLIENT, H2, Redis, Server, assert_nobody_replaced, chunked, multipart, path,
                     raw_connect, read_response, skip, spill_maps, wait_until)

MIB = 1 << 20
MARKER = b'RAVEN-ZERO-PLAINTEXT-MARKER:'


def marked(size):
    """size bytes of a file that repeats a marker that nothing else sends."""
    unit = MARKER + os.urandom(36).hex().encode()
    return (unit * (size // len(unit) + 1))[:size]


def open_spill(worker):
    """A descriptor of the worker's one spill file (libh2o unlinked it at once), or None
    when /proc/PID/map_files cannot be opened here (it takes CAP_SYS_ADMIN). libh2o
    maps a growing buffer anew, so a mapping just listed may be gone: look again."""
    def one():
        maps = spill_maps(worker)
        if len(maps) != 1:
            return None
        try:
            return os.open('/proc/%d/map_files/%s' % (worker, maps[0][0]), os.O_RDONLY), maps[0][2]
        except FileNotFoundError:
            return None
        except PermissionError:
            return (None, maps[0][2])
    return wait_until(one, 5, message='one spill file')


def held(worker, name):
    """Does the worker still map the spill file called name, or hold a descriptor of it?
    It erases the file on a helper thread once unmapped, then closes its descriptor."""
    if any(n == name for _, _, n in spill_maps(worker)):
        return True
    for fd in os.listdir('/proc/%d/fd' % worker):
        try:
            if os.readlink('/proc/%d/fd/%s' % (worker, fd)) == name:
                return True
        except FileNotFoundError:
            pass
    return False


def content(fd):
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0)


def upload_head(body, ctype):
    return ('POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n'
            'Content-Length: %d\r\n\r\n' % (ctype, len(body))).encode()


def chunked_head(ctype):
    return ('POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n'
            'Transfer-Encoding: chunked\r\n\r\n' % ctype).encode()


def test_a_sealed_upload_leaves_its_spill_file_zeroed_on_the_spill_path():
    spill_dir = os.path.join('/dev/shm', os.path.basename(path('spill')))
    env = {'WORKERS': '1', 'BODY_MEMORY_MAX': '64K', 'SPILL_PATH': spill_dir}
    try:
        with Redis() as redis, Server(redis, env=env) as server:
            before = server.full_tree()
            worker = before['workers'][0]
            body, ctype = multipart(marked(3 * MIB))
            sock = raw_connect(server, CLIENT)
            try:
                wire = chunked(body, 64 * 1024)
                sock.sendall(chunked_head(ctype) + wire[:-4096])
                fd, name = open_spill(worker)
                assert name.startswith(spill_dir + '/.body.'), name
                if fd is None:
                    skip('/proc/PID/map_files cannot be opened here')
                    return
                try:
                    wait_until(lambda: content(fd).count(MARKER) > 30000, 5,
                               message='the body in its spill file')
                    sock.sendall(wire[-4096:])
                    status, _, data = read_response(sock, 'POST')
                    assert status == 201, data
                    wait_until(lambda: not held(worker, name), 5, message='the spill let go')
                    left = content(fd)
                    assert left.count(MARKER) == 0, '%d markers left' % left.count(MARKER)
                    assert left.count(0) > 3 * MIB, 'the body was not overwritten'
                finally:
                    os.close(fd)
            finally:
                sock.close()
            assert_nobody_replaced(server, before)
    finally:
        if os.path.isdir(spill_dir):
            assert os.listdir(spill_dir) == [], os.listdir(spill_dir)
            os.rmdir(spill_dir)


def test_a_body_its_client_abandons_or_that_is_refused_leaves_only_zeros():
    env = {'WORKERS': '1', 'BODY_MEMORY_MAX': '64K', 'MAX_BODY_BYTES_PER_CLIENT': '4M'}
    with Redis() as redis, Server(redis, env=env) as server:
        before = server.full_tree()
        worker = before['workers'][0]
        body, ctype = multipart(marked(3 * MIB))

        # HTTP/2: the client resets its stream halfway. The body goes 32 KiB at a time,
        # each read by the server before the next: the connection's own input buffer
        # would otherwise spill too, for the length of one read (see the README).
        h2 = H2(server, CLIENT)
        fds = {}
        try:
            h2.send(h2.request_head(1, 'POST', '/upload/', [('content-type', ctype),
                                                            ('content-length', str(len(body)))]))
            for at in range(0, 2 * MIB, 32 * 1024):
                h2.send(h2.data_frames(1, body[at:at + 32 * 1024]))
                assert h2.sync(), 'the server stopped reading'

            def spilled():
                for where, _, name in spill_maps(worker):
                    if name not in fds:
                        try:
                            fds[name] = os.open('/proc/%d/map_files/%s' % (worker, where), os.O_RDONLY)
                        except FileNotFoundError:
                            continue  # released meanwhile
                return any(content(fd).count(MARKER) > 20000 for fd in fds.values())
            try:
                wait_until(spilled, 5, message='the body spilled')
            except PermissionError:
                skip('/proc/PID/map_files cannot be opened here')
                return
            # The stream's body is the spill file with the most of it.
            stream_file = max((name for _, _, name in spill_maps(worker) if name in fds),
                              key=lambda name: content(fds[name]).count(MARKER))
            assert content(fds[stream_file]).count(MARKER) > 20000, stream_file
            h2.send(h2.rst(1))
            wait_until(lambda: not spill_maps(worker) and not held(worker, stream_file), 5,
                       message='the spill let go')
            assert content(fds[stream_file]).count(MARKER) == 0, 'a reset stream left its body'
            assert h2.send(h2.request_head(3, 'GET', '/health/', end_stream=True))
            assert h2.read(lambda c: c.answered(3), 5), 'the connection went on'
        finally:
            h2.close()
            for fd in fds.values():
                os.close(fd)

        # HTTP/1: a second body would take the client over MAX_BODY_BYTES_PER_CLIENT and
        # is refused; then the first one's client goes away.
        first = raw_connect(server, CLIENT)
        try:
            first.sendall(chunked_head(ctype) + chunked(body, 64 * 1024)[:2 * MIB])
            fd, name = open_spill(worker)
            try:
                wait_until(lambda: content(fd).count(MARKER) > 20000, 5, message='the body spilled')
                second = raw_connect(server, CLIENT)
                try:
                    second.sendall(upload_head(body, ctype) + body[:64 * 1024])
                    status, _, _ = read_response(second, 'POST')
                    assert status == 503, status
                finally:
                    second.close()
                wait_until(lambda: len(spill_maps(worker)) == 1, 5,
                           message='the refused body gone')
                first.close()
                wait_until(lambda: not spill_maps(worker) and not held(worker, name), 5,
                           message='the spill let go')
                assert content(fd).count(MARKER) == 0, 'an abandoned body left its plaintext'
            finally:
                os.close(fd)
        finally:
            first.close()
        assert_nobody_replaced(server, before)
