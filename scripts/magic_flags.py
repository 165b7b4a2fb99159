#!/usr/bin/env python3
"""magic_flags.py - proves on a corpus of real files that the libmagic flags the worker
sniffs uploads with give every file the MIME type libmagic gives it with all its checks
on, and measures what they save.

The worker asks libmagic (magic_buffer) for the MIME type of an upload's first
SNIFF_BYTES bytes (worker/upload.c) with the flags of MAGIC_FLAGS (worker/worker.c).
This script reads both from the sources, walks a directory tree (default /usr/share,
capped at --max regular files, in a fixed order), gives libmagic the same first bytes
of each file once with MAGIC_MIME_TYPE | MAGIC_ERROR (every check on: the reference)
and once with MAGIC_FLAGS, and prints the files whose type differs (none: exit 0;
some: exit 1) and the time per file of each.

    python3 scripts/magic_flags.py [--max N] [--each] [DIR...]

--each also tries every MAGIC_NO_CHECK_* flag alone and prints, per flag, how many
files it changes and the time it saves: how a candidate for MAGIC_FLAGS is chosen.
Times are wall-clock (best of two passes): compare them on a quiet machine only.
Needs libmagic1 and its header (libmagic-dev, a build dependency).

Found with libmagic 5.44 (Debian 12) on the first 20,000 files of /usr/share: the
flags that change no type save nothing, being no-ops for a buffer (COMPRESS without
MAGIC_COMPRESS, ELF without a descriptor, APPTYPE outside OS/2, TOKENS, FORTRAN and
TROFF no longer checked) or checks that only cost anything on their own kind of file
(TAR, CDF: and those they do change: tar archives, Office 97 documents); the ones
that save time change types (TEXT: 17,321 files, ENCODING: 627, CSV: 108, JSON: 16,
SOFT: 3,941). So MAGIC_FLAGS has none of them.
"""

import argparse
import ctypes
import ctypes.util
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = '/usr/include/magic.h'


def header_values():
    """NAME -> value of every plain `#define MAGIC_* number` in magic.h."""
    values = {}
    with open(HEADER) as f:
        for line in f:
            m = re.match(r'#define\s+(MAGIC_\w+)\s+(0x[0-9a-fA-F]+|\d+)\b', line)
            if m:
                values[m.group(1)] = int(m.group(2), 0)
    return values


def source_settings(values):
    """(flags, names, sniff bytes) as the worker has them."""
    with open(os.path.join(ROOT, 'worker', 'worker.c')) as f:
        m = re.search(r'#define\s+MAGIC_FLAGS\s+\(([^)]*)\)', f.read())
    if not m:
        sys.exit('magic_flags: no MAGIC_FLAGS in worker/worker.c')
    names = [n.strip() for n in m.group(1).replace('\\\n', ' ').split('|') if n.strip()]
    flags = 0
    for n in names:
        if n not in values:
            sys.exit('magic_flags: %s is not in %s' % (n, HEADER))
        flags |= values[n]
    with open(os.path.join(ROOT, 'worker', 'upload.c')) as f:
        m = re.search(r'#define\s+SNIFF_BYTES\s+(\d+)', f.read())
    if not m:
        sys.exit('magic_flags: no SNIFF_BYTES in worker/upload.c')
    return flags, names, int(m.group(1))


class Magic:
    def __init__(self, lib, flags):
        self.lib = lib
        self.cookie = lib.magic_open(flags)
        if not self.cookie or lib.magic_load(self.cookie, None) != 0:
            sys.exit('magic_flags: cannot load the libmagic database')

    def mime(self, data):
        r = self.lib.magic_buffer(self.cookie, data, len(data))
        return r.decode('utf-8', 'replace') if r else None

    def close(self):
        self.lib.magic_close(self.cookie)


def load_lib():
    name = ctypes.util.find_library('magic') or 'libmagic.so.1'
    lib = ctypes.CDLL(name)
    lib.magic_open.restype = ctypes.c_void_p
    lib.magic_open.argtypes = [ctypes.c_int]
    lib.magic_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.magic_buffer.restype = ctypes.c_char_p
    lib.magic_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.magic_close.argtypes = [ctypes.c_void_p]
    return lib


def corpus(dirs, cap, sniff):
    """The first `sniff` bytes of up to cap regular files, in a fixed order."""
    out = []
    for top in dirs:
        for d, subdirs, files in os.walk(top):
            subdirs.sort()
            for name in sorted(files):
                p = os.path.join(d, name)
                try:
                    if os.path.islink(p) or not os.path.isfile(p):
                        continue
                    with open(p, 'rb') as f:
                        out.append((p, f.read(sniff)))
                except OSError:
                    continue
                if len(out) >= cap:
                    return out
    return out


def classify(magic, files):
    """[mime per file], seconds per file (best of the two passes: the first warms up)."""
    best = None
    for _ in range(2):
        t0 = time.perf_counter()
        types = [magic.mime(data) for _, data in files]
        t = time.perf_counter() - t0
        best = t if best is None or t < best else best
    return types, best / max(1, len(files))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--max', type=int, default=20000, help='files at most (20000)')
    ap.add_argument('--each', action='store_true', help='try every MAGIC_NO_CHECK_* alone')
    ap.add_argument('dirs', nargs='*', default=['/usr/share'])
    a = ap.parse_args()
    values = header_values()
    flags, names, sniff = source_settings(values)
    reference = values['MAGIC_MIME_TYPE'] | values['MAGIC_ERROR']
    lib = load_lib()
    files = corpus(a.dirs, a.max, sniff)
    print('corpus: %d files under %s, first %d bytes each' % (len(files), ' '.join(a.dirs), sniff))

    ref = Magic(lib, reference)
    ref_types, ref_t = classify(ref, files)
    ref.close()
    kinds = {}
    for t in ref_types:
        kinds[t] = kinds.get(t, 0) + 1
    print('reference (MAGIC_MIME_TYPE | MAGIC_ERROR): %.1f us per file, %d MIME types'
          % (ref_t * 1e6, len(kinds)))

    if a.each:
        for n in sorted(k for k in values if k.startswith('MAGIC_NO_CHECK_')
                        and k != 'MAGIC_NO_CHECK_BUILTIN'):
            m = Magic(lib, reference | values[n])
            types, t = classify(m, files)
            m.close()
            changed = sum(1 for x, y in zip(ref_types, types) if x != y)
            print('  %-24s %6d files change type  %7.1f us per file (%+.0f%%)'
                  % (n, changed, t * 1e6, (t / ref_t - 1) * 100))

    m = Magic(lib, flags)
    types, t = classify(m, files)
    m.close()
    diff = [(p, x, y) for (p, _), x, y in zip(files, ref_types, types) if x != y]
    print('worker (%s): %.1f us per file (%+.0f%%)' % (' | '.join(names), t * 1e6,
                                                       (t / ref_t - 1) * 100))
    for p, x, y in diff[:50]:
        print('  DIFFERS %s: %s -> %s' % (p, x, y))
    print('%d of %d files get another MIME type with the worker\'s flags'
          % (len(diff), len(files)))
    return 1 if diff else 0


if __name__ == '__main__':
    sys.exit(main())
