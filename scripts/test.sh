#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test: the unit and integration suites under
# AddressSanitizer and UndefinedBehaviorSanitizer (Debug); the fuzz targets for FUZZ_SECONDS
# each; the container image built and run for real; the Kubernetes manifests rendered and
# validated; a soak of mixed requests (a million with flat memory, a quarter million under the
# sanitizers); and last the suites again in the optimised build with warnings as errors, so the
# final lines are ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

# promtool and prometheus check and scrape /metrics in the admin tests.
scripts/install-deps.sh prometheus
# tests/deploy runs on Node.js. Debian's, where the machine has none: one installed from
# elsewhere (which bundles its own npm) would conflict with Debian's npm package.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  scripts/install-deps.sh nodejs npm
fi

# The session tests front a real Express app (express-session, connect-redis) from npm.
(cd tests/support/express_app && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

jobs=$(nproc)
# Each phase's header says how far into the run it starts, so a slow phase shows in CI's log.
phase() { echo "== $* (at ${SECONDS} s) =="; }
configure_and_build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCACHECAR_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

phase "build: ASan/UBSan and optimised"
configure_and_build build-asan -DCMAKE_BUILD_TYPE=Debug -DCACHECAR_SANITIZE=address,undefined
configure_and_build build -DCMAKE_BUILD_TYPE=Release

phase "tests under ASan/UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j "$jobs")
phase "fuzzing"
tests/fuzz/run.sh
phase "container image"
tests/container/run.sh
phase "Kubernetes manifests"
tests/deploy/validate.sh
phase "soak: mixed requests, optimised and under sanitizers"
tests/soak/run.sh
phase "tests, optimised build"
(cd build && ctest --output-on-failure -j "$jobs")
