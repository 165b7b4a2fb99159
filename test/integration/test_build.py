"""The build: plain `make` builds a hardened ./raven-zero; the user's flags come last;
the compiler tracks headers; a missing library is named; each make target installs
only the package groups it needs; `make install` only copies; the fuzz targets are a
flavour of the same Makefile. Most of it is checked on `make -n` (the plan, nothing
run) in the source tree, or on a copy of the built tree."""

import os
import re
import shutil
import time

import harness
from harness import ROOT, listed_packages, make, path, sh

# Nothing here runs the server binary: once is enough, not once per binary.
FLAVOURS = ('rel',)

RELEASE = os.path.join(ROOT, 'raven-zero')  # what plain `make` builds


COMPILER_CALL = re.compile(r'^\s*(cc|gcc|clang|\S*/cc|ar) |^\s*CC |^\s*LD ', re.M)


def command_lines(output, target):
    """The command lines of `make -n` output that write target (-o target)."""
    out = re.compile(r'(^|\s)-o %s(\s|$)' % re.escape(target))
    return [line for line in output.splitlines() if out.search(line)]


def test_plain_make_builds_the_release_binary():
    r = make(['-n', '-B'])
    assert r.returncode == 0, r.stderr
    links = command_lines(r.stdout, 'build/rel/raven-zero')
    assert len(links) == 1, r.stdout
    assert re.search(r'^cp build/rel/raven-zero raven-zero\.tmp && mv -f raven-zero\.tmp raven-zero$',
                     r.stdout, re.M), r.stdout
    assert 'build/asan/' not in r.stdout and 'build/fuzz/' not in r.stdout


def test_release_binary_is_pie_with_full_relro_stack_protector_and_fortified_calls():
    assert os.path.exists(RELEASE), 'build ./raven-zero first (make)'
    header = sh(['readelf', '-hW', RELEASE]).stdout
    assert re.search(r'Type:\s+DYN', header), header
    dynamic = sh(['readelf', '-dW', RELEASE]).stdout
    assert re.search(r'\(FLAGS\)\s+BIND_NOW', dynamic), dynamic
    assert re.search(r'\(FLAGS_1\)\s+Flags:.*\bNOW\b.*\bPIE\b', dynamic), dynamic
    segments = sh(['readelf', '-lW', RELEASE]).stdout
    assert 'GNU_RELRO' in segments, segments
    symbols = sh(['nm', '-D', '--undefined-only', RELEASE]).stdout
    assert '__stack_chk_fail' in symbols, symbols
    fortified = set(re.findall(r'\b(__\w+_chk)\b', symbols)) - {'__stack_chk_fail'}
    assert {'__memcpy_chk', '__snprintf_chk'} <= fortified, fortified


def test_make_puts_the_users_flags_last_and_keeps_its_own():
    r = make(['-n', 'raven-zero', 'CFLAGS=-O0 -fno-inline', 'CPPFLAGS=-DRZ_USERS_FLAG',
              'LDFLAGS=-Wl,--as-needed'])
    assert r.returncode == 0, r.stderr
    # The tree is built with other flags: every object is rebuilt with the new ones.
    (cc,) = command_lines(r.stdout, 'build/rel/master/main.o')
    words = cc.split()
    pkg = sh(['pkg-config', '--cflags', 'hiredis']).stdout.split()
    for own in ['-std=c11', '-Werror', '-Wall', '-D_GNU_SOURCE', '-fstack-protector-strong'] + pkg:
        assert own in words, (own, cc)
    assert words.index('-O0') > words.index('-O2') and '-fno-inline' in words, cc
    assert '-DRZ_USERS_FLAG' in words, cc
    # glibc refuses _FORTIFY_SOURCE without optimisation (an error under -Werror).
    assert not any('_FORTIFY_SOURCE' in w for w in words), cc
    (ld,) = command_lines(r.stdout, 'build/rel/raven-zero')
    words = ld.split()
    assert words.index('-Wl,--as-needed') > words.index('-Wl,-z,relro,-z,now'), ld
    assert '-lh2o-evloop' in words and '-pie' in words, ld
    # The user's own _FORTIFY_SOURCE replaces the Makefile's (as dpkg-buildflags sets it).
    r = make(['-n', 'raven-zero', 'CPPFLAGS=-D_FORTIFY_SOURCE=3'])
    (cc,) = command_lines(r.stdout, 'build/rel/master/main.o')
    assert [w for w in cc.split() if '_FORTIFY_SOURCE' in w] == ['-D_FORTIFY_SOURCE=3'], cc
    # Unchanged flags: nothing to do.
    r = make(['-n', 'raven-zero'])
    assert r.returncode == 0 and not COMPILER_CALL.search(r.stdout), r.stdout


def copy_of_built_tree():
    """The sources and the release build (build/rel, ./raven-zero), times kept."""
    assert os.path.isfile(os.path.join(ROOT, 'build', 'rel', 'flags')), \
        'build ./raven-zero first (make)'
    tree = path('tree')
    listed = sh(['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT).stdout.split('\n')
    for rel in filter(None, listed):
        src = os.path.join(ROOT, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(tree, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(tree, rel))
    shutil.copytree(os.path.join(ROOT, 'build', 'rel'), os.path.join(tree, 'build', 'rel'))
    shutil.copytree(os.path.join(ROOT, 'build', 'embed'), os.path.join(tree, 'build', 'embed'))
    shutil.copy2(RELEASE, os.path.join(tree, 'raven-zero'))
    return tree


def rebuilt(tree, *args):
    r = make(['-n'] + list(args), cwd=tree)
    assert r.returncode == 0, r.stdout + r.stderr
    return set(re.findall(r'CC \[rel\] (\S+)"', r.stdout))


def touch(file_path):
    later = time.time() + 5  # newer than every object, whatever the clock's resolution
    os.utime(file_path, (later, later))


def test_a_header_change_rebuilds_what_includes_it_and_openapi_json_its_embedded_copy():
    tree = copy_of_built_tree()
    assert rebuilt(tree) == set()
    spec_path = os.path.join(tree, 'openapi.json')
    before = os.stat(spec_path)
    touch(spec_path)
    assert rebuilt(tree) == {'build/embed/openapi.json.c'}
    os.utime(spec_path, ns=(before.st_atime_ns, before.st_mtime_ns))
    touch(os.path.join(tree, 'common', 'words.h'))
    includers = set()
    objects = os.path.join(tree, 'build', 'rel')
    for d, _, files in os.walk(objects):
        for name in (n for n in files if n.endswith('.d')):
            with open(os.path.join(d, name)) as f:
                if 'common/words.h' in f.read():
                    includers.add(os.path.relpath(os.path.join(d, name[:-2]), objects) + '.c')
    got = rebuilt(tree)
    assert got == {c for c in includers if not c.startswith('test/')}, (got, includers)
    assert 'common/words.c' in got and 'common/crypt.c' not in got, got


def test_a_missing_library_stops_the_build_with_one_line_naming_its_debian_package():
    """pkg-config sees every module but libh2o-evloop (a search path of links to the
    others); -n -B: the build is only planned, from scratch."""
    pcdir = path('pkgconfig')
    os.makedirs(pcdir)
    search = sh(['pkg-config', '--variable', 'pc_path', 'pkg-config']).stdout.strip()
    for d in search.split(':'):
        for name in (os.listdir(d) if os.path.isdir(d) else []):
            if name.endswith('.pc') and name != 'libh2o-evloop.pc' and \
                    not os.path.exists(os.path.join(pcdir, name)):
                os.symlink(os.path.join(d, name), os.path.join(pcdir, name))
    r = make(['-n', '-B', 'raven-zero'], env={'PKG_CONFIG_LIBDIR': pcdir, 'PKG_CONFIG_PATH': ''})
    assert r.returncode != 0, r.stdout
    assert harness.lines_of(r.stderr) == [
        'Makefile:%s: *** missing libh2o-evloop (apt install libh2o-evloop-dev, or run '
        'scripts/deps.sh build).  Stop.' % re.search(r'^Makefile:(\d+):', r.stderr).group(1)], \
        r.stderr
    assert not command_lines(r.stdout, 'build/rel/master/main.o'), r.stdout


# Test tools, and nginx, which Debian starts on port 80 as it installs it.
FORBIDDEN_TO_RUN = {'clang', 'valgrind', 'wrk', 'nginx', 'nginx-light', 'nginx-core',
                    'nginx-full', 'nghttp2-client', 'curl', 'libcmocka-dev', 'nodejs', 'npm'}


def deps_groups_of_target(target):
    """The package groups `make TARGET` installs first (its scripts/deps.sh line)."""
    r = make(['-n', target], timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    calls = re.findall(r'^scripts/deps\.sh ([a-z ]+)$', r.stdout, re.M)
    assert len(calls) == 1, r.stdout
    return calls[0].split()


def test_make_run_installs_what_running_needs_and_the_test_tools_come_with_make_test():
    assert deps_groups_of_target('run') == ['build', 'run']
    assert deps_groups_of_target('deps') == ['build', 'run']
    running = set(listed_packages('build', 'run'))
    assert {'gcc', 'make', 'pkg-config', 'redis-server', 'libh2o-evloop-dev'} <= running, running
    assert not running & FORBIDDEN_TO_RUN, running & FORBIDDEN_TO_RUN
    assert deps_groups_of_target('test') == ['build', 'run', 'test']
    testing = set(listed_packages('build', 'run', 'test'))
    assert {'libcmocka-dev', 'valgrind', 'curl', 'nginx-light', 'python3', 'nodejs', 'chromium',
            'chromium-driver', 'python3-selenium'} <= testing, testing
    assert 'clang' not in testing and 'wrk' not in testing, testing
    assert deps_groups_of_target('fuzz') == ['build', 'fuzz']
    assert 'clang' in listed_packages('fuzz')
    assert deps_groups_of_target('bench') == ['build', 'run', 'bench']
    assert {'wrk', 'nghttp2-client', 'nginx-light'} <= set(listed_packages('bench'))
    assert deps_groups_of_target('test-container') == ['run', 'container']
    assert {'podman', 'runc', 'debootstrap', 'python3'} <= set(listed_packages('container'))
    assert 'podman' not in testing, 'make test must not need podman'
    # Everything is installed here (make test did it): nothing to do, and no apt.
    deps = os.path.join(ROOT, 'scripts', 'deps.sh')
    r = sh([deps, '--dry-run', 'build', 'run', 'test'], timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, '', ''), r
    r = sh([deps, 'build', 'tests'], timeout=30)
    assert r.returncode == 2 and 'unknown group tests' in r.stderr, r


def test_make_install_of_a_built_tree_runs_no_compiler_and_refuses_to_build():
    """`make && sudo make install`: the second step only copies. If ./raven-zero is out
    of date, install stops and says so instead of compiling (as root)."""
    assert os.path.exists(RELEASE), 'build ./raven-zero first (make)'
    r = make(['-n', 'install', 'DESTDIR=' + path('dest')])
    assert r.returncode == 0, r.stdout + r.stderr
    assert not COMPILER_CALL.search(r.stdout), r.stdout
    assert 'install -m 0755 raven-zero ' in r.stdout, r.stdout
    # Compiler flags are not asked for again: sudo drops those a user exported.
    r = make(['-n', 'install', 'DESTDIR=' + path('dest'), 'CFLAGS=-O0'])
    assert r.returncode == 0 and not COMPILER_CALL.search(r.stdout), r.stdout + r.stderr
    # Another PREFIX is compiled in: the binary is out of date for it.
    r = make(['install', 'PREFIX=/opt/rz', 'DESTDIR=' + path('dest')])
    assert r.returncode != 0, r.stdout + r.stderr
    assert './raven-zero is missing or out of date' in r.stderr and 'run make first' in r.stderr, \
        r.stderr
    assert not COMPILER_CALL.search(r.stdout) and not os.path.exists(path('dest')), r.stdout


def test_make_fuzz_builds_every_target_against_the_fuzz_flavours_library_and_runs_each():
    """Planned only (-n): building the fuzz flavour takes minutes."""
    targets = sorted(os.path.basename(f)[:-2] for f in os.listdir(os.path.join(ROOT, 'fuzz'))
                     if f.startswith('fuzz_') and f.endswith('.c'))
    assert targets, 'no fuzz/fuzz_*.c'
    r = make(['-n', '-B', 'fuzz', 'FUZZ_SECONDS=7'], timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (cc,) = command_lines(r.stdout, 'build/fuzz/common/words.o')
    assert cc.startswith('clang ') and '-fsanitize=fuzzer-no-link,address,undefined' in cc, cc
    assert '-Werror' in cc.split(), cc
    assert command_lines(r.stdout, 'build/fuzz/libraven.a') or \
        re.search(r'^ar rcs build/fuzz/libraven\.a ', r.stdout, re.M), r.stdout
    for t in targets:
        (ld,) = command_lines(r.stdout, 'build/fuzz/fuzz/' + t)
        words = ld.split()
        assert '-fsanitize=fuzzer' in words, ld
        assert words[words.index('-o') + 2:][:2] == \
            ['build/fuzz/fuzz/%s.o' % t, 'build/fuzz/libraven.a'], ld
        assert re.search(r'^scripts/fuzz-run\.sh build/fuzz/fuzz/%s 7$' % t, r.stdout, re.M), t
