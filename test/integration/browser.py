"""browser.py - headless Chromium for the drop page's tests and screenshots: Debian's
`chromium`, driven by `chromium-driver` through Debian's `python3-selenium`.

    with Browser(harness.path('profile')) as b:
        b.open(server, '/#apple-banana-cherry')
        assert 'Receive a file' in b.text('fetch-title')
        assert b.problems() == []

Each Browser has its own fresh profile directory, a download directory, and a log of
the console; problems() lists every console error and every Content-Security-Policy
violation the page caused (a script added through the DevTools protocol, which the
page's CSP does not govern, records the violations as they happen).

python3-selenium is installed for Debian's /usr/bin/python3. A test runner started by
another python3 (a pyenv, a virtualenv) finds it in Debian's dist-packages, added here
at the end of the module path, after everything of the running Python.
"""

import os
import shutil
import sys
import time

DEBIAN_PACKAGES = '/usr/lib/python3/dist-packages'
try:
    import selenium  # noqa: F401
except ImportError:
    sys.path.append(DEBIAN_PACKAGES)
try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError as e:
    raise ImportError('%s: the browser tests need Debian\'s python3-selenium, chromium and '
                      'chromium-driver (scripts/deps.sh test)' % e) from None

import harness

__all__ = ['Browser', 'By', 'Keys', 'WebDriverException']

CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'
# Headless, without a sandbox (a container has no user namespaces), a GPU, /dev/shm (often
# tiny in containers) or anything that talks to the network on its own. (Chromium's
# crash handler leaves the test's session, but exits by itself within a second or two
# of the browser; --disable-crashpad-for-testing would keep it, but then no page loads.)
FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
         '--no-first-run', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--disable-extensions', '--disable-default-apps', '--mute-audio',
         '--lang=en-US')
WAIT = 15.0  # seconds a page may take to show what a test waits for (ASan servers are slow)

# Runs in the page before its own scripts, outside its CSP: records every violation.
RECORD_VIOLATIONS = """
window.__rzViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__rzViolations.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline'));
});
"""


class Browser:
    """A headless Chromium with a fresh profile under `directory` (created), downloads
    into `directory`/downloads, a window of width x height CSS pixels."""

    def __init__(self, directory, width=1280, height=800):
        self.directory = directory
        self.downloads = os.path.join(directory, 'downloads')
        os.makedirs(self.downloads, exist_ok=True)
        options = webdriver.ChromeOptions()
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument('--user-data-dir=' + os.path.join(directory, 'profile'))
        options.add_argument('--window-size=%d,%d' % (width, height))
        options.add_experimental_option('prefs', {
            'download.default_directory': self.downloads,
            'download.prompt_for_download': False,
        })
        options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
        service = Service(CHROMEDRIVER, log_path=os.path.join(directory, 'chromedriver.log'))
        self.driver = webdriver.Chrome(service=service, options=options)
        self.cdp('Page.addScriptToEvaluateOnNewDocument', source=RECORD_VIOLATIONS)
        self.cdp('Browser.setDownloadBehavior', behavior='allow', downloadPath=self.downloads)
        self.size(width, height)
        self.log = []

    # -- life cycle ------------------------------------------------------------------
    def share_across_forks(self):
        """Open a new connection to chromedriver for every command: a browser started
        before the test runner forks is driven by each forked test in turn, and a
        kept-alive connection would be shared by all of them (one killed mid-answer
        would leave the next reading the rest of that answer)."""
        self.driver.command_executor.keep_alive = False

    def reset(self, downloads):
        """Ready for the next test: one blank tab, a desktop window, light colours, full
        speed, no file chooser, downloads into `downloads`, an empty log."""
        handles = self.driver.window_handles
        for handle in handles[1:]:
            self.driver.switch_to.window(handle)
            self.driver.close()
        self.driver.switch_to.window(handles[0])
        self.driver.get('about:blank')
        self.size(1280, 800)
        self.color_scheme('light')
        self.cdp('Network.enable')
        self.cdp('Network.emulateNetworkConditions', offline=False, latency=0,
                 downloadThroughput=-1, uploadThroughput=-1)
        self.cdp('Page.setInterceptFileChooserDialog', enabled=False)
        self.downloads = downloads
        os.makedirs(downloads, exist_ok=True)
        self.cdp('Browser.setDownloadBehavior', behavior='allow', downloadPath=downloads)
        self.driver.get_log('browser')
        self.log = []

    def close(self):
        try:
            self.driver.quit()
        except (WebDriverException, OSError):
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the window ------------------------------------------------------------------
    def cdp(self, command, **params):
        return self.driver.execute_cdp_cmd(command, params)

    def size(self, width, height):
        """The viewport, in CSS pixels (a phone is 390 x 844)."""
        self.cdp('Emulation.setDeviceMetricsOverride', width=width, height=height,
                 deviceScaleFactor=1, mobile=width < 600)

    def color_scheme(self, scheme):
        """'light' or 'dark' for prefers-color-scheme."""
        self.cdp('Emulation.setEmulatedMedia',
                 features=[{'name': 'prefers-color-scheme', 'value': scheme}])

    def throttle_upload(self, bytes_per_second):
        """Make uploads as slow as a slow link (downloads and latency unchanged)."""
        self.cdp('Network.enable')
        self.cdp('Network.emulateNetworkConditions', offline=False, latency=0,
                 downloadThroughput=-1, uploadThroughput=bytes_per_second)

    def intercept_file_chooser(self):
        """A file picker the page opens is not shown (headless has no one to use it);
        the page's click on its file input still happens."""
        self.cdp('Page.setInterceptFileChooserDialog', enabled=True)

    def open(self, server, target='/'):
        self.driver.get('http://127.0.0.1:%d%s' % (server.port, target))

    def screenshot(self, file_path, full_page=True):
        """A PNG of the viewport, or of the whole page (as tall as its content)."""
        if full_page:
            height = self.driver.execute_script(
                'return Math.ceil(document.documentElement.scrollHeight)')
            width = self.driver.execute_script('return window.innerWidth')
            self.cdp('Emulation.setDeviceMetricsOverride', width=width, height=height,
                     deviceScaleFactor=1, mobile=width < 600)
        self.driver.save_screenshot(file_path)

    # -- the page --------------------------------------------------------------------
    def el(self, element_id):
        return self.driver.find_element(By.ID, element_id)

    def text(self, element_id):
        return self.el(element_id).text

    def visible(self, element_id):
        return self.el(element_id).is_displayed()

    def click(self, element_id):
        self.el(element_id).click()

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def focused(self):
        """The id of the focused element ('' if it has none)."""
        return self.js('return document.activeElement ? document.activeElement.id : ""')

    def wait(self, predicate, message, timeout=WAIT):
        """Poll predicate() (exceptions of a page still changing count as not yet)."""
        return harness.wait_until(predicate, timeout, interval=0.05, message=message,
                                  ignore=(WebDriverException,))

    def wait_text(self, element_id, needle, timeout=WAIT):
        """Wait until the element shows needle; its text."""
        return self.wait(lambda: needle in self.text(element_id) and self.text(element_id),
                         '%r in #%s' % (needle, element_id), timeout)

    def downloaded(self, name, timeout=WAIT):
        """The bytes of a finished download of that name."""
        target = os.path.join(self.downloads, name)

        def finished():
            partial = [n for n in os.listdir(self.downloads) if n.endswith('.crdownload')]
            return os.path.exists(target) and not partial
        self.wait(finished, 'the download of %s (have %r)' % (name, os.listdir(self.downloads)),
                  timeout)
        with open(target, 'rb') as f:
            return f.read()

    # -- what went wrong -------------------------------------------------------------
    def problems(self, expected_statuses=()):
        """Console errors and CSP violations since the last call: a list of strings.
        A failed load of a resource is expected when its status is in
        expected_statuses (an error view's own API answer)."""
        self.log += self.driver.get_log('browser')
        found = []
        for entry in self.log:
            if entry['level'] not in ('SEVERE', 'ERROR'):
                continue
            message = entry['message']
            if entry.get('source') == 'network' and any(
                    'status of %d ' % s in message for s in expected_statuses):
                continue
            found.append('%s: %s' % (entry.get('source'), message))
        self.log = []
        found += ['CSP violation: %s' % v for v in
                  (self.js('return window.__rzViolations || []') or [])]
        self.js('window.__rzViolations = []')
        return found
