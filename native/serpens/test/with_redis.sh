#!/usr/bin/env bash
# with_redis.sh PROGRAM ARGS...: run PROGRAM with REDIS_PORT set to a redis-server of its own on a free
# loopback port (no persistence), and stop that server afterwards whatever happens.
set -u
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
command -v redis-server >/dev/null || { echo "with_redis: redis-server is not installed" >&2; exit 77; }
for attempt in 1 2 3 4 5; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --protected-mode no \
    --dir "$dir" --logfile "$dir/redis.log" --maxmemory 256mb &
  pid=$!
  for _ in $(seq 100); do
    if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then break 2; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=
done
[ -n "$pid" ] || { echo "with_redis: redis-server did not come up" >&2; cat "$dir/redis.log" >&2; exit 1; }
REDIS_PORT=$port REDIS_PID=$pid "$@"
