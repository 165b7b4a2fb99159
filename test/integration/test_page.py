"""The drop page, GET /: served from the binary under a strict CSP, and used the way
people use it, in a real headless Chromium (browser.py): send a file and watch it go,
read the words, open the share link elsewhere and download the same bytes, type the
words by hand, see every error in words, delete the file, and do all of it from the
keyboard, with no console error and no CSP violation on any view.

One browser serves the whole module (setup_module, run once by test/run.py before the
module's tests fork); a test that needs a second, fresh profile starts its own."""

import hashlib
import html.parser
import os
import re
import shutil
import tempfile
import time

import harness
from browser import Browser, Keys
from harness import (MIB, PDF, Redis, Server, assert_common_headers, assert_json_error,
                     assert_nothing_left, key_words, upload_ok, wait_until)

SHARED = {}


def setup_module():
    SHARED['dir'] = tempfile.mkdtemp(prefix='rz-%s-page-browser-'
                                     % os.environ.get('RZ_FLAVOUR', 'x'))
    SHARED['browser'] = Browser(SHARED['dir'])
    SHARED['browser'].share_across_forks()


def teardown_module():
    SHARED.pop('browser').close()
    shutil.rmtree(SHARED.pop('dir'), ignore_errors=True)


def browser():
    """The module's browser, reset for this test (downloads into its directory)."""
    b = SHARED['browser']
    b.reset(harness.path('downloads'))
    return b


def write(name, data):
    file_path = harness.path(name)
    with open(file_path, 'wb') as f:
        f.write(data)
    return file_path


def open_page(b, server, target='/'):
    """Load the page anew: an address with a fragment on the page already open would
    only change the fragment, so that one is reached from a blank page."""
    if '#' in target and b.driver.current_url.startswith('http://127.0.0.1:%d/'
                                                         % server.port):
        b.driver.get('about:blank')
    b.open(server, target)
    b.wait(lambda: b.js('return document.readyState') == 'complete', 'the page to load')


def set_field(b, element_id, value):
    field = b.el(element_id)
    field.send_keys(Keys.CONTROL, 'a')
    field.send_keys(str(value))


def send_through_page(b, server, data, name='report.pdf', expiry=None, uses=None):
    """Open the page, pick the file through its file input, set the fields, press
    Upload."""
    open_page(b, server)
    if expiry is not None:
        set_field(b, 'expiry', expiry)
    if uses is not None:
        set_field(b, 'uses', uses)
    b.el('file').send_keys(write(name, data))
    b.click('upload')


def result_of(b):
    """Wait for the result view: (key, share link) as the page shows them."""
    b.wait(lambda: b.visible('result-view'), 'the result view (error: %r)'
           % b.js('return document.getElementById("send-error").textContent'))
    return b.text('key'), b.el('share').get_attribute('value')


def watch_progress(b):
    """Record every text the progress line shows from now on (window.__progress)."""
    b.js("""window.__progress = [];
        new MutationObserver(function () {
          window.__progress.push([document.getElementById('bar').value,
                                  document.getElementById('progress-text').textContent]);
        }).observe(document.getElementById('progress'),
                   {childList: true, characterData: true, subtree: true, attributes: true});""")


def countdown_seconds(b, element_id):
    """The seconds the countdown in an element shows ("1:05" -> 65)."""
    text = b.js('var c = document.querySelector("#%s .countdown"); return c ? c.textContent : ""'
                % element_id)
    m = re.fullmatch(r'(\d+):(\d\d)', text)
    assert m, 'no countdown in #%s: %r' % (element_id, b.text(element_id))
    return int(m.group(1)) * 60 + int(m.group(2))


def status(server, key):
    code, _, body = server.json('GET', '/status/' + key)
    assert code == 200, (code, body)
    return body


# ---------------------------------------------------------------------------------
# The page as HTTP serves it

class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []
        self.inline = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in ('src', 'href', 'action', 'formaction', 'poster', 'data'):
            if a.get(name) is not None:
                self.urls.append(a[name])
        if a.get('style') is not None or any(n.startswith('on') for n in a):
            self.inline.append((tag, a))
        self.in_script = tag in ('script', 'style')

    def handle_data(self, data):
        if getattr(self, 'in_script', False) and data.strip():
            self.inline.append(('inline code', data[:80]))


def csp_directives(value):
    out = {}
    for part in value.split(';'):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_the_page_and_its_assets_come_from_the_binary_with_a_strict_csp_under_60_kb():
    with Redis() as redis, Server(redis) as server:
        code, headers, page = server.request('GET', '/')
        assert code == 200, code
        assert headers['content-type'] == 'text/html; charset=utf-8', headers
        assert_common_headers('GET /', headers)
        with open(os.path.join(harness.ROOT, 'web', 'index.html'), 'rb') as f:
            assert page == f.read(), 'GET / is not web/index.html (rebuild?)'
        csp = csp_directives(headers['content-security-policy'])
        assert csp['default-src'] == ["'self'"], csp
        assert csp['connect-src'] == ["'self'"], csp
        for locked in ('base-uri', 'form-action', 'frame-ancestors', 'object-src'):
            assert csp[locked] == ["'none'"], (locked, csp)
        for name, sources in csp.items():
            for source in sources:
                assert source in ("'self'", "'none'", "'script'") or \
                    name == 'require-trusted-types-for', (name, sources)

        links = Links()
        links.feed(page.decode())
        assert links.inline == [], 'inline script, style or handler: %r' % links.inline
        assets = sorted({u for u in links.urls if u.startswith('assets/')})
        assert assets == ['assets/drop.css', 'assets/drop.js', 'assets/icon.svg'], links.urls
        for url in links.urls:
            assert not re.match(r'^([a-z]+:|//)', url), 'an external resource: %s' % url
        total = len(page)
        types = {'.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
                 '.svg': 'image/svg+xml'}
        for url in assets:
            for target in ('/' + url, '/' + url + '/'):
                code, headers, body = server.request('GET', target)
                assert code == 200, (target, code)
                assert headers['content-type'] == types[os.path.splitext(url)[1]], headers
                assert_common_headers('GET ' + target, headers)
                assert 'content-security-policy' not in headers, target
            with open(os.path.join(harness.ROOT, 'web', url[len('assets/'):]), 'rb') as f:
                assert body == f.read(), '%s is not the file under web/' % url
            assert not re.search(rb'(?<!xmlns=")https?://|url\(|@import', body), \
                '%s loads something' % url
            total += len(body)
        assert total < 60 * 1024, 'page and assets weigh %d bytes' % total
        print('page and assets: %d bytes' % total)

        code, headers, body = server.request('HEAD', '/')
        assert code == 200 and body == b'' and headers['content-length'] == str(len(page))
        for target in ('/assets/nothing.css', '/assets/', '/assets/drop.js/x'):
            code, headers, body = server.request('GET', target)
            assert_json_error(code, headers, body, 404, what='GET ' + target)
        code, headers, body = server.request('POST', '/')
        assert_json_error(code, headers, body, 405, what='POST /')
        assert headers['allow'] == 'GET, HEAD, OPTIONS', headers


def test_a_previewer_fetching_the_share_link_gets_the_generic_page_and_spends_nothing():
    with Redis() as redis, Server(redis) as server:
        _, _, page = server.request('GET', '/')  # before any upload: it knows of none
        up, _ = upload_ok(server, PDF, filename='secret-plans.pdf', uses=1)
        key = up['key']
        assert up['share_url'] == 'http://127.0.0.1:%d/#%s' % (server.port, key), up
        # What a previewer asks for: the link without its fragment, which clients never send.
        for agent in ('Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
                      'facebookexternalhit/1.1', 'Mozilla/5.0 (compatible; Discordbot/2.0)'):
            code, headers, body = server.request('GET', '/', headers={'User-Agent': agent})
            assert code == 200 and body == page, (agent, code)
        # The page is the same bytes as before the upload (a word of the key may be an
        # English word the page uses, so the words alone prove nothing).
        assert key.encode() not in page and b'secret-plans' not in page
        # A client that sends the fragment anyway reaches no route and no key.
        sock = harness.raw_connect(server)
        sock.sendall(b'GET /#%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' % key.encode())
        code, headers, body = harness.read_response(sock)
        sock.close()
        assert code == 404, code
        st = status(server, key)
        assert st['status'] == 'active' and st['remaining_uses'] == 1, st
        code, _, got = harness.download(server, key)
        assert code == 200 and got == PDF, code
        with open(server.log_path, 'rb') as f:
            assert key.encode() not in f.read(), 'the log holds the key'


# ---------------------------------------------------------------------------------
# Sending

def test_a_3_mib_upload_through_the_file_input_moves_to_100_percent_then_shows_the_words():
    data = os.urandom(3 * MIB)
    b = browser()
    with Redis() as redis, Server(redis) as server:
        open_page(b, server)
        b.throttle_upload(3 * MIB)  # about a second: a slow link, visibly moving
        watch_progress(b)
        b.el('file').send_keys(write('holiday.bin', data))
        assert b.text('zone-text') == 'holiday.bin', b.text('zone-text')
        assert '3.0 MB' in b.text('zone-sub'), b.text('zone-sub')
        b.click('upload')
        key, share = result_of(b)
        seen = b.js('return window.__progress')
        values = [v for v, _ in seen]
        texts = [t for _, t in seen]
        assert values == sorted(values) and values[-1] == 100, values
        assert len({v for v in values if 0 < v < 100}) >= 3, 'the bar barely moved: %r' % values
        assert any(re.match(r'^\d+% · [\d.]+ [KM]B of 3\.0 MB · [\d.]+ [KM]B/s', t)
                   for t in texts), texts
        assert any(t.startswith('100% · 3.0 MB') for t in texts), texts
        assert key_words(key), key
        assert share == 'http://127.0.0.1:%d/#%s' % (server.port, key), share
        assert b.text('r-sha') == hashlib.sha256(data).hexdigest()
        assert b.text('r-uses') == '1 download'
        assert b.text('r-file') == 'holiday.bin · 3.0 MB'
        assert re.fullmatch(r'at .+ your time \(in (10:00|[0-9]:\d\d)\)', b.text('r-expires')), \
            b.text('r-expires')
        assert b.focused() == 'result-title'
        assert status(server, key)['remaining_uses'] == 1
        assert b.problems() == []


def test_a_file_dropped_anywhere_on_the_page_is_taken_one_at_a_time():
    b = browser()
    with Redis() as redis, Server(redis) as server:
        open_page(b, server)
        # What the browser hands the page when two files are dropped on it (a drop
        # outside the box too: the browser must not open the file in the page's place).
        b.js('''var files = new DataTransfer();
                files.items.add(new File(['first file\\n'], 'first.txt', {type: 'text/plain'}));
                files.items.add(new File(['second file\\n'], 'second.txt'));
                var over = new DragEvent('dragover', {dataTransfer: files, bubbles: true,
                                                      cancelable: true});
                document.querySelector('footer').dispatchEvent(over);
                window.__overTaken = over.defaultPrevented;
                window.__zoneLit = document.getElementById('zone').classList.contains('over');
                var drop = new DragEvent('drop', {dataTransfer: files, bubbles: true,
                                                  cancelable: true});
                document.querySelector('footer').dispatchEvent(drop);
                window.__dropTaken = drop.defaultPrevented;''')
        assert b.js('return [window.__overTaken, window.__zoneLit, window.__dropTaken]') == \
            [True, True, True]
        assert b.text('zone-text') == 'first.txt'
        assert b.text('zone-sub') == '11 bytes (one file at a time: the first of 2) · press ' \
            'to choose another', b.text('zone-sub')
        assert b.focused() == 'upload'
        b.click('upload')
        key, _ = result_of(b)
        assert harness.download(server, key)[2] == b'first file\n'
        assert b.problems() == []


def test_cancel_stops_a_slow_upload_and_nothing_is_stored():
    b = browser()
    with Redis() as redis, Server(redis) as server:
        open_page(b, server)
        b.throttle_upload(256 * 1024)
        b.el('file').send_keys(write('slow.bin', os.urandom(2 * MIB)))
        b.click('upload')
        assert b.focused() == 'cancel'
        b.wait(lambda: b.js('return document.getElementById("bar").value') >= 5, '5% sent')
        b.click('cancel')
        b.wait_text('send-error', 'Upload cancelled. Nothing was stored.')
        assert not b.visible('progress') and b.el('upload').is_enabled()
        assert b.focused() == 'upload'
        assert_nothing_left(server, redis, 'a cancelled upload')
        assert b.problems() == []


def test_a_file_over_max_file_size_is_refused_in_words_with_the_limit_in_mb():
    b = browser()
    with Redis() as redis, Server(redis, env={'MAX_FILE_SIZE': str(MIB)}) as server:
        # Refused from its Content-Length before the body is read, and refused once read.
        for size, shown in ((3 * MIB, '3.0 MB'), (MIB + 1024, '1.0 MB')):
            send_through_page(b, server, os.urandom(size), name='big.bin')
            text = b.wait_text('send-error', 'too large')
            assert text == 'This file (%s) is too large: this server takes files up to 1 MB ' \
                '(1,048,576 bytes).' % shown, text
            assert b.visible('drop-view') and not b.visible('progress')
            assert b.problems(expected_statuses=(413,)) == []
        assert_nothing_left(server, redis, 'a refused upload')


def test_the_upload_rate_limit_is_shown_with_a_live_countdown():
    b = browser()
    with Redis() as redis, Server(redis, env={'UPLOAD_RATE_LIMIT': '1/minute'}) as server:
        # Both uploads in one minute of the clock (the limit's windows are aligned to it).
        wait_until(lambda: time.time() % 60 < 40, 61, interval=0.1, message='a fresh minute')
        upload_ok(server, b'the one upload of this minute')
        send_through_page(b, server, b'one too many')
        text = b.wait_text('send-error', 'Try again in')
        assert text.startswith('Too many uploads from your address'), text
        first = countdown_seconds(b, 'send-error')
        assert 1 <= first <= 60, first
        b.wait(lambda: countdown_seconds(b, 'send-error') < first, 'the countdown to move')
        assert b.problems(expected_statuses=(429,)) == []


@harness.timeout(120)  # six errors in turn, each driven through the page
def test_upload_errors_415_422_507_503_and_a_lost_connection_are_shown_in_words():
    b = browser()
    env = {'ALLOWED_MIME_TYPES': 'application/pdf'}
    with Redis() as redis, Server(redis, env=env) as server:
        send_through_page(b, server, b'Plain words and no PDF at all.\n' * 20, name='notes.txt')
        text = b.wait_text('send-error', 'type')
        assert text == 'This server does not accept files of this type (text/plain). Send ' \
            'another kind of file, or ask its administrator.', text
        send_through_page(b, server, b'', name='empty.pdf')
        assert b.wait_text('send-error', 'refused') == \
            'The server refused the form. File: File is empty.'
        # Refused by the page itself, before anything is sent.
        open_page(b, server)
        set_field(b, 'expiry', 61)
        b.el('file').send_keys(write('fine.pdf', PDF))
        b.click('upload')
        assert b.wait_text('send-error', 'Expires after') == \
            'Expires after must be a whole number from 1 to 60.'
        assert b.focused() == 'expiry' and b.el('expiry').get_attribute('aria-invalid') == 'true'
        assert b.problems(expected_statuses=(415, 422)) == []
        os.rmdir(harness.temp(server))  # nowhere to write the file: 507
        send_through_page(b, server, PDF)
        assert b.wait_text('send-error', 'storage') == 'The server has no room to store ' \
            'this file right now (insufficient storage). Try again later, or send a smaller file.'
        os.mkdir(harness.temp(server), 0o700)
        assert b.problems(expected_statuses=(507,)) == []
        redis.stop()
        send_through_page(b, server, PDF)
        assert b.wait_text('send-error', 'database').startswith('The server cannot reach')
        assert b.problems(expected_statuses=(503,)) == []
        server.stop()
        b.el('file').send_keys(write('again.pdf', PDF))
        b.click('upload')
        assert b.wait_text('send-error', 'connection') == 'The connection to the server ' \
            'failed before the upload finished. Check your network connection and try again.'
        b.problems()  # the browser reports the refused connection itself


# ---------------------------------------------------------------------------------
# Receiving

@harness.timeout(120)  # a second browser starts: seconds on a busy machine
def test_the_share_link_in_a_fresh_profile_shows_the_status_and_downloads_the_same_bytes():
    data = os.urandom(200 * 1024)
    b = browser()
    with Redis() as redis, Server(redis) as server:
        send_through_page(b, server, data, name='photo.bin', uses=2)
        key, share = result_of(b)
        assert b.text('r-uses') == '2 downloads'
        with Browser(harness.path('receiver')) as r:
            r.driver.get(share)
            r.wait_text('f-state', 'Ready to download.')
            assert r.text('f-key') == key and r.text('f-uses') == '2'
            assert re.fullmatch(r'at .+ your time \(in (10:00|[0-9]:\d\d)\)', r.text('f-expires'))
            assert status(server, key)['remaining_uses'] == 2, 'opening the link spent a use'
            r.click('download')
            assert r.downloaded('photo.bin') == data
            r.wait_text('f-state', '1 download is left')
            assert r.text('f-uses') == '1'
            assert status(server, key)['remaining_uses'] == 1
            # The page sent the words only as the path of the API calls that need them.
            sent = r.js('return performance.getEntriesByType("resource").map(function (e) {'
                        '  return e.name; })')
            assert any('/status/' + key in u for u in sent), sent
            for url in sent:
                assert key not in url or re.search(r'/(status|download|preview)/%s$' % key,
                                                   url), url
            assert r.problems() == []
        with open(server.log_path, 'rb') as f:
            assert key.encode() not in f.read(), 'the log holds the key'
        # The sender's page sees it go when the sender comes back to it (or within ten
        # seconds, when it asks by itself).
        b.js('window.dispatchEvent(new Event("focus"))')
        b.wait_text('r-uses', '1 download')
        assert b.problems() == []


def test_the_last_download_says_the_file_is_now_gone():
    b = browser()
    with Redis() as redis, Server(redis) as server:
        up, _ = upload_ok(server, PDF, filename='once.pdf', uses=1)
        open_page(b, server, '/#' + up['key'])
        b.wait_text('f-state', 'Ready to download.')
        b.click('download')
        assert b.downloaded('once.pdf') == PDF
        b.wait_text('f-state', 'That was the last download: the file is now gone')
        assert not b.visible('download')
        assert status(server, up['key'])['status'] == 'burned'
        assert b.problems() == []


def test_words_typed_by_hand_with_spaces_and_capitals_reach_the_fetch_view():
    b = browser()
    with Redis() as redis, Server(redis) as server:
        up, _ = upload_ok(server, PDF, uses=3)
        key = up['key']
        typed = '  ' + '   '.join(w.upper() if i % 2 == 0 else w.capitalize()
                                  for i, w in enumerate(key_words(key))) + ' '
        open_page(b, server)
        b.el('words').send_keys('only two' + Keys.ENTER)
        assert b.wait_text('words-error', 'at least three words')
        assert b.focused() == 'words'
        set_field(b, 'words', typed + Keys.ENTER)
        b.wait(lambda: b.driver.current_url.endswith('/#' + key), 'the fetch view\'s address')
        b.wait_text('f-state', 'Ready to download.')
        assert b.text('f-key') == key and b.text('f-uses') == '3'
        assert b.focused() == 'fetch-title'
        # A pasted link, or the words with hyphens and other dashes, lead to it as well.
        for text in (up['download_url'], '\u2014'.join(key_words(key)).title()):
            open_page(b, server)
            b.el('words').send_keys(text + Keys.ENTER)
            b.wait_text('f-state', 'Ready to download.')
            assert b.text('f-key') == key
        # The address itself may be typed in any case.
        open_page(b, server, '/#' + key.upper())
        b.wait_text('f-state', 'Ready to download.')
        assert b.driver.current_url.endswith('/#' + key)
        assert status(server, key)['remaining_uses'] == 3
        assert b.problems() == []


def test_unknown_words_and_a_link_without_words_are_explained():
    b = browser()
    with Redis() as redis, Server(redis) as server:
        open_page(b, server, '/#' + harness.unknown_key())
        assert b.wait_text('f-state', 'Nothing found') == 'Nothing found for these words. ' \
            'They may be mistyped, or the file has expired or been downloaded already.'
        assert not b.visible('download') and not b.visible('recheck')
        open_page(b, server, '/#main')
        assert b.wait_text('f-state', 'does not end with words')
        up, _ = upload_ok(server, PDF, uses=1)
        assert harness.download(server, up['key'])[0] == 200
        open_page(b, server, '/#' + up['key'])
        assert b.wait_text('f-state', 'gone') == 'This file is gone: it was downloaded as ' \
            'many times as allowed, or deleted by its sender.'
        assert b.problems() == []


def test_show_details_once_only_shows_them_then_says_they_were_shown():
    b = browser()
    with Redis() as redis, Server(redis) as server:
        up, _ = upload_ok(server, PDF, filename='plans.pdf', uses=2)
        open_page(b, server, '/#' + up['key'])
        b.wait_text('f-state', 'Ready to download.')
        assert 'once only' in b.text('details')
        assert 'can be shown once only' in b.text('details-warning')
        b.click('details')
        b.wait(lambda: b.visible('details-list'), 'the details')
        assert b.text('d-name') == 'plans.pdf'
        assert b.text('d-size') == '%d bytes' % len(PDF)
        assert b.text('d-type') == 'application/pdf'
        assert b.text('d-sha') == up['sha256']
        assert b.el('details').get_attribute('aria-disabled') == 'true'
        assert b.focused() == 'details' and not b.visible('details-warning')
        open_page(b, server, '/#' + up['key'])
        b.wait_text('f-state', 'Ready to download.')
        b.click('details')
        assert b.wait_text('fetch-error', 'already shown once')
        assert status(server, up['key'])['remaining_uses'] == 2, 'the details spent a download'
        assert b.problems(expected_statuses=(404,)) == []


def test_a_blocked_client_sees_a_countdown_and_the_page_asks_again_when_it_ends():
    b = browser()
    env = {'DOWNLOAD_FAIL_LIMIT': '1', 'DOWNLOAD_BLOCK_WINDOW': '8'}
    with Redis() as redis, Server(redis, env=env) as server:
        open_page(b, server, '/#' + harness.unknown_key())
        b.wait_text('f-state', 'Nothing found')
        open_page(b, server, '/#' + harness.unknown_key())
        b.wait_text('fetch-error', 'Try again in')
        assert b.text('fetch-error').startswith('Too many unknown words were tried'), \
            b.text('fetch-error')
        assert 1 <= countdown_seconds(b, 'fetch-error') <= 8
        assert b.text('f-state') == '' and not b.visible('recheck')
        # When the block ends the page asks again by itself.
        b.wait_text('f-state', 'Nothing found', timeout=15)
        assert b.text('fetch-error') == ''
        assert b.problems(expected_statuses=(429,)) == []


# ---------------------------------------------------------------------------------
# Deleting

def test_delete_now_burns_the_file_and_status_then_says_burned():
    b = browser()
    with Redis() as redis, Server(redis) as server:
        send_through_page(b, server, PDF, uses=3)
        key, _ = result_of(b)
        b.click('delete')
        assert b.visible('delete-confirm') and b.focused() == 'delete-no'
        b.click('delete-no')
        assert not b.visible('delete-confirm') and status(server, key)['status'] == 'active'
        b.click('delete')
        b.click('delete-yes')
        assert b.wait_text('result-news', 'Deleted') == \
            'Deleted. The file is gone: the words and the link no longer work.'
        assert not b.visible('delete') and b.text('r-uses') == 'none'
        assert status(server, key)['status'] == 'burned'
        assert harness.download(server, key)[0] == 410
        assert b.problems() == []


# ---------------------------------------------------------------------------------
# Every view: keyboard, screen readers, colours, sizes

def accessible_controls(b):
    """[(role, name)] of every control the accessibility tree exposes on the view."""
    tree = b.cdp('Accessibility.getFullAXTree')['nodes']
    out = []
    for node in tree:
        role = node.get('role', {}).get('value')
        if node.get('ignored') or role not in ('button', 'textbox', 'spinbutton', 'link'):
            continue
        out.append((role, node.get('name', {}).get('value', '')))
    return out


def tab_order(b, count):
    """The ids focused by `count` presses of Tab from the top of the page (where an
    element that is not itself in the order is focused first)."""
    b.js('var top = document.createElement("span"); top.tabIndex = -1;'
         'document.body.prepend(top); top.focus(); top.remove()')
    order = []
    for _ in range(count):
        b.driver.switch_to.active_element.send_keys(Keys.TAB)
        order.append(b.focused())
    return order


def assert_named_controls(b, what):
    controls = accessible_controls(b)
    assert controls, what
    unnamed = [c for c in controls if not c[1].strip()]
    assert not unnamed, '%s: controls without a name: %r' % (what, unnamed)


def test_everything_works_from_the_keyboard_with_named_controls_and_visible_focus():
    b = browser()
    with Redis() as redis, Server(redis) as server:
        open_page(b, server)
        assert tab_order(b, 8) == ['home', 'zone', 'expiry', 'uses', 'upload', 'words',
                                   'words-go', 'api']
        assert_named_controls(b, 'the drop view')
        # The drop zone is a button: Enter and Space open the file picker.
        b.intercept_file_chooser()
        b.js('window.__picker = 0; document.getElementById("file")'
             '.addEventListener("click", function () { window.__picker++; })')
        tab_order(b, 2)
        outline = b.js('var s = getComputedStyle(document.activeElement);'
                       'return [s.outlineStyle, parseFloat(s.outlineWidth)]')
        assert outline[0] == 'solid' and outline[1] >= 2, 'focus is not visible: %r' % outline
        b.driver.switch_to.active_element.send_keys(Keys.ENTER)
        b.driver.switch_to.active_element.send_keys(Keys.SPACE)
        b.wait(lambda: b.js('return window.__picker') == 2, 'the picker opened twice')
        # What the picker would give the page; the rest by keyboard alone.
        b.el('file').send_keys(write('keys.pdf', PDF))
        for keys in (Keys.TAB, Keys.CONTROL + 'a', '5', Keys.TAB, Keys.CONTROL + 'a', '2',
                     Keys.TAB):
            b.driver.switch_to.active_element.send_keys(keys)
        assert b.focused() == 'upload'
        b.driver.switch_to.active_element.send_keys(Keys.ENTER)
        key, _ = result_of(b)
        assert b.focused() == 'result-title'
        assert b.text('r-uses') == '2 downloads'
        assert re.search(r'\(in (5:00|4:\d\d)\)', b.text('r-expires')), b.text('r-expires')
        assert tab_order(b, 6) == ['home', 'copy-key', 'share', 'copy-share', 'delete', 'another']
        assert_named_controls(b, 'the result view')
        b.el('copy-key').send_keys(Keys.ENTER)
        assert b.wait_text('copy-news', 'Copied') == 'Copied to the clipboard.'
        b.el('delete').send_keys(Keys.ENTER)
        assert b.focused() == 'delete-no'
        b.driver.switch_to.active_element.send_keys(Keys.ENTER)
        assert b.focused() == 'delete' and status(server, key)['status'] == 'active'
        # The fetch view, from the typed words.
        open_page(b, server)
        b.el('words').send_keys(key + Keys.ENTER)
        b.wait_text('f-state', 'Ready to download.')
        assert b.focused() == 'fetch-title'
        assert tab_order(b, 5) == ['home', 'download', 'details', 'send-yourself', 'words']
        assert_named_controls(b, 'the fetch view')
        assert b.problems() == []


def test_no_console_error_and_no_csp_violation_on_any_view_light_or_dark_phone_or_desktop():
    b = browser()
    with Redis() as redis, Server(redis) as server:
        open_page(b, server)
        # The check itself: an inline style is a violation, and it is seen.
        b.js('document.body.setAttribute("style", "color: red")')
        found = b.problems()
        assert any('CSP violation: style-src' in p for p in found), found
        up, _ = upload_ok(server, PDF, uses=2)
        views = [('/', 'drop-view'), ('/#' + up['key'], 'fetch-view'),
                 ('/#' + harness.unknown_key(), 'fetch-view'), ('/#x', 'fetch-view')]
        for width, height in ((1280, 800), (390, 844)):
            b.size(width, height)
            for target, view in views:
                open_page(b, server, target)
                b.wait(lambda: b.visible(view) and b.text('f-state') != 'Checking…', view)
                for scheme in ('dark', 'light'):  # the colours change without a reload
                    b.color_scheme(scheme)
                    overflow = b.js('return document.documentElement.scrollWidth'
                                    ' - document.documentElement.clientWidth')
                    assert overflow <= 0, '%s %s at %d px scrolls sideways by %d px' % (
                        scheme, target, width, overflow)
                assert b.problems() == [], (width, target)
        send_through_page(b, server, PDF)
        result_of(b)
        b.click('delete')
        assert b.problems() == []
