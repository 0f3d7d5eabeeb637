#include "cache/key.h"

#include <algorithm>

#include "redis/cluster_slots.h"

namespace cachecar {
namespace {

// Redis Cluster hashes only the text between the first '{' and the next '}', if non-empty.
bool has_hash_tag(std::string_view key) {
  const size_t open = key.find('{');
  if (open == std::string_view::npos) {
    return false;
  }
  const size_t close = key.find('}', open + 1);
  return close != std::string_view::npos && close > open + 1;
}

// Percent-encodes the braces in out[from..].
void escape_braces(std::string& out, size_t from) {
  // On every key built: a plain loop (find_first_of searches the set once per character).
  if (std::none_of(out.begin() + static_cast<std::ptrdiff_t>(from), out.end(),
                   [](char c) { return c == '{' || c == '}'; })) {
    return;
  }
  std::string escaped = out.substr(0, from);
  for (size_t i = from; i < out.size(); ++i) {
    if (out[i] == '{') {
      escaped += "%7B";
    } else if (out[i] == '}') {
      escaped += "%7D";
    } else {
      escaped += out[i];
    }
  }
  out.swap(escaped);
}

}  // namespace

std::string template_key(std::string_view prefix, const KeyTemplate& key_template,
                         const Captures& captures) {
  std::string key(prefix);
  key_template.render(captures, key);
  escape_braces(key, prefix.size());
  return key;
}

std::string keyed_query(const RouteConfig& route, std::string_view query) {
  std::string keyed;
  for (const std::string& wanted : route.query_params) {
    std::string_view rest = query;
    while (!rest.empty()) {
      const size_t amp = rest.find('&');
      const std::string_view pair = rest.substr(0, amp);
      const std::string_view name = pair.substr(0, pair.find('='));
      if (name == wanted) {
        keyed += keyed.empty() ? "" : "&";
        keyed += pair;
        break;
      }
      if (amp == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(amp + 1);
    }
  }
  return keyed;
}

namespace {

// `base_key` + "?" + `query` (braces escaped), in `base_key`'s slot: inside a hash tag made of
// the whole base key unless it has one already.
std::string variant_key(std::string base_key, std::string_view query) {
  std::string key;
  key.reserve(base_key.size() + query.size() + 3);
  if (!has_hash_tag(base_key)) {
    key += '{';
    key += base_key;
    key += '}';
  } else {
    key = std::move(base_key);
  }
  const size_t query_start = key.size();
  key += '?';
  key += query;
  escape_braces(key, query_start);
  return key;
}

// `key`, tagged to stay in its own slot, + `marker` + `digest`.
std::string digest_variant_key(std::string key, std::string_view marker, std::string_view digest) {
  std::string out;
  if (!has_hash_tag(key)) {
    out = "{" + key + "}";
  } else {
    out = std::move(key);
  }
  out += marker;
  out += digest;
  return out;
}

}  // namespace

std::string vary_variant_key(std::string key, std::string_view digest) {
  return digest_variant_key(std::move(key), "#vary=", digest);
}

std::string user_variant_key(std::string key, std::string_view digest) {
  return digest_variant_key(std::move(key), "#user=", digest);
}

std::string query_variant_key(std::string route_key, std::string_view keyed) {
  if (keyed.empty()) {
    return route_key;
  }
  return variant_key(std::move(route_key), keyed);
}

std::string route_cache_key(std::string_view prefix, const RouteConfig& route,
                            const Captures& captures, std::string_view query) {
  return query_variant_key(template_key(prefix, route.key, captures), keyed_query(route, query));
}

std::string default_cache_key(std::string_view prefix, std::string_view path,
                              std::string_view query) {
  std::string key(prefix);
  key += "path:";
  key += path;
  escape_braces(key, prefix.size());
  if (query.empty()) {
    return key;
  }
  return variant_key(std::move(key), query);
}

namespace {

// prefix + label + key, with a hash tag that puts it in the key's own slot (see key.h).
std::string companion_key(std::string_view prefix, std::string_view label, std::string_view key) {
  std::string out(prefix);
  out += label;
  if (has_hash_tag(key)) {
    out += key;
  } else {
    out += '{';
    out += key;
    out += '}';
  }
  return out;
}

}  // namespace

std::string guard_key_for(std::string_view prefix, std::string_view key) {
  return companion_key(prefix, "gen:", key);
}

std::string variants_key_for(std::string_view prefix, std::string_view key) {
  return companion_key(prefix, "variants:", key);
}

std::string fence_set_key_for(std::string_view prefix, std::string_view key) {
  return companion_key(prefix, "fences:", key);
}

std::string lease_key_for(std::string_view prefix, std::string_view key) {
  return companion_key(prefix, "lease:", key);
}

std::string tag_set_key_for(std::string_view prefix, std::string_view tag) {
  std::string out(prefix);
  out += "tag:{";
  out += tag;
  out += '}';
  return out;
}

std::string tag_purged_key_for(std::string_view prefix, std::string_view tag) {
  return tag_set_key_for(prefix, tag) + ":purged";
}

std::string epoch_key_for(std::string_view prefix) {
  // Companions carry a hash tag, so only a route key spelled "cachecar:epoch" could collide.
  std::string out(prefix);
  out += "cachecar:epoch";
  return out;
}

namespace {

std::string epoch_copy_key(std::string_view epoch_key, int slot) {
  // Whatever cache.key_prefix is, this copy is the one of the epoch_bump_keys() for `slot`,
  // so reading it is right even where a '{' in the prefix puts it in another slot.
  std::string out(epoch_key);
  out += '{';
  out += slot_hash_tag(slot);
  out += '}';
  return out;
}

}  // namespace

std::string epoch_read_key_for(std::string_view epoch_key, std::string_view guard_key,
                               bool per_slot) {
  if (!per_slot) {
    return std::string(epoch_key);
  }
  return epoch_copy_key(epoch_key, key_hash_slot(guard_key));
}

std::vector<std::string> epoch_bump_keys(std::string_view epoch_key, bool per_slot) {
  if (!per_slot) {
    return {std::string(epoch_key)};
  }
  std::vector<std::string> keys;
  keys.reserve(kClusterSlots + 1);
  // The epoch itself too, which cachecars before the copies read: a fleet halfway through an
  // upgrade still sees this one's bumps.
  keys.emplace_back(epoch_key);
  for (int slot = 0; slot < kClusterSlots; ++slot) {
    keys.push_back(epoch_copy_key(epoch_key, slot));
  }
  return keys;
}

bool is_epoch_key(std::string_view epoch_key, std::string_view key) {
  if (!key.starts_with(epoch_key)) {
    return false;
  }
  const std::string_view rest = key.substr(epoch_key.size());
  return rest.empty() || (rest.size() > 2 && rest.front() == '{' && rest.back() == '}');
}

std::string epoch_stamp_key_for(std::string_view prefix, std::string_view key) {
  return companion_key(prefix, "epoch:", key);
}

}  // namespace cachecar

namespace cachecar {

std::vector<std::string> tracked_prefixes(const Config& config) {
  const std::string& base = config.cache.key_prefix;
  std::vector<std::string> prefixes;
  // Query variants wrap their route key in a hash tag (see variant_key) unless the key has one.
  const std::string variant_start = has_hash_tag(base) ? "" : "{";
  for (const RouteConfig& route : config.routes) {
    const std::string& text = route.key.text();
    prefixes.push_back(base + text.substr(0, text.find('{')));
    if (!route.query_params.empty() && !variant_start.empty()) {
      prefixes.push_back(variant_start + prefixes.back());
    }
  }
  const bool http = config.cache.mode == CacheMode::Http;
  if (http && !variant_start.empty()) {
    // Vary variants wrap every key in a hash tag, a route's too.
    for (const RouteConfig& route : config.routes) {
      const std::string& text = route.key.text();
      prefixes.push_back(variant_start + base + text.substr(0, text.find('{')));
    }
  }
  if (config.cache.default_ttl || http) {
    prefixes.push_back(base + "path:");
    if (!variant_start.empty()) {
      prefixes.push_back(variant_start + base + "path:");
    }
  }
  prefixes.push_back(epoch_key_for(base));
  std::sort(prefixes.begin(), prefixes.end());
  std::vector<std::string> disjoint;
  for (std::string& prefix : prefixes) {
    // Sorted, a prefix comes right before the strings it starts, so comparing with the last
    // one kept is enough.
    if (!disjoint.empty() && prefix.starts_with(disjoint.back())) {
      continue;
    }
    disjoint.push_back(std::move(prefix));
  }
  return disjoint;
}

}  // namespace cachecar
