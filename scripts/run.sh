#!/bin/sh
# `make run`: serve on :8000 with everything it needs. When REDIS_URL is not set, a
# local redis-server (no persistence: the store is ephemeral by design) is started on
# 127.0.0.1:6379 unless one already answers there, and stopped again on exit.
set -eu
cd "$(dirname "$0")/.."
redis_pid=""
cleanup() {
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
}
if [ -z "${REDIS_URL:-}" ]; then
    if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
        mkdir -p storage
        redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --dir storage \
            --loglevel warning >storage/redis.log 2>&1 &
        redis_pid=$!
        trap cleanup EXIT INT TERM
        for _ in $(seq 50); do
            redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
            sleep 0.1
        done
        echo "run: started redis-server on 127.0.0.1:6379 (pid $redis_pid)"
    fi
    export REDIS_URL=redis://127.0.0.1:6379/0
fi
export LOG_STDOUT="${LOG_STDOUT:-1}"
echo "run: raven-zero on ${LISTEN:-0.0.0.0:8000} (Ctrl-C to stop)"
./raven-zero "$@"
