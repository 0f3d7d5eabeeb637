#!/usr/bin/env bash
# Builds the container image from the repository's Dockerfile and proves that it works, with no
# Docker engine and no image registry:
#
#   1. installs podman and debootstrap (scripts/install-deps.sh);
#   2. makes the base images the Dockerfile names (debian:bookworm, debian:bookworm-slim) from a
#      debootstrap of Debian 12, cached between runs, so nothing is ever pulled;
#   3. podman build --isolation chroot --pull=never -t cachecar:test;
#   4. checks the image's metadata (USER, EXPOSE, ENTRYPOINT, STOPSIGNAL), exports its filesystem
#      and, chrooted into it as the image's user, runs the image's ENTRYPOINT against a
#      redis-server and the demo product API on the host's loopback: MISS, then HIT, the admin
#      endpoints, uid 10001, SIGTERM exits 0.
#
# Prints PASS/FAIL per check and ends with "container: N passed, M failed"; exits non-zero on any
# failure. Needs root (re-runs itself with sudo otherwise).
#
# Environment:
#   CACHECAR_CONTAINER_CACHE   where the base rootfs and podman's private image store are kept
#                              (default: ${XDG_CACHE_HOME:-/var/cache}/cachecar-container)
#   CACHECAR_STORAGE_DRIVER    overlay or vfs (default: overlay when this kernel and filesystem
#                              can mount it, else vfs)
#   CACHECAR_CONTAINER_VERBOSE =1 streams debootstrap and podman build output instead of logging it
#
# The images live in a podman store of their own under the cache directory, not the machine's
# default one, so the imitation debian:bookworm never shadows a real one; the last lines of a run
# print the podman options that reach cachecar:test by hand.
set -Eeuo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    exec sudo --preserve-env=CACHECAR_CONTAINER_CACHE,CACHECAR_STORAGE_DRIVER,CACHECAR_CONTAINER_VERBOSE,XDG_CACHE_HOME "$0" "$@"
  fi
  echo "container: needs root (debootstrap, podman build and chroot); run it as root" >&2
  exit 1
fi

readonly image=cachecar:test
readonly suite=bookworm
readonly mirror=http://deb.debian.org/debian
readonly expected_uid=10001
# The cached base rootfs is rebuilt when older than this, so the base picks up point releases.
readonly rootfs_max_age_days=30
cache=${CACHECAR_CONTAINER_CACHE:-${XDG_CACHE_HOME:-/var/cache}/cachecar-container}
verbose=${CACHECAR_CONTAINER_VERBOSE:-0}

started=$SECONDS
passed=0
failed=0
pids=()
container=
tmp=
root=
scratch=()
summarized=0
error_line=

log() { echo "container: [$((SECONDS - started))s] $*"; }
pass() {
  echo "PASS: $*"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL: $*"
  failed=$((failed + 1))
}
summary() {
  summarized=1
  echo "container: $passed passed, $failed failed"
}
# A failure that leaves nothing else worth checking: count it, say why, and stop.
fatal() {
  fail "$1"
  shift
  for detail in "$@"; do
    echo "  $detail"
  done
  summary
  exit 1
}
# The last lines of a log, indented, for a failure message.
show_log() {
  if [ -s "$1" ]; then
    echo "  --- last lines of $(basename "$1") ---"
    tail -n "${2:-40}" "$1" | sed 's/^/  | /'
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM ERR
  # Stopped by a command that failed unexpectedly, or by a signal: still one FAIL and the summary,
  # so that the log says what happened and CI's count is right.
  if [ "$summarized" = 0 ]; then
    if [ -n "$error_line" ]; then
      fail "tests/container/run.sh stopped: a command failed at line $error_line (exit $rc)"
    else
      fail "tests/container/run.sh stopped before its end (exit $rc)"
    fi
    summary
  fi
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  # A process still chrooted into the exported image can only have been started by this script
  # (e.g. if it was interrupted between starting the proxy and recording its pid).
  if [ -n "$root" ]; then
    for proc_root in /proc/[0-9]*/root; do
      if [ "$(readlink "$proc_root" 2>/dev/null)" = "$root" ]; then
        pid=${proc_root#/proc/}
        kill -KILL "${pid%/root}" 2>/dev/null || true
      fi
    done
  fi
  if [ -n "$container" ]; then
    pm rm -f "$container" >/dev/null 2>&1 || true
  fi
  scratch+=("$tmp")
  remove_scratch
  exit "$rc"
}
remove_scratch() {
  for dir in "${scratch[@]}"; do
    if [ -n "$dir" ] && [ -d "$dir" ]; then
      unmount_below "$dir"
      rm -rf --one-file-system "$dir"
    fi
  done
  scratch=()
}
# Whatever is still mounted below a directory (the chroot's /proc; debootstrap's /proc and /sys if
# it was interrupted), deepest first, so that removing the directory removes only files.
unmount_below() {
  local mounts
  mounts=$(awk -v prefix="$1/" 'index($2, prefix) == 1 { print $2 }' /proc/mounts | sort -r)
  for mount_point in $mounts; do
    umount "$mount_point" 2>/dev/null || umount -l "$mount_point" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'error_line=$LINENO' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# Not /tmp: that may be a small tmpfs, or mounted nodev, and the image's /dev needs device nodes.
# Resolved, so that it compares equal to what /proc/PID/root and /proc/mounts show.
tmp=$(realpath "$(mktemp -d "${TMPDIR:-/var/tmp}/cachecar-container.XXXXXX")")

# ---- 1. tools ---------------------------------------------------------------------------------
log "installing packages if missing (podman, debootstrap and the build dependencies)"
scripts/install-deps.sh podman debootstrap || fatal "installing podman, debootstrap and the build dependencies"

# ---- podman with a store of its own -----------------------------------------------------------
# overlay where the kernel and the cache's filesystem can mount it (containers/storage test-mounts
# it when the driver starts, so `podman info` fails where it cannot: e.g. a cache directory that is
# itself on overlayfs); vfs, which copies each layer in full but works anywhere, otherwise. Each
# driver gets its own store: a store made with one driver cannot be opened with the other.
podman_in() {
  local driver=$1 store=$2 run=$3
  shift 3
  podman --root "$store" --runroot "$run" --tmpdir "$run/libpod" --storage-driver "$driver" "$@"
}
mkdir -p "$cache"
driver=${CACHECAR_STORAGE_DRIVER:-}
case "$driver" in
  "" | overlay | vfs) ;;
  *) fatal "CACHECAR_STORAGE_DRIVER is overlay or vfs (it is '$driver')" ;;
esac
if [ -z "$driver" ]; then
  # A store is only ever made with a driver that worked, so an existing one decides; else a
  # scratch store on the same filesystem is asked.
  if [ -d "$cache/storage-overlay" ]; then
    driver=overlay
  elif [ -d "$cache/storage-vfs" ]; then
    driver=vfs
  else
    # Scratch stores (and run roots: podman allows them 50 characters) for each driver. Only if
    # overlay fails where vfs works is overlay the problem; if both fail, podman itself is.
    for candidate in overlay vfs; do
      scratch+=("$cache/probe-$candidate.$$" "/run/cachecar-container/probe-$candidate.$$")
      if podman_in "$candidate" "$cache/probe-$candidate.$$" "/run/cachecar-container/probe-$candidate.$$" \
        info >"$tmp/probe-$candidate.log" 2>&1; then
        driver=$candidate
        break
      fi
    done
    if [ "$driver" = vfs ]; then
      log "overlay storage is not usable here, using vfs: $(grep -m1 -i 'error' "$tmp/probe-overlay.log" || true)"
    elif [ -z "$driver" ]; then
      fatal "podman works here" "$(show_log "$tmp/probe-overlay.log")" "$(show_log "$tmp/probe-vfs.log")"
    fi
    remove_scratch
  fi
fi
store="$cache/storage-$driver"
# The run root (locks, mount state) belongs to one store: named after the store's path, fixed,
# since podman refuses a store whose recorded run root has changed.
run_root="/run/cachecar-container/$(printf '%s' "$store" | cksum | cut -d' ' -f1)-$driver"
pm() { podman_in "$driver" "$store" "$run_root" "$@"; }
log "podman $(podman --version | awk '{print $3}'), storage driver $driver, store $store"

# Runs a long command with its output in a log, or on the terminal when verbose.
run_logged() {
  local logfile=$1
  shift
  if [ "$verbose" = 1 ]; then
    "$@" 2>&1 | tee "$logfile"
  else
    "$@" >"$logfile" 2>&1
  fi
}

# ---- 2. base images ---------------------------------------------------------------------------
# A minbase debootstrap stands in for Docker Hub's debian:bookworm and debian:bookworm-slim: same
# release, same apt sources, no package lists, no .debs, no host identity baked in. The slim one
# is the same tree without documentation, manual pages and translations, and with dpkg told not
# to install them later either, as the real -slim images are made.
rootfs_tar="$cache/debian-$suite-minbase.tar"
slim_tar="$cache/debian-$suite-slim-minbase.tar"
if [ -s "$rootfs_tar" ] && [ -s "$slim_tar" ] &&
  [ -z "$(find "$rootfs_tar" -mtime +"$rootfs_max_age_days")" ]; then
  log "base rootfs: cached ($rootfs_tar, $slim_tar)"
else
  log "base rootfs: debootstrap --variant=minbase $suite (cached for later runs)"
  rootfs="$tmp/rootfs"
  if ! run_logged "$tmp/debootstrap.log" debootstrap --variant=minbase "$suite" "$rootfs" "$mirror"; then
    fatal "debootstrap of $suite" "$(show_log "$tmp/debootstrap.log")"
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  # The build host's name and resolver are not the image's: a runtime provides both.
  : >"$rootfs/etc/hostname"
  : >"$rootfs/etc/resolv.conf"
  # A runtime mounts /dev; the image's own is empty, as in the images this imitates.
  find "$rootfs/dev" -mindepth 1 -delete
  tar --numeric-owner -C "$rootfs" -cf "$rootfs_tar.partial" .

  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'DPKG'
# A slim image: no documentation (but each package's copyright), manual pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKG
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/usr/share/lintian/*
  tar --numeric-owner -C "$rootfs" -cf "$slim_tar.partial" .

  mv "$slim_tar.partial" "$slim_tar"
  # Last: the full tarball's age is the pair's.
  mv "$rootfs_tar.partial" "$rootfs_tar"
  rm -rf --one-file-system "$rootfs"
fi

# Each image is imported once per tarball: a stamp records which tarball it came from, so a warm
# run reuses it, and the layer cache built on it (an import makes a new image id every time).
import_base() {
  local name=$1 tarball=$2 stamp="$cache/storage-$driver.${1//[:\/]/_}.stamp" want old
  want=$(stat -c '%Y %s' "$tarball")
  if pm image exists "$name" && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "base image $name: already imported"
    return 0
  fi
  log "base image $name: importing $tarball"
  old=$(pm image inspect --format '{{.Id}}' "$name" 2>/dev/null || true)
  pm import --quiet "$tarball" "$name" >/dev/null
  echo "$want" >"$stamp"
  if [ -n "$old" ]; then
    pm rmi "$old" >/dev/null 2>&1 || true
  fi
}
import_base "debian:$suite" "$rootfs_tar"
import_base "debian:$suite-slim" "$slim_tar"

# ---- 3. the image -----------------------------------------------------------------------------
build_started=$SECONDS
log "podman build --isolation chroot --pull=never -t $image -f Dockerfile ."
if ! run_logged "$tmp/build.log" pm build --isolation chroot --pull=never -t "$image" -f Dockerfile .; then
  fatal "podman build of $image" "$(show_log "$tmp/build.log" 60)"
fi
build_seconds=$((SECONDS - build_started))
pass "image $image builds from Dockerfile with nothing pulled (${build_seconds}s)"
# Keep the private store from growing with every change to proxy/ or base refresh: name the build
# stage's result too, then drop every image that no name leads to. What the next warm run reuses
# (both stages' apt layers, the last compile) is then named or an ancestor of a name. The build
# stage's id is the last "--> ID" buildah prints before the second stage starts (building that
# stage again to name it could compile again: proxy/ may have changed meanwhile); if that cannot
# be found, nothing is pruned.
build_stage_id=$(awk '/^\[2\/2\] /{ print id; exit } /^--> [0-9a-f]+$/{ id = $2 }' "$tmp/build.log")
if [ -n "$build_stage_id" ] && pm tag "$build_stage_id" "$image-build" 2>/dev/null; then
  pm image prune -f >/dev/null 2>&1 || true
else
  log "note: the build stage's image was not found in the build log; old images are kept"
fi

# ---- 4a. metadata -----------------------------------------------------------------------------
inspect() { pm image inspect --format "$1" "$image"; }
user=$(inspect '{{.Config.User}}')
# shellcheck disable=SC2016 # a Go template, not shell
ports=$(inspect '{{range $port, $_ := .Config.ExposedPorts}}{{$port}} {{end}}')
entrypoint_json=$(inspect '{{json .Config.Entrypoint}}')
stop_signal=$(inspect '{{.Config.StopSignal}}')
mapfile -t entrypoint < <(inspect '{{range .Config.Entrypoint}}{{println .}}{{end}}' | sed '/^$/d')
mapfile -t image_env < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')

expected_entrypoint='["/usr/local/bin/cachecar","--config","/etc/cachecar/config.yaml"]'
if [ "$user" = cachecar ]; then pass "USER is cachecar"; else fail "USER is cachecar (image says '$user')"; fi
if [ "$ports" = "8080/tcp 9901/tcp " ]; then
  pass "EXPOSE 8080 9901"
else
  fail "EXPOSE 8080 9901 (image says '$ports')"
fi
if [ "$entrypoint_json" = "$expected_entrypoint" ]; then
  pass "ENTRYPOINT $entrypoint_json"
else
  fail "ENTRYPOINT $expected_entrypoint (image says $entrypoint_json)"
fi
if [ "$stop_signal" = SIGTERM ]; then
  pass "STOPSIGNAL SIGTERM"
else
  fail "STOPSIGNAL SIGTERM (image says '$stop_signal')"
fi

# ---- 4b. the filesystem -----------------------------------------------------------------------
log "exporting the image's filesystem"
root="$tmp/image"
mkdir "$root"
container=$(pm create --pull=never "$image") || fatal "podman create from $image"
pm export "$container" | tar -C "$root" --numeric-owner -xf - || fatal "podman export of the image's filesystem"
pm rm "$container" >/dev/null
container=

# What a container runtime gives every container: /proc and the basic device nodes.
mount -t proc proc "$root/proc" || fatal "mounting /proc in the exported image"
mkdir -p "$root/dev"
for node in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9"; do
  read -r name major minor <<<"$node"
  mknod -m 666 "$root/dev/$name" c "$major" "$minor" || fatal "creating /dev/$name in the exported image"
done
in_image() { env -i "${image_env[@]}" chroot "$@"; }

# The image's user, resolved in the image's own /etc/passwd.
passwd_entry=$(awk -F: -v name="$user" '$1 == name' "$root/etc/passwd")
uid=$(echo "$passwd_entry" | cut -d: -f3)
gid=$(echo "$passwd_entry" | cut -d: -f4)
shell=$(echo "$passwd_entry" | cut -d: -f7)
if [ "$uid" = "$expected_uid" ] && [ "$gid" = "$expected_uid" ] && [ "$shell" = /usr/sbin/nologin ]; then
  pass "user $user is $uid:$gid with no login shell in the image's /etc/passwd"
else
  fail "user $user is $expected_uid:$expected_uid with no login shell (/etc/passwd: '$passwd_entry')"
fi
if [ -z "$uid" ] || [ -z "$gid" ]; then
  fatal "the image's user can be resolved" "no '$user' in the image's /etc/passwd"
fi
as_user=(--userspec="$uid:$gid" --groups="$gid")

ldd_out=$(in_image "$root" ldd /usr/local/bin/cachecar 2>&1 || true)
if echo "$ldd_out" | grep -q 'libuv.so' && ! echo "$ldd_out" | grep -q 'not found'; then
  pass "every shared library of cachecar is in the image (ldd)"
else
  fail "every shared library of cachecar is in the image (ldd)"
  printf '%s\n' "$ldd_out" >"$tmp/ldd.log"
  show_log "$tmp/ldd.log"
fi

leftovers=()
for tool in g++ gcc cmake make; do
  if [ -e "$root/usr/bin/$tool" ]; then leftovers+=("/usr/bin/$tool"); fi
done
while IFS= read -r file; do
  leftovers+=("${file#"$root"}")
done < <(find "$root/var/lib/apt/lists" "$root/var/cache/apt" -type f \( -name '*_Packages*' \
  -o -name '*Release*' -o -name '*.deb' -o -name '*.bin' \) 2>/dev/null)
if [ ${#leftovers[@]} -eq 0 ]; then
  pass "runtime image has no compiler, build tool, apt lists or apt cache"
else
  fail "runtime image has no compiler, build tool, apt lists or apt cache (found: ${leftovers[*]:0:5})"
fi

if cmp -s config.yaml "$root/etc/cachecar/config.yaml" &&
  in_image "${as_user[@]}" "$root" test -r /etc/cachecar/config.yaml; then
  pass "/etc/cachecar/config.yaml is the repository's config.yaml, readable by $user"
else
  fail "/etc/cachecar/config.yaml is the repository's config.yaml, readable by $user"
fi

project_version=$(sed -n 's/^project(cachecar VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
version_rc=0
version_out=$(in_image "${as_user[@]}" "$root" /usr/local/bin/cachecar --version 2>&1) || version_rc=$?
if [ "$version_rc" -eq 0 ] && [ "$version_out" = "cachecar $project_version" ]; then
  pass "cachecar --version: $version_out"
else
  fail "cachecar --version prints 'cachecar $project_version' and exits 0 (exit $version_rc: $version_out)"
fi

check_rc=0
in_image "${as_user[@]}" "$root" /usr/local/bin/cachecar --check-config /etc/cachecar/config.yaml \
  >"$tmp/check-config.log" 2>&1 || check_rc=$?
if [ "$check_rc" -eq 0 ]; then
  pass "cachecar --check-config /etc/cachecar/config.yaml exits 0"
else
  fail "cachecar --check-config /etc/cachecar/config.yaml exits 0 (exit $check_rc)"
  show_log "$tmp/check-config.log"
fi

# ---- 4c. the proxy, running from the image ----------------------------------------------------
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
chosen_ports=" "
# Sets variable $1 to a free port not handed out before (a variable, not an echo: a $(...)
# subshell would forget the ports handed out).
free_port() {
  local candidate
  for _ in $(seq 100); do
    candidate=$((20000 + RANDOM % 12000))
    if [[ "$chosen_ports" != *" $candidate "* ]] && ! listening "$candidate"; then
      chosen_ports+="$candidate "
      printf -v "$1" '%s' "$candidate"
      return 0
    fi
  done
  return 1
}
# Waits until a started process listens on its port; false if it exited or took over 10s.
wait_listening() {
  local pid=$1 port=$2
  for _ in $(seq 100); do
    listening "$port" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

product_api=build/tests/support/product_api
if [ ! -x "$product_api" ]; then
  log "building the demo product API ($product_api)"
  if [ ! -f build/CMakeCache.txt ]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build build -j "$(nproc)" --target product_api >"$tmp/product_api-build.log" 2>&1 ||
    fatal "the demo product API builds" "$(show_log "$tmp/product_api-build.log")"
fi

if ! { free_port redis_port && free_port api_port && free_port proxy_port &&
  free_port admin_port; }; then
  fatal "finding four free ports on 127.0.0.1"
fi

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
  --daemonize no >"$tmp/redis.log" 2>&1 &
pids+=($!)
wait_listening "$!" "$redis_port" || fatal "redis-server listens on 127.0.0.1:$redis_port" "$(show_log "$tmp/redis.log")"
"$product_api" --port "$api_port" >"$tmp/product_api.log" 2>&1 &
pids+=($!)
wait_listening "$!" "$api_port" || fatal "product_api listens on 127.0.0.1:$api_port" "$(show_log "$tmp/product_api.log")"

# Mounted over the documented path, as an operator would, so that the image's own ENTRYPOINT runs
# unchanged.
cat >"$root/etc/cachecar/config.yaml" <<CONFIG
listen: 127.0.0.1:$proxy_port
upstream:
  url: http://127.0.0.1:$api_port
redis:
  url: redis://127.0.0.1:$redis_port
admin:
  listen: 127.0.0.1:$admin_port
routes:
  - path: /products/{id}
    key: product:{id}
    ttl: 60s
drain_timeout: 5s
CONFIG

log "starting the image's ENTRYPOINT as $user ($uid:$gid), chrooted into the image, on 127.0.0.1:$proxy_port"
# Not through in_image: a function would run in a forked shell, and $! would be that shell's pid
# rather than the proxy's. env execs chroot, which execs the entrypoint: $! is cachecar itself.
env -i "${image_env[@]}" chroot "${as_user[@]}" "$root" "${entrypoint[@]}" >"$tmp/cachecar.log" 2>&1 &
cachecar_pid=$!
pids+=("$cachecar_pid")
if ! wait_listening "$cachecar_pid" "$proxy_port"; then
  fatal "cachecar from the image listens on 127.0.0.1:$proxy_port" "$(show_log "$tmp/cachecar.log")"
fi

# "STATUS X-CACHE" of a GET through the proxy; the body and headers are kept as $tmp/body.N.
get() {
  local path=$1 n=$2 status x_cache
  status=$(curl -sS --max-time 5 -o "$tmp/body.$n" -D "$tmp/headers.$n" -w '%{http_code}' \
    "http://127.0.0.1:$proxy_port$path") || status="curl failed"
  x_cache=$(tr -d '\r' 2>/dev/null <"$tmp/headers.$n" | awk -F': *' 'tolower($1) == "x-cache" { print $2 }')
  echo "$status ${x_cache:-none}"
}
# cachecar listens before its Redis connection is up, and answers BYPASS until it is (by design:
# no request waits for Redis). Wait for that on another product, so /products/42 is untouched.
ready=
for attempt in $(seq 100); do
  ready=$(get /products/1 "ready.$attempt")
  [ "$ready" = "200 BYPASS" ] || break
  sleep 0.1
done
if [ "$ready" = "200 MISS" ]; then
  pass "cachecar from the image uses Redis on the host (GET /products/1: MISS, not BYPASS)"
else
  fail "cachecar from the image uses Redis on the host (GET /products/1: $ready)"
fi

first=$(get /products/42 1)
if [ "$first" = "200 MISS" ]; then
  pass "GET /products/42 through the image: 200, X-Cache: MISS"
else
  fail "GET /products/42 through the image: 200, X-Cache: MISS (got: $first)"
fi
second=$(get /products/42 2)
if [ "$second" = "200 HIT" ] && cmp -s "$tmp/body.1" "$tmp/body.2"; then
  pass "GET /products/42 again: 200, X-Cache: HIT, same body"
else
  fail "GET /products/42 again: 200, X-Cache: HIT, same body (got: $second)"
fi

admin=
for endpoint in /healthz /readyz /metrics; do
  code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port$endpoint" 2>/dev/null) || true
  admin+="$endpoint ${code:-none} "
done
if [ "$admin" = "/healthz 200 /readyz 200 /metrics 200 " ]; then
  pass "admin endpoints answer 200: /healthz, /readyz, /metrics"
else
  fail "admin endpoints answer 200: /healthz, /readyz, /metrics (got: $admin)"
fi

ids=$(awk '/^(Name|Uid|Gid|Groups):/ { $1 = ""; printf "%s;", $0 }' "/proc/$cachecar_pid/status" 2>/dev/null | tr -s ' \t' ' ')
expected_ids=" cachecar; $uid $uid $uid $uid; $gid $gid $gid $gid; $gid;"
if [ "$ids" = "$expected_ids" ]; then
  pass "the cachecar process runs as uid $uid, gid $gid, no other groups (/proc/$cachecar_pid/status)"
else
  fail "the cachecar process runs as uid $uid, gid $gid, no other groups (Name;Uid;Gid;Groups:$ids)"
fi

kill -TERM "$cachecar_pid"
for _ in $(seq 150); do
  kill -0 "$cachecar_pid" 2>/dev/null || break
  sleep 0.1
done
term_rc=0
if kill -0 "$cachecar_pid" 2>/dev/null; then
  term_rc=timeout
  kill -KILL "$cachecar_pid" 2>/dev/null || true
fi
wait_rc=0
wait "$cachecar_pid" || wait_rc=$?
[ "$term_rc" = timeout ] || term_rc=$wait_rc
# Reaped: the clean-up must not signal its pid again.
remaining=()
for pid in "${pids[@]}"; do
  if [ "$pid" != "$cachecar_pid" ]; then remaining+=("$pid"); fi
done
pids=("${remaining[@]}")
if [ "$term_rc" = 0 ]; then
  pass "SIGTERM: cachecar drains and exits 0"
else
  fail "SIGTERM: cachecar drains and exits 0 (exit: $term_rc)"
fi

if [ "$failed" -ne 0 ]; then
  show_log "$tmp/cachecar.log"
fi
log "done in $((SECONDS - started))s (image build ${build_seconds}s); image $image, podman options: --root $store --runroot $run_root --storage-driver $driver"
summary
[ "$failed" -eq 0 ]
