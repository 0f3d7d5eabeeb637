#include "cache/plan.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "cache/key.h"
#include "cache/vary.h"
#include "http/byte_range.h"
#include "http/chars.h"

namespace cachecar {
namespace {

const RouteConfig* match_route(const Config& config, std::string_view path, Captures& captures) {
  for (const RouteConfig& route : config.routes) {
    if (route.path.match(path, captures)) {
      return &route;
    }
  }
  return nullptr;
}

// The keys a write to `path` makes stale: its route's key and `invalidate` list, or without a
// route its cache.default key; each once, with its guard, variant set and fence set.
void add_write_keys(const RouteConfig* route, const Captures& captures, std::string_view path,
                    const std::string& prefix, RequestPlan& plan) {
  auto add = [&plan, &prefix](std::string key) {
    if (std::find(plan.invalidate_keys.begin(), plan.invalidate_keys.end(), key) !=
        plan.invalidate_keys.end()) {
      return;
    }
    plan.invalidate_guards.push_back(guard_key_for(prefix, key));
    plan.invalidate_variants.push_back(variants_key_for(prefix, key));
    plan.invalidate_fences.push_back(fence_set_key_for(prefix, key));
    plan.invalidate_keys.push_back(std::move(key));
  };
  if (route == nullptr) {
    add(default_cache_key(prefix, path, {}));
    return;
  }
  add(template_key(prefix, route->key, captures));
  for (const KeyTemplate& extra : route->invalidate) {
    add(template_key(prefix, extra, captures));
  }
}

void bypass(RequestPlan& plan, const RouteConfig* route, std::string_view reason) {
  plan.action = CacheAction::Bypass;
  plan.route = route;
  plan.reason = reason;
}

// The path of a URI reference in Location or Content-Location when it names a resource of
// `host` over plain HTTP (cachecar's clients speak HTTP): "/p" or "http://host/p". nullopt for
// another origin, which is not this cache's to invalidate (§4.4: a denial of service).
std::optional<std::string_view> same_origin_path(std::string_view uri, std::string_view host) {
  uri = uri.substr(0, uri.find('#'));
  if (uri.starts_with("/") && !uri.starts_with("//")) {
    return uri;
  }
  constexpr std::string_view kScheme = "http://";
  if (uri.size() < kScheme.size() || !iequals(uri.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  uri.remove_prefix(kScheme.size());
  const size_t slash = uri.find('/');
  const std::string_view authority = uri.substr(0, slash);
  if (host.empty() || !iequals(authority, host)) {
    return std::nullopt;
  }
  return slash == std::string_view::npos ? std::string_view("/") : uri.substr(slash);
}

}  // namespace

void add_response_invalidations(const ResponseHead& response, const RequestHead& request,
                                const Config& config, RequestPlan& plan) {
  if (!plan.http_semantics) {
    return;
  }
  const std::string_view host = request.headers.get("Host").value_or("");
  for (const std::string_view field : {"Location", "Content-Location"}) {
    const auto value = response.headers.get(field);
    const auto path = value ? same_origin_path(trim_ows(*value), host) : std::nullopt;
    if (!path) {
      continue;
    }
    // The resource named, whatever methods its route invalidates on: it is this answer that
    // says it changed.
    const std::string_view named = path->substr(0, path->find('?'));
    Captures captures;
    const RouteConfig* route = match_route(config, named, captures);
    add_write_keys(route, captures, named, config.cache.key_prefix, plan);
  }
}

namespace {

// `plan` for an entry of its key's own (`key`, in the key's slot): guarded by the key's guard and
// listed in its variant set, so that whatever invalidates the key deletes the entry too.
RequestPlan variant_plan(const RequestPlan& plan, std::string key, std::string_view key_prefix) {
  RequestPlan variant = plan;
  if (variant.variants_key.empty()) {
    variant.variants_key = variants_key_for(key_prefix, plan.key);
  }
  variant.key = std::move(key);
  return variant;
}

}  // namespace

RequestPlan vary_variant_plan(const RequestPlan& plan, std::string_view digest,
                              std::string_view key_prefix) {
  return variant_plan(plan, vary_variant_key(plan.key, digest), key_prefix);
}

RequestPlan per_user_plan(const RequestPlan& plan, std::string_view user,
                          std::string_view key_prefix) {
  return variant_plan(plan, user_variant_key(plan.key, selector_digest(user)), key_prefix);
}

RequestPlan plan_request(const RequestHead& head, const Config& config) {
  RequestPlan plan;
  plan_request(head, config, plan);
  return plan;
}

void plan_request(const RequestHead& head, const Config& config, RequestPlan& plan) {
  const std::string_view path = head.path();
  const std::string_view query = head.query();
  const std::string& prefix = config.cache.key_prefix;
  Captures captures;
  const RouteConfig* route = match_route(config, path, captures);
  const bool read = head.method == "GET" || head.method == "HEAD";
  const bool http = config.cache.mode == CacheMode::Http;

  if (!read) {
    // A route invalidates on the methods it lists. Without a route, cache.default's entry for
    // the path (and its query variants) is what any unsafe method makes stale: RFC 9111 §4.4,
    // "a cache MUST invalidate the target URI ... in response to an unsafe request method
    // (including methods whose safety is unknown)"; a POST included.
    const bool invalidates =
        route != nullptr ? std::find(route->invalidate_on.begin(), route->invalidate_on.end(),
                                     head.method) != route->invalidate_on.end()
                         : (config.cache.default_ttl.has_value() || http) &&
                               !is_safe_method(head.method);
    if (!invalidates) {
      bypass(plan, route, "method does not read or invalidate");
      return;
    }
    plan.action = CacheAction::Invalidate;
    plan.route = route;
    add_write_keys(route, captures, path, prefix, plan);
    plan.epoch_key = epoch_key_for(prefix);
    plan.http_semantics = http;
    return;
  }

  if (route == nullptr && !config.cache.default_ttl && !http) {
    bypass(plan, nullptr, "no route matches");
    return;
  }
  // Mode http stores an answer to Authorization only where RFC 9111 §3.5 allows it.
  if (!http && head.headers.contains("Authorization") &&
      (route == nullptr || !route->allow_authorization)) {
    bypass(plan, route, "Authorization without allow_authorization");
    return;
  }
  if (head.has_body() && (head.framing != BodyFraming::ContentLength || head.content_length > 0)) {
    // A body could change the upstream's answer without changing the key.
    bypass(plan, route, "a read with a body");
    return;
  }
  if (head.headers.contains("Range")) {
    if (!http || !servable_range(head)) {
      bypass(plan, route, "Range request");
      return;
    }
    plan.byte_range = true;
  }
  plan.action = CacheAction::Lookup;
  plan.route = route;
  if (route != nullptr) {
    plan.ttl = route->ttl;
    const std::string keyed = keyed_query(*route, query);
    std::string route_key = template_key(prefix, route->key, captures);
    if (!keyed.empty()) {
      // A variant: guarded by its route key, and listed under it for the writes to find.
      plan.guard_key = guard_key_for(prefix, route_key);
      plan.variants_key = variants_key_for(prefix, route_key);
    }
    plan.key = query_variant_key(std::move(route_key), keyed);
    if (keyed != query) {
      plan.upstream_target = path;
      if (!keyed.empty()) {
        plan.upstream_target += '?';
        plan.upstream_target += keyed;
      }
    }
  } else {
    plan.key = default_cache_key(prefix, path, query);
    plan.ttl = config.cache.default_ttl.value_or(config.cache.max_ttl);
    if (!query.empty()) {
      const std::string path_key = default_cache_key(prefix, path, {});
      plan.guard_key = guard_key_for(prefix, path_key);
      plan.variants_key = variants_key_for(prefix, path_key);
    }
  }
  if (http) {
    plan.http_semantics = true;
    plan.ttl = config.cache.max_ttl;
  }
  if (plan.guard_key.empty()) {
    plan.guard_key = guard_key_for(prefix, plan.key);
  }
  plan.epoch_key = epoch_key_for(prefix);
  plan.epoch_read_key =
      epoch_read_key_for(plan.epoch_key, plan.guard_key, config.redis.url.uses_cluster());
  if (route != nullptr && route->format == StoredFormat::Body) {
    plan.epoch_stamp_key = epoch_stamp_key_for(prefix, plan.key);
  }
}

}  // namespace cachecar
