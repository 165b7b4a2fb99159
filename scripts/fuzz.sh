#!/usr/bin/env bash
# fuzz.sh SECONDS - build every fuzz/fuzz_*.c as a libFuzzer binary (clang,
# -fsanitize=fuzzer,address,undefined) and run each for SECONDS (default 60) on a scratch
# copy of its seed corpus fuzz/corpus/<name>/ (the prefix fuzz_ dropped) under build/fuzz/.
#
# The project sources a target needs are found from its #include "..." lines: foo.h
# brings in foo.c from the same folder, recursively. If that does not link, the target is
# linked against an instrumented archive of every library source instead.
#
# Prints, per target, the executions and the coverage libFuzzer reached (cov/ft from its
# final line) and exits non-zero if any target failed to build or crashed; a crash leaves
# its input under build/fuzz/crashes/<name>/ and the path is printed.
#
# Environment: FUZZ_JOBS (targets run at once; default: number of cores),
# FUZZ_TARGETS (space-separated names to run, e.g. "fuzz_key fuzz_cfg"; default: all),
# FUZZ_KEEP_CORPUS=1 (keep the scratch corpus of the previous run instead of starting
# again from the seeds), CC_FUZZ (default clang).
set -u

SECONDS_PER_TARGET=${1:-60}
case $SECONDS_PER_TARGET in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
CC_FUZZ=${CC_FUZZ:-clang}
OUT=build/fuzz
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
PKGS="libh2o-evloop hiredis libcrypto libmagic libcjson yaml-0.1"
SRC_DIRS="common worker shredder master"

if ! command -v "$CC_FUZZ" >/dev/null 2>&1; then
    echo "fuzz: $CC_FUZZ not found (scripts/deps.sh installs clang)" >&2
    exit 2
fi
PKG_CFLAGS=$(pkg-config --cflags $PKGS) || exit 2
PKG_LIBS=$(pkg-config --libs $PKGS) || exit 2
CFLAGS="-std=c11 -g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -Icommon -Iworker -Ishredder -Imaster
        -fsanitize=address,undefined -fno-sanitize-recover=undefined $PKG_CFLAGS"

mkdir -p "$OUT/obj" "$OUT/bin" "$OUT/corpus" "$OUT/crashes" "$OUT/logs"

# ---- which project sources a target needs ----------------------------------------------

quoted_includes() { # file -> the names in its #include "..." lines
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$1"
}

find_header() { # name -> its path in one of the source folders, or nothing
    local d
    for d in $SRC_DIRS; do
        [ -f "$d/$1" ] && { echo "$d/$1"; return; }
    done
}

sources_for() { # target.c -> the .c files its includes bring in, one per line
    local queue=("$1") seen=" " srcs="" f h hp c
    while [ ${#queue[@]} -gt 0 ]; do
        f=${queue[0]}
        queue=("${queue[@]:1}")
        for h in $(quoted_includes "$f"); do
            hp=$(find_header "$h")
            [ -n "$hp" ] || continue
            case $seen in *" $hp "*) continue ;; esac
            seen="$seen$hp "
            queue+=("$hp")
            c=${hp%.h}.c
            if [ -f "$c" ]; then
                case $seen in *" $c "*) continue ;; esac
                seen="$seen$c "
                srcs="$srcs$c"$'\n'
                queue+=("$c")
            fi
        done
    done
    printf '%s' "$srcs"
}

compile() { # source -> object path (printed); instrumented for coverage, not linked with main
    local src=$1 obj=$OUT/obj/${1%.c}.o
    mkdir -p "$(dirname "$obj")"
    if ! $CC_FUZZ $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$obj" 2>"$obj.err"; then
        cat "$obj.err" >&2
        return 1
    fi
    echo "$obj"
}

ALL_ARCHIVE=""
all_archive() { # every library source (the Makefile's LIB_SRC) in one instrumented archive
    [ -n "$ALL_ARCHIVE" ] && return 0
    local objs=() s o
    for s in $(ls common/*.c worker/*.c shredder/*.c master/*.c 2>/dev/null | grep -v '^master/main\.c$'); do
        o=$(compile "$s") || return 1
        objs+=("$o")
    done
    rm -f "$OUT/libraven-fuzz.a"
    ar rcs "$OUT/libraven-fuzz.a" "${objs[@]}" || return 1
    ALL_ARCHIVE=$OUT/libraven-fuzz.a
}

build() { # fuzz/fuzz_x.c -> 0 when $OUT/bin/fuzz_x is built
    local target=$1 name objs=() s o
    name=$(basename "$target" .c)
    local srcs
    srcs=$(sources_for "$target")
    for s in $srcs; do
        o=$(compile "$s") || return 1
        objs+=("$o")
    done
    if $CC_FUZZ $CFLAGS -fsanitize=fuzzer "$target" "${objs[@]}" $PKG_LIBS -o "$OUT/bin/$name" \
        2>"$OUT/logs/$name.link.err"; then
        echo "  built $name from $target $(echo $srcs)"
        return 0
    fi
    echo "  $name: linking against its includes' sources failed; trying every library source" >&2
    all_archive || return 1
    if $CC_FUZZ $CFLAGS -fsanitize=fuzzer "$target" "$ALL_ARCHIVE" $PKG_LIBS -o "$OUT/bin/$name" \
        2>"$OUT/logs/$name.link.err"; then
        echo "  built $name from $target and every library source"
        return 0
    fi
    cat "$OUT/logs/$name.link.err" >&2
    return 1
}

run_one() { # name -> runs it; its output goes to $OUT/logs/name.log, its status to .rc
    local name=$1 corpus=$OUT/corpus/$1 seeds=fuzz/corpus/${1#fuzz_}
    if [ "${FUZZ_KEEP_CORPUS:-0}" != 1 ]; then
        rm -rf "$corpus"
    fi
    mkdir -p "$corpus" "$OUT/crashes/$name"
    [ -d "$seeds" ] && cp -R "$seeds"/. "$corpus"/
    "$OUT/bin/$name" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=25 \
        -rss_limit_mb=2048 -artifact_prefix="$OUT/crashes/$name/" "$corpus" >"$OUT/logs/$name.log" 2>&1
    echo $? >"$OUT/logs/$name.rc"
}

# ---- build ---------------------------------------------------------------------------------

targets=()
for t in fuzz/fuzz_*.c; do
    n=$(basename "$t" .c)
    if [ -n "${FUZZ_TARGETS:-}" ]; then
        case " $FUZZ_TARGETS " in *" $n "*) ;; *) continue ;; esac
    fi
    targets+=("$t")
done
if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz: no targets" >&2
    exit 2
fi

failed=0
built=()
echo "fuzz: building ${#targets[@]} targets with $CC_FUZZ"
for t in "${targets[@]}"; do
    if build "$t"; then
        built+=("$(basename "$t" .c)")
    else
        echo "FAIL $(basename "$t" .c): does not build" >&2
        failed=1
    fi
done

# ---- run ------------------------------------------------------------------------------------

echo "fuzz: running ${#built[@]} targets for ${SECONDS_PER_TARGET}s each, $JOBS at a time"
running=0
for n in "${built[@]}"; do
    rm -f "$OUT/logs/$n.rc"
    run_one "$n" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

printf '%-16s %-6s %12s %8s %7s %7s %12s\n' target result executions exec/s cov ft corpus
for n in "${built[@]}"; do
    log=$OUT/logs/$n.log
    rc=$(cat "$OUT/logs/$n.rc" 2>/dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$log" | tail -1)
    # The last status line libFuzzer printed: "#N DONE cov: C ft: F corp: U/S ...".
    last=$(grep -E '^#[0-9]+[[:space:]]' "$log" | grep -E 'cov: ' | tail -1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')
    [ -n "$execs" ] || execs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
    result=ok
    if [ "$rc" != 0 ]; then
        result=CRASH
        failed=1
    fi
    printf '%-16s %-6s %12s %8s %7s %7s %12s\n' "$n" "$result" "${execs:-?}" "${speed:-?}" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}"
done
for n in "${built[@]}"; do
    rc=$(cat "$OUT/logs/$n.rc" 2>/dev/null || echo 1)
    [ "$rc" = 0 ] && continue
    log=$OUT/logs/$n.log
    echo
    echo "== $n exited with $rc; log: $log"
    grep -E 'ERROR: |runtime error:|SUMMARY: |deadly signal|Test unit written to|^fuzz_' "$log" | head -20
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    if [ -n "$artifact" ]; then
        echo "crash input: $artifact ($(wc -c <"$artifact") bytes)"
        echo "reproduce:   $OUT/bin/$n $artifact"
        od -A d -t x1z -v "$artifact" | head -8
    fi
done
exit $failed
