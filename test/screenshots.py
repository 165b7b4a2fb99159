#!/usr/bin/env python3
"""screenshots.py - a PNG of each view of the drop page, for docs/screenshots/
(`make screenshots`, which builds ./raven-zero first).

Each view is taken in a desktop window (1280 x 800) and on a phone (390 x 844), light;
the result and the fetch view also dark. The server and its redis-server run on free
ports in a temporary directory, removed afterwards, as in the integration tests;
the headless Chromium is the tests' (test/integration/browser.py).

    python3 test/screenshots.py [OUTPUT_DIRECTORY]
"""

import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'test', 'integration'))
sys.dont_write_bytecode = True

import harness  # noqa: E402
from browser import Browser  # noqa: E402
from harness import MIB, PDF, Redis, Server, upload_ok  # noqa: E402

SIZES = {'desktop': (1280, 800), 'phone': (390, 844)}
DARK = ('result', 'fetch')


def write(name, data):
    file_path = harness.path(name)
    with open(file_path, 'wb') as f:
        f.write(data)
    return file_path


class Shooter:
    def __init__(self, b, out):
        self.b = b
        self.out = out
        self.taken = []

    def look(self, size, scheme):
        self.size, self.scheme = size, scheme
        self.b.size(*SIZES[size])
        self.b.color_scheme(scheme)

    def open(self, server, target='/'):
        self.b.driver.get('about:blank')
        self.b.open(server, target)
        self.b.wait(lambda: self.b.js('return document.readyState') == 'complete', 'the page')

    def shoot(self, view):
        """Save the viewport as VIEW-SIZE[-dark].png, focus and caret hidden."""
        self.b.js('document.activeElement && document.activeElement.blur();'
                  'window.scrollTo(0, 0)')
        name = '%s-%s%s.png' % (view, self.size, '-dark' if self.scheme == 'dark' else '')
        self.b.screenshot(os.path.join(self.out, name), full_page=False)
        self.taken.append(name)
        problems = self.b.problems(expected_statuses=(413, 429))
        assert not problems, '%s: %r' % (name, problems)


def drop_and_send(s, server):
    b = s.b
    s.open(server)
    s.shoot('drop')
    b.throttle_upload(256 * 1024)
    b.el('file').send_keys(write('quarterly-report.pdf', PDF + os.urandom(3 * MIB)))
    b.click('upload')
    b.wait(lambda: b.js('return document.getElementById("bar").value') >= 40, '40% sent',
           timeout=30)
    s.shoot('uploading')
    b.click('cancel')
    b.wait_text('send-error', 'cancelled')
    b.throttle_upload(-1)
    b.click('upload')
    b.wait(lambda: b.visible('result-view'), 'the result view', timeout=30)
    return b.text('key')


def views(s, server, errors_server):
    b = s.b
    if s.scheme == 'light':
        key = drop_and_send(s, server)
    else:
        s.open(server)
        b.el('file').send_keys(write('quarterly-report.pdf', PDF))
        b.click('upload')
        b.wait(lambda: b.visible('result-view'), 'the result view')
        key = b.text('key')
    b.wait_text('r-expires', 'your time')
    s.shoot('result')
    s.open(server, '/#' + key)
    b.wait_text('f-state', 'Ready to download.')
    s.shoot('fetch')
    if s.scheme == 'dark':
        return
    b.click('details')
    b.wait(lambda: b.visible('details-list'), 'the details')
    b.js('document.getElementById("details-list").scrollIntoView()')
    s.shoot('details')
    s.open(server, '/#' + harness.unknown_key())
    b.wait_text('f-state', 'Nothing found')
    s.shoot('fetch-unknown')
    s.open(errors_server)
    b.el('file').send_keys(write('holiday-video.mp4', os.urandom(3 * MIB)))
    b.click('upload')
    b.wait_text('send-error', 'too large')
    s.shoot('error-too-large')
    b.el('file').send_keys(write('notes.pdf', PDF))
    b.click('upload')
    b.wait_text('send-error', 'Try again in')
    s.shoot('error-rate-limit')


def main(argv):
    out = os.path.abspath(argv[1] if len(argv) > 1 else os.path.join(ROOT, 'docs',
                                                                        'screenshots'))
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix='rz-screenshots-')
    os.environ['RZ_TEST_TMP'] = work
    os.environ.setdefault('RZ_BIN', os.path.join(ROOT, 'raven-zero'))
    public = {'PUBLIC_URL': 'https://drop.example.org'}  # as a deployment's links read
    limits = dict(public, MAX_FILE_SIZE=str(MIB), UPLOAD_RATE_LIMIT='1/hour')
    try:
        with Redis() as redis, Server(redis, env=public) as server, Redis() as other, \
                Server(other, env=limits) as errors_server, \
                Browser(harness.path('browser')) as b:
            # The errors server's one upload of the hour, so that the next is refused.
            upload_ok(errors_server, b'the one upload of the hour')
            s = Shooter(b, out)
            for scheme in ('light', 'dark'):
                for size in SIZES:
                    s.look(size, scheme)
                    views(s, server, errors_server)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name in s.taken:
        print(os.path.join(os.path.relpath(out, ROOT), name))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
