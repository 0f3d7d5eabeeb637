#!/usr/bin/env bash
# Installs the Debian 12 packages cachecar builds, tests and demos with. Idempotent: does
# nothing when everything is present already.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libuv1-dev node-llhttp libhiredis-dev libyaml-cpp-dev libspdlog-dev doctest-dev libssl-dev
  nlohmann-json3-dev
  redis-server curl openssl
)
# Extra packages a caller needs (e.g. the benchmark's wrk and nginx).
packages+=("$@")

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo)
fi
echo "installing: ${missing[*]}"
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
