#!/usr/bin/env bash
# cachecar's benchmark: wrk against cachecar's hit, miss, write and 429 paths, next to
# references measured in the same run on the same CPU pinning (nginx proxy_cache in front of
# the same upstream, the upstream alone, nginx answering by itself, redis-benchmark), plus the
# memory cost of idle keep-alive connections and a workers: 1 vs 2 check.
#
#   tests/bench/run.sh               the full run: about 11 minutes on 2 cores, plus the
#                                    first Release build (about 2 minutes)
#   tests/bench/run.sh connections   only the idle-connections memory measurement
#   tests/bench/run.sh --help
#
# Results: a Markdown table on standard output and in tests/bench/results/<timestamp>/
# (results.md, results.csv, results.json, chart.png, raw/ with every wrk output and config).
# Not part of ctest: a benchmark is not a pass/fail test. Everything listens on 127.0.0.1.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: tests/bench/run.sh [all|connections]

  all          (default) every scenario, the references, idle connections, workers scaling
  connections  only the memory of idle keep-alive connections

Run from anywhere; needs root or sudo for the package installer, and 2 or more CPUs.
Servers (cachecar, nginx, redis-server) are pinned to CPU 0 and wrk to CPU 1, except in the
workers check, where everything may use every CPU.

Environment:
  BENCH_DURATION=5           seconds of each measured wrk run
  BENCH_WARMUP=1             seconds of the warm-up run before each measured run
  BENCH_ROUNDS=2             measured runs per row, alternating with the row it is compared
                             with; the fastest is kept (background load only slows runs down)
  BENCH_IDLE_CONNECTIONS=10000   idle keep-alive connections to open
  BENCH_SKIP_INSTALL=1       do not call scripts/install-deps.sh
  BENCH_SKIP_BUILD=1         reuse build-bench/cachecar as it is
EOF
}

mode=${1:-all}
case "$mode" in
  all | connections) ;;
  -h | --help | help)
    usage
    exit 0
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac

cd "$(dirname "$0")/../.."
bench_dir=tests/bench
duration=${BENCH_DURATION:-5}
warmup=${BENCH_WARMUP:-1}
rounds=${BENCH_ROUNDS:-2}
idle_connections=${BENCH_IDLE_CONNECTIONS:-10000}
conns_list=(64 256)
product_json='{"id":42,"name":"Mechanical Keyboard","price":129.99}'
started_at=$(date +%s)

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'bench: error: %s\n' "$*" >&2
  exit 1
}

for value in "$duration" "$warmup" "$rounds" "$idle_connections"; do
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION, BENCH_WARMUP, BENCH_ROUNDS and BENCH_IDLE_CONNECTIONS must be positive integers"
done
cpus=$(nproc)
[ "$cpus" -ge 2 ] || die "needs at least 2 CPUs (servers on CPU 0, wrk on CPU 1); this machine has $cpus"
all_cpus="0-$((cpus - 1))"

# ---------------------------------------------------------------------------------------------
# Set-up: packages, build, helpers, a private working directory and a trap that stops
# everything this script started.

if [ "${BENCH_SKIP_INSTALL:-0}" != 1 ]; then
  say "installing packages (scripts/install-deps.sh wrk nginx gnuplot-nox)"
  scripts/install-deps.sh wrk nginx gnuplot-nox >&2 || die "scripts/install-deps.sh failed"
fi
for tool in wrk nginx gnuplot redis-server redis-cli redis-benchmark curl cc cmake taskset; do
  command -v "$tool" >/dev/null || die "$tool not found (run without BENCH_SKIP_INSTALL)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/cachecar-bench.XXXXXX")
# nginx's proxy_cache lives on tmpfs when there is one, so that it competes with Redis's memory.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  cache_dir=$(mktemp -d /dev/shm/cachecar-bench-cache.XXXXXX)
else
  cache_dir=$(mktemp -d "$work/nginx-cache.XXXXXX")
fi
stamp=$(date +%Y%m%d-%H%M%S)
out_dir=$bench_dir/results/$stamp
raw=$out_dir/raw
mkdir -p "$raw"

pids=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # Keep the servers' logs and configurations (not the access log: it is large).
  for file in "$work"/*.log "$work"/*.yaml "$work"/nginx-*/nginx.conf "$work"/nginx-*/error.log; do
    [ -f "$file" ] || continue
    case "$file" in *-access.log) continue ;; esac
    local name=${file#"$work"/}
    cp "$file" "$raw/${name//\//-}" 2>/dev/null || true
  done
  rm -rf "$work" "$cache_dir"
  if [ "$status" -ne 0 ]; then
    printf 'bench: stopped with status %s; logs in %s\n' "$status" "$raw" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_dir=build-bench
cachecar=$build_dir/cachecar
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  say "building cachecar (Release) in $build_dir"
  if ! { cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF &&
    cmake --build "$build_dir" -j "$cpus"; } >"$work/build.log" 2>&1; then
    tail -n 30 "$work/build.log" >&2
    die "the Release build failed (above: the end of its log)"
  fi
fi
[ -x "$cachecar" ] || die "$cachecar is missing"
cc -O2 -o "$work/benchtool" "$bench_dir/benchtool.c" 2>"$work/benchtool.log" ||
  die "cannot compile $bench_dir/benchtool.c: $(cat "$work/benchtool.log")"
benchtool=$work/benchtool

# File descriptors: 10,000 idle connections need more than the usual 1024, in cachecar and in
# the client. The hard limit bounds what a non-root (or a containerised root) shell may set.
hard_nofile=$(ulimit -Hn)
[ "$hard_nofile" = unlimited ] && hard_nofile=1048576
if [ "$hard_nofile" -lt $((idle_connections + 200)) ]; then
  ulimit -Hn $((idle_connections + 200)) 2>/dev/null && hard_nofile=$((idle_connections + 200))
fi
if [ "$hard_nofile" -lt $((idle_connections + 200)) ]; then
  reduced=$((hard_nofile - 200))
  say "warning: the hard limit on open files is $hard_nofile: measuring $reduced idle connections, not $idle_connections"
  idle_connections=$reduced
fi
ulimit -n "$hard_nofile"

# ---------------------------------------------------------------------------------------------
# Measurement helpers.

clk_tck=$(getconf CLK_TCK)

# utime + stime of the given processes (all their threads), in clock ticks.
proc_ticks() {
  local total=0 pid stat fields
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    read -r -a fields <<<"${stat##*) }"
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}

# A field of /proc/PID/status in KiB (VmRSS, VmHWM).
proc_kib() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }

# CPU time of everything this script runs (not wrk: run_wrk counts it), in clock ticks.
our_ticks() {
  local all=("${pids[@]}")
  [ -n "${upstream_worker:-}" ] && all+=("$upstream_worker")
  [ -n "${references_worker:-}" ] && all+=("$references_worker")
  proc_ticks "${all[@]}"
}

# The whole machine from /proc/stat: "busy total steal" in ticks, busy being user + nice +
# system (not irq/softirq, which no process is charged with).
machine_ticks() {
  local cpu user nice system idle iowait irq softirq steal
  read -r cpu user nice system idle iowait irq softirq steal _ </proc/stat
  echo "$((user + nice + system)) $((user + nice + system + idle + iowait + irq + softirq + steal)) $steal"
}

# Resets VmHWM (the peak RSS) to the current RSS, so that each scenario has its own peak.
reset_peak() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || say "warning: cannot reset VmHWM of $1: peaks are since start"; }

children_of() {
  if [ -r "/proc/$1/task/$1/children" ]; then
    cat "/proc/$1/task/$1/children"
  else
    local dir stat fields
    for dir in /proc/[0-9]*; do
      stat=$(cat "$dir/stat" 2>/dev/null) || continue
      read -r -a fields <<<"${stat##*) }"
      [ "${fields[1]}" = "$1" ] && echo "${dir#/proc/}"
    done
  fi
}

# Redis's total_reads_processed and total_commands_processed, summed over PORTS (the one
# redis-server by default; a row on the cluster passes its three primaries).
redis_stats() {
  local port reads=0 cmds=0 r c
  for port in "${@:-$redis_port}"; do
    read -r r c < <(redis-cli -h 127.0.0.1 -p "$port" info stats | tr -d '\r' |
      awk -F: '/^total_reads_processed:/ { r = $2 } /^total_commands_processed:/ { c = $2 } END { print r, c }')
    reads=$((reads + r))
    cmds=$((cmds + c))
  done
  echo "$reads $cmds"
}

# Requests the upstream nginx has seen (its stub_status counts this query too).
upstream_requests() {
  curl -s --max-time 5 "http://127.0.0.1:$status_port/status" | awk 'NR == 3 { print $3 }'
}

calc() { awk "BEGIN { printf \"$1\", $2 }"; }

wait_for() { # description seconds command...
  local what=$1 seconds=$2
  shift 2
  local tries=$((seconds * 10))
  until "$@" >/dev/null 2>&1; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || die "$what did not come up within ${seconds}s"
    sleep 0.1
  done
}

stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# Servers.

mapfile -t ports < <("$benchtool" ports 12)
redis_port=${ports[0]} upstream_port=${ports[1]} status_port=${ports[2]}
cache_port=${ports[3]} return_port=${ports[4]} sendfile_port=${ports[5]}
# A Redis Cluster of three primaries: their ports, then their cluster bus ports.
cluster_ports=("${ports[6]}" "${ports[7]}" "${ports[8]}")
cluster_bus_ports=("${ports[9]}" "${ports[10]}" "${ports[11]}")
cluster_pids=()

start_redis() {
  say "starting redis-server on 127.0.0.1:$redis_port (no persistence, CPU 0)"
  taskset -c 0 redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --daemonize no --dir "$work" --logfile "$work/redis.log" &
  redis_pid=$!
  pids+=("$redis_pid")
  wait_for "redis-server (see $raw/redis.log)" 10 redis-cli -h 127.0.0.1 -p "$redis_port" ping
}

start_cluster() {
  say "starting a Redis Cluster of 3 primaries on 127.0.0.1:${cluster_ports[*]} (CPU 0)"
  local i port
  for i in 0 1 2; do
    port=${cluster_ports[$i]}
    mkdir -p "$work/cluster-$port"
    taskset -c 0 redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
      --daemonize no --dir "$work/cluster-$port" --logfile "$work/cluster-$port/redis.log" \
      --cluster-enabled yes --cluster-config-file "$work/cluster-$port/nodes.conf" \
      --cluster-port "${cluster_bus_ports[$i]}" --cluster-node-timeout 5000 &
    cluster_pids+=($!)
    pids+=($!)
    wait_for "cluster node $port" 10 redis-cli -h 127.0.0.1 -p "$port" ping
  done
  redis-cli --cluster create "${cluster_ports[@]/#/127.0.0.1:}" --cluster-yes \
    >"$work/cluster-create.log" 2>&1 || die "redis-cli --cluster create failed: $(tail -n 5 "$work/cluster-create.log")"
  cluster_ok() {
    for port in "${cluster_ports[@]}"; do
      redis-cli -h 127.0.0.1 -p "$port" cluster info | grep -q '^cluster_state:ok' || return 1
    done
  }
  wait_for "the Redis Cluster" 30 cluster_ok
}

nginx_common() { # dir
  local user_line=""
  [ "$(id -u)" -eq 0 ] && user_line="user $(id -un) $(id -gn);"
  cat <<EOF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
$user_line
events { worker_connections 20000; }
worker_rlimit_nofile 20000;
http {
  access_log off;
  sendfile on;
  tcp_nodelay on;
  keepalive_timeout 120s;
  keepalive_requests 100000000;
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
  default_type application/json;
EOF
}

start_nginx() { # name conf-body...  (sets nginx_pid, nginx_worker)
  local name=$1 dir=$work/nginx-$1
  mkdir -p "$dir/tmp"
  {
    nginx_common "$dir"
    cat
    echo "}"
  } >"$dir/nginx.conf"
  nginx -t -q -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" 2>"$dir/check.log" ||
    die "nginx rejects $name's configuration: $(cat "$dir/check.log")"
  taskset -c 0 nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" &
  nginx_pid=$!
  pids+=("$nginx_pid")
  nginx_worker=""
  local child
  for _ in $(seq 100); do
    # The worker, not the cache manager or loader that a proxy_cache adds.
    for child in $(children_of "$nginx_pid"); do
      if tr '\0' ' ' <"/proc/$child/cmdline" 2>/dev/null | grep -q 'worker process'; then
        nginx_worker=$child
      fi
    done
    [ -n "$nginx_worker" ] && break
    kill -0 "$nginx_pid" 2>/dev/null || die "nginx $name exited: $(tail -n 5 "$dir/error.log")"
    sleep 0.1
  done
  [ -n "$nginx_worker" ] || die "nginx $name started no worker"
}

start_upstream() {
  say "starting the upstream nginx on 127.0.0.1:$upstream_port (stub_status on $status_port)"
  mkdir -p "$work/nginx-upstream/html"
  printf '%s' "$product_json" >"$work/nginx-upstream/html/product.json"
  start_nginx upstream <<EOF
  open_file_cache max=16 inactive=60s;
  open_file_cache_valid 60s;
  server {
    listen 127.0.0.1:$upstream_port;
    root $work/nginx-upstream/html;
    # GET /products/<anything>: the same static JSON document. PUT cannot write a static
    # file, so it is answered here.
    location /products/ {
      if (\$request_method = PUT) {
        return 200 '{"ok":true}';
      }
      rewrite ^ /product.json break;
    }
  }
  server {
    listen 127.0.0.1:$status_port;
    location = /status { stub_status; }
  }
EOF
  upstream_worker=$nginx_worker
  wait_for "the upstream nginx" 10 curl -sf "http://127.0.0.1:$upstream_port/products/42"
}

start_references() {
  say "starting the reference nginx: proxy_cache on $cache_port (tuned; with sendfile on at $sendfile_port), return on $return_port"
  # The reference is tuned as an operator tunes it for small objects: cache on tmpfs (above),
  # sendfile off (for a 60-byte body it costs more than it saves), no access log, and a
  # limit_req per client address, since cachecar counts every request in its limiter too
  # (the rate is far above anything measured here: it limits nothing, it only costs its work).
  # The same cache with sendfile on, nginx's default, is kept as a second row.
  start_nginx references <<EOF
  proxy_cache_path $cache_dir/tuned levels=1:2 keys_zone=bench:64m max_size=2g inactive=10m use_temp_path=off;
  proxy_cache_path $cache_dir/sendfile levels=1:2 keys_zone=sendfile:64m max_size=2g inactive=10m use_temp_path=off;
  limit_req_zone \$binary_remote_addr zone=perip:10m rate=1000000r/s;
  limit_req_status 429;
  upstream api {
    server 127.0.0.1:$upstream_port;
    keepalive 64;
    keepalive_requests 100000000;
  }
  server {
    listen 127.0.0.1:$cache_port;
    location / {
      sendfile off;
      limit_req zone=perip burst=1000000 nodelay;
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      proxy_cache_key \$request_uri;
      proxy_cache_valid 200 5m;
      proxy_cache_lock on;
      add_header X-Cache \$upstream_cache_status;
    }
  }
  server {
    listen 127.0.0.1:$sendfile_port;
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache sendfile;
      proxy_cache_key \$request_uri;
      proxy_cache_valid 200 5m;
      proxy_cache_lock on;
      add_header X-Cache \$upstream_cache_status;
    }
  }
  server {
    listen 127.0.0.1:$return_port;
    location / {
      default_type application/json;
      return 200 '$product_json';
    }
  }
EOF
  references_worker=$nginx_worker
  wait_for "the reference nginx" 10 curl -sf "http://127.0.0.1:$return_port/products/42"
}

declare -A cc_logs=()

# Redis command timeouts cachecar has logged so far (0 for a process that is not cachecar).
redis_timeouts() {
  local log=${cc_logs[$1]:-}
  [ -n "$log" ] || {
    echo 0
    return
  }
  grep -c 'no reply within command_timeout' "$log" || true
}

# start_cachecar NAME WORKERS RATE_LIMIT ACCESS_LOG CPUS [NEAR [SYNC [REDIS_URL]]]: sets
# cc_pid, cc_port and cc_admin_port. NEAR: cache.near's value (default off); SYNC:
# rate_limit.sync (exact); REDIS_URL: the benchmark's redis-server unless given.
start_cachecar() {
  local name=$1 workers=$2 limit=$3 access=$4 cpu_list=$5 near=${6:-off} sync=${7:-exact}
  local redis_url=${8:-redis://127.0.0.1:$redis_port}
  local conf=$work/cachecar-$name.yaml log=$work/cachecar-$name.log
  # batched: the limit here (10^9 a minute) is never reached, so a budget of 10000 unconfirmed
  # requests per client and worker bounds an overshoot nobody could see. A worker settles a
  # client at most every sync_interval (10ms), and its unconfirmed count can reach two
  # intervals' worth (one in flight, one since): the benchmark's one client, at ~10^5 req/s,
  # needs a budget above 2000, or the requests past it go to Redis one by one (a budget of
  # 1000 sent 0.46 Redis commands per hit at 256 connections, 10000 sends 0.005).
  local budget=""
  [ "$sync" = batched ] && budget="  local_budget: 10000"$'\n'
  [ "$access" = true ] && log=$work/cachecar-$name-access.log
  cat >"$conf" <<EOF
# Written by tests/bench/run.sh for the "$name" instance.
listen: 127.0.0.1:0
workers: $workers
upstream:
  url: http://127.0.0.1:$upstream_port
redis:
  url: $redis_url
  command_timeout: 100ms
cache:
  near: $near
routes:
  - path: /products/{id}
    key: product:{id}
    ttl: 300s
rate_limit:
  limit: $limit
  window: 60s
  key_prefix: "rl-$name:"
  sync: $sync
$budget
admin:
  listen: 127.0.0.1:0
limits:
  max_connections: 20000
drain_timeout: 1s
log:
  level: info
  access: $access
EOF
  "$cachecar" --check-config "$conf" >"$work/check-$name.log" 2>&1 ||
    die "cachecar rejects $conf: $(tail -n 3 "$work/check-$name.log")"
  local launcher=()
  [ -n "$cpu_list" ] && launcher=(taskset -c "$cpu_list")
  : >"$log"
  "${launcher[@]}" "$cachecar" --config "$conf" >"$log" 2>&1 &
  cc_pid=$!
  pids+=("$cc_pid")
  cc_logs[$cc_pid]=$log
  cc_port=""
  for _ in $(seq 100); do
    cc_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) with.*/\1/p' "$log" | head -n 1)
    [ -n "$cc_port" ] && break
    kill -0 "$cc_pid" 2>/dev/null || die "cachecar $name exited: $(tail -n 5 "$log")"
    sleep 0.1
  done
  [ -n "$cc_port" ] || die "cachecar $name did not report its port: $(tail -n 5 "$log")"
  cc_admin_port=$(sed -n 's/.*admin listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n 1)
  if [[ "$redis_url" == redis+cluster://* ]]; then
    for _ in $(seq 50); do
      [ "$(grep -c '(cluster primary): connected' "$log")" -ge 3 ] && break
      sleep 0.1
    done
  fi
  if [ "$near" != off ]; then
    for _ in $(seq 50); do
      grep -q 'near cache: Redis tracks' "$log" && break
      sleep 0.1
    done
    grep -q 'near cache: Redis tracks' "$log" || die "cachecar $name: Redis never tracked its keys: $(tail -n 5 "$log")"
  fi
  say "cachecar $name: pid $cc_pid, 127.0.0.1:$cc_port, workers $workers, limit $limit ($sync), near cache $near, access log $access"
}

# ---------------------------------------------------------------------------------------------
# Runs.

csv=$out_dir/results.csv
echo "scenario,system,conns,rps,p50_us,p99_us,p999_us,max_us,requests,http_errors,socket_errors,rss_idle_kib,rss_peak_kib,cpu_server_s_per_1k,cpu_redis_s_per_1k,redis_reads_per_req,redis_cmds_per_req,upstream_per_req,noise_pct,redis_timeouts" >"$csv"

# run_wrk LABEL CONNS URL MODE SECONDS WRK_CPUS THREADS TAG: parses the BENCH line into W.
declare -A W
run_wrk() {
  local label=$1 conns=$2 url=$3 wrk_mode=$4 seconds=$5 wrk_cpus=$6 threads=$7 tag=$8
  local out=$raw/wrk-$label.txt launcher=()
  [ -n "$wrk_cpus" ] && launcher=(taskset -c "$wrk_cpus")
  # In a subshell that, once wrk has been reaped, reads wrk's CPU time from its own
  # cutime + cstime.
  if ! (
    BENCH_MODE=$wrk_mode BENCH_TAG=$tag BENCH_KEYS=${BENCH_KEYS:-1000} "${launcher[@]}" wrk -t"$threads" -c"$conns" \
      -d"${seconds}s" --timeout 5s -s "$bench_dir/bench.lua" "$url" >"$out" 2>&1 || exit
    read -r stat <"/proc/$BASHPID/stat"
    read -r -a fields <<<"${stat##*) }"
    echo "WRKCPU ticks=$((fields[13] + fields[14]))" >>"$out"
  ); then
    die "wrk failed ($label): $(tail -n 5 "$out")"
  fi
  local line kv
  line=$(grep '^BENCH ' "$out") || die "wrk printed no BENCH line ($label): $(tail -n 5 "$out")"
  line+=" $(grep '^WRKCPU ' "$out")"
  W=()
  for kv in $line; do
    [[ "$kv" == *=* ]] && W[${kv%%=*}]=${kv#*=}
  done
  [ "${W[requests]:-0}" -gt 0 ] || die "wrk completed no request ($label): $(tail -n 5 "$out")"
}

# measure_once SCENARIO SYSTEM CONNS URL MODE SERVER_PID ROUND [REDIS]: one warm-up and one
# measured run. Sets R_RPS, R_PEAK and R_ROW (the CSV row with "PEAK" in place of the peak
# RSS). REDIS: "pid:port ..." of the redis-servers the row uses (the benchmark's one by
# default). Globals: m_wrk_cpus (wrk's CPU list, "" = unpinned) and m_threads (wrk's threads).
measure_once() {
  local scenario=$1 system=$2 conns=$3 url=$4 wrk_mode=$5 pid=$6 round=$7
  local redis=${8:-$redis_pid:$redis_port} entry
  local row_redis_pids=() row_redis_ports=()
  for entry in $redis; do
    row_redis_pids+=("${entry%%:*}")
    row_redis_ports+=("${entry##*:}")
  done
  local label
  label=$(echo "$scenario-$system-c$conns-r$round" | tr -c 'a-zA-Z0-9\n-' '-')
  local rss_idle
  rss_idle=$(proc_kib "$pid" VmRSS)
  run_wrk "$label-warmup" "$conns" "$url" "$wrk_mode" "$warmup" "$m_wrk_cpus" "$m_threads" "$label-w$RANDOM"
  reset_peak "$pid"
  local server0 redis0 reads0 cmds0 up0 server1 redis1 reads1 cmds1 up1
  local ours0 ours1 machine0 machine1
  ours0=$(our_ticks)
  machine0=$(machine_ticks)
  server0=$(proc_ticks "$pid")
  redis0=$(proc_ticks "${row_redis_pids[@]}")
  read -r reads0 cmds0 < <(redis_stats "${row_redis_ports[@]}")
  up0=$(upstream_requests)
  local timeouts0 timeouts1 timeouts=""
  timeouts0=$(redis_timeouts "$pid")
  run_wrk "$label" "$conns" "$url" "$wrk_mode" "$duration" "$m_wrk_cpus" "$m_threads" "$label-$RANDOM"
  ours1=$(our_ticks)
  machine1=$(machine_ticks)
  server1=$(proc_ticks "$pid")
  redis1=$(proc_ticks "${row_redis_pids[@]}")
  read -r reads1 cmds1 < <(redis_stats "${row_redis_ports[@]}")
  up1=$(upstream_requests)
  timeouts1=$(redis_timeouts "$pid")
  [ -n "${cc_logs[$pid]:-}" ] && timeouts=$((timeouts1 - timeouts0))
  R_PEAK=$(proc_kib "$pid" VmHWM)
  local n=${W[requests]}
  local cpu_server cpu_redis reads cmds upstream
  R_RPS=$(calc %.0f "${W[requests]} / (${W[duration_us]} / 1000000)")
  cpu_server=$(calc %.5f "($server1 - $server0) / $clk_tck / $n * 1000")
  cpu_redis=$(calc %.5f "($redis1 - $redis0) / $clk_tck / $n * 1000")
  local probes=${#row_redis_ports[@]}
  reads=$(calc %.3f "($reads1 - $reads0 - $probes * $redis_reads_overhead) / $n")
  cmds=$(calc %.3f "($cmds1 - $cmds0 - $probes * $redis_cmds_overhead) / $n")
  upstream=$(calc %.3f "($up1 - $up0 - 1) / $n")
  local socket_errors=$((W[connect_errors] + W[read_errors] + W[write_errors] + W[timeouts]))
  local busy0 total0 steal0 busy1 total1 steal1 noise
  read -r busy0 total0 steal0 <<<"$machine0"
  read -r busy1 total1 steal1 <<<"$machine1"
  noise=$(calc %.1f "((($busy1 - $busy0) - ($ours1 - $ours0) - ${W[ticks]}) > 0 ? (($busy1 - $busy0) - ($ours1 - $ours0) - ${W[ticks]}) : 0) * 100 / ($total1 - $total0) + ($steal1 - $steal0) * 100 / ($total1 - $total0)")
  R_ROW="$scenario,$system,$conns,$R_RPS,${W[p50]},${W[p99]},${W[p999]},${W[max]},$n,${W[status_errors]},$socket_errors,$rss_idle,PEAK,$cpu_server,$cpu_redis,$reads,$cmds,$upstream,$noise,$timeouts"
  say "  round $round $system: $R_RPS req/s, p99 ${W[p99]} us, HTTP>=400: ${W[status_errors]}, socket errors: $socket_errors, Redis timeouts: ${timeouts:-n/a}, noise: $noise%"
}

# measure SCENARIO CONNS MODE TARGET...; a TARGET is "SYSTEM|URL|SERVER_PID[|REDIS]"
# (SERVER_PID: the process whose CPU time and RSS are the server's: cachecar, or the nginx
# worker; REDIS as measure_once takes it). Runs
# $rounds rounds, the targets alternating within each round so that a pair compared in a
# ratio meets the same background load; keeps each target's fastest round (noise only ever
# slows a run down) and the highest peak RSS of all its rounds.
measure() {
  local scenario=$1 conns=$2 wrk_mode=$3
  shift 3
  [[ "$scenario" != *,* ]] || die "a scenario name may not contain a comma (CSV): $scenario"
  say "$scenario / $conns connections: $rounds round(s) of ${warmup}s warm-up + ${duration}s, for: $(printf '%s; ' "${@%%|*}")"
  local -A best_rps=() best_row=() peak=()
  local round target system url pid redis
  for ((round = 1; round <= rounds; round++)); do
    for target in "$@"; do
      IFS='|' read -r system url pid redis <<<"$target"
      [[ "$system" != *,* ]] || die "a system name may not contain a comma (CSV): $system"
      measure_once "$scenario" "$system" "$conns" "$url" "$wrk_mode" "$pid" "$round" "$redis"
      if [ -z "${best_rps[$system]:-}" ] || [ "$R_RPS" -gt "${best_rps[$system]}" ]; then
        best_rps[$system]=$R_RPS
        best_row[$system]=$R_ROW
      fi
      if [ -z "${peak[$system]:-}" ] || [ "$R_PEAK" -gt "${peak[$system]}" ]; then
        peak[$system]=$R_PEAK
      fi
    done
  done
  for target in "$@"; do
    system=${target%%|*}
    echo "${best_row[$system]/,PEAK,/,${peak[$system]},}" >>"$csv"
  done
}

calibrate() {
  # What our own probes add to the counters: redis-cli's INFO (a connection, a command) and
  # the stub_status query.
  local r0 c0 r2 c2
  read -r r0 c0 < <(redis_stats)
  redis_stats >/dev/null
  read -r r2 c2 < <(redis_stats)
  redis_reads_overhead=$(((r2 - r0) / 2))
  redis_cmds_overhead=$(((c2 - c0) / 2))
  say "probe overhead: $redis_reads_overhead Redis reads and $redis_cmds_overhead commands per INFO"
}

fill_keys() { # port: GET /products/1..1000 once, keep-alive (curl's URL globbing)
  curl -sf "http://127.0.0.1:$1/products/[1-1000]" >/dev/null || die "pre-filling 1000 keys through port $1 failed"
}

check_cachecar_filled() {
  local keys=() i
  for i in $(seq 1000); do keys+=("product:$i"); done
  local found=0
  for _ in $(seq 50); do
    found=$(redis-cli -h 127.0.0.1 -p "$redis_port" exists "${keys[@]}")
    [ "$found" -eq 1000 ] && return 0
    sleep 0.1
  done
  die "after pre-filling, only $found of the 1000 keys are in Redis"
}

redis_benchmark() { # pipeline requests
  local pipeline=$1 requests=$2
  say "redis-benchmark GET -P $pipeline -c 64 -n $requests (CPU 1)"
  local out=$raw/redis-benchmark-P$pipeline.txt redis0 redis1
  redis-cli -h 127.0.0.1 -p "$redis_port" set key:__rand_int__ "$product_json" >/dev/null
  redis0=$(proc_ticks "$redis_pid")
  taskset -c 1 redis-benchmark -h 127.0.0.1 -p "$redis_port" -t get -P "$pipeline" -c 64 \
    -n "$requests" --csv >"$out" 2>&1 || die "redis-benchmark failed: $(tail -n 3 "$out")"
  redis1=$(proc_ticks "$redis_pid")
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  local row
  row=$(grep '^"GET"' "$out" | tr -d '"') || die "no GET line in redis-benchmark's output"
  local rps p50 p99 max cpu
  IFS=, read -r _ rps _ _ p50 _ p99 max <<<"$row"
  cpu=$(calc %.5f "($redis1 - $redis0) / $clk_tck / $requests * 1000")
  echo "GET -P $pipeline,redis-benchmark,64,$(calc %.0f "$rps"),$(calc %.0f "$p50 * 1000"),$(calc %.0f "$p99 * 1000"),,$(calc %.0f "$max * 1000"),$requests,0,0,,,,$cpu,,,,," >>"$csv"
  say "  -> $(calc %.0f "$rps") GET/s"
}

# Idle keep-alive connections: RSS of a fresh cachecar before, with N connections open, and
# after one request on each of them.
connections_md=""
connections_json="null"
measure_connections() {
  local n=$idle_connections
  start_cachecar idle 1 1000000000 false 0
  local pid=$cc_pid port=$cc_port
  # One request first: the Redis connection, the scripts and an upstream connection exist.
  curl -sf "http://127.0.0.1:$port/products/42" >/dev/null || die "cachecar idle does not answer"
  sleep 0.5
  local rss0 fds0 rss1 rss2 rss3 hwm line fds
  rss0=$(proc_kib "$pid" VmRSS)
  fds0=$(find "/proc/$pid/fd" -mindepth 1 | wc -l)
  reset_peak "$pid"
  say "opening $n idle connections to cachecar (client on CPU 1)"
  coproc IDLE { exec taskset -c 1 "$benchtool" idle "$port" "$n" /products/42 2>"$work/idle-client.log"; }
  local client_pid=$IDLE_PID
  pids+=("$client_pid")
  local to_client=${IDLE[1]} from_client=${IDLE[0]}
  read -r -t 120 -u "$from_client" line || die "the idle client failed: $(cat "$work/idle-client.log")"
  [ "$line" = "connected $n" ] || die "the idle client said '$line': $(cat "$work/idle-client.log")"
  # Within a few descriptors: the first request's own connections may have closed meanwhile.
  for _ in $(seq 100); do
    fds=$(find "/proc/$pid/fd" -mindepth 1 | wc -l)
    [ "$fds" -ge $((fds0 + n - 8)) ] && break
    sleep 0.1
  done
  [ "$fds" -ge $((fds0 + n - 8)) ] ||
    die "cachecar has $fds descriptors open, $fds0 before $n connections (max_connections or ulimit -n?)"
  sleep 1
  rss1=$(proc_kib "$pid" VmRSS)
  echo request >&"$to_client"
  read -r -t 300 -u "$from_client" line || die "the idle client failed: $(cat "$work/idle-client.log")"
  [[ "$line" == "served $n ok=$n" ]] || die "requests on the idle connections: '$line' (expected every one 200)"
  sleep 1
  rss2=$(proc_kib "$pid" VmRSS)
  hwm=$(proc_kib "$pid" VmHWM)
  echo quit >&"$to_client"
  wait "$client_pid" 2>/dev/null || true
  sleep 1
  rss3=$(proc_kib "$pid" VmRSS)
  stop_pid "$pid"
  local per_open per_used
  per_open=$(calc %.0f "($rss1 - $rss0) * 1024 / $n")
  per_used=$(calc %.0f "($rss2 - $rss0) * 1024 / $n")
  connections_md="| $n | $(calc %.1f "$rss0 / 1024") | $(calc %.1f "$rss1 / 1024") | $(calc %.1f "$rss2 / 1024") | $(calc %.1f "$hwm / 1024") | $(calc %.1f "$rss3 / 1024") | $per_open | $per_used |"
  connections_json="{\"connections\": $n, \"rss_before_kib\": $rss0, \"rss_open_kib\": $rss1, \"rss_after_one_request_each_kib\": $rss2, \"rss_peak_kib\": $hwm, \"rss_after_close_kib\": $rss3, \"bytes_per_open_connection\": $per_open, \"bytes_per_used_connection\": $per_used}"
  say "idle connections: $per_open bytes each when opened, $per_used bytes each after one request"
}

# ---------------------------------------------------------------------------------------------
# Reports.

fmt_table() {
  awk -F, '
    function num(x, f) { return x == "" ? "–" : sprintf(f, x) }
    function mib(x) { return x == "" ? "–" : sprintf("%.1f", x / 1024) }
    NR == 1 { next }
    {
      key = $1 "|" $3
      sys[NR] = $2; scen[NR] = $1; conns[NR] = $3; line[NR] = $0
      if ($2 == "nginx proxy_cache") cache[key] = $4
      if ($2 == "nginx direct") direct[$3] = $4
      last = NR
    }
    END {
      print "| scenario | system | conns | req/s | p50 µs | p99 µs | p99.9 µs | HTTP ≥400 / socket errors | RSS idle → peak MiB | CPU s/1k req server | CPU s/1k req redis | Redis reads/req | Redis cmds/req | Redis timeouts | upstream req/req | ÷ nginx proxy_cache | ÷ upstream direct | noise % |"
      print "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
      for (i = 2; i <= last; i++) {
        split(line[i], f, ",")
        key = f[1] "|" f[3]
        ratio = "–"; ratio_direct = "–"
        if (f[2] ~ /^cachecar/ && (key in cache) && cache[key] > 0) ratio = sprintf("**%.2f**", f[4] / cache[key])
        if ((f[2] ~ /^cachecar/ || f[2] == "nginx proxy_cache") && (f[3] in direct) && direct[f[3]] > 0) ratio_direct = sprintf("%.2f", f[4] / direct[f[3]])
        rss = (f[12] == "" ? "–" : mib(f[12]) " → " mib(f[13]))
        printf "| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
          f[1], f[2], f[3], f[4], num(f[5], "%d"), num(f[6], "%d"), num(f[7], "%d"), f[10], f[11], rss,
          num(f[14], "%.4f"), num(f[15], "%.4f"), num(f[16], "%.2f"), num(f[17], "%.2f"), num(f[20], "%d"), num(f[18], "%.2f"), ratio, ratio_direct, num(f[19], "%.1f")
      }
    }' "$csv"
}

csv_to_json() {
  awk -F, '
    NR == 1 { for (i = 1; i <= NF; i++) name[i] = $i; n = NF; next }
    {
      printf "%s    {", (NR > 2 ? ",\n" : "")
      for (i = 1; i <= n; i++) {
        v = $i
        if (v == "") v = "null"
        else if (v !~ /^-?[0-9.]+$/) v = "\"" v "\""
        printf "%s\"%s\": %s", (i > 1 ? ", " : ""), name[i], v
      }
      printf "}"
    }
    END { print "" }' "$csv"
}

# chart data: one file per connection count; x, req/s, p99 µs, colour, label.
write_chart() {
  local conns file
  for conns in "${conns_list[@]}"; do
    file=$work/chart-$conns.dat
    awk -F, -v c="$conns" '
      NR == 1 { next }
      $3 != c { next }
      $2 == "redis-benchmark" { next }
      {
        colour = ($2 ~ /^cachecar/) ? 1 : ($2 == "nginx proxy_cache") ? 2 : ($2 == "nginx direct") ? 3 : 4
        if ($1 != prev && NR > 2) x += 0.6
        prev = $1
        label = ($2 ~ /^cachecar ./) ? $1 " [" substr($2, 10) "]" : ($2 ~ /^nginx (direct|return)$/) ? $2 : $1
        printf "%.1f\t%s\t%s\t%d\t%s\n", x, $4, $6, colour, label
        x += 1
      }' "$csv" >"$file"
  done
  gnuplot -e "out='$out_dir/chart.png'; f64='$work/chart-64.dat'; f256='$work/chart-256.dat'; heading='cachecar benchmark $stamp (servers on CPU 0, wrk on CPU 1)'" \
    "$bench_dir/chart.gp" 2>"$work/gnuplot.log" || say "warning: gnuplot failed: $(tail -n 3 "$work/gnuplot.log")"
}

versions() {
  echo "- cachecar: $("$cachecar" --version 2>&1), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- proxy 2>/dev/null || echo ' (proxy/ modified)'), Release build in $build_dir"
  echo "- $(nginx -v 2>&1); $(redis-server --version | awk '{ print $1, $2, $3 }'); $(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }')"
  echo "- $(uname -sr); $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); $cpus CPUs"
}

# ---------------------------------------------------------------------------------------------
# Main.

start_redis
start_upstream
calibrate

if [ "$mode" = connections ]; then
  measure_connections
  {
    echo "# cachecar idle keep-alive connections, $stamp"
    echo
    versions
    echo
    echo "| connections | RSS before MiB | RSS with all open MiB | after one GET each MiB | peak MiB | after close MiB | bytes/conn open | bytes/conn after a request |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    echo "$connections_md"
  } >"$out_dir/results.md"
  echo "{\"idle_connections\": $connections_json}" >"$out_dir/results.json"
  cat "$out_dir/results.md"
  say "done in $(($(date +%s) - started_at))s; results in $out_dir"
  exit 0
fi

start_references
start_cluster
start_cachecar main 1 1000000000 false 0
main_pid=$cc_pid main_port=$cc_port
main_rss_start=$(proc_kib "$main_pid" VmRSS)
# The near cache and batched limits, each alone and together (issue 14).
near_on="{max_bytes: 32MiB, max_ttl: 10s, tracking: on}"
start_cachecar near 1 1000000000 false 0 "$near_on" exact
near_pid=$cc_pid near_port=$cc_port
start_cachecar batched 1 1000000000 false 0 off batched
batched_pid=$cc_pid batched_port=$cc_port
start_cachecar nearbatched 1 1000000000 false 0 "$near_on" batched
nb_pid=$cc_pid nb_port=$cc_port nb_admin_port=$cc_admin_port
# The defaults on a Redis Cluster of three primaries, next to the same on one redis-server.
cluster_url="redis+cluster://127.0.0.1:${cluster_ports[0]},127.0.0.1:${cluster_ports[1]}"
start_cachecar cluster 1 1000000000 false 0 off exact "$cluster_url"
cluster_cc_pid=$cc_pid cluster_cc_port=$cc_port
start_cachecar nbcluster 1 1000000000 false 0 "$near_on" batched "$cluster_url"
nb_cluster_pid=$cc_pid nb_cluster_port=$cc_port
cluster_redis=""
for i in 0 1 2; do cluster_redis+="${cluster_pids[$i]}:${cluster_ports[$i]} "; done

redis_benchmark 1 200000
redis_benchmark 16 2000000

m_wrk_cpus=1 m_threads=1
curl -sf "http://127.0.0.1:$main_port/products/42" >/dev/null || die "cachecar does not answer GET /products/42"
curl -sf "http://127.0.0.1:$cache_port/products/42" >/dev/null || die "nginx proxy_cache does not answer GET /products/42"
fill_keys "$main_port"
for port in "$near_port" "$batched_port" "$nb_port"; do
  curl -sf "http://127.0.0.1:$port/products/42" >/dev/null || die "cachecar on port $port does not answer"
done
fill_keys "$cluster_cc_port"
curl -sf "http://127.0.0.1:$nb_cluster_port/products/42" >/dev/null || die "cachecar near+batched cluster does not answer"
for path in /products/42 /products/1000; do
  curl -sf -D - -o /dev/null "http://127.0.0.1:$cluster_cc_port$path" | grep -qi '^x-cache: HIT' ||
    die "cachecar cluster did not keep $path in the Redis Cluster"
done
fill_keys "$cache_port"
fill_keys "$sendfile_port"
check_cachecar_filled
for port in "$cache_port" "$sendfile_port"; do
  curl -sf -D - -o /dev/null "http://127.0.0.1:$port/products/1000" | grep -qi '^x-cache: HIT' ||
    die "nginx proxy_cache on port $port did not keep /products/1000"
done

# Each cachecar scenario next to its nginx proxy_cache twin, alternating round by round; HIT 1
# key also next to the references that cache nothing: the upstream alone (a static file) and
# nginx answering by itself (the HTTP ceiling of this machine).
for conns in "${conns_list[@]}"; do
  measure "HIT 1 key" "$conns" one \
    "cachecar|http://127.0.0.1:$main_port/products/42|$main_pid" \
    "cachecar near|http://127.0.0.1:$near_port/products/42|$near_pid" \
    "cachecar batched|http://127.0.0.1:$batched_port/products/42|$batched_pid" \
    "cachecar near+batched|http://127.0.0.1:$nb_port/products/42|$nb_pid" \
    "cachecar cluster|http://127.0.0.1:$cluster_cc_port/products/42|$cluster_cc_pid|$cluster_redis" \
    "cachecar near+batched cluster|http://127.0.0.1:$nb_cluster_port/products/42|$nb_cluster_pid|$cluster_redis" \
    "nginx proxy_cache|http://127.0.0.1:$cache_port/products/42|$references_worker" \
    "nginx proxy_cache sendfile on|http://127.0.0.1:$sendfile_port/products/42|$references_worker" \
    "nginx direct|http://127.0.0.1:$upstream_port/products/42|$upstream_worker" \
    "nginx return|http://127.0.0.1:$return_port/products/42|$references_worker"
done
for conns in "${conns_list[@]}"; do
  measure "HIT 1000 keys" "$conns" keys "cachecar|http://127.0.0.1:$main_port/|$main_pid" \
    "cachecar near|http://127.0.0.1:$near_port/|$near_pid" \
    "cachecar batched|http://127.0.0.1:$batched_port/|$batched_pid" \
    "cachecar near+batched|http://127.0.0.1:$nb_port/|$nb_pid" \
    "cachecar cluster|http://127.0.0.1:$cluster_cc_port/|$cluster_cc_pid|$cluster_redis" \
    "cachecar near+batched cluster|http://127.0.0.1:$nb_cluster_port/|$nb_cluster_pid|$cluster_redis" \
    "nginx proxy_cache|http://127.0.0.1:$cache_port/|$references_worker" \
    "nginx proxy_cache sendfile on|http://127.0.0.1:$sendfile_port/|$references_worker"
done
stop_pid "$cluster_cc_pid"
stop_pid "$nb_cluster_pid"
for conns in "${conns_list[@]}"; do
  measure "MISS" "$conns" miss "cachecar|http://127.0.0.1:$main_port/|$main_pid" \
    "cachecar near+batched|http://127.0.0.1:$nb_port/|$nb_pid" \
    "nginx proxy_cache|http://127.0.0.1:$cache_port/|$references_worker" \
    "nginx proxy_cache sendfile on|http://127.0.0.1:$sendfile_port/|$references_worker"
done

# A write through one replica reaching another's near cache: PUT through the batched
# instance (no near cache of its own), read on near+batched until it answers from Redis.
say "coherence: PUT on cachecar batched, first fresh read on cachecar near+batched (500 writes)"
coherence=$("$benchtool" coherence "$batched_port" "$nb_port" /products/77 500) ||
  die "the coherence measurement failed"
say "  $coherence"
coherence_p50=$(sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' <<<"$coherence")
coherence_p99=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$coherence")
coherence_max=$(sed -n 's/.*max_us=\([0-9]*\).*/\1/p' <<<"$coherence")

# The near cache full: 150,000 keys read at random, twice over (a miss stores in Redis, a
# later hit keeps the entry), far more than 32 MiB of entries hold; then its RSS.
say "near cache full: 2 x 15 s of random GETs over 150,000 keys on cachecar near+batched"
for pass in 1 2; do
  BENCH_KEYS=150000 run_wrk "near-fill-$pass" 64 "http://127.0.0.1:$nb_port/" keys 15 1 1 "fill$pass"
done
sleep 1.2 # the heartbeat copies the near cache's size into /metrics once a second
near_metric() { curl -s "http://127.0.0.1:$nb_admin_port/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
near_full_bytes=$(near_metric cachecar_near_cache_bytes)
near_full_entries=$(near_metric cachecar_near_cache_entries)
near_full_rss=$(proc_kib "$nb_pid" VmRSS)
near_full_hwm=$(proc_kib "$nb_pid" VmHWM)
say "  near cache: $near_full_entries entries, $near_full_bytes bytes; RSS $near_full_rss KiB (peak $near_full_hwm KiB)"
stop_pid "$near_pid"
stop_pid "$batched_pid"
stop_pid "$nb_pid"
for conns in "${conns_list[@]}"; do
  measure "PUT (passthrough + invalidation)" "$conns" put "cachecar|http://127.0.0.1:$main_port/products/42|$main_pid"
done

# The cost of the access log (one line per request to standard output, here a file): the
# main instance (log off) against one with the log on, alternating.
start_cachecar accesslog 1 1000000000 true 0
curl -sf "http://127.0.0.1:$main_port/products/42" >/dev/null # refills what the PUTs invalidated
for conns in "${conns_list[@]}"; do
  measure "HIT 1 key (access log pair)" "$conns" one \
    "cachecar|http://127.0.0.1:$main_port/products/42|$main_pid" \
    "cachecar access log on|http://127.0.0.1:$cc_port/products/42|$cc_pid"
done
stop_pid "$cc_pid"
stop_pid "$main_pid"

# The 429 path: a limit of 1 request per minute, so nearly every request is refused.
start_cachecar limited 1 1 false 0
for conns in "${conns_list[@]}"; do
  measure "429 (rate limited)" "$conns" one "cachecar|http://127.0.0.1:$cc_port/products/42|$cc_pid"
done
stop_pid "$cc_pid"

measure_connections

# Workers: 1 vs 2, HIT one key, 256 connections. Nothing is pinned here (redis-server is
# unpinned for it): cachecar, redis-server and wrk (2 threads) share both CPUs.
say "workers check: unpinning redis-server; cachecar and wrk (2 threads) unpinned"
taskset -a -p -c "$all_cpus" "$redis_pid" >/dev/null
m_wrk_cpus="" m_threads=2
workers_targets=()
for workers in 1 2; do
  start_cachecar "workers$workers" "$workers" 1000000000 false ""
  curl -sf "http://127.0.0.1:$cc_port/products/42" >/dev/null
  workers_targets+=("cachecar workers=$workers|http://127.0.0.1:$cc_port/products/42|$cc_pid")
done
measure "HIT 1 key unpinned" 256 one "${workers_targets[@]}"

# ---------------------------------------------------------------------------------------------
# Results.

rps_of() { awk -F, -v s="$1" -v c="$2" -v y="$3" '$1 == s && $3 == c && $2 == y { print $4 }' "$csv"; }
cpu_of() { awk -F, -v s="$1" -v c="$2" -v y="$3" '$1 == s && $3 == c && $2 == y { print $14 }' "$csv"; }
redis_cpu_of() { awk -F, -v s="$1" -v c="$2" -v y="$3" '$1 == s && $3 == c && $2 == y { print $15 }' "$csv"; }
workers_ratio=$(calc %.2f "$(rps_of "HIT 1 key unpinned" 256 "cachecar workers=2") / $(rps_of "HIT 1 key unpinned" 256 "cachecar workers=1")")
# Against nginx answering by itself, the HTTP ceiling of this machine; and how much the
# tuned reference gains over nginx's default sendfile on.
ceiling_notes=""
for conns in "${conns_list[@]}"; do
  ceiling_notes+="at $conns connections, ÷ nginx return: "
  for variant in cachecar "cachecar near" "cachecar batched" "cachecar near+batched"; do
    ceiling_notes+="$variant $(calc %.2f "$(rps_of "HIT 1 key" "$conns" "$variant") / $(rps_of "HIT 1 key" "$conns" "nginx return")"), "
  done
  ceiling_notes+="nginx proxy_cache tuned ÷ sendfile on $(calc %.2f "$(rps_of "HIT 1 key" "$conns" "nginx proxy_cache") / $(rps_of "HIT 1 key" "$conns" "nginx proxy_cache sendfile on")"); "
done
# A Redis Cluster of three primaries (on the same CPU) against one redis-server.
cluster_notes=""
for scenario in "HIT 1 key" "HIT 1000 keys"; do
  for conns in "${conns_list[@]}"; do
    cluster_notes+="$scenario/$conns: $(calc %.2f "$(rps_of "$scenario" "$conns" "cachecar cluster") / $(rps_of "$scenario" "$conns" cachecar)") (near+batched $(calc %.2f "$(rps_of "$scenario" "$conns" "cachecar near+batched cluster") / $(rps_of "$scenario" "$conns" "cachecar near+batched")")); "
  done
done
access_notes=""
for conns in "${conns_list[@]}"; do
  access_notes+="$(calc %.2f "$(rps_of "HIT 1 key (access log pair)" "$conns" "cachecar access log on") / $(rps_of "HIT 1 key (access log pair)" "$conns" cachecar)") in req/s and $(calc %.2f "$(cpu_of "HIT 1 key (access log pair)" "$conns" "cachecar access log on") / $(cpu_of "HIT 1 key (access log pair)" "$conns" cachecar)") in cachecar CPU per request at $conns connections; "
done
# CPU per request is steadier than req/s on a busy machine: cachecar's, and cachecar's plus
# Redis's, over the nginx proxy_cache worker's.
cpu_notes=""
for scenario in "HIT 1 key" "HIT 1000 keys" "MISS"; do
  for conns in "${conns_list[@]}"; do
    ngx=$(cpu_of "$scenario" "$conns" "nginx proxy_cache")
    cc=$(cpu_of "$scenario" "$conns" cachecar)
    rd=$(redis_cpu_of "$scenario" "$conns" cachecar)
    cpu_notes+="$scenario/$conns: $(calc %.2f "$cc / $ngx") ($(calc %.2f "($cc + $rd) / $ngx")); "
  done
done
total=$(($(date +%s) - started_at))

write_chart
{
  echo "# cachecar benchmark, $stamp"
  echo
  versions
  echo "- each row: the fastest of $rounds rounds of ${warmup}s warm-up + ${duration}s \`wrk -t1 -cN\` (script: $bench_dir/bench.lua); rows compared in a ratio alternate round by round; servers (cachecar, nginx, redis-server) on CPU 0, wrk on CPU 1, except the two workers rows"
  echo "- ratios compare rows of this run only; the machine is shared, absolute numbers vary between runs"
  echo
  fmt_table
  echo
  echo "- **nginx proxy_cache** is tuned as its operators tune it for small objects: cache on tmpfs, \`sendfile off\`, \`access_log off\`, a \`limit_req\` per client address (cachecar limits every request too); **nginx proxy_cache sendfile on** is the same cache with nginx's default \`sendfile on\`."
  echo "- **÷ nginx proxy_cache**: cachecar's req/s over the tuned nginx proxy_cache's in the same scenario and connection count; **÷ upstream direct**: over the upstream nginx's own req/s for GET /products/42 at that connection count."
  echo "- **server** is cachecar, or the one nginx worker serving the row; **RSS idle → peak**: before the warm-up, and VmHWM during the run (reset after the warm-up). cachecar's RSS right after start: $(calc %.1f "$main_rss_start / 1024") MiB."
  echo "- **Redis reads/req**: total_reads_processed (read events on Redis's sockets) per client request; below 1 when cachecar's auto-pipelining lets one read carry several requests' commands. **Redis cmds/req**: total_commands_processed per request, which counts the commands run inside Lua scripts too (a cachecar hit is EVALSHA of the limiter [INCR, PTTL] + one MGET of the entry, its guard and the cache epoch = 4; a near-cache hit needs no MGET, a batched limit no EVALSHA but one INCRBY script per client every sync_interval). Both net of this script's own INFO queries."
  echo "- **Redis timeouts**: times cachecar logged a Redis reply later than command_timeout (100ms) during the run; each drops the Redis connection, and the requests then waiting go on without Redis (hits become upstream requests, PUTs journal their invalidation and replay it on reconnect). On this shared machine they follow CPU starvation, see noise %."
  echo "- **upstream req/req**: requests the upstream nginx counted (stub_status) per client request."
  echo "- **noise %**: CPU time that processes other than this benchmark's (and the hypervisor, as steal) took during the run, in % of all $cpus CPUs; rows with a high value are less trustworthy, their ratios too."
  echo "- redis-benchmark rows: \`redis-benchmark -t get -c 64\` on CPU 1 against the same redis-server; req/s is GET/s, latencies are its own (µs)."
  echo "- CPU per request, cachecar ÷ the nginx proxy_cache worker (in brackets: cachecar + redis-server ÷ nginx): ${cpu_notes%; }."
  echo "- access log on ÷ off (HIT 1 key, alternating rounds): ${access_notes%; }."
  echo "- HIT 1 key: ${ceiling_notes%; }."
  echo "- **cachecar cluster** is **cachecar** on a Redis Cluster of three primaries, **cachecar near+batched cluster** the same for near+batched (all on CPU 0; their Redis columns sum the three); cluster ÷ one redis-server in req/s: ${cluster_notes%; }."
  echo "- workers: 2 ÷ workers: 1 (HIT 1 key, 256 connections, nothing pinned, wrk -t2 sharing both CPUs): **$workers_ratio**."
  echo "- **cachecar near** has \`cache.near: $near_on\`; **cachecar batched** \`rate_limit.sync: batched\` (sync_interval 10ms, local_budget 10000); **cachecar near+batched** both; **cachecar** neither (the defaults)."
  echo "- a write through one replica reaching another's near cache (500 PUTs through cachecar batched, each followed by back-to-back GETs on cachecar near+batched until one is no longer a near-cache hit): p50 **${coherence_p50} µs**, p99 **${coherence_p99} µs**, max ${coherence_max} µs."
  echo "- near cache full (cachecar near+batched after 2 x 15 s of GETs over 150,000 keys): $near_full_entries entries holding $(calc %.1f "$near_full_bytes / 1048576") MiB of its 32 MiB; RSS **$(calc %.1f "$near_full_rss / 1024") MiB** (peak $(calc %.1f "$near_full_hwm / 1024") MiB)"
  echo
  echo "## Idle keep-alive connections"
  echo
  echo "A fresh cachecar (workers: 1, max_connections: 20000); the client opens the connections, then sends one GET /products/42 on each and keeps them all open. RSS only: the kernel's socket memory is not in it."
  echo
  echo "| connections | RSS before MiB | RSS with all open MiB | after one GET each MiB | peak MiB | after close MiB | bytes/conn open | bytes/conn after a request |"
  echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  echo "$connections_md"
  echo
  echo "![chart](chart.png)"
  echo
  echo "Total time: ${total}s."
} >"$out_dir/results.md"
{
  echo "{"
  echo "  \"timestamp\": \"$stamp\", \"duration_s\": $duration, \"warmup_s\": $warmup, \"total_s\": $total,"
  echo "  \"workers2_over_workers1\": $workers_ratio,"
  echo "  \"coherence_us\": {\"p50\": $coherence_p50, \"p99\": $coherence_p99, \"max\": $coherence_max},"
  echo "  \"near_full\": {\"entries\": $near_full_entries, \"bytes\": $near_full_bytes, \"rss_kib\": $near_full_rss, \"rss_peak_kib\": $near_full_hwm},"
  echo "  \"idle_connections\": $connections_json,"
  echo "  \"rows\": ["
  csv_to_json
  echo "  ]"
  echo "}"
} >"$out_dir/results.json"
cat "$out_dir/results.md"
say "done in ${total}s; results in $out_dir"
