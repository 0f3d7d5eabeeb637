// config/config.h: config.yaml plus environment overrides in, a Config or a ConfigError out.

#include "config/config.h"

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace cachecar {
namespace {

EnvLookup no_env() {
  return [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
}

EnvLookup env_of(std::map<std::string, std::string, std::less<>> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) {
      return std::nullopt;
    }
    return it->second;
  };
}

Config parse_ok(std::string_view yaml, const EnvLookup& env = no_env()) {
  auto result = parse_config(yaml, env);
  if (const auto* error = std::get_if<ConfigError>(&result)) {
    FAIL("unexpected error: ", error->describe("test.yaml"), "\n--- yaml ---\n", std::string(yaml));
  }
  return std::get<Config>(std::move(result));
}

ConfigError parse_error(std::string_view yaml, const EnvLookup& env = no_env()) {
  auto result = parse_config(yaml, env);
  if (std::holds_alternative<Config>(result)) {
    FAIL("accepted, expected an error:\n", std::string(yaml));
  }
  return std::get<ConfigError>(std::move(result));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open ", path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

RouteConfig make_route(std::string_view path, std::string_view key, int64_t ttl_ms) {
  std::string reason;
  auto pattern = RoutePattern::compile(path, reason);
  REQUIRE_MESSAGE(pattern.has_value(), reason);
  auto key_template = KeyTemplate::compile(key, *pattern, reason);
  REQUIRE_MESSAGE(key_template.has_value(), reason);
  RouteConfig route;
  route.path = std::move(*pattern);
  route.key = std::move(*key_template);
  route.ttl = Duration(ttl_ms);
  return route;
}

// Field-by-field comparison: Config has no operator==, and a failure should name the field.
void check_same(const Config& a, const Config& b) {
  CHECK(a.listen.host == b.listen.host);
  CHECK(a.listen.port == b.listen.port);
  CHECK(a.workers == b.workers);
  CHECK(a.hosts == b.hosts);
  CHECK(a.upstream.url.address.host == b.upstream.url.address.host);
  CHECK(a.upstream.url.address.port == b.upstream.url.address.port);
  CHECK(a.upstream.url.path_prefix == b.upstream.url.path_prefix);
  CHECK(a.upstream.connect_timeout == b.upstream.connect_timeout);
  CHECK(a.upstream.timeout == b.upstream.timeout);
  CHECK(a.upstream.max_idle_connections == b.upstream.max_idle_connections);
  CHECK(a.redis.url.address.host == b.redis.url.address.host);
  CHECK(a.redis.url.address.port == b.redis.url.address.port);
  CHECK(a.redis.url.username == b.redis.url.username);
  CHECK(a.redis.url.password == b.redis.url.password);
  CHECK(a.redis.url.database == b.redis.url.database);
  CHECK(a.redis.url.to_redacted_string() == b.redis.url.to_redacted_string());
  CHECK(a.redis.url.tls == b.redis.url.tls);
  CHECK(a.redis.tls.ca_file == b.redis.tls.ca_file);
  CHECK(a.redis.tls.cert_file == b.redis.tls.cert_file);
  CHECK(a.redis.tls.key_file == b.redis.tls.key_file);
  CHECK(a.redis.tls.server_name == b.redis.tls.server_name);
  CHECK(a.redis.tls.insecure_skip_verify == b.redis.tls.insecure_skip_verify);
  CHECK((a.redis.tls_context != nullptr) == (b.redis.tls_context != nullptr));
  CHECK(a.redis.command_timeout == b.redis.command_timeout);
  REQUIRE(a.routes.size() == b.routes.size());
  for (size_t i = 0; i < a.routes.size(); ++i) {
    CAPTURE(i);
    CHECK(a.routes[i].path.text() == b.routes[i].path.text());
    CHECK(a.routes[i].key.text() == b.routes[i].key.text());
    CHECK(a.routes[i].ttl == b.routes[i].ttl);
  }
  CHECK(a.rate_limit.limit == b.rate_limit.limit);
  CHECK(a.rate_limit.window == b.rate_limit.window);
  CHECK(a.admin.listen.host == b.admin.listen.host);
  CHECK(a.admin.listen.port == b.admin.listen.port);
  CHECK(a.limits.max_header_bytes == b.limits.max_header_bytes);
  CHECK(a.limits.max_headers == b.limits.max_headers);
  CHECK(a.limits.max_body_bytes == b.limits.max_body_bytes);
  CHECK(a.limits.max_connections == b.limits.max_connections);
  CHECK(a.limits.header_timeout == b.limits.header_timeout);
  CHECK(a.limits.idle_timeout == b.limits.idle_timeout);
  CHECK(a.drain_timeout == b.drain_timeout);
  CHECK(a.log.level == b.log.level);
  CHECK(a.log.format == b.log.format);
  CHECK(a.log.access == b.log.access);
}

void check_defaults(const Config& c) {
  CHECK(c.listen.host == "0.0.0.0");
  CHECK(c.listen.port == 8080);
  CHECK(c.workers == 1);
  CHECK(c.hosts.empty());
  CHECK(c.upstream.url.address.host == "127.0.0.1");
  CHECK(c.upstream.url.address.port == 3000);
  CHECK(c.upstream.url.path_prefix == "");
  CHECK(c.upstream.connect_timeout == Duration(2'000));
  CHECK(c.upstream.timeout == Duration(30'000));
  CHECK(c.upstream.max_idle_connections == 64);
  CHECK(c.redis.url.address.host == "127.0.0.1");
  CHECK(c.redis.url.address.port == 6379);
  CHECK(c.redis.url.username == "");
  CHECK(c.redis.url.password == "");
  CHECK(c.redis.url.database == 0);
  CHECK(c.redis.command_timeout == Duration(100));
  CHECK(c.routes.empty());
  CHECK(c.rate_limit.limit == 100);
  CHECK(c.rate_limit.window == Duration(60'000));
  CHECK(c.admin.listen.host == "127.0.0.1");
  CHECK(c.admin.listen.port == 9901);
  CHECK(c.limits.max_header_bytes == 16 * 1024);
  CHECK(c.limits.max_headers == 100);
  CHECK(c.limits.max_body_bytes == 10 * 1024 * 1024);
  CHECK(c.limits.max_connections == 10'000);
  CHECK(c.limits.header_timeout == Duration(10'000));
  CHECK(c.limits.idle_timeout == Duration(60'000));
  CHECK(c.drain_timeout == Duration(30'000));
  CHECK(c.log.level == "info");
  CHECK(c.log.format == LogFormat::Text);
  CHECK(c.log.access == true);
}

// Sets every key to a value that differs from its default.
constexpr std::string_view kFullConfig = R"(listen: 127.0.0.2:8081
workers: 4
hosts: [Shop.example, "*.cdn.example"]
upstream:
  url: http://api.internal:8000/v1/
  connect_timeout: 250ms
  timeout: 5s
  max_idle_connections: 0
redis:
  url: redis://cache.internal:6380/2
  command_timeout: 50ms
routes:
  - path: /products/{id}
    key: product:{id}
    ttl: 5m
  - path: "/files/{path*}"
    key: "file:{path}"
rate_limit:
  limit: 10
  window: 1s
admin:
  listen: 127.0.0.1:0
limits:
  max_header_bytes: 8KiB
  max_headers: 50
  max_body_bytes: 0
  max_connections: 5
  header_timeout: 1s
  idle_timeout: 2m
drain_timeout: 0ms
log:
  level: debug
  format: json
  access: false
)";

TEST_CASE("an empty document yields the defaults") {
  const std::string_view documents[] = {
      "",
      "\n\n",
      "# only a comment\n",
      "---\n",
      "---\n...\n",
      "~\n",
      "upstream:\nredis:\nlimits:\nlog:\nadmin:\nrate_limit:\nroutes:\n",
  };
  for (std::string_view yaml : documents) {
    CAPTURE(yaml);
    check_defaults(parse_ok(yaml));
  }
}

TEST_CASE("the repository's config.yaml parses and holds the documented defaults") {
  const std::string path = std::string(CACHECAR_SOURCE_DIR) + "/config.yaml";
  const Config config = parse_ok(read_file(path));
  // The defaults come from parse_ok(""), checked field by field above. (Default-constructing
  // Config here trips GCC 12's -Wmaybe-uninitialized false positive at -O2.)
  Config expected = parse_ok("");
  expected.routes.push_back(make_route("/products/{id}", "product:{id}", 60'000));
  expected.routes.push_back(make_route("/products", "products:list", 60'000));
  check_same(config, expected);
  REQUIRE(config.routes.size() == 2);
  CHECK(config.routes[0].invalidate.size() == 1);
  CHECK(config.routes[0].invalidate[0].text() == "products:list");
  CHECK(config.routes[1].invalidate_on ==
        std::vector<std::string>{"POST", "PUT", "PATCH", "DELETE"});
}

TEST_CASE("every key is read") {
  const Config c = parse_ok(kFullConfig);
  CHECK(c.listen.host == "127.0.0.2");
  CHECK(c.listen.port == 8081);
  CHECK(c.workers == 4);
  // Host names compare case-insensitively: stored lowercase.
  CHECK(c.hosts == std::vector<std::string>{"shop.example", "*.cdn.example"});
  CHECK(c.upstream.url.address.host == "api.internal");
  CHECK(c.upstream.url.address.port == 8000);
  CHECK(c.upstream.url.path_prefix == "/v1");
  CHECK(c.upstream.connect_timeout == Duration(250));
  CHECK(c.upstream.timeout == Duration(5'000));
  CHECK(c.upstream.max_idle_connections == 0);
  CHECK(c.redis.url.address.host == "cache.internal");
  CHECK(c.redis.url.address.port == 6380);
  CHECK(c.redis.url.database == 2);
  CHECK(c.redis.command_timeout == Duration(50));
  REQUIRE(c.routes.size() == 2);
  CHECK(c.routes[0].path.text() == "/products/{id}");
  CHECK(c.routes[0].key.text() == "product:{id}");
  CHECK(c.routes[0].ttl == Duration(300'000));
  CHECK(c.routes[1].path.text() == "/files/{path*}");
  CHECK(c.routes[1].key.text() == "file:{path}");
  CHECK(c.routes[1].ttl == Duration(60'000));  // the default ttl
  CHECK(c.rate_limit.limit == 10);
  CHECK(c.rate_limit.window == Duration(1'000));
  CHECK(c.admin.listen.host == "127.0.0.1");
  CHECK(c.admin.listen.port == 0);
  CHECK(c.limits.max_header_bytes == 8 * 1024);
  CHECK(c.limits.max_headers == 50);
  CHECK(c.limits.max_body_bytes == 0);
  CHECK(c.limits.max_connections == 5);
  CHECK(c.limits.header_timeout == Duration(1'000));
  CHECK(c.limits.idle_timeout == Duration(120'000));
  CHECK(c.drain_timeout == Duration(0));
  CHECK(c.log.level == "debug");
  CHECK(c.log.format == LogFormat::Json);
  CHECK(c.log.access == false);
}

TEST_CASE("scalar spellings YAML allows") {
  struct Case {
    std::string_view yaml;
    bool access;
  };
  const Case cases[] = {
      {"log:\n  access: true\n", true},       {"log:\n  access: on\n", true},
      {"log:\n  access: yes\n", true},        {"log:\n  access: false\n", false},
      {"log:\n  access: off\n", false},       {"log:\n  access: no\n", false},
      {"log:\n  access: \"false\"\n", false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.yaml);
    CHECK(parse_ok(c.yaml).log.access == c.access);
  }
  CHECK(parse_ok("workers: \"8\"\n").workers == 8);
  CHECK(parse_ok("{workers: 2, log: {level: warn}}\n").workers == 2);
  CHECK(parse_ok("{workers: 2, log: {level: warn}}\n").log.level == "warn");
}

struct ErrorCase {
  std::string_view name;
  std::string_view yaml;
  std::string_view key;
  int line;
  std::string_view reason;  // a substring of the expected reason
};

void check_error(const ErrorCase& c) {
  CAPTURE(c.name);
  CAPTURE(c.yaml);
  const ConfigError error = parse_error(c.yaml);
  CAPTURE(error.describe("test.yaml"));
  CHECK(error.key == c.key);
  CHECK(error.line == c.line);
  CHECK(error.reason.find(c.reason) != std::string::npos);
}

TEST_CASE("configuration errors name the key, the line and the reason") {
  const ErrorCase cases[] = {
      // unknown keys, with the known ones listed
      {"unknown top-level key", "listen: 0.0.0.0:8080\nlistne: 1\n", "listne", 2,
       "unknown key; expected one of: listen, workers, hosts, upstream"},
      // hosts
      {"hosts a scalar", "hosts: shop.example\n", "hosts", 1, "expected a list of host names"},
      {"a host with a port", "hosts:\n  - shop.example\n  - \"shop.example:8080\"\n", "hosts[1]", 3,
       "'shop.example:8080' is not a host name without a port"},
      {"a misplaced wildcard", "hosts: [\"shop.*.example\"]\n", "hosts[0]", 1,
       "is not a host name"},
      {"a host with a path", "hosts: [shop.example/admin]\n", "hosts[0]", 1, "is not a host name"},
      {"unknown nested key", "upstream:\n  url: http://a:1\n  tmeout: 5s\n", "upstream.tmeout", 3,
       "unknown key; expected one of: url, connect_timeout, timeout, max_idle_connections"},
      {"unknown key deeper in the file",
       "workers: 1\n\n# comment\nlog:\n  level: info\n  colour: yes\n", "log.colour", 6,
       "unknown key; expected one of: level, format, access"},
      {"unknown route key", "routes:\n  - path: /a\n    key: a\n    tll: 5s\n", "routes[0].tll", 4,
       "unknown key; expected one of: path, key, ttl"},
      {"unknown key in the second route",
       "routes:\n  - path: /a\n    key: a\n  - path: /b\n    key: b\n    cache: yes\n",
       "routes[1].cache", 6, "unknown key"},
      // keys given twice
      {"top-level key twice", "workers: 1\nworkers: 2\n", "workers", 2, "key appears twice"},
      {"nested key twice", "log:\n  level: info\n  format: text\n  level: debug\n", "log.level", 4,
       "key appears twice"},
      {"section twice", "log:\n  level: info\nworkers: 1\nlog:\n  format: json\n", "log", 4,
       "key appears twice"},
      // wrong types
      {"list where a scalar is expected", "workers: [1, 2]\n", "workers", 1,
       "expected a single value, not a list or mapping"},
      {"block list where a scalar is expected", "upstream:\n  timeout:\n    - 5s\n",
       "upstream.timeout", 3, "expected a single value, not a list or mapping"},
      {"mapping where a scalar is expected", "listen:\n  host: 0.0.0.0\n  port: 80\n", "listen", 2,
       "expected a single value, not a list or mapping"},
      {"mapping where the route list is expected", "routes:\n  path: /a\n  key: a\n", "routes", 2,
       "expected a list of routes"},
      {"scalar where the route list is expected", "routes: /a\n", "routes", 1,
       "expected a list of routes"},
      {"scalar where a section is expected", "upstream: http://a:1\n", "upstream", 1,
       "expected a mapping of keys to values"},
      {"list where a section is expected", "log:\n  - level: info\n", "log", 2,
       "expected a mapping of keys to values"},
      {"the document is a list", "- a\n- b\n", "(document)", 1,
       "expected a mapping of keys to values"},
      {"the document is a scalar", "hello\n", "(document)", 1,
       "expected a mapping of keys to values"},
      {"a route that is not a mapping", "routes:\n  - /a\n", "routes[0]", 2,
       "expected a mapping with path, key and ttl"},
      // durations
      {"duration without a unit", "upstream:\n  timeout: 5\n", "upstream.timeout", 2,
       "missing unit: write e.g. 250ms, 5s or 1m"},
      {"duration with an unknown unit", "upstream:\n  connect_timeout: 5sec\n",
       "upstream.connect_timeout", 2, "unknown unit 'sec'"},
      {"negative duration", "drain_timeout: -1s\n", "drain_timeout", 1,
       "expected a number followed by a unit"},
      {"fractional duration", "redis:\n  command_timeout: 0.5s\n", "redis.command_timeout", 2,
       "unknown unit '.5s'"},
      {"duration overflow", "limits:\n  idle_timeout: 9999999999999999h\n", "limits.idle_timeout",
       2, "duration out of range"},
      {"zero timeout", "upstream:\n  timeout: 0ms\n", "upstream.timeout", 2,
       "must be at least 1ms"},
      {"rate limit window under a second", "rate_limit:\n  window: 500ms\n", "rate_limit.window", 2,
       "must be at least 1s"},
      {"route ttl under a second", "routes:\n  - path: /a\n    key: a\n    ttl: 999ms\n",
       "routes[0].ttl", 4, "must be at least 1s"},
      // sizes
      {"size with an unknown unit", "limits:\n  max_body_bytes: 10XB\n", "limits.max_body_bytes", 2,
       "unknown unit 'XB'"},
      {"negative size", "limits:\n  max_body_bytes: -1\n", "limits.max_body_bytes", 2,
       "expected a byte count"},
      {"size overflow", "limits:\n  max_body_bytes: 17179869184GiB\n", "limits.max_body_bytes", 2,
       "size out of range"},
      {"header limit too small", "limits:\n  max_header_bytes: 512\n", "limits.max_header_bytes", 2,
       "must be at least 1KiB"},
      // addresses
      {"listen without a port", "listen: localhost\n", "listen", 1, "missing port"},
      {"listen with a bad port", "listen: 0.0.0.0:http\n", "listen", 1,
       "port must be a number from 0 to 65535"},
      {"admin port out of range", "admin:\n  listen: 127.0.0.1:70000\n", "admin.listen", 2,
       "port must be a number from 0 to 65535"},
      {"bare IPv6 listen", "listen: \"::1:8080\"\n", "listen", 1, "must be written in brackets"},
      {"https upstream", "upstream:\n  url: https://api.example\n", "upstream.url", 2,
       "https upstreams are not supported yet"},
      {"upstream without a host", "upstream:\n  url: http:///v1\n", "upstream.url", 2,
       "missing host"},
      {"upstream with a query", "upstream:\n  url: http://api/v1?key=1\n", "upstream.url", 2,
       "cannot carry a query or fragment"},
      {"upstream without a scheme", "upstream:\n  url: api:3000\n", "upstream.url", 2,
       "expected http://host[:port][/path]"},
      {"redis url without a scheme", "redis:\n  url: localhost:6379\n", "redis.url", 2,
       "expected redis://"},
      {"redis.tls with a plain redis url",
       "redis:\n  url: redis://cache\n  tls:\n    "
       "insecure_skip_verify: true\n",
       "redis.tls", 4, "redis.url is not rediss://"},
      {"redis.tls.ca_file that does not exist",
       "redis:\n  url: rediss://cache\n  tls:\n    ca_file: /nonexistent/ca.pem\n",
       "redis.tls.ca_file", 4, "cannot load /nonexistent/ca.pem"},
      {"redis.tls.cert_file without key_file",
       "redis:\n  url: rediss://cache\n  tls:\n    cert_file: /nonexistent/c.pem\n",
       "redis.tls.cert_file", 4, "set without key_file"},
      {"redis.tls.insecure_skip_verify not a boolean",
       "redis:\n  url: rediss://cache\n  tls:\n    insecure_skip_verify: maybe\n",
       "redis.tls.insecure_skip_verify", 4, "expected true or false"},
      {"redis.tls with an unknown key", "redis:\n  url: rediss://cache\n  tls:\n    ca: x\n",
       "redis.tls.ca", 4, "unknown key"},
      {"redis url with a bad database", "redis:\n  url: redis://cache/zero\n", "redis.url", 2,
       "database must be a non-negative number"},
      {"redis url with a bad escape", "redis:\n  url: redis://u:%zz@cache\n", "redis.url", 2,
       "invalid percent-escape"},
      // numbers
      {"zero workers", "workers: 0\n", "workers", 1, "must be between 1 and 256, got 0"},
      {"too many workers", "workers: 257\n", "workers", 1, "must be between 1 and 256, got 257"},
      {"negative workers", "workers: -1\n", "workers", 1, "must be between 1 and 256"},
      {"workers not a number", "workers: two\n", "workers", 1,
       "expected a whole number, got 'two'"},
      {"workers fractional", "workers: 1.5\n", "workers", 1, "expected a whole number, got '1.5'"},
      {"workers overflow", "workers: 99999999999999999999\n", "workers", 1,
       "expected a whole number"},
      {"rate limit zero", "rate_limit:\n  limit: 0\n", "rate_limit.limit", 2,
       "must be between 1 and 1000000000"},
      {"max_headers zero", "limits:\n  max_headers: 0\n", "limits.max_headers", 2,
       "must be between 1 and 10000"},
      {"max_connections zero", "limits:\n  max_connections: 0\n", "limits.max_connections", 2,
       "must be between 1 and 10000000"},
      {"negative idle connections", "upstream:\n  max_idle_connections: -1\n",
       "upstream.max_idle_connections", 2, "must be between 0 and 100000"},
      // log
      {"invalid log level", "log:\n  level: verbose\n", "log.level", 2,
       "expected one of: trace, debug, info, warn, error, critical, off"},
      {"log level is case-sensitive", "log:\n  level: INFO\n", "log.level", 2, "expected one of"},
      {"invalid log format", "log:\n  format: xml\n", "log.format", 2, "expected text or json"},
      {"invalid access flag", "log:\n  access: maybe\n", "log.access", 2,
       "expected true or false, got 'maybe'"},
      // routes
      {"route without a path", "routes:\n  - key: a\n    ttl: 5s\n", "routes[0].path", 2,
       "every route needs a path"},
      {"route without a key", "routes:\n  - path: /a\n    ttl: 5s\n", "routes[0].key", 2,
       "every route needs a key template"},
      {"empty route", "routes:\n  - {}\n", "routes[0].path", 2, "every route needs a path"},
      {"route path without a slash", "routes:\n  - path: products/{id}\n    key: p:{id}\n",
       "routes[0].path", 2, "must start with '/'"},
      {"route path with a malformed variable", "routes:\n  - path: /p/x{id}\n    key: p\n",
       "routes[0].path", 2, "must fill its whole segment"},
      {"duplicate route path",
       "routes:\n  - path: /a/{id}\n    key: a\n  - path: /b\n    key: b\n  - path: /a/{id}\n"
       "    key: c\n",
       "routes[2].path", 6, "same path as routes[0]"},
  };
  for (const ErrorCase& c : cases) {
    check_error(c);
  }
}

TEST_CASE("a missing value is reported on the line of its key") {
  // yaml-cpp places an empty value where the next token starts, i.e. on a later line.
  const ErrorCase cases[] = {
      {"a value missing, then another key", "upstream:\n  timeout:\nworkers: 1\n",
       "upstream.timeout", 2, "value missing"},
      {"a value missing at the end", "workers: 1\nlisten:\n\n\n", "listen", 2, "value missing"},
  };
  for (const ErrorCase& c : cases) {
    check_error(c);
  }
}

// Skipped by default: with the bug present this is undefined behaviour in parse_config (it
// crashes the whole test binary), so run it explicitly with --no-skip.
TEST_CASE("a bad key template is reported, not a crash") {
  const ErrorCase cases[] = {
      {"key template with an unknown variable",
       "routes:\n  - path: /products/{id}\n    key: product:{sku}\n", "routes[0].key", 3,
       "{sku} is not a variable of path /products/{id}"},
      {"key template with an unknown variable, key before path",
       "routes:\n  - key: product:{sku}\n    path: /products/{id}\n", "routes[0].key", 2,
       "{sku} is not a variable"},
      {"key template unterminated", "routes:\n  - path: /p/{id}\n    key: \"p:{id\"\n",
       "routes[0].key", 3, "unterminated '{'"},
  };
  for (const ErrorCase& c : cases) {
    check_error(c);
  }
}

TEST_CASE("invalid YAML is reported with its line") {
  struct Case {
    std::string_view name;
    std::string_view yaml;
    int line;
  };
  const Case cases[] = {
      {"unclosed flow sequence", "listen: 0.0.0.0:8080\nworkers: [1, 2\n", 3},
      {"text after a quoted scalar", "workers: 1\nlisten: \"a\" b\n", 2},
      {"unclosed flow mapping", "log: {level: info\nworkers: 1\n", 2},
      {"bad indentation", "upstream:\n  url: http://a:1\n timeout: 5s\n", 3},
      {"tab indentation", "upstream:\n\turl: http://a:1\n", 2},
      {"mapping value in a plain scalar", "workers: 1\nlisten: a: b\n", 2},
      {"unknown alias", "workers: *nothing\n", 1},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CAPTURE(c.yaml);
    const ConfigError error = parse_error(c.yaml);
    CAPTURE(error.describe("test.yaml"));
    CHECK(error.key.empty());
    CHECK(error.line == c.line);
    CHECK(!error.reason.empty());
  }
}

TEST_CASE("environment overrides are applied over the file") {
  std::vector<std::string> asked;
  const std::map<std::string, std::string, std::less<>> vars = {
      {"REDIS_URL", "redis://:pw@redis.env:7000/1"},
      {"UPSTREAM_URL", "http://upstream.env:9000/api/"},
      {"LISTEN", "127.0.0.1:1234"},
      {"LOG_LEVEL", "debug"},
  };
  const EnvLookup env = [&](std::string_view name) -> std::optional<std::string> {
    asked.emplace_back(name);
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  const Config c = parse_ok(kFullConfig, env);
  CHECK(c.redis.url.address.host == "redis.env");
  CHECK(c.redis.url.address.port == 7000);
  CHECK(c.redis.url.password == "pw");
  CHECK(c.redis.url.database == 1);
  CHECK(c.upstream.url.address.host == "upstream.env");
  CHECK(c.upstream.url.address.port == 9000);
  CHECK(c.upstream.url.path_prefix == "/api");
  CHECK(c.listen.host == "127.0.0.1");
  CHECK(c.listen.port == 1234);
  CHECK(c.log.level == "debug");
  // Untouched by the environment.
  CHECK(c.redis.command_timeout == Duration(50));
  CHECK(c.upstream.timeout == Duration(5'000));
  CHECK(c.admin.listen.port == 0);
  CHECK(c.log.format == LogFormat::Json);
  // Exactly the documented variables are consulted.
  std::sort(asked.begin(), asked.end());
  CHECK(asked == std::vector<std::string>{"ADMIN_LISTEN", "ADMIN_TOKEN", "LISTEN", "LOG_LEVEL",
                                          "REDIS_URL", "SESSION_SECRET", "UPSTREAM_URL"});
}

// The four fields the environment can override, as one line.
std::string overridable(const Config& c) {
  return "listen=" + c.listen.to_string() + " upstream=" + c.upstream.url.to_string() +
         " redis=" + c.redis.url.to_redacted_string() + " log=" + c.log.level;
}

TEST_CASE("each environment override applies alone") {
  struct Case {
    std::string_view variable;
    std::string value;
    std::string_view expected;
  };
  const Case cases[] = {
      {"NOTHING", "",
       "listen=0.0.0.0:8080 upstream=http://127.0.0.1:3000 redis=redis://127.0.0.1:6379/0 "
       "log=info"},
      {"REDIS_URL", "redis://r:1",
       "listen=0.0.0.0:8080 upstream=http://127.0.0.1:3000 redis=redis://r:1/0 log=info"},
      {"UPSTREAM_URL", "http://u:2",
       "listen=0.0.0.0:8080 upstream=http://u:2 redis=redis://127.0.0.1:6379/0 log=info"},
      {"LISTEN", ":3",
       "listen=:3 upstream=http://127.0.0.1:3000 redis=redis://127.0.0.1:6379/0 log=info"},
      {"LOG_LEVEL", "off",
       "listen=0.0.0.0:8080 upstream=http://127.0.0.1:3000 redis=redis://127.0.0.1:6379/0 log=off"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.variable);
    CHECK(overridable(parse_ok("", env_of({{std::string(c.variable), c.value}}))) == c.expected);
  }
}

TEST_CASE("invalid environment overrides name the variable, with line 0") {
  struct Case {
    std::string_view variable;
    std::string value;
    std::string_view reason;
  };
  const Case cases[] = {
      {"REDIS_URL", "localhost:6379", "expected redis://"},
      {"REDIS_URL", "redis://cache/x", "database must be a non-negative number"},
      {"REDIS_URL", "", "expected redis://"},
      {"UPSTREAM_URL", "https://api", "https upstreams are not supported yet"},
      {"UPSTREAM_URL", "http://api?x=1", "invalid host"},
      {"UPSTREAM_URL", "http://api/v1?x=1", "cannot carry a query"},
      {"LISTEN", "8080", "missing port"},
      {"LISTEN", "", "expected host:port"},
      {"LOG_LEVEL", "loud", "expected one of: trace, debug, info, warn, error, critical, off"},
      {"LOG_LEVEL", "", "expected one of"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.variable);
    CAPTURE(c.value);
    const ConfigError error =
        parse_error("workers: 2\n", env_of({{std::string(c.variable), c.value}}));
    CHECK(error.key == std::string(c.variable) + " (environment)");
    CHECK(error.line == 0);
    CAPTURE(error.reason);
    CHECK(error.reason.find(c.reason) != std::string::npos);
  }
}

TEST_CASE("an error in the file is reported before the environment is consulted") {
  const ConfigError error = parse_error("workers: 0\n", env_of({{"LOG_LEVEL", "loud"}}));
  CHECK(error.key == "workers");
  CHECK(error.line == 1);
}

TEST_CASE("ConfigError::describe formats file:line: key: reason") {
  struct Case {
    ConfigError error;
    std::string_view expected;
  };
  const Case cases[] = {
      {{"upstream.timeout", 12, "missing unit: write e.g. 250ms, 5s or 1m"},
       "config.yaml:12: upstream.timeout: missing unit: write e.g. 250ms, 5s or 1m"},
      {{"REDIS_URL (environment)", 0, "expected redis://"},
       "config.yaml: REDIS_URL (environment): expected redis://"},
      {{"", 3, "invalid YAML: end of map not found"},
       "config.yaml:3: invalid YAML: end of map not found"},
      {{"", 0, "cannot read"}, "config.yaml: cannot read"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.expected);
    CHECK(c.error.describe("config.yaml") == c.expected);
  }
  // And end to end.
  CHECK(parse_error("workers: 1\nupstream:\n  timeout: 5\n").describe("/etc/cachecar.yaml") ==
        "/etc/cachecar.yaml:3: upstream.timeout: missing unit: write e.g. 250ms, 5s or 1m");
}

TEST_CASE("render_config output parses back to the same configuration") {
  struct Case {
    std::string_view name;
    std::string yaml;
  };
  const Case cases[] = {
      {"defaults", ""},
      {"every key set", std::string(kFullConfig)},
      {"the repository's config.yaml",
       read_file(std::string(CACHECAR_SOURCE_DIR) + "/config.yaml")},
      {"listen on every interface", "listen: \":8080\"\n"},
      {"odd but valid route text",
       "routes:\n  - path: \"/a: b/#c/'d'/\\\"e\\\"/{id}\"\n    key: \"k \\\\ {id} # x\"\n"
       "    ttl: 90s\n"},
      {"sizes and durations without a larger exact unit",
       "limits:\n  max_header_bytes: 1025\n  max_body_bytes: 1536KiB\n  header_timeout: 1500ms\n"
       "drain_timeout: 0s\n"},
      {"redis address and database", "redis:\n  url: redis://cache:6380/5\n"},
      {"redis behind sentinels", "redis:\n  url: redis+sentinel://s1,s2:26380/cache/2\n"},
      {"redis over TLS",
       "redis:\n  url: rediss://cache:6380/5\n  tls:\n    server_name: r.example\n"
       "    insecure_skip_verify: true\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Config original = parse_ok(c.yaml);
    const std::string rendered = render_config(original);
    CAPTURE(rendered);
    const Config again = parse_ok(rendered);
    check_same(again, original);
  }
}

TEST_CASE("render_config masks the Redis password and keeps everything else") {
  const Config original = parse_ok("redis:\n  url: redis://app:Pa55w0rd@cache:6380/2\n");
  const std::string rendered = render_config(original);
  CAPTURE(rendered);
  CHECK(rendered.find("Pa55w0rd") == std::string::npos);
  Config again = parse_ok(rendered);
  CHECK(again.redis.url.username == "app");
  CHECK(again.redis.url.password == "***");
  again.redis.url.password = original.redis.url.password;
  check_same(again, original);
}

TEST_CASE("render_config round-trips an IPv6 listen address") {
  // "[::1]:8080" written unquoted starts a YAML flow sequence.
  const Config original = parse_ok("listen: \"[::1]:8080\"\nadmin:\n  listen: \"[::1]:9901\"\n");
  REQUIRE(original.listen.host == "::1");
  const std::string rendered = render_config(original);
  CAPTURE(rendered);
  auto result = parse_config(rendered, no_env());
  if (const auto* error = std::get_if<ConfigError>(&result)) {
    FAIL_CHECK(error->describe("rendered"));
    return;
  }
  check_same(std::get<Config>(result), original);
}

TEST_CASE("render_config round-trips a Redis user without a password") {
  // RedisUrl::to_redacted_string prints redis://app@cache, which reads back as a password.
  const Config original = parse_ok("redis:\n  url: \"redis://app:@cache\"\n");
  REQUIRE(original.redis.url.username == "app");
  const std::string rendered = render_config(original);
  CAPTURE(rendered);
  check_same(parse_ok(rendered), original);
}

// --- rate_limit -------------------------------------------------------------------------------

std::vector<std::string> cidr_texts(const std::vector<Cidr>& ranges) {
  std::vector<std::string> out;
  for (const Cidr& range : ranges) {
    out.push_back(range.to_string());
  }
  return out;
}

// Every rate limiting field, global and per route; check_same covers the rest.
void check_same_rate_limit(const Config& a, const Config& b) {
  CHECK(a.rate_limit.enabled == b.rate_limit.enabled);
  CHECK(a.rate_limit.limit == b.rate_limit.limit);
  CHECK(a.rate_limit.window == b.rate_limit.window);
  CHECK(a.rate_limit.algorithm == b.rate_limit.algorithm);
  CHECK(a.rate_limit.key_prefix == b.rate_limit.key_prefix);
  CHECK(cidr_texts(a.rate_limit.trusted_proxies) == cidr_texts(b.rate_limit.trusted_proxies));
  CHECK(cidr_texts(a.rate_limit.allow) == cidr_texts(b.rate_limit.allow));
  CHECK(a.rate_limit.ipv6_prefix == b.rate_limit.ipv6_prefix);
  CHECK(a.rate_limit.deny_on_redis_error == b.rate_limit.deny_on_redis_error);
  CHECK(a.rate_limit.sync == b.rate_limit.sync);
  CHECK(a.rate_limit.sync_interval == b.rate_limit.sync_interval);
  CHECK(a.rate_limit.local_budget == b.rate_limit.local_budget);
  REQUIRE(a.routes.size() == b.routes.size());
  for (size_t i = 0; i < a.routes.size(); ++i) {
    CAPTURE(i);
    const auto& x = a.routes[i].rate_limit;
    const auto& y = b.routes[i].rate_limit;
    REQUIRE(x.has_value() == y.has_value());
    if (!x) {
      continue;
    }
    CHECK(x->enabled == y->enabled);
    CHECK(x->limit == y->limit);
    CHECK(x->window == y->window);
    CHECK(x->algorithm == y->algorithm);
    CHECK(x->scope == y->scope);
  }
}

TEST_CASE("rate_limit defaults") {
  const Config c = parse_ok("");
  CHECK(c.rate_limit.enabled);
  CHECK(c.rate_limit.limit == 100);
  CHECK(c.rate_limit.window == Duration(60'000));
  CHECK(c.rate_limit.algorithm == RateLimitAlgorithm::FixedWindow);
  CHECK(c.rate_limit.key_prefix == "rl:");
  CHECK(c.rate_limit.trusted_proxies.empty());
  CHECK(c.rate_limit.allow.empty());
  CHECK(c.rate_limit.ipv6_prefix == 64);
  CHECK_FALSE(c.rate_limit.deny_on_redis_error);
  // The shipped config.yaml spells the defaults out.
  Config shipped = parse_ok(read_file(std::string(CACHECAR_SOURCE_DIR) + "/config.yaml"));
  shipped.routes.clear();
  check_same_rate_limit(shipped, c);
}

TEST_CASE("every rate_limit key is read") {
  const Config c = parse_ok(R"(rate_limit:
  limit: 50
  window: 30s
  algorithm: sliding_window
  key_prefix: "app:rl:"
  trusted_proxies: [10.0.0.0/8, "2001:db8:ffff::/48", 192.168.1.7, "::1"]
  allow:
    - 127.0.0.1
    - 10.1.2.3/16
    - "2001:db8:1:2::9/64"
  ipv6_prefix: 56
  on_redis_error: deny
)");
  CHECK(c.rate_limit.enabled);
  CHECK(c.rate_limit.limit == 50);
  CHECK(c.rate_limit.window == Duration(30'000));
  CHECK(c.rate_limit.algorithm == RateLimitAlgorithm::SlidingWindow);
  CHECK(c.rate_limit.key_prefix == "app:rl:");
  CHECK(cidr_texts(c.rate_limit.trusted_proxies) ==
        std::vector<std::string>{"10.0.0.0/8", "2001:db8:ffff::/48", "192.168.1.7/32", "::1/128"});
  // Host bits are cleared.
  CHECK(cidr_texts(c.rate_limit.allow) ==
        std::vector<std::string>{"127.0.0.1/32", "10.1.0.0/16", "2001:db8:1:2::/64"});
  CHECK(c.rate_limit.ipv6_prefix == 56);
  CHECK(c.rate_limit.deny_on_redis_error);
}

TEST_CASE("rate_limit scalar values") {
  struct Case {
    std::string_view yaml;
    bool enabled;
    RateLimitAlgorithm algorithm;
    bool deny_on_redis_error;
    int ipv6_prefix;
  };
  constexpr auto kFixed = RateLimitAlgorithm::FixedWindow;
  constexpr auto kSliding = RateLimitAlgorithm::SlidingWindow;
  const Case cases[] = {
      {"rate_limit:\n  algorithm: fixed_window\n", true, kFixed, false, 64},
      {"rate_limit:\n  algorithm: sliding_window\n", true, kSliding, false, 64},
      {"rate_limit:\n  algorithm: \"sliding_window\"\n", true, kSliding, false, 64},
      {"rate_limit:\n  on_redis_error: allow\n", true, kFixed, false, 64},
      {"rate_limit:\n  on_redis_error: deny\n", true, kFixed, true, 64},
      {"rate_limit:\n  ipv6_prefix: 1\n", true, kFixed, false, 1},
      {"rate_limit:\n  ipv6_prefix: 48\n", true, kFixed, false, 48},
      {"rate_limit:\n  ipv6_prefix: 128\n", true, kFixed, false, 128},
      {"rate_limit: off\n", false, kFixed, false, 64},
      {"rate_limit: \"off\"\n", false, kFixed, false, 64},
      {"rate_limit: false\n", false, kFixed, false, 64},
      {"rate_limit:\n  enabled: false\n", false, kFixed, false, 64},
      {"rate_limit:\n  enabled: off\n", false, kFixed, false, 64},
      {"rate_limit:\n  enabled: no\n", false, kFixed, false, 64},
      {"rate_limit:\n  enabled: true\n", true, kFixed, false, 64},
      {"rate_limit:\n  enabled: on\n", true, kFixed, false, 64},
      {"rate_limit:\n", true, kFixed, false, 64},
      {"rate_limit: {}\n", true, kFixed, false, 64},
      {"rate_limit:\n  enabled: false\n  algorithm: sliding_window\n  on_redis_error: deny\n",
       false, kSliding, true, 64},
      {"rate_limit: {algorithm: sliding_window, ipv6_prefix: 60, on_redis_error: deny}\n", true,
       kSliding, true, 60},
  };
  for (const Case& c : cases) {
    CAPTURE(c.yaml);
    const Config config = parse_ok(c.yaml);
    CHECK(config.rate_limit.enabled == c.enabled);
    CHECK(config.rate_limit.algorithm == c.algorithm);
    CHECK(config.rate_limit.deny_on_redis_error == c.deny_on_redis_error);
    CHECK(config.rate_limit.ipv6_prefix == c.ipv6_prefix);
  }
}

TEST_CASE("rate_limit: off keeps the other defaults") {
  const Config c = parse_ok("rate_limit: off\n");
  CHECK_FALSE(c.rate_limit.enabled);
  CHECK(c.rate_limit.limit == 100);
  CHECK(c.rate_limit.window == Duration(60'000));
  CHECK(c.rate_limit.key_prefix == "rl:");
}

TEST_CASE("rate_limit errors name the key, the item, the line and the reason") {
  const ErrorCase cases[] = {
      {"unknown rate_limit key", "rate_limit:\n  limit: 5\n  burst: 10\n", "rate_limit.burst", 3,
       "unknown key; expected one of: limit, window, algorithm, key_prefix, trusted_proxies, "
       "allow, ipv6_prefix, on_redis_error, enabled, sync, sync_interval, local_budget, key"},
      {"rate_limit key twice",
       "rate_limit:\n  algorithm: fixed_window\n"
       "  algorithm: sliding_window\n",
       "rate_limit.algorithm", 3, "key appears twice"},
      {"rate_limit a list", "rate_limit:\n  - limit: 5\n", "rate_limit", 2,
       "expected a mapping of keys to values"},
      {"rate_limit a number", "rate_limit: 100\n", "rate_limit", 1,
       "expected a mapping of keys to values"},
      // algorithm
      {"unknown algorithm", "rate_limit:\n  algorithm: token_bucket\n", "rate_limit.algorithm", 2,
       "expected fixed_window or sliding_window"},
      {"algorithm is case-sensitive", "rate_limit:\n  algorithm: Sliding_Window\n",
       "rate_limit.algorithm", 2, "expected fixed_window or sliding_window"},
      {"algorithm with a dash", "rate_limit:\n  algorithm: sliding-window\n",
       "rate_limit.algorithm", 2, "expected fixed_window or sliding_window"},
      {"algorithm missing", "rate_limit:\n  algorithm:\n  limit: 5\n", "rate_limit.algorithm", 2,
       "value missing"},
      // key_prefix
      {"key_prefix a list", "rate_limit:\n  key_prefix: [a, b]\n", "rate_limit.key_prefix", 2,
       "expected a single value, not a list or mapping"},
      // trusted_proxies and allow
      {"trusted_proxies a scalar", "rate_limit:\n  trusted_proxies: 10.0.0.0/8\n",
       "rate_limit.trusted_proxies", 2, "expected a list of addresses or CIDR ranges"},
      {"trusted_proxies a mapping", "rate_limit:\n  trusted_proxies:\n    lb: 10.0.0.1\n",
       "rate_limit.trusted_proxies", 3, "expected a list of addresses or CIDR ranges"},
      {"trusted proxy a host name", "rate_limit:\n  trusted_proxies: [10.0.0.0/8, lb.internal]\n",
       "rate_limit.trusted_proxies[1]", 2, "'lb.internal' is not an IP address or CIDR range"},
      {"trusted proxy with a bad prefix, block list",
       "rate_limit:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - 192.168.0.0/33\n",
       "rate_limit.trusted_proxies[1]", 4, "prefix length must be 0 to 32"},
      {"trusted proxy with a bad IPv6 prefix",
       "rate_limit:\n  trusted_proxies:\n    - \"2001:db8::/129\"\n",
       "rate_limit.trusted_proxies[0]", 3, "prefix length must be 0 to 128"},
      {"trusted proxy with a port", "rate_limit:\n  trusted_proxies: [\"10.0.0.1:8080\"]\n",
       "rate_limit.trusted_proxies[0]", 2, "is not an IP address or CIDR range"},
      {"trusted proxy in brackets", "rate_limit:\n  trusted_proxies: [\"[::1]\"]\n",
       "rate_limit.trusted_proxies[0]", 2, "is not an IP address or CIDR range"},
      {"trusted proxy a mapping", "rate_limit:\n  trusted_proxies:\n    - {lb: 10.0.0.1}\n",
       "rate_limit.trusted_proxies[0]", 3, "expected a single value, not a list or mapping"},
      {"trusted proxy empty", "rate_limit:\n  trusted_proxies: [\"\"]\n",
       "rate_limit.trusted_proxies[0]", 2, "is not an IP address or CIDR range"},
      {"third trusted proxy bad, far down",
       "workers: 1\nrate_limit:\n  limit: 5\n  trusted_proxies:\n    - 10.0.0.0/8\n"
       "    - 172.16.0.0/12\n    - 192.168.0.0/x\n",
       "rate_limit.trusted_proxies[2]", 7, "prefix length must be 0 to 32"},
      {"allow a scalar", "rate_limit:\n  allow: 127.0.0.1\n", "rate_limit.allow", 2,
       "expected a list of addresses or CIDR ranges"},
      {"allow item not an address", "rate_limit:\n  allow:\n    - 127.0.0.1\n    - localhost\n",
       "rate_limit.allow[1]", 4, "'localhost' is not an IP address or CIDR range"},
      {"allow item with a bad prefix", "rate_limit:\n  allow: [127.0.0.1/-1]\n",
       "rate_limit.allow[0]", 2, "prefix length must be 0 to 32"},
      // ipv6_prefix
      {"ipv6_prefix zero", "rate_limit:\n  ipv6_prefix: 0\n", "rate_limit.ipv6_prefix", 2,
       "must be between 1 and 128, got 0"},
      {"ipv6_prefix too long", "rate_limit:\n  ipv6_prefix: 129\n", "rate_limit.ipv6_prefix", 2,
       "must be between 1 and 128, got 129"},
      {"ipv6_prefix negative", "rate_limit:\n  ipv6_prefix: -64\n", "rate_limit.ipv6_prefix", 2,
       "must be between 1 and 128"},
      {"ipv6_prefix with a slash", "rate_limit:\n  ipv6_prefix: /64\n", "rate_limit.ipv6_prefix", 2,
       "expected a whole number, got '/64'"},
      // on_redis_error
      {"on_redis_error invalid", "rate_limit:\n  on_redis_error: open\n",
       "rate_limit.on_redis_error", 2, "expected allow (fail open) or deny (fail closed, 503)"},
      {"on_redis_error is case-sensitive", "rate_limit:\n  on_redis_error: Deny\n",
       "rate_limit.on_redis_error", 2, "expected allow (fail open) or deny"},
      {"on_redis_error a boolean", "rate_limit:\n  on_redis_error: true\n",
       "rate_limit.on_redis_error", 2, "expected allow (fail open) or deny"},
      // enabled, limit
      {"enabled not a boolean", "rate_limit:\n  enabled: sometimes\n", "rate_limit.enabled", 2,
       "expected true or false, got 'sometimes'"},
      {"limit over the maximum", "rate_limit:\n  limit: 1000000001\n", "rate_limit.limit", 2,
       "must be between 1 and 1000000000"},
      {"limit not a number", "rate_limit:\n  limit: lots\n", "rate_limit.limit", 2,
       "expected a whole number, got 'lots'"},
  };
  for (const ErrorCase& c : cases) {
    check_error(c);
  }
}

TEST_CASE("routes[].rate_limit: off, or a mapping that overrides the global limit") {
  struct Case {
    std::string_view name;
    std::string_view yaml;
    bool present;
    bool enabled;
    std::optional<int64_t> limit;
    std::optional<int64_t> window_ms;
    std::optional<RateLimitAlgorithm> algorithm;
    std::string_view scope;
  };
  constexpr auto kSliding = RateLimitAlgorithm::SlidingWindow;
  constexpr auto kFixed = RateLimitAlgorithm::FixedWindow;
  const Case cases[] = {
      {"no rate_limit key", "routes:\n  - path: /products/{id}\n    key: p:{id}\n", false, true,
       std::nullopt, std::nullopt, std::nullopt, ""},
      {"off", "routes:\n  - path: /products/{id}\n    key: p:{id}\n    rate_limit: off\n", true,
       false, std::nullopt, std::nullopt, std::nullopt, ""},
      {"off quoted",
       "routes:\n  - path: /products/{id}\n    key: p:{id}\n    rate_limit: \"off\"\n", true, false,
       std::nullopt, std::nullopt, std::nullopt, ""},
      {"false", "routes:\n  - path: /products/{id}\n    key: p:{id}\n    rate_limit: false\n", true,
       false, std::nullopt, std::nullopt, std::nullopt, ""},
      {"limit only",
       "routes:\n  - path: /products/{id}\n    key: p:{id}\n    rate_limit:\n      limit: 5\n",
       true, true, 5, std::nullopt, std::nullopt, "/products/:id"},
      {"window only",
       "routes:\n  - path: /products/{id}\n    key: p:{id}\n    rate_limit: {window: 10s}\n", true,
       true, std::nullopt, 10'000, std::nullopt, "/products/:id"},
      {"algorithm only",
       "routes:\n  - path: /products/{id}\n    key: p:{id}\n"
       "    rate_limit: {algorithm: sliding_window}\n",
       true, true, std::nullopt, std::nullopt, kSliding, "/products/:id"},
      {"fixed_window explicitly",
       "routes:\n  - path: /products/{id}\n    key: p:{id}\n"
       "    rate_limit: {algorithm: fixed_window}\n",
       true, true, std::nullopt, std::nullopt, kFixed, "/products/:id"},
      {"scope only",
       "routes:\n  - path: /products/{id}\n    key: p:{id}\n    rate_limit: {scope: products}\n",
       true, true, std::nullopt, std::nullopt, std::nullopt, "products"},
      {"everything",
       "routes:\n  - path: /search\n    key: search\n    rate_limit:\n      limit: 20\n"
       "      window: 1m\n      algorithm: sliding_window\n      scope: search-api\n",
       true, true, 20, 60'000, kSliding, "search-api"},
      {"an empty mapping",
       "routes:\n  - path: /products/{id}\n    key: p:{id}\n    rate_limit: {}\n", true, true,
       std::nullopt, std::nullopt, std::nullopt, "/products/:id"},
      {"nothing under it", "routes:\n  - path: /products/{id}\n    key: p:{id}\n    rate_limit:\n",
       true, true, std::nullopt, std::nullopt, std::nullopt, "/products/:id"},
      {"rate_limit before path",
       "routes:\n  - rate_limit: {limit: 7}\n    key: p:{id}\n    path: /products/{id}\n", true,
       true, 7, std::nullopt, std::nullopt, "/products/:id"},
      // The default scope is the path pattern with {name} written :name.
      {"static path scope", "routes:\n  - path: /products\n    key: p\n    rate_limit: {}\n", true,
       true, std::nullopt, std::nullopt, std::nullopt, "/products"},
      {"two variables scope",
       "routes:\n  - path: /a/{x}/b/{y}\n    key: k:{x}:{y}\n    rate_limit: {}\n", true, true,
       std::nullopt, std::nullopt, std::nullopt, "/a/:x/b/:y"},
      {"catch-all scope",
       "routes:\n  - path: \"/files/{path*}\"\n    key: f:{path}\n    rate_limit: {}\n", true, true,
       std::nullopt, std::nullopt, std::nullopt, "/files/:path"},
      {"root scope", "routes:\n  - path: /\n    key: root\n    rate_limit: {}\n", true, true,
       std::nullopt, std::nullopt, std::nullopt, "/"},
      {"scope with colons and slashes",
       "routes:\n  - path: /a\n    key: a\n    rate_limit: {scope: \"api:v1/a\"}\n", true, true,
       std::nullopt, std::nullopt, std::nullopt, "api:v1/a"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CAPTURE(c.yaml);
    const Config config = parse_ok(c.yaml);
    REQUIRE(config.routes.size() == 1);
    const auto& limit = config.routes[0].rate_limit;
    REQUIRE(limit.has_value() == c.present);
    if (!limit) {
      continue;
    }
    CHECK(limit->enabled == c.enabled);
    CHECK(limit->limit == c.limit);
    CHECK(limit->window.has_value() == c.window_ms.has_value());
    if (limit->window && c.window_ms) {
      CHECK(limit->window->count() == *c.window_ms);
    }
    CHECK(limit->algorithm == c.algorithm);
    if (c.enabled) {
      CHECK(limit->scope == c.scope);
    }
  }
}

TEST_CASE("routes[].rate_limit errors") {
  const ErrorCase cases[] = {
      {"scope with a variable",
       "routes:\n  - path: /a/{id}\n    key: a:{id}\n    rate_limit:\n      scope: \"a:{id}\"\n",
       "routes[0].rate_limit.scope", 5, "a scope cannot contain braces"},
      {"scope with an opening brace",
       "routes:\n  - path: /a\n    key: a\n    rate_limit: {scope: \"a{\"}\n",
       "routes[0].rate_limit.scope", 4, "a scope cannot contain braces"},
      {"scope with a closing brace",
       "routes:\n  - path: /a\n    key: a\n    rate_limit: {scope: \"}a\"}\n",
       "routes[0].rate_limit.scope", 4, "a scope cannot contain braces"},
      {"scope a list", "routes:\n  - path: /a\n    key: a\n    rate_limit:\n      scope: [a]\n",
       "routes[0].rate_limit.scope", 5, "expected a single value, not a list or mapping"},
      {"unknown key inside",
       "routes:\n  - path: /a\n    key: a\n    rate_limit:\n      limit: 5\n      burst: 10\n",
       "routes[0].rate_limit.burst", 6,
       "unknown key; expected one of: limit, window, algorithm, key, scope"},
      {"a global-only key inside",
       "routes:\n  - path: /a\n    key: a\n    rate_limit:\n      key_prefix: x\n",
       "routes[0].rate_limit.key_prefix", 5, "unknown key"},
      {"enabled is not a route key",
       "routes:\n  - path: /a\n    key: a\n    rate_limit:\n      enabled: false\n",
       "routes[0].rate_limit.enabled", 5, "unknown key"},
      {"unknown key in the second route",
       "routes:\n  - path: /a\n    key: a\n  - path: /b\n    key: b\n"
       "    rate_limit: {limt: 5}\n",
       "routes[1].rate_limit.limt", 6, "unknown key"},
      {"key twice",
       "routes:\n  - path: /a\n    key: a\n    rate_limit:\n      limit: 5\n"
       "      limit: 6\n",
       "routes[0].rate_limit.limit", 6, "key appears twice"},
      {"limit zero", "routes:\n  - path: /a\n    key: a\n    rate_limit: {limit: 0}\n",
       "routes[0].rate_limit.limit", 4, "must be between 1 and 1000000000, got 0"},
      {"window under a second",
       "routes:\n  - path: /a\n    key: a\n    rate_limit:\n"
       "      window: 500ms\n",
       "routes[0].rate_limit.window", 5, "must be at least 1s"},
      {"window without a unit",
       "routes:\n  - path: /a\n    key: a\n    rate_limit:\n"
       "      window: 60\n",
       "routes[0].rate_limit.window", 5, "missing unit"},
      {"unknown algorithm",
       "routes:\n  - path: /a\n    key: a\n    rate_limit:\n"
       "      algorithm: leaky_bucket\n",
       "routes[0].rate_limit.algorithm", 5, "expected fixed_window or sliding_window"},
      {"a number", "routes:\n  - path: /a\n    key: a\n    rate_limit: 5\n", "routes[0].rate_limit",
       4, "expected a mapping of keys to values"},
      {"a list", "routes:\n  - path: /a\n    key: a\n    rate_limit: [5, 10s]\n",
       "routes[0].rate_limit", 4, "expected a mapping of keys to values"},
  };
  for (const ErrorCase& c : cases) {
    check_error(c);
  }
}

// Sets every rate limiting key, globally and per route, to a value that differs from its
// default. Routes: 0 off, 1 limit only, 2 everything, 3 nothing under it, 4 no rate_limit.
constexpr std::string_view kRateLimitRoutes = R"(routes:
  - path: /health
    key: health
    rate_limit: off
  - path: /products/{id}
    key: product:{id}
    rate_limit:
      limit: 5
  - path: /search
    key: search
    rate_limit:
      limit: 20
      window: 90s
      algorithm: sliding_window
      scope: "search-api"
  - path: "/files/{path*}"
    key: "file:{path}"
    rate_limit:
  - path: /products
    key: products:list
)";
constexpr std::string_view kRateLimitGlobal = R"(rate_limit:
  limit: 10
  window: 2m
  algorithm: sliding_window
  key_prefix: "app:rl:"
  trusted_proxies: [10.0.0.0/8, "2001:db8:ffff::/48", 192.168.1.7]
  allow: ["127.0.0.1", "::1", "2001:db8:1::/48"]
  ipv6_prefix: 56
  on_redis_error: deny
)";

std::string full_rate_limit() {
  return std::string(kRateLimitRoutes) + std::string(kRateLimitGlobal);
}

TEST_CASE("render_config round-trips the rate limiting keys") {
  struct Case {
    std::string_view name;
    std::string yaml;
  };
  const Case cases[] = {
      {"defaults", ""},
      {"every rate limiting key set", full_rate_limit()},
      {"rate_limit: off", "rate_limit: off\n"},
      {"enabled: false with values",
       "rate_limit:\n  enabled: false\n  limit: 7\n  algorithm: sliding_window\n"},
      {"off, with routes that have their own limits",
       "rate_limit: off\n" + std::string(kRateLimitRoutes)},
      {"fixed window with a 1.5s window", "rate_limit:\n  window: 1500ms\n"},
      {"empty key_prefix", "rate_limit:\n  key_prefix: \"\"\n"},
      {"key_prefix YAML would misread",
       "rate_limit:\n  key_prefix: \"a: b #c 'd' \\\"e\\\" \\\\ [f]\"\n"},
      {"a hash tag in key_prefix", "rate_limit:\n  key_prefix: \"{rl}:\"\n"},
      {"IPv6 ranges only",
       "rate_limit:\n  trusted_proxies: [\"::/0\"]\n  allow: [\"fe80::/10\", \"::1\"]\n"},
      {"every address", "rate_limit:\n  trusted_proxies: [0.0.0.0/0, \"::/0\"]\n"},
      {"host bits in a range", "rate_limit:\n  allow: [10.1.2.3/8]\n"},
      {"ipv6_prefix limits", "rate_limit:\n  ipv6_prefix: 1\n"},
      {"ipv6_prefix 128", "rate_limit:\n  ipv6_prefix: 128\n"},
      {"scope YAML would misread",
       "routes:\n  - path: /a\n    key: a\n    rate_limit:\n"
       "      scope: \"a: b #c 'd' \\\"e\\\" \\\\ [f], g\"\n"},
      {"route window only", "routes:\n  - path: /a\n    key: a\n    rate_limit: {window: 1h}\n"},
      {"route algorithm only",
       "routes:\n  - path: /a\n    key: a\n    rate_limit: {algorithm: fixed_window}\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Config original = parse_ok(c.yaml);
    const std::string rendered = render_config(original);
    CAPTURE(rendered);
    const Config again = parse_ok(rendered);
    check_same(again, original);
    check_same_rate_limit(again, original);
    // And rendering is stable.
    CHECK(render_config(again) == rendered);
  }
}

TEST_CASE("render_config round-trips line breaks and control characters in rate limiting text") {
  // Redis keys are binary-safe, and a YAML "\n" escape puts a line break in a key_prefix or a
  // scope. Written raw inside double quotes, YAML folds it into a space when read back.
  struct Case {
    std::string_view name;
    std::string yaml;
  };
  const Case cases[] = {
      {"line break in key_prefix", "rate_limit:\n  key_prefix: \"rl\\n:\"\n"},
      {"line break in a route scope",
       "routes:\n  - path: /a\n    key: a\n    rate_limit: {scope: \"a\\nb\"}\n"},
      {"control characters in key_prefix", "rate_limit:\n  key_prefix: \"rl\\x01\\x1f\\x7f:\"\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Config original = parse_ok(c.yaml);
    const std::string rendered = render_config(original);
    CAPTURE(rendered);
    check_same_rate_limit(parse_ok(rendered), original);
  }
}

TEST_CASE("render_config writes the rate limiting keys readably") {
  const std::string rendered = render_config(parse_ok(full_rate_limit()));
  CAPTURE(rendered);
  const std::string_view expected[] = {
      "    rate_limit: off\n",
      "    rate_limit:\n      limit: 5\n      scope: \"/products/:id\"\n",
      "    rate_limit:\n      limit: 20\n      window: 90s\n      algorithm: sliding_window\n"
      "      scope: \"search-api\"\n",
      "    rate_limit:\n      scope: \"/files/:path\"\n",
      "rate_limit:\n  enabled: true\n  limit: 10\n  window: 2m\n  algorithm: sliding_window\n"
      "  key_prefix: \"app:rl:\"\n"
      "  trusted_proxies: [\"10.0.0.0/8\", \"2001:db8:ffff::/48\", \"192.168.1.7/32\"]\n"
      "  allow: [\"127.0.0.1/32\", \"::1/128\", \"2001:db8:1::/48\"]\n"
      "  ipv6_prefix: 56\n  on_redis_error: deny\n",
  };
  for (std::string_view text : expected) {
    CAPTURE(text);
    CHECK(rendered.find(text) != std::string::npos);
  }
  const std::string defaults = render_config(parse_ok(""));
  CAPTURE(defaults);
  CHECK(defaults.find("rate_limit:\n  enabled: true\n  limit: 100\n  window: 1m\n"
                      "  algorithm: fixed_window\n  key_prefix: \"rl:\"\n  trusted_proxies: []\n"
                      "  allow: []\n  ipv6_prefix: 64\n  on_redis_error: allow\n") !=
        std::string::npos);
  const std::string off = render_config(parse_ok("rate_limit: off\n"));
  CAPTURE(off);
  CHECK(off.find("rate_limit:\n  enabled: false\n") != std::string::npos);
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

TEST_CASE("a rate-limit window longer than a day is refused") {
  const EnvLookup no_env = [](std::string_view) { return std::optional<std::string>(); };
  for (const char* yaml :
       {"rate_limit:\n  window: 25h\n",
        "routes:\n  - path: /a\n    key: a\n    rate_limit:\n      window: 2000m\n"}) {
    CAPTURE(yaml);
    auto parsed = parse_config(yaml, no_env);
    REQUIRE(std::holds_alternative<ConfigError>(parsed));
    CHECK(std::get<ConfigError>(parsed).reason == "must be at most 24h");
  }
  CHECK(std::holds_alternative<Config>(parse_config("rate_limit:\n  window: 24h\n", no_env)));
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

TEST_CASE("ADMIN_LISTEN overrides admin.listen and is validated") {
  auto with = [](std::string value) {
    return [value](std::string_view name) -> std::optional<std::string> {
      if (name == "ADMIN_LISTEN") {
        return value;
      }
      return std::nullopt;
    };
  };
  auto parsed = parse_config("", with("0.0.0.0:9901"));
  REQUIRE(std::holds_alternative<Config>(parsed));
  CHECK(std::get<Config>(parsed).admin.listen.to_string() == "0.0.0.0:9901");
  auto bad = parse_config("", with("nope"));
  REQUIRE(std::holds_alternative<ConfigError>(bad));
  CHECK(std::get<ConfigError>(bad).key == "ADMIN_LISTEN (environment)");
}

TEST_CASE("cache: what a write does when its invalidation cannot reach Redis") {
  const Config defaults = parse_ok("");
  CHECK(defaults.cache.on_invalidation_failure == InvalidationFailure::Journal);
  CHECK(defaults.cache.journal_max_keys == 100'000);
  const Config repository = parse_ok(read_file(std::string(CACHECAR_SOURCE_DIR) + "/config.yaml"));
  CHECK(repository.cache.on_invalidation_failure == InvalidationFailure::Journal);
  CHECK(repository.cache.journal_max_keys == 100'000);

  const Config set = parse_ok(
      "cache:\n  on_invalidation_failure: reject\n  invalidation_journal:\n    max_keys: 7\n");
  CHECK(set.cache.on_invalidation_failure == InvalidationFailure::Reject);
  CHECK(set.cache.journal_max_keys == 7);
  CHECK(parse_ok("cache:\n  on_invalidation_failure: journal\n").cache.on_invalidation_failure ==
        InvalidationFailure::Journal);

  // Rendered (cachecar --check-config) and read back unchanged.
  const Config again = parse_ok(render_config(set));
  CHECK(again.cache.on_invalidation_failure == InvalidationFailure::Reject);
  CHECK(again.cache.journal_max_keys == 7);

  const ErrorCase cases[] = {
      {"an unknown mode", "cache:\n  on_invalidation_failure: ignore\n",
       "cache.on_invalidation_failure", 2, "expected journal or reject"},
      {"a boolean mode", "cache:\n  on_invalidation_failure: true\n",
       "cache.on_invalidation_failure", 2, "expected journal or reject"},
      {"no room at all", "cache:\n  invalidation_journal:\n    max_keys: 0\n",
       "cache.invalidation_journal.max_keys", 3, "must be between 1 and"},
      {"not a number", "cache:\n  invalidation_journal:\n    max_keys: lots\n",
       "cache.invalidation_journal.max_keys", 3, "expected a whole number"},
      {"an unknown journal key", "cache:\n  invalidation_journal:\n    max_bytes: 1\n",
       "cache.invalidation_journal.max_bytes", 3, "unknown key; expected one of: max_keys"},
  };
  for (const ErrorCase& c : cases) {
    check_error(c);
  }
}

TEST_CASE("rate_limit.sync: exact by default, batched with its interval and budget") {
  const Config defaults = parse_ok("");
  CHECK(defaults.rate_limit.sync == RateLimitSync::Exact);
  CHECK(defaults.rate_limit.sync_interval == Duration(10));
  CHECK(defaults.rate_limit.local_budget == 10);
  struct Case {
    std::string_view yaml;
    RateLimitSync sync;
    int64_t interval_ms;
    int64_t budget;
  };
  const Case cases[] = {
      {"rate_limit:\n  sync: exact\n", RateLimitSync::Exact, 10, 10},
      {"rate_limit:\n  sync: batched\n", RateLimitSync::Batched, 10, 10},
      {"rate_limit:\n  sync: batched\n  sync_interval: 1ms\n", RateLimitSync::Batched, 1, 10},
      {"rate_limit:\n  sync: batched\n  sync_interval: 1s\n", RateLimitSync::Batched, 1000, 10},
      {"rate_limit:\n  sync: batched\n  local_budget: 1\n", RateLimitSync::Batched, 10, 1},
      {"rate_limit:\n  algorithm: sliding_window\n  sync: batched\n  local_budget: 1000000\n",
       RateLimitSync::Batched, 10, 1'000'000},
  };
  for (const Case& c : cases) {
    CAPTURE(c.yaml);
    const Config config = parse_ok(std::string(c.yaml));
    CHECK(config.rate_limit.sync == c.sync);
    CHECK(config.rate_limit.sync_interval == Duration(c.interval_ms));
    CHECK(config.rate_limit.local_budget == c.budget);
  }
}

TEST_CASE("rate_limit.sync errors name the key, the line and the reason") {
  const ErrorCase cases[] = {
      {"unknown sync", "rate_limit:\n  limit: 5\n  sync: lazy\n", "rate_limit.sync", 3,
       "expected exact or batched"},
      {"sync is case-sensitive", "rate_limit:\n  sync: Batched\n", "rate_limit.sync", 2,
       "expected exact or batched"},
      {"sync_interval zero", "rate_limit:\n  sync_interval: 0ms\n", "rate_limit.sync_interval", 2,
       "must be at least 1ms"},
      {"sync_interval too long", "rate_limit:\n  sync_interval: 2s\n", "rate_limit.sync_interval",
       2, "must be at most 1s"},
      {"sync_interval without unit", "rate_limit:\n  sync_interval: 10\n",
       "rate_limit.sync_interval", 2, "missing unit"},
      {"local_budget zero", "rate_limit:\n  local_budget: 0\n", "rate_limit.local_budget", 2,
       "must be between 1 and 1000000, got 0"},
      {"unknown key lists the sync keys", "rate_limit:\n  sync_every: 5ms\n",
       "rate_limit.sync_every", 2, "enabled, sync, sync_interval, local_budget, key"},
  };
  for (const ErrorCase& c : cases) {
    check_error(c);
  }
}

TEST_CASE("render_config round-trips rate_limit.sync and its settings") {
  const Config config =
      parse_ok("rate_limit:\n  sync: batched\n  sync_interval: 25ms\n  local_budget: 3\n");
  const std::string rendered = render_config(config);
  CAPTURE(rendered);
  CHECK(rendered.find("  sync: batched\n  sync_interval: 25ms\n  local_budget: 3\n") !=
        std::string::npos);
  check_same_rate_limit(parse_ok(rendered), config);
  CHECK(render_config(parse_ok("")).find("  sync: exact\n  sync_interval: 10ms\n") !=
        std::string::npos);
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

TEST_CASE("cache.near: off by default, a mapping turns it on, and it renders back") {
  const Config defaults = parse_ok("");
  CHECK_FALSE(defaults.cache.near.enabled);
  CHECK(defaults.cache.near.max_bytes == 32u * 1024 * 1024);
  CHECK(defaults.cache.near.max_ttl == Duration(10'000));
  CHECK(defaults.cache.near.tracking);
  CHECK_FALSE(parse_ok("cache:\n  near: off\n").cache.near.enabled);

  const Config set =
      parse_ok("cache:\n  near:\n    max_bytes: 4MiB\n    max_ttl: 2s\n    tracking: off\n");
  CHECK(set.cache.near.enabled);
  CHECK(set.cache.near.max_bytes == 4u * 1024 * 1024);
  CHECK(set.cache.near.max_ttl == Duration(2'000));
  CHECK_FALSE(set.cache.near.tracking);
  const Config braces = parse_ok("cache:\n  near: {}\n");
  CHECK(braces.cache.near.enabled);
  CHECK(braces.cache.near.tracking);

  const Config again = parse_ok(render_config(set));
  CHECK(again.cache.near.enabled);
  CHECK(again.cache.near.max_bytes == set.cache.near.max_bytes);
  CHECK(again.cache.near.max_ttl == set.cache.near.max_ttl);
  CHECK_FALSE(again.cache.near.tracking);
  CHECK_FALSE(parse_ok(render_config(defaults)).cache.near.enabled);

  const ErrorCase cases[] = {
      {"a word", "cache:\n  near: on\n", "cache.near", 2, "expected off, or {max_bytes"},
      {"too small", "cache:\n  near:\n    max_bytes: 1KiB\n", "cache.near.max_bytes", 3,
       "must be at least 64KiB"},
      {"no unit", "cache:\n  near:\n    max_ttl: 10\n", "cache.near.max_ttl", 3, "missing unit"},
      {"too long", "cache:\n  near:\n    max_ttl: 25h\n", "cache.near.max_ttl", 3,
       "must be at most 24h"},
      {"tracking not a boolean", "cache:\n  near:\n    tracking: sometimes\n",
       "cache.near.tracking", 3, "expected true or false"},
      {"an unknown key", "cache:\n  near:\n    size: 1MiB\n", "cache.near.size", 3,
       "unknown key; expected one of: max_bytes, max_ttl, tracking"},
  };
  for (const ErrorCase& c : cases) {
    check_error(c);
  }
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

TEST_CASE("cache.mode: http and its keys") {
  const Config defaults = parse_ok("");
  CHECK(defaults.cache.mode == CacheMode::Routes);
  CHECK(defaults.cache.cache_status() == CacheStatusField::Off);
  const Config http = parse_ok(
      "cache:\n  mode: http\n  heuristic_max: 2h\n  max_ttl: 30m\n  revalidate_window: 10m\n"
      "  stale_if_error: 1m\n");
  CHECK(http.cache.mode == CacheMode::Http);
  CHECK(http.cache.heuristic_max == Duration(2 * 3600 * 1000));
  CHECK(http.cache.max_ttl == Duration(30 * 60 * 1000));
  CHECK(http.cache.revalidate_window == Duration(10 * 60 * 1000));
  CHECK(http.cache.stale_if_error == Duration(60 * 1000));
  CHECK(http.cache.cache_status() == CacheStatusField::On);  // on by default in mode http
  CHECK(parse_ok("cache:\n  mode: http\n  cache_status: off\n").cache.cache_status() ==
        CacheStatusField::Off);
  CHECK(parse_ok("cache:\n  cache_status: with_key\n").cache.cache_status() ==
        CacheStatusField::WithKey);
  CHECK_FALSE(parse_ok("cache:\n  stale_if_error: off\n").cache.stale_if_error);

  for (const std::string yaml :
       {"cache:\n  mode: http\n  stale_if_error: 5m\n  cache_status: with_key\n",
        "cache:\n  mode: routes\n  cache_status: on\n  heuristic_max: 0s\n"}) {
    CAPTURE(yaml);
    const Config original = parse_ok(yaml);
    const std::string rendered = render_config(original);
    CAPTURE(rendered);
    const Config again = parse_ok(rendered);
    CHECK(again.cache.mode == original.cache.mode);
    CHECK(again.cache.heuristic_max == original.cache.heuristic_max);
    CHECK(again.cache.stale_if_error == original.cache.stale_if_error);
    CHECK(again.cache.cache_status() == original.cache.cache_status());
    CHECK(render_config(again) == rendered);
  }
}

TEST_CASE("cache.mode errors") {
  const ErrorCase cases[] = {
      {"an unknown mode", "cache:\n  mode: rfc\n", "cache.mode", 2, "expected routes or http"},
      {"a bad cache_status", "cache:\n  cache_status: maybe\n", "cache.cache_status", 2,
       "expected on, off or with_key"},
      {"max_ttl under a second", "cache:\n  max_ttl: 10ms\n", "cache.max_ttl", 2,
       "must be at least 1s"},
      {"format: body in mode http",
       "cache:\n  mode: http\nroutes:\n  - path: /a\n    key: a\n    format: body\n",
       "routes[0].format", 6, "not with cache.mode: http"},
  };
  for (const ErrorCase& c : cases) {
    check_error(c);
  }
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

TEST_CASE("session: keys, secrets from the environment or a file, never from the YAML") {
  const Config defaults = parse_ok("");
  CHECK(defaults.session.cookie_name == "connect.sid");
  CHECK(defaults.session.key_prefix == "sess:");
  CHECK(defaults.session.user_field == "passport.user");
  CHECK(defaults.session.secrets.empty());

  const std::string yaml =
      "session:\n  cookie_name: sid\n  key_prefix: \"app:sess:\"\n  user_field: userId\n"
      "  user_header: X-User\n"
      "routes:\n  - path: /me\n    key: me\n    session: required\n"
      "  - path: /feed\n    key: feed\n    session: optional\n";
  auto parsed = parse_config(yaml, env_of({{"SESSION_SECRET", "new one,old one"}}));
  REQUIRE(std::holds_alternative<Config>(parsed));
  const Config& config = std::get<Config>(parsed);
  CHECK(config.session.cookie_name == "sid");
  CHECK(config.session.key_prefix == "app:sess:");
  CHECK(config.session.user_field == "userId");
  CHECK(config.session.user_header == "X-User");
  CHECK(config.session.secrets == std::vector<std::string>{"new one", "old one"});
  CHECK(config.routes[0].session == SessionUse::Required);
  CHECK(config.routes[1].session == SessionUse::Optional);

  // Rendered without the secrets, and read back the same with them from the environment.
  const std::string rendered = render_config(config);
  CAPTURE(rendered);
  CHECK(rendered.find("new one") == std::string::npos);
  CHECK(rendered.find("old one") == std::string::npos);
  auto again = parse_config(rendered, env_of({{"SESSION_SECRET", "new one,old one"}}));
  REQUIRE(std::holds_alternative<Config>(again));
  CHECK(std::get<Config>(again).session.user_header == "X-User");
  CHECK(std::get<Config>(again).routes[0].session == SessionUse::Required);
  CHECK(render_config(std::get<Config>(again)) == rendered);
}

TEST_CASE("admin purge and cache tags") {
  const Config defaults = parse_ok("");
  CHECK_FALSE(defaults.admin.purge.has_value());  // auto
  CHECK(defaults.admin.purge_enabled());          // on loopback
  CHECK(defaults.admin.token.empty());
  CHECK(defaults.cache.tags.fields == std::vector<std::string>{"Surrogate-Key", "Cache-Tag"});
  CHECK(defaults.cache.tags.strip);
  const Config tags = parse_ok("cache:\n  tags:\n    fields: [X-Tags]\n    strip: false\n");
  CHECK(tags.cache.tags.fields == std::vector<std::string>{"X-Tags"});
  CHECK_FALSE(tags.cache.tags.strip);
  CHECK(parse_ok("cache:\n  tags: off\n").cache.tags.fields.empty());
  CHECK(render_config(tags).find("fields: [X-Tags]") != std::string::npos);
  // Off loopback, purge takes the token, which is never rendered.
  auto with_token =
      parse_config("admin:\n  listen: 0.0.0.0:9901\n", env_of({{"ADMIN_TOKEN", "t0ken"}}));
  REQUIRE(std::holds_alternative<Config>(with_token));
  CHECK(std::get<Config>(with_token).admin.token == "t0ken");
  CHECK(std::get<Config>(with_token).admin.purge_enabled());
  CHECK(render_config(std::get<Config>(with_token)).find("t0ken") == std::string::npos);
  // Auto: off where others reach the listener without a token (probes still work).
  CHECK_FALSE(parse_ok("admin:\n  listen: 0.0.0.0:9901\n").admin.purge_enabled());
  CHECK_FALSE(parse_ok("admin:\n  listen: 127.0.0.1:9901\n  purge: false\n").admin.purge_enabled());
  CHECK(parse_ok("admin:\n  listen: \"[::1]:9901\"\n").admin.purge_enabled());
  CHECK(render_config(parse_ok("")).find("purge: auto") != std::string::npos);

  const ErrorCase cases[] = {
      {"purge on, off loopback, without a token",
       "workers: 1\nadmin:\n  listen: 0.0.0.0:9901\n  purge: true\n", "admin.purge", 4,
       "needs a token: set ADMIN_TOKEN"},
      {"a token in the file", "admin:\n  token: abc\n", "admin.token", 2,
       "never written in this file"},
      {"a tag field that is no field name", "cache:\n  tags:\n    fields: [\"a b\"]\n",
       "cache.tags.fields", 3, "is not a header field name"},
      {"a tag field HTTP relies on", "cache:\n  tags:\n    fields: [Surrogate-Key, vary]\n",
       "cache.tags.fields", 3, "gives a meaning to"},
      {"a name that only looks like loopback",
       "admin:\n  listen: 127.example:9901\n  purge: true\n", "admin.purge", 3, "needs a token"},
  };
  for (const ErrorCase& c : cases) {
    check_error(c);
  }
  const ConfigError bad_env = parse_error("workers: 1\n", env_of({{"ADMIN_TOKEN", "a\nb"}}));
  CHECK(bad_env.key == "ADMIN_TOKEN (environment)");
}

TEST_CASE("session: per-user limits, shared and per-user routes, touch") {
  const Config defaults = parse_ok("");
  CHECK(defaults.rate_limit.key == RateLimitKey::Ip);
  CHECK(defaults.session.touch);
  const std::string yaml =
      "session:\n  touch: false\n"
      "rate_limit:\n  key: session_user_or_ip\n"
      "routes:\n  - path: /catalog\n    key: catalog\n    shared: true\n"
      "  - path: /mine\n    key: mine\n    per_user: true\n"
      "    rate_limit: {key: session_user, limit: 5}\n";
  auto parsed = parse_config(yaml, env_of({{"SESSION_SECRET", "s"}}));
  REQUIRE(std::holds_alternative<Config>(parsed));
  const Config& config = std::get<Config>(parsed);
  // With limiting off, a key by user asks for no secret.
  CHECK(parse_ok("rate_limit:\n  enabled: false\n  key: session_user\n").rate_limit.key ==
        RateLimitKey::SessionUser);
  CHECK_FALSE(config.session.touch);
  CHECK(config.rate_limit.key == RateLimitKey::SessionUserOrIp);
  CHECK(config.routes[0].shared);
  CHECK_FALSE(config.routes[0].per_user);
  CHECK(config.routes[1].per_user);
  CHECK(config.routes[1].rate_limit->key == RateLimitKey::SessionUser);
  const std::string rendered = render_config(config);
  auto again = parse_config(rendered, env_of({{"SESSION_SECRET", "s"}}));
  REQUIRE(std::holds_alternative<Config>(again));
  CHECK(render_config(std::get<Config>(again)) == rendered);
  CHECK(rendered.find("key: session_user_or_ip") != std::string::npos);
  CHECK(rendered.find("per_user: true") != std::string::npos);
}

TEST_CASE("session.secrets_file: one secret per line, exactly as written but a CR") {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("cachecar_config_test_secrets_" + std::to_string(::getpid())))
                               .string();
  {
    std::ofstream out(path, std::ios::binary);
    out << "first secret \r\n\nsecond\n";
  }
  const Config config = parse_ok("session:\n  secrets_file: " + path + "\n");
  std::remove(path.c_str());
  CHECK(config.session.secrets == std::vector<std::string>{"first secret ", "second"});
}

TEST_CASE("session errors") {
  const ErrorCase cases[] = {
      {"a route needs a secret",
       "routes:\n  - path: /me\n    key: me\n    session: required\n", "routes[0].session", 4,
       "sessions need a secret: set SESSION_SECRET or session.secrets_file"},
      {"a secret in the file", "session:\n  secrets: [abc]\n", "session.secrets", 2,
       "secrets are never written in this file"},
      {"an unknown use", "routes:\n  - path: /me\n    key: me\n    session: maybe\n",
       "routes[0].session", 4, "expected off, optional or required"},
      {"a bad cookie name", "session:\n  cookie_name: \"a b\"\n", "session.cookie_name", 2,
       "a cookie name is a token"},
      {"a bad header", "session:\n  user_header: \"X-User:\"\n", "session.user_header", 2,
       "not a header name cachecar forwards"},
      {"an underscore", "session:\n  user_header: X_User\n", "session.user_header", 2,
       "not a header name cachecar forwards"},
      {"a reserved field", "session:\n  user_header: cookie\n", "session.user_header", 2,
       "a field HTTP or cachecar itself gives a meaning to"},
      {"a hop-by-hop field", "session:\n  user_header: Proxy-User\n", "session.user_header", 2,
       "a field HTTP or cachecar itself gives a meaning to"},
      {"a missing secrets file", "session:\n  secrets_file: /nonexistent/secrets\n",
       "session.secrets_file", 2, "cannot read /nonexistent/secrets"},
  };
  for (const ErrorCase& c : cases) {
    check_error(c);
  }
  const ErrorCase with_secret[] = {
      {"per_user needs a secret", "routes:\n  - path: /me\n    key: me\n    per_user: true\n",
       "routes[0].per_user", 4, "sessions need a secret"},
      {"a user-keyed limit needs a secret", "rate_limit:\n  limit: 5\n  key: session_user\n",
       "rate_limit.key", 3, "sessions need a secret"},
      {"a route's user-keyed limit needs a secret",
       "routes:\n  - path: /me\n    key: me\n    rate_limit:\n      key: session_user_or_ip\n",
       "routes[0].rate_limit.key", 5, "sessions need a secret"},
      {"an unknown limit key", "rate_limit:\n  key: cookie\n", "rate_limit.key", 2,
       "expected ip, session_user or session_user_or_ip"},
      {"shared and per user",
       "routes:\n  - path: /me\n    key: me\n    shared: true\n    per_user: true\n",
       "routes[0].per_user", 5, "shared or per user, not both"},
      {"per user in the app's own format",
       "routes:\n  - path: /me\n    key: me\n    format: body\n    per_user: true\n",
       "routes[0].per_user", 5, "per-user entries need cachecar's envelope"},
  };
  for (const ErrorCase& c : with_secret) {
    check_error(c);
  }
  const ConfigError empty_env =
      parse_error("workers: 1\n", env_of({{"SESSION_SECRET", ","}}));
  CHECK(empty_env.key == "SESSION_SECRET (environment)");
  // SESSION_SECRET wins: the file is not even read.
  auto from_env = parse_config("session:\n  secrets_file: /nonexistent/secrets\n",
                               env_of({{"SESSION_SECRET", "s1"}}));
  REQUIRE(std::holds_alternative<Config>(from_env));
  CHECK(std::get<Config>(from_env).session.secrets == std::vector<std::string>{"s1"});
}

}  // namespace
}  // namespace cachecar
