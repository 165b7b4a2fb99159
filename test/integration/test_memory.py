"""A worker's memory stays bounded whatever it is sent: bodies above BODY_MEMORY_MAX live
in spill files (file-backed pages the kernel may write out and drop), never in the
worker's heap, and each upload is sealed a slice at a time. Measured as the worker's
anonymous resident memory (RssAnon), sampled while the bodies arrive and are sealed."""

import os
import threading

from harness import Redis, Server, multipart, raw_connect, read_response, timeout

MIB = 1 << 20
UPLOADS = 50
SIZE = 10 * MIB
ANON_LIMIT_MIB = 64


def rss_anon_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('RssAnon:'):
                return int(line.split()[1])
    raise AssertionError('no RssAnon for pid %d' % pid)


class AnonSampler(threading.Thread):
    """The largest RssAnon of one process, sampled every 10 ms until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.halt = threading.Event()

    def run(self):
        while True:
            self.peak = max(self.peak, rss_anon_kib(self.pid))
            if self.halt.wait(0.01):
                return

    def stop(self):
        self.halt.set()
        self.join()
        return self.peak


@timeout(240)  # 500 MiB through one worker, spilled and sealed: a minute on a busy disk
def test_a_worker_takes_fifty_concurrent_10_mib_uploads_in_under_64_mib_of_heap():
    # One worker takes them all, from one client allowed that many uploads at once.
    env = {'WORKERS': '1', 'MAX_UPLOADS_PER_CLIENT': str(UPLOADS),
           'UPLOAD_RATE_LIMIT': '1000/minute', 'MAX_FILE_SIZE': str(SIZE)}
    with Redis() as redis, Server(redis, env=env) as server:
        worker = server.full_tree()['workers'][0]
        body, ctype = multipart(os.urandom(SIZE), filename=b'big.bin', fields=[('uses', '1')])
        head = ('POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n'
                'Content-Length: %d\r\n\r\n' % (ctype, len(body))).encode()
        socks = [raw_connect(server, timeout=120) for _ in range(UPLOADS)]
        statuses = [None] * UPLOADS
        start = threading.Barrier(UPLOADS)

        def upload(i):
            start.wait()
            socks[i].sendall(head)
            socks[i].sendall(body)
            statuses[i] = read_response(socks[i])[0]

        idle = rss_anon_kib(worker)
        sampler = AnonSampler(worker)
        sampler.start()
        threads = [threading.Thread(target=upload, args=(i,)) for i in range(UPLOADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        peak = sampler.stop()
        for s in socks:
            s.close()
        assert statuses == [201] * UPLOADS, statuses
        assert peak < ANON_LIMIT_MIB * 1024, (
            'RssAnon went from %d KiB idle to %d KiB with %d concurrent uploads of %d MiB'
            % (idle, peak, UPLOADS, SIZE // MIB))


# The bound is the optimised build's: AddressSanitizer keeps freed memory in quarantine
# and shadows every byte, so its RssAnon (170 MiB here) says nothing about the worker's.
test_a_worker_takes_fifty_concurrent_10_mib_uploads_in_under_64_mib_of_heap.flavours = ('rel',)
