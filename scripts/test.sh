#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test twice: under AddressSanitizer and
# UndefinedBehaviorSanitizer (Debug), then the optimised build with warnings as errors. The
# last lines are ctest's summary of the optimised run.
set -euo pipefail
cd "$(dirname "$0")/.."

# promtool and prometheus check and scrape /metrics in the admin tests.
scripts/install-deps.sh prometheus

jobs=$(nproc)
configure_and_build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCACHECAR_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

configure_and_build build-asan -DCMAKE_BUILD_TYPE=Debug -DCACHECAR_SANITIZE=address,undefined
configure_and_build build -DCMAKE_BUILD_TYPE=Release

echo "== tests under ASan/UBSan =="
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j "$jobs")
echo "== tests, optimised build =="
(cd build && ctest --output-on-failure -j "$jobs")
