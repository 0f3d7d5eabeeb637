#!/usr/bin/env bash
# Validates the Kubernetes deployment in deploy/ without a cluster:
#   1. renders the base and every overlay with `kubectl kustomize` (or `kustomize build`);
#   2. validate.mjs checks every rendered object against the Kubernetes API schema
#      (kubernetes-models, pinned in package-lock.json), type-checks it against the same
#      package's TypeScript interfaces to reject unknown fields, asserts the deployment's policy:
#      cachecar's security context, probes, resources, Secret, grace period and preStop, the
#      Service's target port, the PodDisruptionBudget; and checks the Grafana dashboard's JSON
#      and metric names;
#   3. proves the checks are real: deliberately broken copies, in a temporary directory, must
#      be rejected.
# One line per check, then "deploy: N passed, M failed". Exit status 1 when any check failed.
#
# Needs kubectl 1.27+ (or kustomize 5; without either it says SKIPPED and exits 0), Node.js 18
# or later and npm; installs its three npm packages
# with `npm ci` into tests/deploy/node_modules (git-ignored). With a built cachecar binary
# (CACHECAR_BIN, else build/cachecar, else build-asan/cachecar) it also runs
# `cachecar --check-config` on each rendered configuration, and with promtool (Debian:
# prometheus) it parses the dashboard's expressions with Prometheus's own parser.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

die() {
  echo "tests/deploy/validate.sh: $*" >&2
  exit 1
}

# --- tools
# The overlays use Kustomize 5 fields (labels with includeSelectors, replicas), which the
# Kustomize inside kubectl has read since Kubernetes 1.27. Debian 12 packages only kubectl 1.20:
# on a machine with nothing newer the rendering checks are skipped, loudly, rather than failed.
kubectl_minor() {
  kubectl version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -n 1
}
render_cmd=()
if command -v kustomize >/dev/null 2>&1; then
  render_cmd=(kustomize build)
elif command -v kubectl >/dev/null 2>&1 && [ "$(kubectl_minor)" -ge 27 ] 2>/dev/null; then
  render_cmd=(kubectl kustomize)
else
  echo "SKIPPED: no kubectl 1.27 or later and no kustomize 5 on this machine, so the overlays in"
  echo "deploy/ cannot be rendered. Install kubectl from Kubernetes' own package repository"
  echo "(https://kubernetes.io/docs/tasks/tools/) or a standalone kustomize 5 to run these checks."
  echo "deploy: 0 passed, 0 failed, 1 skipped"
  exit 0
fi
command -v node >/dev/null 2>&1 || die "node is not installed: validate.mjs needs Node.js 18 or later (Debian: apt-get install nodejs npm)."
command -v npm >/dev/null 2>&1 || die "npm is not installed: it installs validate.mjs's pinned packages (Debian: apt-get install npm)."
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || die "node $(node --version) is too old: validate.mjs needs Node.js 18 or later."

# --- the validator's packages, exactly as locked; reinstalled only when the lock changes
stamp="$here/node_modules/.validate-lock"
if ! cmp -s "$here/package-lock.json" "$stamp" 2>/dev/null; then
  echo "installing the validator's packages (npm ci)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
    die "npm ci failed in tests/deploy (is the npm registry reachable?)"
  cp "$here/package-lock.json" "$stamp"
fi

# --- a cachecar binary, when one is built, checks the rendered configuration too
# (a binary older than the sources would judge the configuration by yesterday's rules).
cachecar_bin=${CACHECAR_BIN:-}
if [ -z "$cachecar_bin" ]; then
  for candidate in build/cachecar build-asan/cachecar; do
    if [ -x "$candidate" ]; then
      if [ -n "$(find proxy CMakeLists.txt -newer "$candidate" -print -quit 2>/dev/null)" ]; then
        echo "note: $candidate is older than the sources: not used (rebuild it, or set CACHECAR_BIN)"
        continue
      fi
      cachecar_bin=$root/$candidate
      break
    fi
  done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cachecar-deploy.XXXXXX")
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
pass() {
  passed=$((passed + 1))
  echo "ok   $1"
}
fail() {
  failed=$((failed + 1))
  echo "FAIL $1"
}

# render DIR OUT: renders a kustomization, counted as one check.
render() {
  local dir=$1 out=$2 label=${3:-$1}
  if "${render_cmd[@]}" "$dir" >"$out" 2>"$out.err"; then
    pass "render $label (${render_cmd[*]})"
  else
    fail "render $label: $(cat "$out.err")"
    return 1
  fi
}

# validate ARGS...: runs validate.mjs and adds its counts to ours.
validate() {
  local counts=$work/counts status=0
  rm -f "$counts"
  node "$here/validate.mjs" --counts "$counts" "$@" || status=$?
  if [ -f "$counts" ]; then
    local p f
    read -r p f <"$counts"
    passed=$((passed + p))
    failed=$((failed + f))
  else
    fail "validate.mjs exited $status without running its checks"
  fi
}

# --- the pod's configuration is config.yaml with two values changed; anything else that differs
# is drift between the documented default and what the cluster runs.
settings_of() {
  sed -e 's/[[:space:]]*#.*$//' -e '/^[[:space:]]*$/d' "$1"
}
pod_settings_expected() {
  settings_of config.yaml | sed -e 's/^  listen: 127\.0\.0\.1:9901$/  listen: 0.0.0.0:9901/' \
    -e 's/^  format: text$/  format: json/'
}
if drift=$(diff <(pod_settings_expected) <(settings_of deploy/base/cachecar.yaml)); then
  pass "deploy/base/cachecar.yaml is config.yaml but for admin.listen and log.format"
else
  fail "deploy/base/cachecar.yaml differs from config.yaml beyond admin.listen and log.format:"
  printf '%s\n' "$drift" | sed 's/^/    /'
fi

# --- 1 and 2: the real manifests
args=()
if render deploy/base "$work/base.yaml"; then
  args+=(--base "base=$work/base.yaml")
fi
for overlay in deploy/overlays/*/; do
  overlay=${overlay%/}
  name=$(basename "$overlay")
  if render "$overlay" "$work/$name.yaml"; then
    args+=(--overlay "$name=$work/$name.yaml")
  fi
done
if [ -n "$cachecar_bin" ]; then
  args+=(--cachecar "$cachecar_bin")
else
  echo "note: no cachecar binary built (build/cachecar, or set CACHECAR_BIN): the rendered configuration is not run through cachecar --check-config"
fi
validate "${args[@]}" --dashboard deploy/grafana/cachecar-dashboard.json --promql-out "$work/dashboard-rules.yaml"

# promql_parses RULES: Prometheus's own parser (promtool) on the dashboard's expressions.
promql_parses() {
  promtool check rules "$1" >"$1.out" 2>&1
}
if command -v promtool >/dev/null 2>&1; then
  if [ ! -f "$work/dashboard-rules.yaml" ]; then
    fail "dashboard expressions parse as PromQL: validate.mjs wrote no expressions"
  elif promql_parses "$work/dashboard-rules.yaml"; then
    pass "dashboard expressions parse as PromQL (promtool check rules)"
  else
    fail "dashboard expressions parse as PromQL (promtool check rules):"
    sed 's/^/    /' "$work/dashboard-rules.yaml.out"
  fi
else
  echo "note: promtool is not installed (Debian: prometheus): the dashboard's expressions were not parsed as PromQL"
fi

# --- 3: broken copies must be rejected, for the reason given

# mutate NAME FILE FROM TO: a copy of deploy/ under $work/NAME with FROM replaced by TO in FILE
# (a path under deploy/). Fails the check if FROM is not there, so a mutation cannot silently
# stop applying when the manifests change.
mutate() {
  local name=$1 file=$2 from=$3 to=$4 copy=$work/$1/deploy
  mkdir -p "$work/$name"
  cp -R deploy "$copy"
  if ! grep -qF -- "$from" "$copy/$file"; then
    fail "mutation $name: \"$from\" is not in deploy/$file any more; update tests/deploy/validate.sh"
    return 1
  fi
  FROM=$from TO=$to perl -0pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/' "$copy/$file"
}

# expect NAME LABEL PATTERN: the broken render NAME must fail a check with PATTERN in its line.
# The broken renders are validated together, in one run, below.
broken=()
expected=()
expect() {
  expected+=("$1"$'\t'"$2"$'\t'"$3")
}
# broken_render NAME KIND DIR LABEL: renders a broken copy (KIND --base or --overlay) for that run.
broken_render() {
  local name=$1 kind=$2 dir=$3 label=$4
  if render "$dir" "$work/$name.yaml" "$label"; then
    broken+=("$kind" "$name=$work/$name.yaml")
  else
    return 1
  fi
}

# A wrong type: the schema says replicas is an integer.
if mutate bad-replicas base/deployment.yaml "replicas: 2" 'replicas: "three"' &&
  broken_render bad-replicas --overlay "$work/bad-replicas/deploy/overlays/dev" 'a copy of overlays/dev with replicas: "three"'; then
  expect bad-replicas 'replicas: "three" (schema)' 'Deployment product-api: schema: .*replicas must be integer'
fi
# An unknown field, which the schema lets through: TypeScript's excess-property check must not.
if mutate unknown-field base/deployment.yaml "  replicas: 2
" "  replicas: 2
  replica: 3
" &&
  broken_render unknown-field --overlay "$work/unknown-field/deploy/overlays/dev" "a copy of overlays/dev with an unknown field spec.replica"; then
  expect unknown-field "an unknown field spec.replica (TypeScript)" \
    'Deployment product-api: no unknown fields \(TypeScript\): spec\.replica: .*does not exist in type'
fi
# A required field missing: a Service port without its port number.
if mutate no-port base/service.yaml "      port: 80
" "" &&
  broken_render no-port --base "$work/no-port/deploy/base" "a copy of base whose Service port has no port"; then
  expect no-port "a Service port without port (schema)" "Service product-api: schema: .*required property '?port'?"
fi
# A kind kubernetes-models does not know must fail, not pass unchecked.
if [ -f "$work/dev.yaml" ]; then
  {
    cat "$work/dev.yaml"
    printf -- '---\napiVersion: example.com/v1\nkind: Frobnicator\nmetadata:\n  name: stray\n'
  } >"$work/unknown-kind.yaml"
  broken+=(--overlay "unknown-kind=$work/unknown-kind.yaml")
  expect unknown-kind "an unknown kind" 'Frobnicator stray: schema: unknown kind'
fi
# The policy: a Service that skips cachecar.
if mutate to-app base/service.yaml "targetPort: http" "targetPort: app" &&
  broken_render to-app --overlay "$work/to-app/deploy/overlays/dev" "a copy of overlays/dev whose Service targets the API"; then
  expect to-app "a Service whose targetPort is the API's port (policy)" 'goes to container product-api, not to cachecar'
fi
# The policy: a grace period the drain does not fit in.
if mutate short-grace base/deployment.yaml "terminationGracePeriodSeconds: 45" "terminationGracePeriodSeconds: 30" &&
  broken_render short-grace --base "$work/short-grace/deploy/base" "a copy of base with terminationGracePeriodSeconds: 30"; then
  expect short-grace "terminationGracePeriodSeconds 30 with a 30s drain (policy)" 'terminationGracePeriodSeconds 30 is not more than'
fi
# The dashboard: a metric cachecar does not export.
if mutate bad-metric grafana/cachecar-dashboard.json "cachecar_rate_limited_total" "cachecar_ratelimited_total"; then
  broken+=(--dashboard "$work/bad-metric/deploy/grafana/cachecar-dashboard.json")
  expect dashboard "a dashboard with a misspelt metric" 'cachecar_ratelimited_total is not a cachecar metric'
fi

if [ ${#expected[@]} -gt 0 ]; then
  status=0
  output=$(node "$here/validate.mjs" "${broken[@]}" 2>&1) || status=$?
  for expectation in "${expected[@]}"; do
    IFS=$'\t' read -r name label pattern <<<"$expectation"
    if [ "$status" -eq 1 ] && grep -E "^FAIL ${name}[ :]" <<<"$output" | grep -qE -- "$pattern"; then
      pass "rejects $label"
    else
      fail "rejects $label: validate.mjs (exit $status) printed no FAIL line for $name matching /$pattern/:"
      grep -E "^(ok  |FAIL) ${name}[ :]" <<<"$output" | sed 's/^/    /' || true
    fi
  done
fi

# The dashboard: an expression Prometheus cannot parse.
if command -v promtool >/dev/null 2>&1 &&
  mutate bad-promql grafana/cachecar-dashboard.json "sum by (kind) (rate(" "sum by (kind) ((rate("; then
  node "$here/validate.mjs" --dashboard "$work/bad-promql/deploy/grafana/cachecar-dashboard.json" \
    --promql-out "$work/bad-promql.yaml" >/dev/null 2>&1 || true
  if [ -f "$work/bad-promql.yaml" ] && ! promql_parses "$work/bad-promql.yaml" &&
    grep -q "parse error" "$work/bad-promql.yaml.out"; then
    pass "rejects a dashboard expression with unbalanced parentheses (promtool)"
  else
    fail "rejects a dashboard expression with unbalanced parentheses (promtool): it was accepted"
  fi
fi

echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
