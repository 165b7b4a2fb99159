#!/usr/bin/env python3
"""run.py - the one test runner of Raven Zero (`make test`).

1. Unit tests: every cmocka executable in build/rel/test/unit/ and build/asan/test/unit/,
   run under a pseudo-terminal (so output is line-buffered and survives a sanitizer
   abort) with CMOCKA_MESSAGE_OUTPUT=TAP; each cmocka test counts as one test.
2. Integration tests: every test_* function of test/integration/test_*.py, first against
   ./raven-zero, then against build/asan/raven-zero (RZ_BIN tells the harness which).
   Modules run in parallel (-j, one module per task, each task its own runner process);
   each test function runs in a forked process that leads its own session, in a fresh
   temporary directory, with a timeout; afterwards every process of that session (and
   every pid the harness registered) is killed, and under ASan the test fails if any
   server's stderr holds a sanitizer report. A test that does not depend on the binary
   (the build, the docs, the Dockerfile) runs once (harness.once), and a test that must
   take longer than --timeout says how long (harness.timeout). A module may define
   setup_module() and teardown_module(): they run once, in the module's runner process,
   before and after its selected tests (e.g. to start one browser for all of them, which
   each forked test then drives); whatever they started is killed when the module is done.
3. With --container (`make test-container`), instead of both: the modules of
   test/container/ (the image built from the Dockerfile and run with podman), once,
   in the same way.

Prints one line per test, `PASS|FAIL flavour name seconds` (failures followed by the
traceback and the tails of the server's stderr and log), and last `N passed, N failed`.
Exit status 0 iff nothing failed. Python 3.11 standard library only.
"""

import argparse
import ctypes
import glob
import importlib.util
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

sys.dont_write_bytecode = True

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTEGRATION = os.path.join(ROOT, 'test', 'integration')
# The image built and run by a container engine: only `run.py --container` runs these.
CONTAINER = os.path.join(ROOT, 'test', 'container')
# RZ_REL_BIN / RZ_ASAN_BIN point the passes at other binaries (e.g. an installed one).
BINARIES = {'rel': os.environ.get('RZ_REL_BIN') or os.path.join(ROOT, 'raven-zero'),
            'asan': os.environ.get('RZ_ASAN_BIN') or
            os.path.join(ROOT, 'build', 'asan', 'raven-zero')}
SANITIZER_ENV = {'rel': {},
                 'asan': {'ASAN_OPTIONS': 'detect_leaks=0:abort_on_error=1',
                          'UBSAN_OPTIONS': 'print_stacktrace=1:halt_on_error=1'}}
# Unit tests are small and exit cleanly, so leaks are worth reporting there.
UNIT_SANITIZER_ENV = {'rel': {},
                      'asan': {'ASAN_OPTIONS': 'detect_leaks=1:abort_on_error=1:color=never',
                               'UBSAN_OPTIONS': 'print_stacktrace=1:halt_on_error=1:color=never'}}
SANITIZER_MARKS = ('ERROR: AddressSanitizer', 'runtime error:', 'ERROR: LeakSanitizer')
UNIT_TIMEOUT = 300.0


def set_subreaper():
    """Orphaned descendants (e.g. workers of a killed master) become our children, so
    that we can find, kill and reap them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def tail_text(text, lines):
    return '\n'.join(text.splitlines()[-lines:])


def read_text(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except (OSError, TypeError):
        return None


def indent(text, prefix='    '):
    return '\n'.join(prefix + line for line in text.rstrip('\n').splitlines())


# ---------------------------------------------------------------------------------
# Reporting

class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.lock = threading.Lock()

    def add(self, flavour, name, ok, duration, details=''):
        with self.lock:
            if ok:
                self.passed += 1
            else:
                self.failed += 1
            line = '%s %s %s %.2fs' % ('PASS' if ok else 'FAIL', flavour, name, duration)
            if not ok and details:
                line += '\n' + indent(details)
            elif ok and details:
                line += ' (%s)' % details  # a test that could not run here says why
            print(line, flush=True)

    def skip(self, flavour, name, why):
        with self.lock:
            print('SKIP %s %s (%s)' % (flavour, name, why), flush=True)


# ---------------------------------------------------------------------------------
# Unit tests (cmocka, TAP output through a pty)

TAP_RESULT = re.compile(r'^(ok|not ok)\s+(\d+)\s*(?:-\s*)?(.*?)\s*$')
TAP_PLAN = re.compile(r'^1\.\.(\d+)')


def run_pty(argv, env, cwd, timeout):
    """Run argv with stdout and stderr on a pty; [(monotonic time, line)], status,
    timed_out."""
    master, slave = pty.openpty()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave,
                                stderr=slave, cwd=cwd, env=env, start_new_session=True)
    finally:
        os.close(slave)
    lines, buf, timed_out = [], b'', False
    deadline = start + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([master], [], [], min(remaining, 0.2))
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the pty
                break
            if not data:
                break
            buf += data
            now = time.monotonic()
            while b'\n' in buf:
                raw, buf = buf.split(b'\n', 1)
                lines.append((now, raw.decode('utf-8', 'replace').rstrip('\r')))
    finally:
        os.close(master)
        if timed_out or proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
    if buf:
        lines.append((time.monotonic(), buf.decode('utf-8', 'replace').rstrip('\r')))
    return start, lines, proc.returncode, timed_out


def run_unit_binary(flavour, exe):
    """[(name, ok, duration, details)] for one cmocka executable."""
    binname = 'unit/' + os.path.basename(exe)
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT='TAP')
    env.pop('ASAN_OPTIONS', None)
    env.pop('UBSAN_OPTIONS', None)
    env.update(UNIT_SANITIZER_ENV[flavour])
    start, lines, code, timed_out = run_pty([exe], env, ROOT, UNIT_TIMEOUT)
    results, planned, last_time, current = [], 0, start, None
    for when, line in lines:
        plan = TAP_PLAN.match(line)
        if plan:
            planned += int(plan.group(1))
            continue
        m = TAP_RESULT.match(line)
        if m:
            ok, name = m.group(1) == 'ok', m.group(3) or '#' + m.group(2)
            if '# skip' in name.lower():
                current = None
                last_time = when
                continue
            current = [binname + '.' + name, ok, when - last_time, []]
            results.append(current)
            last_time = when
        elif line.startswith('#') and current is not None and not current[1]:
            current[3].append(line)
    output = '\n'.join(line for _, line in lines)
    out = [(n, ok, d, '\n'.join(diag)) for n, ok, d, diag in results]
    problems = []
    if timed_out:
        problems.append('timed out after %.0fs' % UNIT_TIMEOUT)
    if len(results) < planned:
        problems.append('%d of %d planned tests reported (crashed?)'
                        % (len(results), planned))
    if code != 0 and all(ok for _, ok, _, _ in out):
        problems.append('exit status %s' % code)
    if any(mark in output for mark in SANITIZER_MARKS):
        problems.append('sanitizer report in output')
    if not results and not problems:
        problems.append('no test results (is it a cmocka TAP binary?)')
    if problems:
        out.append((binname, False, time.monotonic() - start,
                    '; '.join(problems) + '\n' + tail_text(output, 60)))
    return out


def unit_binaries(flavour):
    found = []
    for p in sorted(glob.glob(os.path.join(ROOT, 'build', flavour, 'test', 'unit', '*'))):
        if os.path.isfile(p) and os.access(p, os.X_OK) and not p.endswith(('.o', '.d')):
            found.append(p)
    return found


def run_units(flavours, report, k):
    jobs = [(f, exe) for f in flavours for exe in unit_binaries(f)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [(f, exe, pool.submit(run_unit_binary, f, exe)) for f, exe in jobs]
        for flavour, exe, fut in futures:
            try:
                results = fut.result()
            except Exception:
                results = [('unit/' + os.path.basename(exe), False, 0.0,
                            traceback.format_exc())]
            matched = [r for r in results if not k or k in r[0]]
            if k and not matched:
                continue
            # a binary-level failure counts whenever any of its tests was selected
            if k:
                binname = 'unit/' + os.path.basename(exe)
                matched += [r for r in results if r[0] == binname and r not in matched]
            for name, ok, duration, details in matched:
                report.add(flavour, name, ok, duration, details)


# ---------------------------------------------------------------------------------
# Integration tests: the parent side

def integration_modules(where=INTEGRATION):
    return sorted(glob.glob(os.path.join(where, 'test_*.py')))


def run_module_task(flavour, module, args, report):
    """Run one module in its own runner process and relay its results."""
    env = dict(os.environ)
    env.pop('ASAN_OPTIONS', None)
    env.pop('UBSAN_OPTIONS', None)
    env.update(SANITIZER_ENV[flavour])
    env['RZ_BIN'] = BINARIES[flavour]
    env['RZ_FLAVOUR'] = flavour
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    env['PYTHONPATH'] = INTEGRATION + (os.pathsep + env['PYTHONPATH']
                                       if env.get('PYTHONPATH') else '')
    argv = [sys.executable, os.path.abspath(__file__), '--module-runner', flavour, module,
            '--timeout', str(args.timeout)]
    if args.k:
        argv += ['-k', args.k]
    modname = os.path.splitext(os.path.basename(module))[0]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, cwd=ROOT, env=env,
                                start_new_session=True)
        RUNNERS.add(proc)
        done = False
        try:
            for raw in proc.stdout:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                if msg.get('done'):
                    done = True
                    continue
                report.add(flavour, msg['name'], msg['ok'], msg['duration'],
                           msg.get('details', ''))
            proc.wait()
        finally:
            RUNNERS.discard(proc)
        if not done or proc.returncode != 0:
            err.seek(0)
            report.add(flavour, modname + '.<runner>', False, 0.0,
                       'module runner exited with %s\n%s'
                       % (proc.returncode, tail_text(err.read().decode('utf-8', 'replace'),
                                                     40)))


RUNNERS = set()


def run_integration(flavours, args, report):
    tasks = []
    if args.container:
        tasks = [('rel', m) for m in integration_modules(CONTAINER)]
    for flavour in flavours if not args.container else ():
        exe = BINARIES[flavour]
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            report.add(flavour, '<binary>', False, 0.0,
                       '%s not found or not executable (make all build/asan/raven-zero)'
                       % os.path.relpath(exe, ROOT))
            continue
        tasks += [(flavour, m) for m in integration_modules()]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_module_task, f, m, args, report) for f, m in tasks]
        try:
            for fut in futures:
                fut.result()
        except KeyboardInterrupt:
            for fut in futures:
                fut.cancel()
            stop_runners()
            raise


def stop_runners():
    for proc in list(RUNNERS):
        try:
            proc.terminate()
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------------------------
# Integration tests: one module, in its own process

def proc_info(pid):
    """(comm, state, ppid, session) or None."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(')') + 2:].split()
    return data[data.index('(') + 1:data.rindex(')')], fields[0], int(fields[1]), \
        int(fields[3])


def is_alive(pid):
    info = proc_info(pid)
    return info is not None and info[1] not in ('Z', 'X')


KNOWN_COMMS = ('raven-zero', 'rz-worker', 'rz-shredder', 'redis-server')


def session_processes(sid):
    """Live processes of a session, this one aside."""
    found = set()
    for name in os.listdir('/proc'):
        if name.isdigit():
            info = proc_info(int(name))
            if info and info[3] == sid and info[1] not in ('Z', 'X'):
                found.add(int(name))
    found.discard(os.getpid())
    return found


def leftovers(sid, tmp):
    """Live processes of the test: its session, and registered pids still ours."""
    found = session_processes(sid)
    try:
        with open(os.path.join(tmp, '.rz-pids')) as f:
            registered = {int(x) for x in f.read().split()}
    except OSError:
        registered = set()
    for pid in registered:
        info = proc_info(pid)
        if info and info[1] not in ('Z', 'X') and (info[3] == sid or
                                                   info[0] in KNOWN_COMMS or
                                                   info[2] == os.getpid()):
            found.add(pid)
    found.discard(os.getpid())
    return sorted(found)


def reap_all():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_all(pids, timeout=5.0):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(is_alive(p) for p in pids) and time.monotonic() < deadline:
        reap_all()
        time.sleep(0.01)
    reap_all()


def artifacts(tmp):
    out = []
    try:
        with open(os.path.join(tmp, '.rz-artifacts.jsonl')) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def sanitizer_reports(tmp):
    found = []
    for a in artifacts(tmp):
        text = read_text(a.get('stderr'))
        if text and any(mark in text for mark in SANITIZER_MARKS):
            first = min(text.find(m) for m in SANITIZER_MARKS if m in text)
            found.append('%s: sanitizer report in stderr:\n%s'
                         % (a['label'], '\n'.join(text[max(0, first - 200):].splitlines()[:60])))
    return found


def failure_tails(tmp):
    parts = []
    output = read_text(os.path.join(tmp, 'test-output.txt'))
    if output and output.strip():
        parts.append('test output:\n' + indent(tail_text(output, 20)))
    for a in artifacts(tmp):
        for key, n in (('stderr', 25), ('stdout', 10), ('log', 15)):
            text = read_text(a.get(key))
            if text and text.strip():
                parts.append('%s %s (%s), last lines:\n%s'
                             % (a['label'], key, a.get(key), indent(tail_text(text, n))))
    return '\n'.join(parts)


CURRENT = {}


def run_one_test(fn, timeout):
    """Fork, run fn in a new session in a fresh temp dir; (ok, duration, details)."""
    tmp = tempfile.mkdtemp(prefix='rz-%s-%s-' % (os.environ.get('RZ_FLAVOUR', 'x'),
                                                  fn.__name__[5:][:40]))
    result_path = os.path.join(tmp, '.rz-result.json')
    start = time.monotonic()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.setsid()
            set_subreaper()
            os.chdir(tmp)
            os.environ['RZ_TEST_TMP'] = tmp
            fd = os.open(os.path.join(tmp, 'test-output.txt'),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
            ok, details = True, ''
            try:
                fn()
            except BaseException:
                ok, details = False, traceback.format_exc()
            sys.stdout.flush()
            sys.stderr.flush()
            with open(result_path, 'w') as f:
                json.dump({'ok': ok, 'details': details}, f)
        finally:
            os._exit(0)
    CURRENT.update(pid=pid, tmp=tmp)
    status, timed_out = None, False
    deadline = start + timeout
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got:
            break
        if time.monotonic() >= deadline:
            timed_out = True
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            break
        time.sleep(0.02)
    duration = time.monotonic() - start
    left = leftovers(pid, tmp)
    left_desc = ['%d (%s)' % (p, (proc_info(p) or ('?',))[0]) for p in left]
    kill_all(left)
    CURRENT.clear()

    ok, details = False, ''
    try:
        with open(result_path) as f:
            res = json.load(f)
        ok, details = res['ok'], res['details']
    except (OSError, ValueError):
        details = ('timed out after %.0fs (test process and its servers killed)\n' % timeout
                   if timed_out else 'test process died (wait status %s)\n' % status)
    if left and not timed_out:
        ok = False
        details += 'processes left running after the test (killed): %s\n' % ', '.join(left_desc)
    if os.environ.get('RZ_FLAVOUR') == 'asan':
        reports = sanitizer_reports(tmp)
        if reports:
            ok = False
            details += '\n'.join(reports) + '\n'
    if ok:
        details = skip_reasons(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tails = failure_tails(tmp)
        details += (tails + '\n' if tails else '') + 'kept: %s' % tmp
    return ok, duration, details


def skip_reasons(tmp):
    """Integration tests that cannot run here (no root for a tmpfs, no valgrind) print
    'SKIP: why' and pass, and tests that measure something (a failover's gap) print
    'MEASURED: what'; surface both on their result line."""
    try:
        with open(os.path.join(tmp, 'test-output.txt'), errors='replace') as f:
            return '; '.join(line.strip() for line in f if line.startswith(('SKIP:', 'MEASURED:')))
    except OSError:
        return ''


def module_runner(flavour, module_path, k, timeout):
    set_subreaper()

    def on_term(signum, frame):
        if CURRENT:
            try:
                os.killpg(CURRENT['pid'], signal.SIGKILL)
            except ProcessLookupError:
                pass
            kill_all(leftovers(CURRENT['pid'], CURRENT['tmp']))
        kill_all(session_processes(os.getpid()))  # what setup_module started
        os._exit(1)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    out = sys.stdout
    modname = os.path.splitext(os.path.basename(module_path))[0]
    sys.path.insert(0, INTEGRATION)

    def emit(name, ok, duration, details=''):
        out.write(json.dumps({'name': name, 'ok': ok, 'duration': duration,
                              'details': details}) + '\n')
        out.flush()

    try:
        spec = importlib.util.spec_from_file_location(modname, module_path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[modname] = mod
        spec.loader.exec_module(mod)
    except BaseException:
        emit(modname + '.<import>', False, 0.0, traceback.format_exc())
        out.write(json.dumps({'done': True}) + '\n')
        return 0
    selected = []
    for attr, fn in list(vars(mod).items()):
        if not attr.startswith('test_') or not callable(fn) or \
                getattr(fn, '__module__', None) != modname:
            continue
        name = '%s.%s' % (modname, attr[5:])
        if k and k not in name and k not in attr:
            continue
        # A test (or its whole module) that does not run the server binary says so with
        # `flavours = ('rel',)`: it then runs once, not once per binary.
        if flavour not in getattr(fn, 'flavours', getattr(mod, 'FLAVOURS', (flavour,))):
            continue
        selected.append((name, fn))
    set_up = False
    if selected and callable(getattr(mod, 'setup_module', None)):
        problem = module_hook(mod.setup_module)
        if problem:
            for name, _ in selected:
                emit(name, False, 0.0, 'setup_module failed:\n' + problem)
            selected = []
        set_up = True
    try:
        for name, fn in selected:
            ok, duration, details = run_one_test(fn, getattr(fn, 'timeout', timeout))
            emit(name, ok, duration, details)
    finally:
        if set_up and callable(getattr(mod, 'teardown_module', None)):
            problem = module_hook(mod.teardown_module)
            if problem:
                emit(modname + '.<teardown_module>', False, 0.0, problem)
        kill_all(session_processes(os.getpid()))
    out.write(json.dumps({'done': True}) + '\n')
    out.flush()
    return 0


def module_hook(fn):
    """Run a module's setup or teardown with its output (and that of the processes it
    starts) on stderr, away from the results on stdout: '' or the traceback."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        fn()
        return ''
    except BaseException:
        return traceback.format_exc()
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# ---------------------------------------------------------------------------------

def main(argv):
    parser = argparse.ArgumentParser(description='Raven Zero test runner')
    parser.add_argument('-k', metavar='SUBSTR', help='only tests whose name contains SUBSTR')
    parser.add_argument('--rel-only', action='store_true', help='skip the ASan pass')
    parser.add_argument('--unit-only', action='store_true')
    parser.add_argument('--integration-only', action='store_true')
    parser.add_argument('--container', action='store_true',
                        help='only the tests of the container image (test/container/)')
    parser.add_argument('-j', '--jobs', type=int, default=3,
                        help='integration modules run in parallel (default 3)')
    parser.add_argument('--timeout', type=float, default=60.0,
                        help='seconds per integration test (default 60)')
    parser.add_argument('--module-runner', nargs=2, metavar=('FLAVOUR', 'MODULE'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.module_runner:
        return module_runner(args.module_runner[0], args.module_runner[1], args.k,
                             args.timeout)

    os.chdir(ROOT)
    flavours = ['rel'] if args.rel_only else ['rel', 'asan']
    report = Report()
    started = time.monotonic()
    try:
        if not args.integration_only and not args.container:
            run_units(flavours, report, args.k)
        if not args.unit_only:
            run_integration(flavours, args, report)
    except KeyboardInterrupt:
        stop_runners()
        print('interrupted', flush=True)
        report.failed += 1
    print('(%.1fs)' % (time.monotonic() - started), flush=True)
    print('%d passed, %d failed' % (report.passed, report.failed), flush=True)
    return 0 if report.failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
