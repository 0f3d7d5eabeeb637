#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan, coverage-instrumented library) and runs
# each one for FUZZ_SECONDS (default 30) from its seed corpus in tests/fuzz/corpus/<target>.
# New inputs go to a scratch copy, so the committed corpus changes only by hand. A crash stops
# that target, leaves its input in build-fuzz/crashes/ and fails the run: add the input to the
# seed corpus and a regression test for it.
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/install-deps.sh clang libclang-rt-14-dev

seconds=${FUZZ_SECONDS:-30}
targets=(request split_request response envelope redis_reply config cache_control session_cookie purge)

cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF -DCACHECAR_FUZZ=ON -DCACHECAR_WERROR=ON \
  -DCACHECAR_SANITIZE=address,undefined,fuzzer-no-link >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/%/_fuzz}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p build-fuzz/crashes
passed=0
failed=0
for target in "${targets[@]}"; do
  corpus="$scratch/$target"
  mkdir -p "$corpus"
  cp tests/fuzz/corpus/"$target"/* "$corpus"/
  if build-fuzz/tests/fuzz/"${target}_fuzz" "$corpus" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -artifact_prefix=build-fuzz/crashes/"$target"- -print_final_stats=1 \
      >"$scratch/$target.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$target.log" | grep -o '[0-9]*$' || true)
    echo "PASS fuzz $target: ${runs:-?} inputs in ${seconds}s"
    passed=$((passed + 1))
  else
    echo "FAIL fuzz $target: see build-fuzz/crashes/ and the log below"
    tail -40 "$scratch/$target.log"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
