#!/usr/bin/env bash
# Installs what is needed, builds, and runs the demo: a private redis-server, the demo product
# API on :3000 and cachecar on :8080 with the repository's config.yaml. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target cachecar product_api

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for port in 3000 8080; do
  if listening "$port"; then
    echo "demo: port $port is already in use; stop what listens there and try again" >&2
    exit 1
  fi
done
# Debian starts its own redis-server on 6379 when the package is installed on a machine with
# systemd; the demo then runs its private one next to it.
redis_port=6379
if listening "$redis_port"; then
  redis_port=6380
fi

workdir=$(mktemp -d)
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup INT TERM EXIT

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$workdir" --daemonize no >"$workdir/redis.log" 2>&1 &
pids+=($!)
# A little latency, as a real database-backed API has, so that cache hits show.
build/tests/support/product_api --port 3000 --delay-ms 20 >"$workdir/product_api.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  listening "$redis_port" && listening 3000 && break
  sleep 0.1
done

REDIS_URL="redis://127.0.0.1:$redis_port" build/cachecar --config config.yaml &
pids+=($!)

cat <<MSG

cachecar demo: http://localhost:8080 -> product API on :3000, Redis on :$redis_port
  curl -i localhost:8080/products/42
  curl -i -X PUT localhost:8080/products/42 -H 'Content-Type: application/json' \\
       -d '{"id":42,"name":"Mechanical Keyboard","price":99.99}'
  redis-cli -p $redis_port TTL product:42
Ctrl-C stops everything.

MSG
wait -n "${pids[@]}"
