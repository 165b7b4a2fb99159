#!/bin/sh
# run.sh [ARG...] - `make run`: ./raven-zero ARG... from the source tree, on LISTEN (default
# 0.0.0.0:8000). Without REDIS_URL it gets a redis-server of its own: no persistence, no
# TCP, a unix socket under ./storage; stopped with the server (Ctrl-C, TERM or its exit).
# A store that happens to answer on 6379 is never used: it may keep what we promise not to.
set -eu
cd "$(dirname "$0")/.."
server=""
redis=""
sock=""

stop() {
    trap - EXIT INT TERM
    if [ -n "$server" ]; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" || true
    fi
    if [ -n "$redis" ]; then
        kill -TERM "$redis" 2>/dev/null || true
        wait "$redis" || true
        rm -f "$sock"
    fi
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${REDIS_URL:-}" ]; then
    if ! command -v redis-server >/dev/null; then
        echo "run: redis-server is not installed (scripts/deps.sh run installs it), or set REDIS_URL" >&2
        exit 1
    fi
    mkdir -p storage
    sock=$(pwd)/storage/redis.sock
    if [ ${#sock} -gt 107 ]; then
        echo "run: $sock is too long for a unix socket; set REDIS_URL" >&2
        exit 1
    fi
    if redis-cli -s "$sock" ping >/dev/null 2>&1; then
        echo "run: another make run is serving from this tree (its store answers on $sock)" >&2
        exit 1
    fi
    rm -f "$sock"
    redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --save '' \
        --appendonly no --dir storage --loglevel warning --logfile redis.log &
    redis=$!
    tries=0
    until redis-cli -s "$sock" ping >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -gt 100 ] || ! kill -0 "$redis" 2>/dev/null; then
            echo "run: redis-server did not start (see storage/redis.log)" >&2
            exit 1
        fi
        sleep 0.05
    done
    echo "run: private redis-server on $sock (pid $redis, nothing kept)"
    export REDIS_URL="unix://$sock"
fi
export LOG_STDOUT="${LOG_STDOUT:-1}"
echo "run: raven-zero on ${LISTEN:-0.0.0.0:8000} (Ctrl-C to stop)"
./raven-zero "$@" &
server=$!
status=0
wait "$server" || status=$?
server=""
exit "$status"
