// Validates rendered Kubernetes manifests and the Grafana dashboard (run by validate.sh).
//
//   node validate.mjs [--counts FILE] [--cachecar BIN] [--dashboard FILE] [--promql-out FILE]
//                     [--base NAME=RENDERED.yaml]... [--overlay NAME=RENDERED.yaml]...
//
// Every object is validated against the Kubernetes OpenAPI schema by its kubernetes-models
// class (apiVersion + kind -> kubernetes-models/<group>/<version>/<Kind>, then .validate()).
// An object with no such class fails: nothing passes unchecked. The schema lets unknown fields
// through (Kubernetes' OpenAPI documents do not forbid them), so each object is also
// type-checked by the TypeScript compiler against the same package's generated interface
// (I<Kind>): an object literal with a property the interface lacks is an error, at any depth,
// which catches a misspelt field such as "readinesProbe". Then the policy facts of the
// deployment are asserted on what was rendered (the cachecar sidecar's security context,
// probes, resources, Secret, grace period, preStop; the Service's target port; the PDB). A
// --base render may reference a Secret it does not contain; an --overlay must contain it.
//
// One line per check, "ok" or "FAIL" with the reason. Exit status 1 when any check failed.
// --counts FILE receives "PASSED FAILED" for the caller's summary line. --cachecar BIN also
// runs `BIN --check-config` on the mounted configuration with the pod's environment.
// --promql-out FILE writes the dashboard's expressions, Grafana's variables replaced, as a
// Prometheus rules file, for `promtool check rules` to parse.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { parse as parseYaml, parseAllDocuments, stringify as stringifyYaml } from "yaml";

// ---------------------------------------------------------------------------------------------
// Output and counting

let passed = 0;
let failed = 0;

function pass(label) {
  passed++;
  console.log(`ok   ${label}`);
}

function fail(label, reason) {
  failed++;
  console.log(`FAIL ${label}: ${reason}`);
}

// Runs `body`; a thrown Error fails the check with its message.
function check(label, body) {
  try {
    body();
    pass(label);
  } catch (error) {
    fail(label, error instanceof Error ? error.message : String(error));
  }
}

function assert(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const options = { renders: [], counts: null, cachecar: null, dashboard: null, promqlOut: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) {
        throw new Error(`${arg} needs a value`);
      }
      return argv[++i];
    };
    if (arg === "--base" || arg === "--overlay") {
      const spec = value();
      const eq = spec.indexOf("=");
      if (eq <= 0) {
        throw new Error(`${arg} expects NAME=FILE, got "${spec}"`);
      }
      options.renders.push({ name: spec.slice(0, eq), file: spec.slice(eq + 1), isBase: arg === "--base" });
    } else if (arg === "--counts") {
      options.counts = value();
    } else if (arg === "--cachecar") {
      options.cachecar = value();
    } else if (arg === "--dashboard") {
      options.dashboard = value();
    } else if (arg === "--promql-out") {
      options.promqlOut = value();
    } else {
      throw new Error(`unknown argument "${arg}"`);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Schema validation with kubernetes-models

const modelCache = new Map();

// The kubernetes-models class for an apiVersion and kind, or null when the package has none
// (a custom resource, a typo in the kind, an API version Kubernetes does not serve).
async function modelFor(apiVersion, kind) {
  const key = `${apiVersion} ${kind}`;
  if (modelCache.has(key)) {
    return modelCache.get(key);
  }
  let model = null;
  // Only plausible names reach import(): a kind like "../x" must not pick a module.
  if (/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion) && /^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    try {
      const module = await import(`kubernetes-models/${apiVersion}/${kind}`);
      const candidate = module[kind];
      // apps/v1/DeploymentSpec exists too, but it is not a resource: a resource class
      // carries its own apiVersion and kind.
      if (candidate && candidate.apiVersion === apiVersion && candidate.kind === kind) {
        model = candidate;
      }
    } catch (error) {
      if (error?.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED" && error?.code !== "ERR_MODULE_NOT_FOUND") {
        throw error;
      }
    }
  }
  modelCache.set(key, model);
  return model;
}

function describe(object) {
  return `${object?.apiVersion ?? "?"} ${object?.kind ?? "?"} ${object?.metadata?.name ?? "(no name)"}`;
}

function loadRender(render) {
  const text = readFileSync(render.file, "utf8");
  const objects = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) {
      throw new Error(`${render.file}: ${document.errors[0].message}`);
    }
    const object = document.toJS();
    if (object !== null && object !== undefined) {
      objects.push(object);
    }
  }
  return objects;
}

// Checks each object against the schema; returns [{label, object}] to type-check.
async function validateSchemas(name, objects) {
  const typed = [];
  const seen = new Set();
  for (const object of objects) {
    const label = `${name}: ${describe(object)}: schema`;
    if (typeof object !== "object" || Array.isArray(object)) {
      fail(label, "not a mapping");
      continue;
    }
    const identity = `${object.kind}/${object.metadata?.namespace ?? ""}/${object.metadata?.name}`;
    if (seen.has(identity)) {
      fail(label, "a second object with this kind and name");
      continue;
    }
    seen.add(identity);
    if (typeof object.metadata?.name !== "string" || object.metadata.name === "") {
      fail(label, "metadata.name is missing");
      continue;
    }
    const model = await modelFor(object.apiVersion, object.kind);
    if (model === null) {
      fail(label, `unknown kind: kubernetes-models has no class for apiVersion "${object.apiVersion}" kind "${object.kind}"`);
      continue;
    }
    check(label, () => {
      try {
        new model(object).validate();
      } catch (error) {
        throw new Error(`does not match the Kubernetes API schema: ${error.message}`);
      }
    });
    typed.push({ label: `${name}: ${describe(object)}: no unknown fields (TypeScript)`, object });
  }
  return typed;
}

// ---------------------------------------------------------------------------------------------
// Unknown fields: TypeScript's excess-property check against kubernetes-models' interfaces

const HERE = dirname(fileURLToPath(import.meta.url));

// Null means unset to the API server, and the schema accepts it; the interfaces do not.
function withoutNulls(value) {
  if (Array.isArray(value)) {
    return value.map(withoutNulls);
  }
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).filter(([, item]) => item !== null).map(([key, item]) => [key, withoutNulls(item)]),
    );
  }
  return value;
}

// Where a line of JSON.stringify(value, null, 1) output is: "spec.template.spec.containers[].x",
// read from the indentation (one space per level) of the lines above it.
function jsonPath(lines, lineNumber) {
  const keyOf = (text) => /^\s*"((?:[^"\\]|\\.)*)":/.exec(text)?.[1];
  let indent = lines[lineNumber].search(/\S/);
  const parts = [keyOf(lines[lineNumber]) ?? "[]"];
  for (let i = lineNumber - 1; i >= 0 && indent > 1; i--) {
    const level = lines[i].search(/\S/);
    if (level >= 0 && level < indent) {
      indent = level;
      parts.unshift(keyOf(lines[i]) ?? "[]");
    }
  }
  return parts.join(".").replace(/\.\[\]/g, "[]");
}

// items: [{label, object}] whose kubernetes-models class exists. One program for all of them:
// a source file per object, in memory, beside this script so that kubernetes-models resolves
// from its node_modules.
function typeCheck(items) {
  if (items.length === 0) {
    return;
  }
  const sources = new Map();
  items.forEach((item, index) => {
    const file = join(HERE, `.typecheck-${index}.ts`);
    const { apiVersion, kind } = item.object;
    const text =
      `import type { I${kind} as T } from "kubernetes-models/${apiVersion}/${kind}";\n` +
      `export const object: T = ${JSON.stringify(withoutNulls(item.object), null, 1)};\n`;
    sources.set(file, { item, text, errors: [] });
  });
  const options = {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.es2022.d.ts"],
    types: [],
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (file) => sources.has(file) || fileExists.call(host, file);
  host.readFile = (file) => sources.get(file)?.text ?? readFile.call(host, file);
  host.getSourceFile = (file, language, ...rest) =>
    sources.has(file)
      ? ts.createSourceFile(file, sources.get(file).text, language)
      : getSourceFile.call(host, file, language, ...rest);
  const program = ts.createProgram([...sources.keys()], options, host);
  const general = [];
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, " ");
    const source = diagnostic.file && sources.get(diagnostic.file.fileName);
    if (!source) {
      general.push(message);
      continue;
    }
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    source.errors.push(`${jsonPath(source.text.split("\n"), line)}: ${message}`);
  }
  for (const { item, errors } of sources.values()) {
    if (general.length > 0) {
      fail(item.label, `the type check could not run: ${general[0]}`);
    } else if (errors.length > 0) {
      fail(item.label, errors.join("; "));
    } else {
      pass(item.label);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers for the policy checks

// "250ms", "30s", "1m", "1h", as cachecar reads them; NaN for anything else.
function durationSeconds(text) {
  const match = /^([0-9]+)(ms|s|m|h)$/.exec(String(text).trim());
  if (!match) {
    return NaN;
  }
  const scale = { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2]];
  return Number(match[1]) * scale;
}

// A Kubernetes quantity ("50m", "128Mi", "1", "0.5", "1G") as a number of base units.
function quantity(text) {
  const match = /^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(String(text).trim());
  if (!match) {
    throw new Error(`"${text}" is not a quantity`);
  }
  const scale = {
    undefined: 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  }[match[2]];
  return Number(match[1]) * scale;
}

// "host:port", "[::1]:port" or ":port" -> {host, port}.
function hostPort(text) {
  const match = /^(\[[^\]]*\]|[^:]*):([0-9]+)$/.exec(String(text).trim());
  if (!match) {
    throw new Error(`"${text}" is not host:port`);
  }
  return { host: match[1].replace(/^\[|\]$/g, ""), port: Number(match[2]) };
}

function isLoopback(host) {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

function selects(selector, labels) {
  const matchLabels = selector?.matchLabels ?? selector ?? {};
  if (Object.keys(matchLabels).length === 0 && !(selector?.matchExpressions?.length > 0)) {
    return false;
  }
  for (const [key, value] of Object.entries(matchLabels)) {
    if (key === "matchExpressions" || key === "matchLabels") {
      continue;
    }
    if (labels?.[key] !== value) {
      return false;
    }
  }
  for (const expression of selector?.matchExpressions ?? []) {
    const has = Object.hasOwn(labels ?? {}, expression.key);
    const value = labels?.[expression.key];
    const ok = {
      In: has && (expression.values ?? []).includes(value),
      NotIn: !has || !(expression.values ?? []).includes(value),
      Exists: has,
      DoesNotExist: !has,
    }[expression.operator];
    if (!ok) {
      return false;
    }
  }
  return true;
}

// Which container in the pod declares a port: by number or by name. Kubernetes resolves a
// named targetPort to the first container that has that name, so a name must be unique.
function portOwners(podSpec, port) {
  const owners = [];
  for (const container of podSpec.containers ?? []) {
    for (const declared of container.ports ?? []) {
      if (typeof port === "number" ? declared.containerPort === port : declared.name === port) {
        owners.push({ container, declared });
      }
    }
  }
  return owners;
}

function containerPortNumber(container, port) {
  if (typeof port === "number") {
    return port;
  }
  return (container.ports ?? []).find((declared) => declared.name === port)?.containerPort;
}

function envValue(container, name) {
  return (container.env ?? []).find((entry) => entry.name === name);
}

// The Secret's value for a key, decoded; undefined when absent.
function secretValue(secret, key) {
  if (secret?.stringData && Object.hasOwn(secret.stringData, key)) {
    return String(secret.stringData[key]);
  }
  if (secret?.data && Object.hasOwn(secret.data, key)) {
    return Buffer.from(String(secret.data[key]), "base64").toString("utf8");
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Policy checks on one render

const CACHECAR_CONFIG_DIR = "/etc/cachecar";
const CACHECAR_CONFIG_FILE = "config.yaml";
const DEFAULT_DRAIN_SECONDS = 30;

function policyChecks(render, objects, options) {
  const name = render.name;
  const byKind = (kind) => objects.filter((object) => object?.kind === kind);
  const workloads = byKind("Deployment").filter((deployment) =>
    (deployment.spec?.template?.spec?.containers ?? []).some((container) => container.name === "cachecar"),
  );

  check(`${name}: a Deployment runs a container named cachecar`, () => {
    assert(workloads.length > 0, "no Deployment has a container named cachecar");
  });

  for (const deployment of workloads) {
    const where = `${name}: Deployment ${deployment.metadata.name}`;
    const pod = deployment.spec.template.spec;
    const podLabels = deployment.spec.template.metadata?.labels ?? {};
    const cachecar = pod.containers.find((container) => container.name === "cachecar");
    const security = cachecar.securityContext ?? {};
    const podSecurity = pod.securityContext ?? {};

    check(`${where}: selector matches the pod template's labels`, () => {
      assert(selects(deployment.spec.selector, podLabels), "spec.selector does not select spec.template.metadata.labels");
    });
    check(`${where}: cachecar image`, () => {
      assert(/(^|\/)cachecar(:[^/]+)?(@.+)?$/.test(cachecar.image ?? ""), `image "${cachecar.image}" is not cachecar`);
    });

    // --- security context
    check(`${where}: cachecar runs as non-root (runAsNonRoot, uid 10001)`, () => {
      const nonRoot = security.runAsNonRoot ?? podSecurity.runAsNonRoot;
      const uid = security.runAsUser ?? podSecurity.runAsUser;
      assert(nonRoot === true, "runAsNonRoot is not true");
      assert(uid === 10001, `runAsUser is ${uid}, the image's user is 10001`);
    });
    check(`${where}: cachecar has a read-only root filesystem`, () => {
      assert(security.readOnlyRootFilesystem === true, "readOnlyRootFilesystem is not true");
    });
    check(`${where}: cachecar cannot escalate privileges`, () => {
      assert(security.allowPrivilegeEscalation === false, "allowPrivilegeEscalation is not false");
      assert(security.privileged !== true, "privileged is true");
    });
    check(`${where}: cachecar drops ALL capabilities`, () => {
      assert((security.capabilities?.drop ?? []).includes("ALL"), "capabilities.drop does not include ALL");
      assert((security.capabilities?.add ?? []).length === 0, `capabilities.add is ${JSON.stringify(security.capabilities.add)}`);
    });
    check(`${where}: cachecar's seccomp profile is RuntimeDefault`, () => {
      const type = security.seccompProfile?.type ?? podSecurity.seccompProfile?.type;
      assert(type === "RuntimeDefault", `seccompProfile.type is ${type}`);
    });

    // --- resources
    check(`${where}: cachecar has resource requests and limits`, () => {
      const { requests = {}, limits = {} } = cachecar.resources ?? {};
      for (const resource of ["cpu", "memory"]) {
        assert(requests[resource] !== undefined, `no ${resource} request`);
        assert(limits[resource] !== undefined, `no ${resource} limit`);
        assert(quantity(requests[resource]) <= quantity(limits[resource]),
          `${resource} request ${requests[resource]} exceeds its limit ${limits[resource]}`);
      }
    });

    // --- configuration: the ConfigMap mounted at /etc/cachecar
    let config = null;
    check(`${where}: cachecar's configuration is a rendered ConfigMap mounted at ${CACHECAR_CONFIG_DIR}`, () => {
      const mount = (cachecar.volumeMounts ?? []).find(
        (candidate) => candidate.mountPath.replace(/\/+$/, "") === CACHECAR_CONFIG_DIR,
      );
      assert(mount, `no volumeMount at ${CACHECAR_CONFIG_DIR}`);
      assert(!mount.subPath, "mounted with subPath: updates would not reach the file");
      const volume = (pod.volumes ?? []).find((candidate) => candidate.name === mount.name);
      assert(volume?.configMap?.name, `volume "${mount.name}" is not a ConfigMap`);
      const configMap = byKind("ConfigMap").find((candidate) => candidate.metadata.name === volume.configMap.name);
      assert(configMap, `ConfigMap "${volume.configMap.name}" is not in the render`);
      const text = configMap.data?.[CACHECAR_CONFIG_FILE];
      assert(typeof text === "string", `ConfigMap "${configMap.metadata.name}" has no key ${CACHECAR_CONFIG_FILE}`);
      const parsed = parseYaml(text);
      assert(parsed && typeof parsed === "object" && !Array.isArray(parsed), `${CACHECAR_CONFIG_FILE} is not a mapping`);
      config = parsed;
    });
    const env = (variable) => envValue(cachecar, variable);

    // --- ports: cachecar's listen port and admin port, as configured and as declared
    let httpPort = null;
    let adminPort = null;
    check(`${where}: cachecar's port "http" is the configured listen port`, () => {
      assert(config, "no configuration");
      const listen = env("LISTEN")?.value ?? config.listen ?? "0.0.0.0:8080";
      const { host, port } = hostPort(listen);
      assert(!isLoopback(host), `listen ${listen} is loopback: the Service could not reach it`);
      const declared = (cachecar.ports ?? []).find((candidate) => candidate.name === "http");
      assert(declared, 'cachecar declares no port named "http"');
      assert(declared.containerPort === port, `port "http" is ${declared.containerPort}, cachecar listens on ${port}`);
      httpPort = port;
    });
    check(`${where}: cachecar's port "admin" is admin.listen on every interface`, () => {
      assert(config, "no configuration");
      const listen = config.admin?.listen ?? "127.0.0.1:9901";
      const { host, port } = hostPort(listen);
      assert(!isLoopback(host), `admin.listen ${listen} is loopback: the kubelet's probes could not reach it`);
      const declared = (cachecar.ports ?? []).find((candidate) => candidate.name === "admin");
      assert(declared, 'cachecar declares no port named "admin"');
      assert(declared.containerPort === port, `port "admin" is ${declared.containerPort}, admin.listen is ${port}`);
      adminPort = port;
    });
    check(`${where}: cachecar logs JSON`, () => {
      assert(config, "no configuration");
      assert(config.log?.format === "json", `log.format is ${config.log?.format ?? "text (the default)"}`);
    });

    // --- probes on the admin port
    for (const [probeName, path] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]]) {
      check(`${where}: cachecar's ${probeName} is GET ${path} on the admin port`, () => {
        const probe = cachecar[probeName];
        assert(probe?.httpGet, `no ${probeName} with httpGet`);
        assert(probe.httpGet.path === path, `path is ${probe.httpGet.path}`);
        const port = containerPortNumber(cachecar, probe.httpGet.port);
        assert(port !== undefined, `port ${probe.httpGet.port} is not one of cachecar's ports`);
        assert(adminPort !== null && port === adminPort, `port ${port} is not the admin port ${adminPort}`);
      });
    }

    // --- Redis: REDIS_URL from a Secret
    let redisUrl;
    check(`${where}: cachecar's REDIS_URL comes from a secretKeyRef`, () => {
      const entry = env("REDIS_URL");
      assert(entry, "no REDIS_URL in env");
      const ref = entry.valueFrom?.secretKeyRef;
      assert(ref?.name && ref?.key, "REDIS_URL is not valueFrom.secretKeyRef with a name and key");
      assert(ref.optional !== true, "the secretKeyRef is optional: a missing Secret would start cachecar on its default Redis");
      if (!render.isBase) {
        const secret = byKind("Secret").find((candidate) => candidate.metadata.name === ref.name);
        assert(secret, `Secret "${ref.name}" is not in the render`);
        redisUrl = secretValue(secret, ref.key);
        assert(redisUrl !== undefined, `Secret "${ref.name}" has no key ${ref.key}`);
        assert(/^redis:\/\//.test(redisUrl), `Secret "${ref.name}" ${ref.key} is not a redis:// URL`);
      }
    });

    // --- the upstream: another container of this pod, on the loopback
    check(`${where}: cachecar's upstream is the app container on the pod loopback`, () => {
      assert(config, "no configuration");
      const url = env("UPSTREAM_URL")?.value ?? config.upstream?.url ?? "http://127.0.0.1:3000";
      const match = /^http:\/\/(\[[^\]]+\]|[^/:]+)(?::([0-9]+))?(\/.*)?$/.exec(url);
      assert(match, `upstream ${url} is not http://host[:port][/prefix]`);
      const host = match[1].replace(/^\[|\]$/g, "");
      const port = Number(match[2] ?? 80);
      assert(isLoopback(host), `upstream ${url} is not on the pod loopback`);
      const owners = portOwners(pod, port).filter((owner) => owner.container.name !== "cachecar");
      assert(owners.length === 1, `no other container of the pod declares port ${port}`);
    });

    // --- graceful shutdown
    const preStop = cachecar.lifecycle?.preStop;
    check(`${where}: cachecar has a preStop hook`, () => {
      assert(preStop && (preStop.sleep || preStop.exec || preStop.httpGet), "no lifecycle.preStop");
    });
    check(`${where}: terminationGracePeriodSeconds exceeds preStop plus drain_timeout`, () => {
      assert(config, "no configuration");
      const drain = config.drain_timeout === undefined ? DEFAULT_DRAIN_SECONDS : durationSeconds(config.drain_timeout);
      assert(Number.isFinite(drain), `drain_timeout "${config.drain_timeout}" is not a duration`);
      let pause = 0;
      if (preStop?.sleep) {
        pause = preStop.sleep.seconds;
      } else if (preStop?.exec?.command?.[0]?.endsWith("sleep") && /^[0-9]+$/.test(preStop.exec.command[1] ?? "")) {
        pause = Number(preStop.exec.command[1]);
      }
      const grace = pod.terminationGracePeriodSeconds ?? 30;
      assert(grace > pause + drain,
        `terminationGracePeriodSeconds ${grace} is not more than preStop ${pause}s + drain_timeout ${drain}s`);
    });

    // --- the Service sends traffic to cachecar, never to the app
    check(`${where}: a Service sends traffic to it`, () => {
      const services = byKind("Service").filter((service) => selects(service.spec?.selector, podLabels));
      assert(services.length > 0, "no Service selects the pod");
      for (const service of services) {
        for (const port of service.spec.ports ?? []) {
          const target = port.targetPort ?? port.port;
          const owners = portOwners(pod, target);
          const what = `Service ${service.metadata.name} port ${port.name ?? port.port} targetPort ${target}`;
          assert(owners.length > 0, `${what} matches no container port`);
          assert(owners.length === 1, `${what} is ambiguous: ${owners.map((owner) => owner.container.name).join(", ")} declare it`);
          assert(owners[0].container.name === "cachecar",
            `${what} goes to container ${owners[0].container.name}, not to cachecar`);
          assert(httpPort !== null && owners[0].declared.containerPort === httpPort,
            `${what} is cachecar's port ${owners[0].declared.containerPort}, not its listen port ${httpPort}`);
        }
      }
    });

    // --- the PodDisruptionBudget
    check(`${where}: a PodDisruptionBudget covers it`, () => {
      const budgets = byKind("PodDisruptionBudget").filter((budget) => selects(budget.spec?.selector, podLabels));
      assert(budgets.length === 1, `${budgets.length} PodDisruptionBudgets select the pod`);
      const { minAvailable, maxUnavailable } = budgets[0].spec;
      const replicas = deployment.spec.replicas ?? 1;
      if (typeof minAvailable === "number") {
        assert(minAvailable < replicas, `minAvailable ${minAvailable} with ${replicas} replicas blocks every drain`);
      }
      if (typeof maxUnavailable === "number") {
        assert(maxUnavailable >= 1, "maxUnavailable 0 blocks every drain");
      }
    });

    // --- cachecar itself accepts the configuration, with the pod's environment
    if (options.cachecar) {
      check(`${where}: cachecar --check-config accepts the mounted configuration`, () => {
        assert(config, "no configuration");
        const configMapName = pod.volumes.find((volume) =>
          volume.name === cachecar.volumeMounts.find((mount) => mount.mountPath.replace(/\/+$/, "") === CACHECAR_CONFIG_DIR).name,
        ).configMap.name;
        const text = byKind("ConfigMap").find((candidate) => candidate.metadata.name === configMapName).data[CACHECAR_CONFIG_FILE];
        const dir = mkdtempSync(join(tmpdir(), "cachecar-deploy-"));
        try {
          const file = join(dir, CACHECAR_CONFIG_FILE);
          writeFileSync(file, text);
          // Only the variables cachecar reads, as the pod sets them; none from this shell.
          const podEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
          for (const variable of ["UPSTREAM_URL", "LISTEN", "LOG_LEVEL"]) {
            if (env(variable)?.value !== undefined) {
              podEnv[variable] = env(variable).value;
            }
          }
          if (redisUrl !== undefined) {
            podEnv.REDIS_URL = redisUrl;
          }
          try {
            execFileSync(options.cachecar, ["--check-config", file], { env: podEnv, stdio: "pipe", timeout: 20000 });
          } catch (error) {
            const output = `${error.stdout ?? ""}${error.stderr ?? ""}`.trim();
            throw new Error(`exit ${error.status ?? error.signal} from ${options.cachecar} ` +
              `(built from this source? set CACHECAR_BIN): ${output || error.message}`);
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The Grafana dashboard: only the metrics cachecar exports, with their real labels

const TARGET_LABELS = ["instance", "job", "namespace", "pod", "container", "service", "node"];
const METRICS = {
  cachecar_requests_total: { type: "counter", labels: ["method", "status_class", "cache"] },
  cachecar_request_duration_seconds: { type: "histogram", labels: [] },
  cachecar_upstream_duration_seconds: { type: "histogram", labels: [] },
  cachecar_upstream_errors_total: { type: "counter", labels: ["kind"] },
  cachecar_redis_connected: { type: "gauge", labels: ["worker"] },
  cachecar_redis_errors_total: { type: "counter", labels: [] },
  cachecar_redis_timeouts_total: { type: "counter", labels: [] },
  cachecar_redis_redirections_total: { type: "counter", labels: [] },
  cachecar_redis_servers: { type: "gauge", labels: ["worker"] },
  cachecar_redis_servers_connected: { type: "gauge", labels: ["worker"] },
  cachecar_rate_limited_total: { type: "counter", labels: [] },
  cachecar_client_connections: { type: "gauge", labels: [] },
  cachecar_upstream_connections: { type: "gauge", labels: ["state"] },
  cachecar_build_info: { type: "gauge", labels: ["version"] },
  cachecar_invalidation_journal_keys: { type: "gauge", labels: [] },
  cachecar_cache_epoch_bump_owed: { type: "gauge", labels: [] },
  cachecar_writes_rejected_total: { type: "counter", labels: [] },
  cachecar_near_cache_hits_total: { type: "counter", labels: [] },
  cachecar_near_cache_invalidations_total: { type: "counter", labels: [] },
  cachecar_near_cache_flushes_total: { type: "counter", labels: [] },
  cachecar_near_cache_bytes: { type: "gauge", labels: [] },
  cachecar_near_cache_usable: { type: "gauge", labels: [] },
  cachecar_rate_limit_local_decisions_total: { type: "counter", labels: ["decision"] },
  cachecar_rate_limit_settles_total: { type: "counter", labels: [] },
  cachecar_rate_limit_settle_failures_total: { type: "counter", labels: [] },
  cachecar_rate_limit_tracked_clients: { type: "gauge", labels: [] },
};
const LABEL_VALUES = {
  cache: ["HIT", "MISS", "BYPASS", "COALESCED"],
  status_class: ["1xx", "2xx", "3xx", "4xx", "5xx"],
  kind: ["refused", "reset", "timeout", "invalid"],
  state: ["idle", "busy"],
  decision: ["allowed", "denied"],
};
// The series a scrape holds: histograms as _bucket (with le), _sum and _count.
const SERIES = new Map();
for (const [metric, { type, labels }] of Object.entries(METRICS)) {
  if (type === "histogram") {
    SERIES.set(`${metric}_bucket`, { type: "counter", labels: [...labels, "le"] });
    SERIES.set(`${metric}_sum`, { type: "counter", labels });
    SERIES.set(`${metric}_count`, { type: "counter", labels });
  } else {
    SERIES.set(metric, { type, labels });
  }
}
const PROMQL_WORDS = new Set([
  // aggregations and keywords
  "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
  "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
  "bool", "and", "or", "unless", "offset",
  // functions
  "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "vector",
  "scalar", "abs", "ceil", "floor", "round", "clamp", "clamp_min", "clamp_max", "absent",
  "absent_over_time", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
  "count_over_time", "last_over_time", "label_replace", "label_join", "time", "timestamp",
  "changes", "resets", "sort", "sort_desc", "label_values",
]);

// The problems with one PromQL expression (or a Grafana label_values() query), as strings.
function promqlProblems(expr) {
  const problems = [];
  const usedSeries = [];
  const groupingLabels = [];
  // Selectors: metric{label op "value", ...}
  const selector = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}/g;
  for (const [, metric, body] of expr.matchAll(selector)) {
    const series = SERIES.get(metric);
    if (!series) {
      continue; // reported below as an unknown name
    }
    for (const [, label, op, value] of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      if (!series.labels.includes(label) && !TARGET_LABELS.includes(label)) {
        problems.push(`${metric} has no label "${label}"`);
        continue;
      }
      const known = LABEL_VALUES[label];
      if (known && !value.includes("$")) {
        const alternatives = op.endsWith("~") ? value.split("|") : [value];
        for (const alternative of alternatives) {
          if (!known.includes(alternative)) {
            problems.push(`${metric} label ${label} never has the value "${alternative}" (${known.join(", ")})`);
          }
        }
      }
    }
  }
  // rate() and friends take counters only.
  for (const [, fn, metric] of expr.matchAll(/\b(rate|irate|increase)\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/g)) {
    const series = SERIES.get(metric);
    if (series && series.type !== "counter") {
      problems.push(`${fn}() of ${metric}, a ${series.type}`);
    }
  }
  // Grafana's label_values(metric, label): the label must be one the series has.
  const labelValues = /label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)/.exec(expr);
  if (labelValues) {
    groupingLabels.push(labelValues[2]);
  }
  // Every remaining name must be a cachecar series or PromQL's own word.
  const bare = expr
    .replace(/(label_values\(\s*[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)/g, "$1)")
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (all, word, labels) => {
      for (const label of labels.split(",").map((text) => text.trim()).filter(Boolean)) {
        groupingLabels.push(label);
      }
      return word;
    });
  for (const [name] of bare.matchAll(/(?<![0-9.$])\b[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    if (SERIES.has(name)) {
      usedSeries.push(name);
    } else if (name.startsWith("cachecar_")) {
      problems.push(`${name} is not a cachecar metric series`);
    } else if (!PROMQL_WORDS.has(name)) {
      problems.push(`"${name}" is neither a cachecar metric nor a PromQL function or keyword`);
    }
  }
  // Labels named by by (...) and label_values(): labels the series have.
  for (const label of groupingLabels) {
    const ok = TARGET_LABELS.includes(label) || usedSeries.some((name) => SERIES.get(name).labels.includes(label));
    if (!ok) {
      problems.push(`no series in the expression has the label "${label}"`);
    }
  }
  if (usedSeries.length === 0) {
    problems.push("references no cachecar metric");
  }
  return problems;
}

const HIT_RATIO =
  'sum(rate(cachecar_requests_total{cache=~"HIT|COALESCED"}[5m])) / sum(rate(cachecar_requests_total{cache=~"HIT|COALESCED|MISS"}[5m]))';

// Whitespace and the dashboard's own instance filter removed, to compare formulas.
function normalise(expr) {
  return expr.replace(/\s+/g, "").replace(/instance=~"\$instance",?/g, "").replace(/,}/g, "}");
}

// A dashboard expression as Prometheus would see it once Grafana has filled in its variables.
function asPromql(expr) {
  return expr
    .replace(/label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)/g, "$1")
    .replace(/\$__rate_interval|\$\{__rate_interval\}|\$__interval|\$\{__interval\}|\$__range|\$\{__range\}/g, "5m")
    .replace(/\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?/g, ".*");
}

// Returns the dashboard's expressions (panels and variables), [] when it does not parse.
function dashboardChecks(file) {
  const where = `dashboard ${file.split("/").slice(-1)[0]}`;
  let dashboard = null;
  check(`${where}: is valid JSON`, () => {
    dashboard = JSON.parse(readFileSync(file, "utf8"));
  });
  if (dashboard === null) {
    return [];
  }
  const expressions = [];
  check(`${where}: title, uid and schemaVersion`, () => {
    assert(typeof dashboard.title === "string" && dashboard.title, "no title");
    assert(typeof dashboard.uid === "string" && /^[A-Za-z0-9_-]{1,40}$/.test(dashboard.uid), "no valid uid");
    assert(Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 36,
      `schemaVersion ${dashboard.schemaVersion} (expected 36 or later)`);
    assert(Array.isArray(dashboard.panels) && dashboard.panels.length > 0, "no panels");
  });
  const variables = dashboard.templating?.list ?? [];
  const datasource = variables.find((variable) => variable.type === "datasource");
  check(`${where}: a Prometheus data source variable`, () => {
    assert(datasource, "no variable of type datasource");
    assert(datasource.query === "prometheus", `the data source variable's type is ${datasource.query}`);
  });
  const usesVariable = (ds) => datasource && [`$${datasource.name}`, `\${${datasource.name}}`].includes(ds?.uid ?? ds);
  for (const variable of variables.filter((candidate) => candidate.type === "query")) {
    check(`${where}: variable ${variable.name}`, () => {
      assert(usesVariable(variable.datasource), "does not use the data source variable");
      const query = typeof variable.query === "string" ? variable.query : variable.query?.query;
      expressions.push(String(query ?? ""));
      const problems = promqlProblems(String(query ?? ""));
      assert(problems.length === 0, problems.join("; "));
    });
  }

  const panels = [];
  const collect = (list) => {
    for (const panel of list ?? []) {
      panels.push(panel);
      collect(panel.panels);
    }
  };
  collect(dashboard.panels);
  const panelExpressions = [];
  check(`${where}: panel ids are unique`, () => {
    const ids = panels.map((panel) => panel.id);
    assert(ids.every((id) => Number.isInteger(id)), "a panel has no integer id");
    assert(new Set(ids).size === ids.length, "two panels share an id");
  });
  for (const panel of panels.filter((candidate) => candidate.type !== "row")) {
    check(`${where}: panel "${panel.title}"`, () => {
      assert(panel.gridPos && ["x", "y", "w", "h"].every((key) => Number.isInteger(panel.gridPos[key])), "no gridPos");
      assert(usesVariable(panel.datasource), "the panel does not use the data source variable");
      const targets = panel.targets ?? [];
      assert(targets.length > 0, "no targets");
      const problems = [];
      for (const target of targets) {
        if (target.datasource !== undefined && !usesVariable(target.datasource)) {
          problems.push(`target ${target.refId} does not use the data source variable`);
        }
        if (typeof target.expr !== "string" || target.expr.trim() === "") {
          problems.push(`target ${target.refId} has no expr`);
          continue;
        }
        panelExpressions.push(target.expr);
        for (const problem of promqlProblems(target.expr)) {
          problems.push(`target ${target.refId}: ${problem}`);
        }
      }
      assert(problems.length === 0, problems.join("; "));
    });
  }

  const shows = (what, predicate) =>
    check(`${where}: shows ${what}`, () => {
      assert(panelExpressions.some(predicate), `no panel shows ${what}`);
    });
  shows("the request rate", (expr) => /rate\(cachecar_requests_total\b/.test(expr));
  shows("the hit ratio (HIT+COALESCED / HIT+COALESCED+MISS)", (expr) => normalise(expr) === normalise(HIT_RATIO));
  for (const quantile of ["0.5", "0.99"]) {
    shows(`the p${Number(quantile) * 100} request latency`, (expr) =>
      new RegExp(`histogram_quantile\\(\\s*${quantile.replace(".", "\\.")}0*\\s*,[^]*cachecar_request_duration_seconds_bucket`).test(expr));
  }
  shows("upstream errors", (expr) => /cachecar_upstream_errors_total/.test(expr));
  shows("the rate-limited rate", (expr) => /rate\(cachecar_rate_limited_total\b/.test(expr));
  shows("the Redis state", (expr) => /cachecar_redis_connected/.test(expr));
  return [...expressions, ...panelExpressions];
}

// ---------------------------------------------------------------------------------------------

async function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`validate.mjs: ${error.message}`);
    process.exit(2);
  }
  const typed = [];
  for (const render of options.renders) {
    let objects;
    try {
      objects = loadRender(render);
      pass(`${render.name}: rendered YAML parses (${objects.length} objects)`);
    } catch (error) {
      fail(`${render.name}: rendered YAML parses`, error.message);
      continue;
    }
    typed.push(...(await validateSchemas(render.name, objects)));
    policyChecks(render, objects, options);
  }
  typeCheck(typed);
  if (options.dashboard) {
    const expressions = dashboardChecks(options.dashboard);
    if (options.promqlOut) {
      const rules = expressions.map((expr, i) => ({ record: `cachecar_dashboard:expr_${i}`, expr: asPromql(expr) }));
      writeFileSync(options.promqlOut, stringifyYaml({ groups: [{ name: "cachecar-dashboard", rules }] }));
    }
  }
  if (options.counts) {
    writeFileSync(options.counts, `${passed} ${failed}\n`);
  }
  process.exit(failed === 0 ? 0 : 1);
}

await main();
