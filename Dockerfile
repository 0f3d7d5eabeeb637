# cachecar container image.
#
#   podman build -t cachecar .          (or docker build; tests/container/run.sh builds and tests it)
#   docker run -p 8080:8080 -e REDIS_URL=redis://redis:6379 -e UPSTREAM_URL=http://api:3000 cachecar
#
# The configuration is /etc/cachecar/config.yaml: the repository's documented default. Override
# single settings with REDIS_URL, UPSTREAM_URL, LISTEN, ADMIN_LISTEN and LOG_LEVEL, or mount
# another file over that path. The default admin.listen is 127.0.0.1:9901: for probes from
# outside the container set ADMIN_LISTEN=0.0.0.0:9901 (or admin.listen in a mounted file).

# ---- build stage --------------------------------------------------------------------------------
# Debian 12, the distribution the project is developed and tested on: the same compiler and the
# same library versions as the runtime stage below, so the binary links against exactly the
# shared libraries that stage installs.
FROM debian:bookworm AS build

# ARG, not ENV: the setting applies to this stage's apt-get only and does not leak into an image.
ARG DEBIAN_FRONTEND=noninteractive
# The build dependencies of the cachecar target alone (scripts/install-deps.sh lists them too).
# doctest is not needed: tests are not built here. No recommends: they only add packages.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake g++ make pkg-config \
      libuv1-dev node-llhttp libhiredis-dev libyaml-cpp-dev libspdlog-dev libssl-dev \
      nlohmann-json3-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the cachecar target is built from, so that a change to tests, scripts or docs does
# not invalidate the cached build layer.
COPY CMakeLists.txt ./
COPY proxy/ proxy/
RUN cmake -S . -B /build -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j "$(nproc)" --target cachecar

# ---- runtime stage ------------------------------------------------------------------------------
# Same release as the build stage (the binary needs bookworm's libstdc++ and these exact sonames),
# without a compiler, headers or package lists.
FROM debian:bookworm-slim

ARG DEBIAN_FRONTEND=noninteractive
# The shared libraries the binary links (see `ldd /usr/local/bin/cachecar`), by their Debian 12
# package names; libstdc++, libgcc and libc are part of every Debian image. libhiredis0.14 is
# linked for its RESP reader, libssl3 for TLS to Redis (rediss://); ca-certificates is the trust
# store that verifies a managed Redis's certificate when redis.tls.ca_file is not set. The
# package lists and apt's caches (downloaded .debs, pkgcache.bin: tens of MB) are removed in the
# same layer, so they never reach the image, whether or not the base image configures apt to
# skip them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libuv1 libhiredis0.14 libyaml-cpp0.7 libspdlog1.10 libfmt9 libssl3 ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

# A fixed, non-root uid and gid (10001: above any id a host or base image hands out, so a file
# the container writes to a mounted volume is never owned by an existing host account, and a
# Kubernetes runAsUser/fsGroup can name it). A system account: no password, no home directory
# and no login shell; cachecar needs none of them.
RUN groupadd --system --gid 10001 cachecar \
 && useradd --system --uid 10001 --gid cachecar --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin cachecar

COPY --from=build /build/cachecar /usr/local/bin/cachecar
# Owned by root and world-readable: the proxy reads its configuration but cannot change it.
COPY config.yaml /etc/cachecar/config.yaml

# 8080: the proxy (listen); 9901: health and metrics (admin.listen). Documentation for the
# operator and for `-P`; publishing is still the runtime's decision.
EXPOSE 8080 9901
# cachecar drains in-flight requests on SIGTERM (up to drain_timeout) and exits 0; SIGTERM is what
# Docker and Kubernetes send, and saying so here keeps it that way whatever a base image declares.
STOPSIGNAL SIGTERM
USER cachecar
# Exec form: cachecar is PID 1 and receives the stop signal itself, with no shell in between.
# Arguments given to `docker run IMAGE ...` are appended: `docker run IMAGE --check-config
# /etc/cachecar/config.yaml` validates the configuration instead of running (the last file named
# is the one used).
ENTRYPOINT ["/usr/local/bin/cachecar", "--config", "/etc/cachecar/config.yaml"]
