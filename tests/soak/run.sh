#!/usr/bin/env bash
# Soak: mixed requests (hits, misses, invalidating writes, 429s, 404s, unrouted) through
# cachecar, twice: SOAK_REQUESTS (default 1,000,000) through the optimised build, whose
# resident memory must stay flat (growth after the warm-up below SOAK_RSS_BOUND_KB, default
# 4 MiB), and SOAK_SANITIZED_REQUESTS (default 250,000) through the ASan/UBSan build, which
# must finish without a sanitizer report or a leak and exit 0 on SIGTERM. The sanitizers find
# a defect on the path that has it, and a quarter million mixed requests take every path
# tens of thousands of times; a million of them took 6 of CI's 30 minutes under ASan.
# Expects the builds scripts/test.sh makes (build/ and build-asan/).
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/install-deps.sh wrk

optimised_requests=${SOAK_REQUESTS:-1000000}
sanitized_requests=${SOAK_SANITIZED_REQUESTS:-250000}
rss_bound_kb=${SOAK_RSS_BOUND_KB:-4096}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Sets variable $1 to a port below the kernel's ephemeral range (32768 up), so no outgoing
# connection of the run before holds it, and never to one this run has handed out already
# (a variable, not an echo: a $(...) subshell would forget the ports handed out).
chosen_ports=" "
free_port() {
  local candidate
  while true; do
    candidate=$((20000 + RANDOM % 12000))
    if [[ "$chosen_ports" != *" $candidate "* ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
      chosen_ports+="$candidate "
      printf -v "$1" '%s' "$candidate"
      return
    fi
  done
}

# Waits for process $1 to listen on port $2 (30 s: a sanitized build on a loaded machine starts
# slowly); if it exits first or takes longer, says so and shows the end of its log ($3).
wait_for_port() {
  local pid=$1 port=$2 log=$3
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "soak: the process meant to listen on port $port exited; the end of its log:" >&2
      tail -20 "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "soak: nothing listens on port $port after 30 s; the end of its log:" >&2
  tail -20 "$log" >&2
  return 1
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

passed=0
failed=0
check() {
  if [ "$2" = ok ]; then
    echo "PASS soak $1"
    passed=$((passed + 1))
  else
    echo "FAIL soak $1"
    failed=$((failed + 1))
  fi
}

free_port redis_port
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for_port "$!" "$redis_port" "$work/redis.log"
free_port api_port
build/tests/support/product_api --port "$api_port" >"$work/api.log" 2>&1 &
pids+=($!)
wait_for_port "$!" "$api_port" "$work/api.log"

# binary name, label, then how many requests
soak_one() {
  local binary=$1 label=$2 total_wanted=$3
  local port admin
  free_port port
  free_port admin
  cat >"$work/$label.yaml" <<YAML
listen: 127.0.0.1:$port
admin:
  listen: 127.0.0.1:$admin
upstream:
  url: http://127.0.0.1:$api_port
redis:
  url: redis://127.0.0.1:$redis_port
  command_timeout: 500ms
rate_limit:
  limit: 1000000000
log:
  access: false
routes:
  - path: /products/{id}
    key: soak:{id}
    ttl: 2s
    invalidate: [soak:list]
  - path: /limited/{id}
    key: limited:{id}
    ttl: 2s
    rate_limit:
      limit: 50
      window: 1s
YAML
  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$binary" --config "$work/$label.yaml" >"$work/$label.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_for_port "$pid" "$port" "$work/$label.log"
  sleep 0.5

  local done_requests=0 errors=0 chunk=0 baseline=0 peak=0
  local ok=0 hits=0 not_found=0 limited=0 server_errors=0 unexpected=0
  while [ "$done_requests" -lt "$total_wanted" ]; do
    wrk -t1 -c32 -d5s -s tests/soak/mixed.lua "http://127.0.0.1:$port" >"$work/wrk.out" 2>&1
    local got
    got=$(awk '/^soak-total/ {print $2}' "$work/wrk.out")
    errors=$((errors + $(awk '/^soak-errors/ {print $2 + $3 + $4}' "$work/wrk.out")))
    done_requests=$((done_requests + got))
    local s_ok s_hits s_404 s_429 s_5xx s_other
    read -r _ s_ok s_hits s_404 s_429 s_5xx s_other < <(grep '^soak-statuses' "$work/wrk.out")
    ok=$((ok + s_ok)) hits=$((hits + s_hits)) not_found=$((not_found + s_404))
    limited=$((limited + s_429)) server_errors=$((server_errors + s_5xx))
    unexpected=$((unexpected + s_other))
    chunk=$((chunk + 1))
    local rss
    rss=$(rss_kb "$pid")
    if [ "$chunk" -eq 2 ]; then
      baseline=$rss  # after a warm-up chunk: pools, buffers and the allocator have settled
    fi
    [ "$rss" -gt "$peak" ] && peak=$rss
    echo "soak $label: $done_requests requests, RSS ${rss} kB"
  done
  local growth=$((peak - baseline))
  check "$label: $done_requests requests without a socket error ($errors)" \
    "$([ "$errors" -eq 0 ] && echo ok || echo no)"
  # The mix is 55% repeated reads of 50 products, 15% unknown ids, 9% a route limited to 50 a
  # second: every kind of answer must show up, and no other.
  check "$label: answers by kind: $ok 200 ($hits hits), $not_found 404, $limited 429, $server_errors 5xx, $unexpected other" \
    "$([ "$server_errors" -eq 0 ] && [ "$unexpected" -eq 0 ] && [ "$hits" -gt $((done_requests / 4)) ] &&
      [ "$not_found" -gt $((done_requests / 10)) ] && [ "$limited" -gt 0 ] &&
      [ $((ok + not_found + limited)) -eq "$done_requests" ] && echo ok || echo no)"
  if [ "$label" = optimised ]; then
    check "$label: RSS flat, ${growth} kB growth after warm-up (bound ${rss_bound_kb} kB; peak ${peak} kB)" \
      "$([ "$growth" -le "$rss_bound_kb" ] && echo ok || echo no)"
  fi
  kill -TERM "$pid"
  local code=0
  wait "$pid" || code=$?
  check "$label: exits 0 after SIGTERM" "$([ "$code" -eq 0 ] && echo ok || echo no)"
  if grep -qE "ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:" "$work/$label.log"; then
    check "$label: no sanitizer report" no
    grep -E -A20 "Sanitizer|runtime error" "$work/$label.log" | head -60
  else
    check "$label: no sanitizer report" ok
  fi
}

soak_one build/cachecar optimised "$optimised_requests"
soak_one build-asan/cachecar sanitizers "$sanitized_requests"
echo "soak: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
