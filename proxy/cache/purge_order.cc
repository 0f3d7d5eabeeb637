#include "cache/purge_order.h"

#include <nlohmann/json.hpp>
#include <unordered_set>

#include "cache/key.h"
#include "cache/scripts.h"

namespace cachecar {
namespace {

bool read_strings(const nlohmann::json& value, const char* name, std::vector<std::string>& out,
                  std::string& error) {
  if (!value.is_array()) {
    error = std::string("\"") + name + "\" must be a list of strings";
    return false;
  }
  for (const auto& item : value) {
    if (!item.is_string() || item.get_ref<const std::string&>().empty()) {
      error = std::string("\"") + name + "\" must hold non-empty strings";
      return false;
    }
    out.push_back(item.get<std::string>());
  }
  return true;
}

}  // namespace

std::string PurgeOrder::kind() const {
  std::string out;
  const auto add = [&out](bool present, const char* name) {
    if (present) {
      out += out.empty() ? "" : "+";
      out += name;
    }
  };
  add(!keys.empty(), "keys");
  add(prefix.has_value(), "prefix");
  add(!tags.empty(), "tags");
  return out;
}

std::optional<PurgeOrder> parse_purge_order(std::string_view json, std::string& error) {
  const nlohmann::json body = nlohmann::json::parse(json, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    error = "expected a JSON object: {\"keys\": [...]}, {\"prefix\": \"...\"} or {\"tags\": [...]}";
    return std::nullopt;
  }
  PurgeOrder order;
  for (const auto& [name, value] : body.items()) {
    if (name == "keys") {
      if (!read_strings(value, "keys", order.keys, error)) {
        return std::nullopt;
      }
    } else if (name == "tags") {
      if (!read_strings(value, "tags", order.tags, error)) {
        return std::nullopt;
      }
    } else if (name == "prefix") {
      if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
        error = "\"prefix\" must be a non-empty string";
        return std::nullopt;
      }
      order.prefix = value.get<std::string>();
    } else if (name == "soft") {
      if (!value.is_boolean()) {
        error = "\"soft\" must be true or false";
        return std::nullopt;
      }
      order.soft = value.get<bool>();
    } else {
      error = "unknown member \"" + name + "\": expected keys, prefix, tags or soft";
      return std::nullopt;
    }
  }
  if (order.keys.empty() && order.tags.empty() && !order.prefix) {
    error = "nothing to purge: name keys, a prefix or tags";
    return std::nullopt;
  }
  if (order.keys.size() + order.tags.size() > kMaxPurgeItems) {
    error = "more than " + std::to_string(kMaxPurgeItems) + " keys and tags: send several purges";
    return std::nullopt;
  }
  return order;
}

OwedInvalidation invalidation_of(std::string_view key_prefix, std::string key) {
  OwedInvalidation owed;
  owed.guard = guard_key_for(key_prefix, key);
  owed.variants = variants_key_for(key_prefix, key);
  owed.fences = fence_set_key_for(key_prefix, key);
  owed.key = std::move(key);
  return owed;
}

std::string base_key_of(std::string_view key) {
  if (!key.empty() && key.front() == '{') {
    const size_t close = key.find('}');
    if (close != std::string_view::npos && close + 1 < key.size() &&
        (key[close + 1] == '?' || key[close + 1] == '#')) {
      return std::string(key.substr(1, close - 1));
    }
  }
  // A key whose own prefix carries the hash tag ("{app}:search?q=a"): its variants follow it.
  const size_t tag_end = !key.empty() && key.front() == '{' ? key.find('}') : 0;
  const size_t mark = key.find_first_of("?#", tag_end == std::string_view::npos ? 0 : tag_end);
  return std::string(key.substr(0, mark));
}

bool is_companion_key(std::string_view key, std::string_view key_prefix) {
  if (key.substr(0, key_prefix.size()) != key_prefix) {
    return false;
  }
  const std::string_view rest = key.substr(key_prefix.size());
  if (rest == "cachecar:epoch") {
    return true;
  }
  // Every companion carries a hash tag after its label (cache/key.h).
  for (std::string_view label : {"gen:", "variants:", "fences:", "lease:", "epoch:", "tag:"}) {
    if (rest.substr(0, label.size()) == label && rest.find('{') != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

std::string glob_escaped(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out;
}

std::optional<OwedInvalidation> invalidation_of_member(std::string_view key_prefix,
                                                       std::string_view member) {
  const size_t newline = member.find('\n');
  if (newline == std::string_view::npos || newline == 0 || newline + 1 == member.size()) {
    return std::nullopt;
  }
  // The entry's own key (a variant is deleted alone), with the guard its fill checks and the
  // fences that stand on it: its route key's, for a variant.
  const std::string_view key = member.substr(0, newline);
  OwedInvalidation owed = invalidation_of(key_prefix, std::string(key));
  owed.guard = std::string(member.substr(newline + 1));
  owed.fences = fence_set_key_for(key_prefix, base_key_of(key));
  return owed;
}

void add_invalidation(RequestPlan& plan, OwedInvalidation owed) {
  plan.invalidate_keys.push_back(std::move(owed.key));
  plan.invalidate_guards.push_back(std::move(owed.guard));
  plan.invalidate_variants.push_back(std::move(owed.variants));
  plan.invalidate_fences.push_back(std::move(owed.fences));
}

bool read_tag_members(const std::vector<RedisReplyPtr>& replies, size_t tag_count,
                      std::string_view key_prefix,
                      const std::function<void(OwedInvalidation)>& each) {
  bool all_read = replies.size() == tag_count;
  for (const RedisReplyPtr& reply : replies) {
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
      all_read = false;
      continue;
    }
    for (size_t i = 0; i < reply->elements; ++i) {
      if (auto owed = invalidation_of_member(key_prefix, reply_text(reply->element[i]))) {
        each(std::move(*owed));
      }
    }
  }
  return all_read;
}

RequestPlan journal_form(const RequestPlan& plan, std::string_view key_prefix) {
  RequestPlan out;
  out.epoch_key = plan.epoch_key.empty() ? epoch_key_for(key_prefix) : plan.epoch_key;
  std::unordered_set<std::string> guards;
  for (size_t i = 0; i < plan.invalidate_keys.size(); ++i) {
    const std::string base = base_key_of(plan.invalidate_keys[i]);
    OwedInvalidation owed = base == plan.invalidate_keys[i]
                                ? OwedInvalidation{plan.invalidate_keys[i],
                                                   plan.invalidate_guards[i],
                                                   plan.invalidate_variants[i],
                                                   plan.invalidate_fences[i],
                                                   {}}
                                : invalidation_of(key_prefix, base);
    if (guards.insert(owed.guard).second) {
      add_invalidation(out, std::move(owed));
    }
  }
  return out;
}

RedisCommand purge_tag_command(std::string_view key_prefix, std::string_view tag, bool soft) {
  RedisCommand command;
  command.script = &kPurgeTagScript;
  command.num_keys = 2;
  // The purge's time is kept longer than any fill may take (kMaxFillAge), so every fill that
  // began before it finds it.
  command.args = {tag_set_key_for(key_prefix, tag), tag_purged_key_for(key_prefix, tag),
                  std::to_string(kGuardLifetime.count()), soft ? "soft" : ""};
  return command;
}

}  // namespace cachecar
