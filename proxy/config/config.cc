#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <utility>

#include "http/chars.h"
#include "http/error_page.h"
#include "http/host.h"
#include "net/tls.h"

namespace cachecar {
namespace {

// Thrown inside this file only, turned into a ConfigError value at the public boundary.
struct Invalid {
  ConfigError error;
};

// The line of the key being read. yaml-cpp places an empty value at the next token, which may
// be lines further down, so errors about a missing value use the key's line instead.
thread_local int current_key_line = 0;

[[noreturn]] void fail(std::string key, const YAML::Node& node, std::string reason) {
  int line = node.Mark().is_null() ? 0 : node.Mark().line + 1;
  if (node.IsNull() && current_key_line > 0) {
    line = current_key_line;
  }
  throw Invalid{{std::move(key), line, std::move(reason)}};
}

[[noreturn]] void fail_env(std::string_view variable, std::string reason) {
  throw Invalid{{std::string(variable) + " (environment)", 0, std::move(reason)}};
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    out += out.empty() ? "" : ", ";
    out += name;
  }
  return out;
}

using FieldHandler = std::function<void(const YAML::Node& value, const std::string& key)>;
using FieldTable = std::vector<std::pair<std::string, FieldHandler>>;

std::string child_key(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "." + name;
}

// Dispatches each key of a mapping to its handler; unknown and repeated keys are errors.
void read_map(const YAML::Node& node, const std::string& key, const FieldTable& fields) {
  if (node.IsNull()) {
    return;  // "upstream:" with nothing under it keeps the defaults
  }
  if (!node.IsMap()) {
    fail(key.empty() ? "(document)" : key, node, "expected a mapping of keys to values");
  }
  std::vector<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      fail(key, it->first, "keys must be plain names");
    }
    const std::string name = it->first.Scalar();
    const std::string path = child_key(key, name);
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      fail(path, it->first, "key appears twice");
    }
    seen.push_back(name);
    auto field = std::find_if(fields.begin(), fields.end(),
                              [&](const auto& entry) { return entry.first == name; });
    if (field == fields.end()) {
      std::vector<std::string> known;
      for (const auto& entry : fields) {
        known.push_back(entry.first);
      }
      fail(path, it->first, "unknown key; expected one of: " + join(known));
    }
    current_key_line = it->first.Mark().is_null() ? 0 : it->first.Mark().line + 1;
    field->second(it->second, path);
  }
}

std::string scalar(const YAML::Node& node, const std::string& key) {
  if (node.IsNull()) {
    fail(key, node, "value missing");
  }
  if (!node.IsScalar()) {
    fail(key, node, "expected a single value, not a list or mapping");
  }
  return node.Scalar();
}

int64_t integer(const YAML::Node& node, const std::string& key, int64_t min, int64_t max) {
  const std::string text = scalar(node, key);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    fail(key, node, "expected a whole number, got '" + text + "'");
  }
  if (value < min || value > max) {
    fail(
        key, node,
        "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + text);
  }
  return value;
}

bool boolean(const YAML::Node& node, const std::string& key) {
  const std::string text = scalar(node, key);
  if (text == "true" || text == "on" || text == "yes") {
    return true;
  }
  if (text == "false" || text == "off" || text == "no") {
    return false;
  }
  fail(key, node, "expected true or false, got '" + text + "'");
}

Duration duration(const YAML::Node& node, const std::string& key, Duration min) {
  std::string reason;
  auto value = parse_duration(scalar(node, key), reason);
  if (!value) {
    fail(key, node, reason);
  }
  if (*value < min) {
    fail(key, node, "must be at least " + format_duration(min));
  }
  return *value;
}

uint64_t size(const YAML::Node& node, const std::string& key, uint64_t min) {
  std::string reason;
  auto value = parse_size(scalar(node, key), reason);
  if (!value) {
    fail(key, node, reason);
  }
  if (*value < min) {
    fail(key, node, "must be at least " + format_size(min));
  }
  return *value;
}

HostPort host_port(const YAML::Node& node, const std::string& key) {
  std::string reason;
  auto value = parse_host_port(scalar(node, key), reason);
  if (!value) {
    fail(key, node, reason);
  }
  return *value;
}

const std::vector<std::string>& log_levels() {
  static const std::vector<std::string> kLevels{"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  return kLevels;
}

bool valid_log_level(const std::string& level) {
  const auto& levels = log_levels();
  return std::find(levels.begin(), levels.end(), level) != levels.end();
}

std::vector<std::string> string_list(const YAML::Node& node, const std::string& key) {
  if (!node.IsSequence()) {
    fail(key, node, "expected a list, e.g. [a, b]");
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < node.size(); ++i) {
    out.push_back(scalar(node[i], key + "[" + std::to_string(i) + "]"));
  }
  return out;
}

bool is_http_token(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return is_alpha(c) || is_digit(c) || c == '-' || c == '_' || c == '.';
  });
}

Duration rate_limit_window(const YAML::Node& node, const std::string& key) {
  const Duration window = duration(node, key, Duration(1000));
  if (window > kMaxRateLimitWindow) {
    fail(key, node, "must be at most " + format_duration(kMaxRateLimitWindow));
  }
  return window;
}

RateLimitAlgorithm algorithm(const YAML::Node& node, const std::string& key) {
  const std::string text = scalar(node, key);
  if (text == "fixed_window") {
    return RateLimitAlgorithm::FixedWindow;
  }
  if (text == "sliding_window") {
    return RateLimitAlgorithm::SlidingWindow;
  }
  fail(key, node, "expected fixed_window or sliding_window");
}

RateLimitSync rate_limit_sync(const YAML::Node& node, const std::string& key) {
  const std::string text = scalar(node, key);
  if (text == "exact") {
    return RateLimitSync::Exact;
  }
  if (text == "batched") {
    return RateLimitSync::Batched;
  }
  fail(key, node, "expected exact or batched");
}

RateLimitKey rate_limit_key(const YAML::Node& node, const std::string& key) {
  const std::string text = scalar(node, key);
  if (text == "ip") {
    return RateLimitKey::Ip;
  }
  if (text == "session_user") {
    return RateLimitKey::SessionUser;
  }
  if (text == "session_user_or_ip") {
    return RateLimitKey::SessionUserOrIp;
  }
  fail(key, node, "expected ip, session_user or session_user_or_ip");
}

int line_of(const YAML::Node& node) {
  return node.Mark().is_null() ? current_key_line : node.Mark().line + 1;
}

InvalidationFailure invalidation_failure(const YAML::Node& node, const std::string& key) {
  const std::string text = scalar(node, key);
  if (text == "journal") {
    return InvalidationFailure::Journal;
  }
  if (text == "reject") {
    return InvalidationFailure::Reject;
  }
  fail(key, node, "expected journal or reject");
}

std::vector<Cidr> cidr_list(const YAML::Node& node, const std::string& key) {
  if (!node.IsSequence()) {
    fail(key, node, "expected a list of addresses or CIDR ranges, e.g. [10.0.0.0/8]");
  }
  std::vector<Cidr> out;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string item = key + "[" + std::to_string(i) + "]";
    std::string reason;
    auto cidr = parse_cidr(scalar(node[i], item), reason);
    if (!cidr) {
      fail(item, node[i], reason);
    }
    out.push_back(*cidr);
  }
  return out;
}

std::vector<std::string> host_list(const YAML::Node& node, const std::string& key) {
  if (!node.IsSequence()) {
    fail(key, node, "expected a list of host names, e.g. [shop.example, \"*.shop.example\"]");
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string item = key + "[" + std::to_string(i) + "]";
    std::string name = scalar(node[i], item);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!valid_host_pattern(name)) {
      fail(item, node[i], "'" + name + "' is not a host name without a port, nor \"*.\" and one");
    }
    out.push_back(std::move(name));
  }
  return out;
}

bool is_off(const YAML::Node& node) {
  return node.IsScalar() && (node.Scalar() == "off" || node.Scalar() == "false");
}

void read_rate_limit(const YAML::Node& node, const std::string& key, Config::RateLimit& out) {
  if (is_off(node)) {
    out.enabled = false;
    return;
  }
  read_map(
      node, key,
      {{"limit", [&](const YAML::Node& v,
                     const std::string& k) { out.limit = integer(v, k, 1, 1'000'000'000); }},
       {"window",
        [&](const YAML::Node& v, const std::string& k) { out.window = rate_limit_window(v, k); }},
       {"algorithm",
        [&](const YAML::Node& v, const std::string& k) { out.algorithm = algorithm(v, k); }},
       {"key_prefix",
        [&](const YAML::Node& v, const std::string& k) { out.key_prefix = scalar(v, k); }},
       {"trusted_proxies",
        [&](const YAML::Node& v, const std::string& k) { out.trusted_proxies = cidr_list(v, k); }},
       {"allow", [&](const YAML::Node& v, const std::string& k) { out.allow = cidr_list(v, k); }},
       {"ipv6_prefix",
        [&](const YAML::Node& v, const std::string& k) {
          out.ipv6_prefix = static_cast<int>(integer(v, k, 1, 128));
        }},
       {"on_redis_error",
        [&](const YAML::Node& v, const std::string& k) {
          const std::string text = scalar(v, k);
          if (text != "allow" && text != "deny") {
            fail(k, v, "expected allow (fail open) or deny (fail closed, 503)");
          }
          out.deny_on_redis_error = text == "deny";
        }},
       {"enabled", [&](const YAML::Node& v, const std::string& k) { out.enabled = boolean(v, k); }},
       {"sync",
        [&](const YAML::Node& v, const std::string& k) { out.sync = rate_limit_sync(v, k); }},
       {"sync_interval",
        [&](const YAML::Node& v, const std::string& k) {
          out.sync_interval = duration(v, k, Duration(1));
          if (out.sync_interval > kMaxRateLimitSyncInterval) {
            fail(k, v, "must be at most " + format_duration(kMaxRateLimitSyncInterval));
          }
        }},
       {"local_budget",
        [&](const YAML::Node& v, const std::string& k) {
          out.local_budget = integer(v, k, 1, 1'000'000);
        }},
       {"key", [&](const YAML::Node& v, const std::string& k) {
          out.key = rate_limit_key(v, k);
          out.key_line = line_of(v);
        }}});
}

// "/products/{id}" -> "/products/:id": readable in redis-cli, and free of the braces that
// Redis Cluster would take for a hash tag.
std::string default_scope(const std::string& pattern) {
  std::string scope;
  for (char c : pattern) {
    if (c == '{') {
      scope += ':';
    } else if (c != '}' && c != '*') {
      scope += c;
    }
  }
  return scope;
}

RouteRateLimit route_rate_limit(const YAML::Node& node, const std::string& key) {
  RouteRateLimit out;
  if (is_off(node)) {
    out.enabled = false;
    return out;
  }
  read_map(node, key,
           {{"limit", [&](const YAML::Node& v,
                          const std::string& k) { out.limit = integer(v, k, 1, 1'000'000'000); }},
            {"window", [&](const YAML::Node& v,
                           const std::string& k) { out.window = rate_limit_window(v, k); }},
            {"algorithm",
             [&](const YAML::Node& v, const std::string& k) { out.algorithm = algorithm(v, k); }},
            {"key",
             [&](const YAML::Node& v, const std::string& k) {
               out.key = rate_limit_key(v, k);
               out.key_line = line_of(v);
             }},
            {"scope", [&](const YAML::Node& v, const std::string& k) {
               out.scope = scalar(v, k);
               if (out.scope.find_first_of("{}") != std::string::npos) {
                 fail(k, v, "a scope cannot contain braces (Redis Cluster hash tags)");
               }
             }}});
  return out;
}

// Key templates are compiled after the whole route is read: "key" may come before "path".
struct PendingTemplate {
  std::string text;
  YAML::Node node;
  std::string key;
};

KeyTemplate compile_template(const PendingTemplate& pending, const RoutePattern& path) {
  std::string reason;
  auto compiled = KeyTemplate::compile(pending.text, path, reason);
  if (!compiled) {
    fail(pending.key, pending.node, reason);
  }
  return std::move(*compiled);
}

RouteConfig route(const YAML::Node& node, const std::string& key) {
  if (!node.IsMap()) {
    fail(key, node, "expected a mapping with path, key and ttl");
  }
  std::optional<RoutePattern> path;
  std::optional<PendingTemplate> key_template;
  std::vector<PendingTemplate> invalidate;
  Duration ttl{60'000};
  RouteConfig out;
  read_map(node, key,
           {{"path",
             [&](const YAML::Node& value, const std::string& k) {
               std::string reason;
               path = RoutePattern::compile(scalar(value, k), reason);
               if (!path) {
                 fail(k, value, reason);
               }
             }},
            {"key",
             [&](const YAML::Node& value, const std::string& k) {
               key_template = PendingTemplate{scalar(value, k), value, k};
             }},
            {"ttl", [&](const YAML::Node& value,
                        const std::string& k) { ttl = duration(value, k, Duration(1000)); }},
            {"query",
             [&](const YAML::Node& value, const std::string& k) {
               if (value.IsScalar()) {
                 if (value.Scalar() != "ignore") {
                   fail(k, value, "expected ignore, or a list of parameter names to key on");
                 }
                 out.query_params.clear();
                 return;
               }
               out.query_params = string_list(value, k);
             }},
            {"invalidate",
             [&](const YAML::Node& value, const std::string& k) {
               if (!value.IsSequence()) {
                 fail(k, value, "expected a list of key templates, e.g. [products:list]");
               }
               for (size_t i = 0; i < value.size(); ++i) {
                 const std::string item = k + "[" + std::to_string(i) + "]";
                 invalidate.push_back({scalar(value[i], item), value[i], item});
               }
             }},
            {"invalidate_on",
             [&](const YAML::Node& value, const std::string& k) {
               out.invalidate_on = string_list(value, k);
               for (const std::string& method : out.invalidate_on) {
                 if (!is_http_token(method) || method == "GET" || method == "HEAD") {
                   fail(k, value,
                        "'" + method + "' cannot invalidate (use PUT, PATCH, DELETE, POST)");
                 }
               }
             }},
            {"format",
             [&](const YAML::Node& value, const std::string& k) {
               const std::string text = scalar(value, k);
               if (text == "envelope") {
                 out.format = StoredFormat::Envelope;
               } else if (text == "body") {
                 out.format = StoredFormat::Body;
               } else {
                 fail(k, value, "expected envelope or body");
               }
             }},
            {"content_type",
             [&](const YAML::Node& value, const std::string& k) {
               out.content_type = scalar(value, k);
               if (out.content_type.find_first_of("\r\n") != std::string::npos) {
                 fail(k, value, "a header value cannot contain a line break");
               }
             }},
            {"allow_authorization",
             [&](const YAML::Node& value, const std::string& k) {
               out.allow_authorization = boolean(value, k);
             }},
            {"session",
             [&](const YAML::Node& value, const std::string& k) {
               const std::string text = scalar(value, k);
               if (text == "off" || text == "false") {
                 out.session = SessionUse::Off;
               } else if (text == "optional") {
                 out.session = SessionUse::Optional;
               } else if (text == "required") {
                 out.session = SessionUse::Required;
               } else {
                 fail(k, value, "expected off, optional or required");
               }
               out.session_line = line_of(value);
             }},
            {"shared", [&](const YAML::Node& value,
                           const std::string& k) { out.shared = boolean(value, k); }},
            {"per_user",
             [&](const YAML::Node& value, const std::string& k) {
               out.per_user = boolean(value, k);
               out.per_user_line = line_of(value);
             }},
            {"rate_limit", [&](const YAML::Node& value, const std::string& k) {
               out.rate_limit = route_rate_limit(value, k);
             }}});
  if (out.shared && out.per_user) {
    fail(key + ".per_user", node["per_user"], "a route's answers are shared or per user, not both");
  }
  if (out.per_user && out.format == StoredFormat::Body) {
    fail(key + ".per_user", node["per_user"],
         "format: body keys are the app's own; per-user entries need cachecar's envelope");
  }
  if (!path) {
    fail(key + ".path", node, "every route needs a path");
  }
  if (!key_template) {
    fail(key + ".key", node, "every route needs a key template, e.g. product:{id}");
  }
  out.path = std::move(*path);
  out.key = compile_template(*key_template, out.path);
  out.ttl = ttl;
  for (const PendingTemplate& pending : invalidate) {
    out.invalidate.push_back(compile_template(pending, out.path));
  }
  if (out.rate_limit && out.rate_limit->scope.empty()) {
    out.rate_limit->scope = default_scope(out.path.text());
  }
  return out;
}

// A header name cachecar sets: a token, so it cannot split the request it is added to.
bool valid_field_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), is_tchar);
}

// Fields whose meaning HTTP fixes, that cachecar sets itself, or that frame or route the
// request: never a user header.
bool is_reserved_field(const std::string& name) {
  static constexpr std::string_view kReserved[] = {
      "Host",
      "Cookie",
      "Authorization",
      "Connection",
      "Keep-Alive",
      "TE",
      "Trailer",
      "Transfer-Encoding",
      "Upgrade",
      "Content-Length",
      "Content-Type",
      "Expect",
      "Via",
      "X-Forwarded-For",
      "X-Forwarded-Proto",
      "X-Forwarded-Host",
      "Forwarded",
      "Range",
      "If-None-Match",
      "If-Modified-Since",
  };
  return starts_with_ci(name, "Proxy-") ||
         std::any_of(std::begin(kReserved), std::end(kReserved),
                     [&name](std::string_view reserved) { return iequals(name, reserved); });
}

void read_cache(const YAML::Node& node, const std::string& key, Config::Cache& cache) {
  read_map(
      node, key,
      {{"mode",
        [&](const YAML::Node& v, const std::string& k) {
          const std::string mode = scalar(v, k);
          if (mode == "routes") {
            cache.mode = CacheMode::Routes;
          } else if (mode == "http") {
            cache.mode = CacheMode::Http;
          } else {
            fail(k, v, "expected routes or http");
          }
        }},
       {"heuristic_max",
        [&](const YAML::Node& v, const std::string& k) {
          cache.heuristic_max = duration(v, k, Duration(0));
        }},
       {"max_ttl", [&](const YAML::Node& v,
                       const std::string& k) { cache.max_ttl = duration(v, k, Duration(1000)); }},
       {"revalidate_window",
        [&](const YAML::Node& v, const std::string& k) {
          cache.revalidate_window = duration(v, k, Duration(0));
        }},
       {"stale_if_error",
        [&](const YAML::Node& v, const std::string& k) {
          if (v.IsScalar() && (v.Scalar() == "off" || v.Scalar() == "false")) {
            cache.stale_if_error.reset();
            return;
          }
          cache.stale_if_error = duration(v, k, Duration(1000));
        }},
       {"cache_status",
        [&](const YAML::Node& v, const std::string& k) {
          const std::string value = v.IsScalar() ? v.Scalar() : std::string();
          if (value == "off" || value == "false") {
            cache.status_field = CacheStatusField::Off;
          } else if (value == "on" || value == "true") {
            cache.status_field = CacheStatusField::On;
          } else if (value == "with_key") {
            cache.status_field = CacheStatusField::WithKey;
          } else {
            fail(k, v, "expected on, off or with_key");
          }
        }},
       {"key_prefix",
        [&](const YAML::Node& v, const std::string& k) {
          cache.key_prefix = scalar(v, k);
          // Braces are Redis Cluster hash tags: allowed only as one whole "{tag}", which pins
          // every key to one slot on purpose.
          const std::string& prefix = cache.key_prefix;
          const size_t open = prefix.find('{');
          const size_t close = prefix.find('}');
          const bool no_braces = open == std::string::npos && close == std::string::npos;
          const bool one_tag = open != std::string::npos && close != std::string::npos &&
                               close > open + 1 && prefix.find_first_of("{}", open + 1) == close &&
                               prefix.find_first_of("{}", close + 1) == std::string::npos;
          if (!no_braces && !one_tag) {
            fail(k, v, "braces may only form one hash tag, e.g. \"{cache}:\"");
          }
        }},
       {"statuses",
        [&](const YAML::Node& v, const std::string& k) {
          if (!v.IsSequence()) {
            fail(k, v, "expected a list of statuses, e.g. [200, 301]");
          }
          cache.statuses.clear();
          for (size_t i = 0; i < v.size(); ++i) {
            const std::string item = k + "[" + std::to_string(i) + "]";
            const auto status = static_cast<int>(integer(v[i], item, 200, 599));
            if (status == 204 || status == 304) {
              fail(item, v[i], "204 and 304 have no body to store");
            }
            cache.statuses.push_back(status);
          }
        }},
       {"max_object_size",
        [&](const YAML::Node& v, const std::string& k) { cache.max_object_size = size(v, k, 0); }},
       {"respect_cache_control",
        [&](const YAML::Node& v, const std::string& k) {
          cache.respect_cache_control = boolean(v, k);
        }},
       {"on_invalidation_failure",
        [&](const YAML::Node& v, const std::string& k) {
          cache.on_invalidation_failure = invalidation_failure(v, k);
        }},
       {"invalidation_journal",
        [&](const YAML::Node& v, const std::string& k) {
          read_map(v, k, {{"max_keys", [&](const YAML::Node& v2, const std::string& k2) {
                             cache.journal_max_keys =
                                 static_cast<size_t>(integer(v2, k2, 1, 100'000'000));
                           }}});
        }},
       {"near",
        [&](const YAML::Node& v, const std::string& k) {
          if (v.IsScalar() && (v.Scalar() == "off" || v.Scalar() == "false")) {
            cache.near.enabled = false;
            return;
          }
          if (!v.IsMap()) {
            fail(k, v, "expected off, or {max_bytes: 32MiB, max_ttl: 10s, tracking: on}");
          }
          cache.near.enabled = true;
          read_map(v, k,
                   {{"max_bytes",
                     [&](const YAML::Node& v2, const std::string& k2) {
                       cache.near.max_bytes = size(v2, k2, 64 * 1024);
                     }},
                    {"max_ttl",
                     [&](const YAML::Node& v2, const std::string& k2) {
                       cache.near.max_ttl = duration(v2, k2, Duration(1));
                       // Longer than a day is no near cache; tracking off would serve stale
                       // that long.
                       if (cache.near.max_ttl > Duration(24 * 3600 * 1000)) {
                         fail(k2, v2, "must be at most 24h");
                       }
                     }},
                    {"tracking", [&](const YAML::Node& v2, const std::string& k2) {
                       cache.near.tracking = boolean(v2, k2);
                     }}});
        }},
       {"tags",
        [&](const YAML::Node& v, const std::string& k) {
          if (is_off(v)) {
            cache.tags.fields.clear();
            return;
          }
          read_map(v, k,
                   {{"fields",
                     [&](const YAML::Node& v2, const std::string& k2) {
                       cache.tags.fields = string_list(v2, k2);
                       for (const std::string& field : cache.tags.fields) {
                         if (!valid_field_name(field)) {
                           fail(k2, v2, "'" + field + "' is not a header field name");
                         }
                         // Stripped from answers: never a field HTTP or cachecar relies on.
                         static constexpr std::string_view kResponseFields[] = {"Vary",
                                                                                "ETag",
                                                                                "Cache-Control",
                                                                                "Expires",
                                                                                "Last-Modified",
                                                                                "Set-Cookie",
                                                                                "Location",
                                                                                "Content-Location",
                                                                                "Content-Encoding",
                                                                                "Date",
                                                                                "Age",
                                                                                "Cache-Status"};
                         if (is_reserved_field(field) ||
                             std::any_of(std::begin(kResponseFields), std::end(kResponseFields),
                                         [&field](std::string_view name) {
                                           return iequals(field, name);
                                         })) {
                           fail(k2, v2,
                                "'" + field +
                                    "' is a field HTTP or cachecar itself gives a meaning to");
                         }
                       }
                     }},
                    {"strip", [&](const YAML::Node& v2, const std::string& k2) {
                       cache.tags.strip = boolean(v2, k2);
                     }}});
        }},
       {"default", [&](const YAML::Node& v, const std::string& k) {
          if (v.IsScalar() && (v.Scalar() == "off" || v.Scalar() == "false")) {
            cache.default_ttl.reset();
            return;
          }
          if (!v.IsMap()) {
            fail(k, v, "expected off, or {ttl: 30s} to cache GETs no route matches");
          }
          Duration ttl{0};
          read_map(v, k, {{"ttl", [&](const YAML::Node& v2, const std::string& k2) {
                             ttl = duration(v2, k2, Duration(1000));
                           }}});
          if (ttl.count() == 0) {
            fail(k + ".ttl", v, "cache.default needs a ttl");
          }
          cache.default_ttl = ttl;
        }}});
}

void read_session(const YAML::Node& node, const std::string& key, Config::Session& session) {
  const auto text = [](std::string& out) {
    return [&out](const YAML::Node& v, const std::string& k) { out = scalar(v, k); };
  };
  read_map(node, key,
           {{"cookie_name",
             [&](const YAML::Node& v, const std::string& k) {
               session.cookie_name = scalar(v, k);
               if (!valid_field_name(session.cookie_name)) {
                 fail(k, v, "a cookie name is a token (no spaces, '=', ';' or quotes)");
               }
             }},
            {"key_prefix", text(session.key_prefix)},
            {"user_field",
             [&](const YAML::Node& v, const std::string& k) {
               session.user_field = scalar(v, k);
               if (session.user_field.empty()) {
                 fail(k, v, "expected a dotted path, e.g. passport.user");
               }
             }},
            {"user_header",
             [&](const YAML::Node& v, const std::string& k) {
               session.user_header = scalar(v, k);
               if (!valid_field_name(session.user_header) ||
                   session.user_header.find('_') != std::string::npos) {
                 // An underscore would be dropped on the way (http/headers.h: CVE-style
                 // ambiguity with '-'), so the upstream would never hear of the user.
                 fail(k, v, "not a header name cachecar forwards (letters, digits and '-')");
               }
               if (is_reserved_field(session.user_header)) {
                 fail(k, v, "a field HTTP or cachecar itself gives a meaning to");
               }
             }},
            {"secrets_file",
             [&](const YAML::Node& v, const std::string& k) {
               // Read after the environment: SESSION_SECRET, when set, wins unread.
               session.secrets_file = scalar(v, k);
               session.secrets_file_line = line_of(v);
             }},
            {"touch",
             [&](const YAML::Node& v, const std::string& k) { session.touch = boolean(v, k); }},
            {"secrets", [&](const YAML::Node& v, const std::string& k) {
               fail(k, v, "secrets are never written in this file: set SESSION_SECRET or "
                          "session.secrets_file");
             }}});
}

void read_redis_tls(const YAML::Node& node, const std::string& key, Config::Redis& redis) {
  TlsSettings& tls = redis.tls;
  const auto path = [](std::string& out) {
    return [&out](const YAML::Node& v, const std::string& k) { out = scalar(v, k); };
  };
  read_map(node, key,
           {{"ca_file", path(tls.ca_file)},
            {"cert_file", path(tls.cert_file)},
            {"key_file", path(tls.key_file)},
            {"server_name", path(tls.server_name)},
            {"insecure_skip_verify", [&](const YAML::Node& v, const std::string& k) {
               tls.insecure_skip_verify = boolean(v, k);
             }}});
  // Loaded here, where a file that cannot be used is named with its line; the URL may still
  // turn to rediss:// by REDIS_URL, so a plain URL does not discard the context.
  std::string error;
  redis.tls_context = TlsContext::create(tls, error);
  if (!redis.tls_context) {
    const size_t colon = error.find(':');
    const std::string field = colon == std::string::npos ? "" : error.substr(0, colon);
    const bool names_field = node.IsMap() && !field.empty() && node[field];
    fail(names_field ? child_key(key, field) : key, names_field ? node[field] : node,
         names_field ? error.substr(colon + 2) : error);
  }
  redis.tls_line = line_of(node);
}

void read_document(const YAML::Node& root, Config& config) {
  read_map(
      root, "",
      {
          {"listen",
           [&](const YAML::Node& v, const std::string& k) { config.listen = host_port(v, k); }},
          {"workers",
           [&](const YAML::Node& v, const std::string& k) {
             config.workers = static_cast<int>(integer(v, k, 1, 256));
           }},
          {"hosts",
           [&](const YAML::Node& v, const std::string& k) { config.hosts = host_list(v, k); }},
          {"upstream",
           [&](const YAML::Node& v, const std::string& k) {
             read_map(v, k,
                      {{"url",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          std::string reason;
                          auto url = parse_upstream_url(scalar(v2, k2), reason);
                          if (!url) {
                            fail(k2, v2, reason);
                          }
                          config.upstream.url = std::move(*url);
                        }},
                       {"connect_timeout",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          config.upstream.connect_timeout = duration(v2, k2, Duration(1));
                        }},
                       {"timeout",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          config.upstream.timeout = duration(v2, k2, Duration(1));
                        }},
                       {"max_idle_connections", [&](const YAML::Node& v2, const std::string& k2) {
                          config.upstream.max_idle_connections =
                              static_cast<int>(integer(v2, k2, 0, 100'000));
                        }}});
           }},
          {"redis",
           [&](const YAML::Node& v, const std::string& k) {
             read_map(v, k,
                      {{"url",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          std::string reason;
                          auto url = parse_redis_url(scalar(v2, k2), reason);
                          if (!url) {
                            fail(k2, v2, reason);
                          }
                          config.redis.url = std::move(*url);
                        }},
                       {"command_timeout",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          config.redis.command_timeout = duration(v2, k2, Duration(1));
                        }},
                       {"connect_timeout",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          config.redis.connect_timeout = duration(v2, k2, Duration(1));
                        }},
                       {"tls", [&](const YAML::Node& v2, const std::string& k2) {
                          read_redis_tls(v2, k2, config.redis);
                        }}});
           }},
          {"cache",
           [&](const YAML::Node& v, const std::string& k) { read_cache(v, k, config.cache); }},
          {"routes",
           [&](const YAML::Node& v, const std::string& k) {
             if (v.IsNull()) {
               return;
             }
             if (!v.IsSequence()) {
               fail(k, v, "expected a list of routes");
             }
             for (size_t i = 0; i < v.size(); ++i) {
               const std::string item_key = k + "[" + std::to_string(i) + "]";
               RouteConfig parsed = route(v[i], item_key);
               for (size_t j = 0; j < config.routes.size(); ++j) {
                 if (config.routes[j].path.text() == parsed.path.text()) {
                   fail(item_key + ".path", v[i], "same path as routes[" + std::to_string(j) + "]");
                 }
               }
               config.routes.push_back(std::move(parsed));
             }
           }},
          {"rate_limit", [&](const YAML::Node& v,
                             const std::string& k) { read_rate_limit(v, k, config.rate_limit); }},
          {"session",
           [&](const YAML::Node& v, const std::string& k) { read_session(v, k, config.session); }},
          {"admin",
           [&](const YAML::Node& v, const std::string& k) {
             read_map(v, k,
                      {{"listen",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          config.admin.listen = host_port(v2, k2);
                          config.admin.listen_line = line_of(v2);
                        }},
                       {"purge",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          if (v2.IsScalar() && v2.Scalar() == "auto") {
                            config.admin.purge.reset();
                          } else {
                            config.admin.purge = boolean(v2, k2);
                          }
                          config.admin.purge_line = line_of(v2);
                        }},
                       {"token", [&](const YAML::Node& v2, const std::string& k2) {
                          fail(k2, v2,
                               "the admin token is never written in this file: set "
                               "ADMIN_TOKEN");
                        }}});
           }},
          {"limits",
           [&](const YAML::Node& v, const std::string& k) {
             auto& limits = config.limits;
             read_map(v, k,
                      {{"max_header_bytes",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          limits.max_header_bytes = size(v2, k2, 1024);
                        }},
                       {"max_headers",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          limits.max_headers = static_cast<int>(integer(v2, k2, 1, 10'000));
                        }},
                       {"max_body_bytes",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          limits.max_body_bytes = size(v2, k2, 0);
                        }},
                       {"max_connections",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          limits.max_connections = static_cast<int>(integer(v2, k2, 1, 10'000'000));
                        }},
                       {"header_timeout",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          limits.header_timeout = duration(v2, k2, Duration(1));
                        }},
                       {"idle_timeout", [&](const YAML::Node& v2, const std::string& k2) {
                          limits.idle_timeout = duration(v2, k2, Duration(1));
                        }}});
           }},
          {"drain_timeout",
           [&](const YAML::Node& v, const std::string& k) {
             config.drain_timeout = duration(v, k, Duration(0));
           }},
          {"log",
           [&](const YAML::Node& v, const std::string& k) {
             read_map(v, k,
                      {{"level",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          config.log.level = scalar(v2, k2);
                          if (!valid_log_level(config.log.level)) {
                            fail(k2, v2, "expected one of: " + join(log_levels()));
                          }
                        }},
                       {"format",
                        [&](const YAML::Node& v2, const std::string& k2) {
                          const std::string text = scalar(v2, k2);
                          if (text == "text") {
                            config.log.format = LogFormat::Text;
                          } else if (text == "json") {
                            config.log.format = LogFormat::Json;
                          } else {
                            fail(k2, v2, "expected text or json");
                          }
                        }},
                       {"access", [&](const YAML::Node& v2, const std::string& k2) {
                          config.log.access = boolean(v2, k2);
                        }}});
           }},
      });
  if (config.cache.mode == CacheMode::Http) {
    for (size_t i = 0; i < config.routes.size(); ++i) {
      if (config.routes[i].format == StoredFormat::Body) {
        const YAML::Node item = root["routes"][i];
        fail("routes[" + std::to_string(i) + "].format", item["format"],
             "format: body keeps no headers to judge freshness by; not with cache.mode: http");
      }
    }
  }
}

// TLS settings with a plain redis:// URL would send the password in clear while the file
// says TLS: refused. rediss:// without a tls block verifies against the system's CAs.
void check_redis_tls(Config::Redis& redis) {
  if (!redis.url.tls) {
    if (redis.tls_context) {
      throw Invalid{{"redis.tls", redis.tls_line,
                     "set, but redis.url is not rediss:// (use rediss:// for TLS, or remove "
                     "redis.tls)"}};
    }
    return;
  }
  if (!redis.tls_context) {
    std::string error;
    redis.tls_context = TlsContext::create(redis.tls, error);
    if (!redis.tls_context) {
      throw Invalid{{"redis.url", 0, error}};
    }
  }
}

void apply_environment(Config& config, const EnvLookup& env) {
  std::string reason;
  if (auto value = env("REDIS_URL")) {
    auto url = parse_redis_url(*value, reason);
    if (!url) {
      fail_env("REDIS_URL", reason);
    }
    config.redis.url = std::move(*url);
  }
  if (auto value = env("UPSTREAM_URL")) {
    auto url = parse_upstream_url(*value, reason);
    if (!url) {
      fail_env("UPSTREAM_URL", reason);
    }
    config.upstream.url = std::move(*url);
  }
  if (auto value = env("LISTEN")) {
    auto address = parse_host_port(*value, reason);
    if (!address) {
      fail_env("LISTEN", reason);
    }
    config.listen = std::move(*address);
  }
  if (auto value = env("ADMIN_LISTEN")) {
    auto address = parse_host_port(*value, reason);
    if (!address) {
      fail_env("ADMIN_LISTEN", reason);
    }
    config.admin.listen = std::move(*address);
  }
  if (auto value = env("ADMIN_TOKEN")) {
    if (value->empty() || value->find_first_of("\r\n") != std::string::npos) {
      fail_env("ADMIN_TOKEN", "expected a token on one line");
    }
    config.admin.token = *value;
  }
  if (auto value = env("LOG_LEVEL")) {
    if (!valid_log_level(*value)) {
      fail_env("LOG_LEVEL", "expected one of: " + join(log_levels()));
    }
    config.log.level = *value;
  }
  if (auto value = env("SESSION_SECRET")) {
    std::vector<std::string> secrets;
    std::string_view rest = *value;
    while (true) {
      const size_t comma = rest.find(',');
      const std::string_view secret = rest.substr(0, comma);
      if (!secret.empty()) {
        secrets.emplace_back(secret);
      }
      if (comma == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(comma + 1);
    }
    if (secrets.empty()) {
      fail_env("SESSION_SECRET", "expected one secret, or several separated by commas");
    }
    config.session.secrets = std::move(secrets);
  }
}

// After the environment: the secrets from session.secrets_file unless SESSION_SECRET gave
// them, and a secret for every route that reads sessions.
void check_sessions(Config& config) {
  Config::Session& session = config.session;
  if (session.secrets.empty() && !session.secrets_file.empty()) {
    const auto fail_file = [&](const std::string& reason) {
      throw Invalid{{"session.secrets_file", session.secrets_file_line, reason}};
    };
    std::ifstream in(session.secrets_file);
    if (!in) {
      fail_file("cannot read " + session.secrets_file);
    }
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();  // a file written on Windows; any other byte may be the secret's
      }
      if (!line.empty()) {
        session.secrets.push_back(line);
      }
    }
    if (session.secrets.empty()) {
      fail_file(session.secrets_file + " holds no secret");
    }
  }
  if (!session.secrets.empty()) {
    return;
  }
  const std::string no_secret =
      "sessions need a secret: set SESSION_SECRET or session.secrets_file";
  if (config.rate_limit.enabled && config.rate_limit.key != RateLimitKey::Ip) {
    throw Invalid{{"rate_limit.key", config.rate_limit.key_line, no_secret}};
  }
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& route = config.routes[i];
    const std::string name = "routes[" + std::to_string(i) + "]";
    if (route.session != SessionUse::Off) {
      throw Invalid{{name + ".session", route.session_line, no_secret}};
    }
    if (route.per_user) {
      throw Invalid{{name + ".per_user", route.per_user_line, no_secret}};
    }
    if (route.rate_limit && route.rate_limit->key && *route.rate_limit->key != RateLimitKey::Ip) {
      throw Invalid{{name + ".rate_limit.key", route.rate_limit->key_line, no_secret}};
    }
  }
}

// Only an address literal says where a listener is: a name like "127.example" may not be.
bool loopback_host(const std::string& host) {
  if (host == "localhost") {
    return true;
  }
  const auto address = parse_ip(host);
  if (!address) {
    return false;
  }
  std::string reason;
  static const auto v4 = parse_cidr("127.0.0.0/8", reason);
  static const auto v6 = parse_cidr("::1/128", reason);
  return (v4 && v4->contains(*address)) || (v6 && v6->contains(*address));
}

// After the environment: purging from an address others can reach takes the token.
void check_admin(const Config& config) {
  if (config.admin.purge.value_or(false) && config.admin.token.empty() &&
      !loopback_host(config.admin.listen.host)) {
    throw Invalid{{"admin.purge", config.admin.purge_line,
                   "purge on a non-loopback admin.listen (" + config.admin.listen.to_string() +
                       ") needs a token: set ADMIN_TOKEN, or admin.purge: auto or false"}};
  }
}

// A YAML double-quoted scalar that reads back as exactly `text` (YAML would fold a raw line
// break into a space). JSON's string escapes are all valid in YAML double quotes.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  append_json_escaped(text, out);
  return out + "\"";
}

const char* algorithm_name(RateLimitAlgorithm algorithm) {
  return algorithm == RateLimitAlgorithm::SlidingWindow ? "sliding_window" : "fixed_window";
}

const char* rate_limit_key_name(RateLimitKey key) {
  switch (key) {
    case RateLimitKey::SessionUser:
      return "session_user";
    case RateLimitKey::SessionUserOrIp:
      return "session_user_or_ip";
    case RateLimitKey::Ip:
      break;
  }
  return "ip";
}

std::string cidrs(const std::vector<Cidr>& ranges) {
  std::string out = "[";
  for (size_t i = 0; i < ranges.size(); ++i) {
    out += (i == 0 ? "\"" : ", \"") + ranges[i].to_string() + "\"";
  }
  return out + "]";
}

}  // namespace

bool Config::Admin::purge_enabled() const {
  if (purge) {
    return *purge;
  }
  return !token.empty() || loopback_host(listen.host);
}

std::string ConfigError::describe(std::string_view file_name) const {
  std::string out(file_name);
  if (line > 0) {
    out += ":" + std::to_string(line);
  }
  out += ": ";
  if (!key.empty()) {
    out += key + ": ";
  }
  return out + reason;
}

std::variant<Config, ConfigError> parse_config(std::string_view yaml_text, const EnvLookup& env) {
  Config config;
  try {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml_text));
    } catch (const YAML::Exception& e) {
      return ConfigError{"", e.mark.is_null() ? 0 : e.mark.line + 1, "invalid YAML: " + e.msg};
    }
    read_document(root, config);
    apply_environment(config, env);
    check_redis_tls(config.redis);
    check_sessions(config);
    check_admin(config);
  } catch (const Invalid& invalid) {
    return invalid.error;
  } catch (const YAML::Exception& e) {
    return ConfigError{"", e.mark.is_null() ? 0 : e.mark.line + 1, e.msg};
  }
  return config;
}

std::string render_config(const Config& config) {
  std::ostringstream out;
  out << "listen: " << quoted(config.listen.to_string()) << "\n";
  out << "workers: " << config.workers << "\n";
  out << "hosts: [";
  for (size_t i = 0; i < config.hosts.size(); ++i) {
    out << (i == 0 ? "" : ", ") << quoted(config.hosts[i]);
  }
  out << "]\n";
  out << "upstream:\n";
  out << "  url: " << quoted(config.upstream.url.to_string()) << "\n";
  out << "  connect_timeout: " << format_duration(config.upstream.connect_timeout) << "\n";
  out << "  timeout: " << format_duration(config.upstream.timeout) << "\n";
  out << "  max_idle_connections: " << config.upstream.max_idle_connections << "\n";
  out << "redis:\n";
  out << "  url: " << quoted(config.redis.url.to_redacted_string()) << "\n";
  out << "  command_timeout: " << format_duration(config.redis.command_timeout) << "\n";
  out << "  connect_timeout: " << format_duration(config.redis.connect_timeout) << "\n";
  if (config.redis.url.tls) {
    const TlsSettings& tls = config.redis.tls;
    out << "  tls:\n";
    out << "    ca_file: " << quoted(tls.ca_file) << "\n";
    out << "    cert_file: " << quoted(tls.cert_file) << "\n";
    out << "    key_file: " << quoted(tls.key_file) << "\n";
    out << "    server_name: " << quoted(tls.server_name) << "\n";
    out << "    insecure_skip_verify: " << (tls.insecure_skip_verify ? "true" : "false") << "\n";
  }
  const auto& cache = config.cache;
  out << "cache:\n";
  out << "  mode: " << (cache.mode == CacheMode::Http ? "http" : "routes") << "\n";
  out << "  key_prefix: " << quoted(cache.key_prefix) << "\n";
  out << "  statuses: [";
  for (size_t i = 0; i < cache.statuses.size(); ++i) {
    out << (i == 0 ? "" : ", ") << cache.statuses[i];
  }
  out << "]\n";
  out << "  max_object_size: " << format_size(cache.max_object_size) << "\n";
  out << "  respect_cache_control: " << (cache.respect_cache_control ? "true" : "false") << "\n";
  out << "  on_invalidation_failure: "
      << (cache.on_invalidation_failure == InvalidationFailure::Reject ? "reject" : "journal")
      << "\n";
  out << "  invalidation_journal:\n    max_keys: " << cache.journal_max_keys << "\n";
  if (cache.tags.fields.empty()) {
    out << "  tags: off\n";
  } else {
    out << "  tags:\n    fields: [";
    for (size_t i = 0; i < cache.tags.fields.size(); ++i) {
      out << (i == 0 ? "" : ", ") << cache.tags.fields[i];
    }
    out << "]\n    strip: " << (cache.tags.strip ? "true" : "false") << "\n";
  }
  if (cache.near.enabled) {
    out << "  near:\n    max_bytes: " << format_size(cache.near.max_bytes) << "\n";
    out << "    max_ttl: " << format_duration(cache.near.max_ttl) << "\n";
    out << "    tracking: " << (cache.near.tracking ? "on" : "off") << "\n";
  } else {
    out << "  near: off\n";
  }
  out << "  heuristic_max: " << format_duration(cache.heuristic_max) << "\n";
  out << "  max_ttl: " << format_duration(cache.max_ttl) << "\n";
  out << "  revalidate_window: " << format_duration(cache.revalidate_window) << "\n";
  out << "  stale_if_error: "
      << (cache.stale_if_error ? format_duration(*cache.stale_if_error) : std::string("off"))
      << "\n";
  static constexpr const char* kStatusField[] = {"off", "on", "with_key"};
  out << "  cache_status: " << kStatusField[static_cast<size_t>(cache.cache_status())] << "\n";
  if (cache.default_ttl) {
    out << "  default:\n    ttl: " << format_duration(*cache.default_ttl) << "\n";
  } else {
    out << "  default: off\n";
  }
  if (config.routes.empty()) {
    out << "routes: []\n";
  } else {
    out << "routes:\n";
    for (const RouteConfig& r : config.routes) {
      out << "  - path: " << quoted(r.path.text()) << "\n";
      out << "    key: " << quoted(r.key.text()) << "\n";
      out << "    ttl: " << format_duration(r.ttl) << "\n";
      if (!r.query_params.empty()) {
        out << "    query: [";
        for (size_t i = 0; i < r.query_params.size(); ++i) {
          out << (i == 0 ? "" : ", ") << quoted(r.query_params[i]);
        }
        out << "]\n";
      }
      if (!r.invalidate.empty()) {
        out << "    invalidate: [";
        for (size_t i = 0; i < r.invalidate.size(); ++i) {
          out << (i == 0 ? "" : ", ") << quoted(r.invalidate[i].text());
        }
        out << "]\n";
      }
      out << "    invalidate_on: [";
      for (size_t i = 0; i < r.invalidate_on.size(); ++i) {
        out << (i == 0 ? "" : ", ") << r.invalidate_on[i];
      }
      out << "]\n";
      out << "    format: " << (r.format == StoredFormat::Body ? "body" : "envelope") << "\n";
      if (r.format == StoredFormat::Body) {
        out << "    content_type: " << quoted(r.content_type) << "\n";
      }
      out << "    allow_authorization: " << (r.allow_authorization ? "true" : "false") << "\n";
      if (r.session != SessionUse::Off) {
        out << "    session: " << (r.session == SessionUse::Required ? "required" : "optional")
            << "\n";
      }
      if (r.shared) {
        out << "    shared: true\n";
      }
      if (r.per_user) {
        out << "    per_user: true\n";
      }
      if (r.rate_limit && !r.rate_limit->enabled) {
        out << "    rate_limit: off\n";
      } else if (r.rate_limit) {
        out << "    rate_limit:\n";
        if (r.rate_limit->limit) {
          out << "      limit: " << *r.rate_limit->limit << "\n";
        }
        if (r.rate_limit->window) {
          out << "      window: " << format_duration(*r.rate_limit->window) << "\n";
        }
        if (r.rate_limit->algorithm) {
          out << "      algorithm: " << algorithm_name(*r.rate_limit->algorithm) << "\n";
        }
        if (r.rate_limit->key) {
          out << "      key: " << rate_limit_key_name(*r.rate_limit->key) << "\n";
        }
        out << "      scope: " << quoted(r.rate_limit->scope) << "\n";
      }
    }
  }
  const auto& limit = config.rate_limit;
  out << "rate_limit:\n";
  out << "  enabled: " << (limit.enabled ? "true" : "false") << "\n";
  out << "  limit: " << limit.limit << "\n";
  out << "  window: " << format_duration(limit.window) << "\n";
  out << "  algorithm: " << algorithm_name(limit.algorithm) << "\n";
  out << "  key_prefix: " << quoted(limit.key_prefix) << "\n";
  out << "  trusted_proxies: " << cidrs(limit.trusted_proxies) << "\n";
  out << "  allow: " << cidrs(limit.allow) << "\n";
  out << "  ipv6_prefix: " << limit.ipv6_prefix << "\n";
  out << "  on_redis_error: " << (limit.deny_on_redis_error ? "deny" : "allow") << "\n";
  out << "  sync: " << (limit.sync == RateLimitSync::Batched ? "batched" : "exact") << "\n";
  out << "  sync_interval: " << format_duration(limit.sync_interval) << "\n";
  out << "  local_budget: " << limit.local_budget << "\n";
  out << "  key: " << rate_limit_key_name(limit.key) << "\n";
  const Config::Session& session = config.session;
  out << "session:\n";
  out << "  cookie_name: " << quoted(session.cookie_name) << "\n";
  out << "  key_prefix: " << quoted(session.key_prefix) << "\n";
  out << "  user_field: " << quoted(session.user_field) << "\n";
  out << "  user_header: " << quoted(session.user_header) << "\n";
  out << "  touch: " << (session.touch ? "true" : "false") << "\n";
  // The secrets themselves never: only where they are read from.
  if (!session.secrets_file.empty()) {
    out << "  secrets_file: " << quoted(session.secrets_file) << "\n";
  }
  out << "admin:\n";
  out << "  listen: " << quoted(config.admin.listen.to_string()) << "\n";
  out << "  purge: " << (config.admin.purge ? (*config.admin.purge ? "true" : "false") : "auto")
      << "\n";
  out << "limits:\n";
  out << "  max_header_bytes: " << format_size(config.limits.max_header_bytes) << "\n";
  out << "  max_headers: " << config.limits.max_headers << "\n";
  out << "  max_body_bytes: " << format_size(config.limits.max_body_bytes) << "\n";
  out << "  max_connections: " << config.limits.max_connections << "\n";
  out << "  header_timeout: " << format_duration(config.limits.header_timeout) << "\n";
  out << "  idle_timeout: " << format_duration(config.limits.idle_timeout) << "\n";
  out << "drain_timeout: " << format_duration(config.drain_timeout) << "\n";
  out << "log:\n";
  out << "  level: " << config.log.level << "\n";
  out << "  format: " << (config.log.format == LogFormat::Json ? "json" : "text") << "\n";
  out << "  access: " << (config.log.access ? "true" : "false") << "\n";
  return out.str();
}

}  // namespace cachecar
