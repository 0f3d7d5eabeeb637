#include "cache/lookup.h"

#include <algorithm>
#include <utility>

namespace cachecar {
namespace {

// Element `index` of an MGET reply, or nullptr when the reply is not that array.
const redisReply* mget_element(const redisReply* array, size_t index) {
  if (array == nullptr || array->type != REDIS_REPLY_ARRAY || array->elements <= index) {
    return nullptr;
  }
  return array->element[index];
}

bool is_bare_body(const RequestPlan& plan) {
  return plan.route != nullptr && plan.route->format == StoredFormat::Body;
}

}  // namespace

std::vector<RedisCommand> lookup_commands(const RequestPlan& plan) {
  std::vector<RedisCommand> commands;
  commands.reserve(2);
  // One command for both: the guard carries the key's hash tag, so they share a slot even on
  // a Redis Cluster, and MGET costs Redis less than two GETs.
  commands.push_back({{"MGET", plan.key, plan.guard_key}});
  if (is_bare_body(plan)) {
    commands.push_back({{"PTTL", plan.key}});
  }
  return commands;
}

LookupResult read_lookup(const RequestPlan& plan, StageReplies replies, int64_t now_ms) {
  LookupResult result;
  if (replies.empty()) {
    return result;  // no answer: a miss that may not be stored
  }
  const redisReply* mget = replies[0].get();
  const redisReply* value = mget_element(mget, 0);
  if (value == nullptr && is_error(mget)) {
    value = mget;  // the whole MGET failed (e.g. OOM, a replica that is loading)
  }
  // A miss keeps the guard it saw; a hit never needs it, so it is not copied on the hot path.
  auto miss = [&result, mget](std::string problem) {
    const redisReply* guard = mget_element(mget, 1);
    if (is_nil(guard)) {
      result.seen_guard = std::string();
    } else if (guard != nullptr && guard->type == REDIS_REPLY_STRING) {
      result.seen_guard = std::string(reply_text(guard));
    }  // else: an error; without the guard a fill could not be made safe
    result.problem = std::move(problem);
    return std::move(result);
  };
  if (is_nil(value)) {
    return miss({});
  }
  if (value == nullptr || value->type != REDIS_REPLY_STRING) {
    std::string problem = "Redis answered ";
    problem += is_error(value) ? reply_text(value) : std::string_view("a non-string value");
    problem += "; treated as a miss";
    return miss(std::move(problem));
  }
  if (is_bare_body(plan)) {
    // No stored time in a bare body: the age is how much of the TTL has run out.
    const auto remaining_ms = replies.size() > 1 ? reply_integer(replies[1].get()) : std::nullopt;
    if (remaining_ms && *remaining_ms >= 0) {
      result.age_seconds = std::max<int64_t>(0, (plan.ttl.count() - *remaining_ms) / 1000);
    }
    result.kind = LookupResult::Kind::Hit;
    result.bare_body_head = "Content-Type: " + plan.route->content_type + "\r\n";
    result.entry = CachedView{200, {}, reply_text(value), 0};
    return result;
  }
  std::string error;
  auto decoded = view_envelope(reply_text(value), error);
  if (!decoded) {
    return miss(error + "; treated as a miss and never served");
  }
  result.kind = LookupResult::Kind::Hit;
  result.entry = *decoded;
  result.age_seconds = (now_ms - decoded->stored_at_ms) / 1000;
  return result;
}

}  // namespace cachecar
