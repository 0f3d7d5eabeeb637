#include "cache/lookup.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "cache/scripts.h"

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

// An epoch as stored: absent is 0. nullopt for anything but a decimal count.
std::optional<uint64_t> read_epoch(const redisReply* reply) {
  if (is_nil(reply)) {
    return 0;
  }
  if (reply == nullptr || reply->type != REDIS_REPLY_STRING) {
    return std::nullopt;
  }
  const std::string_view text = reply_text(reply);
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

bool is_fence(const redisReply* guard) {
  return guard != nullptr && guard->type == REDIS_REPLY_STRING &&
         reply_text(guard).starts_with(kFenceTokenPrefix);
}

}  // namespace

std::vector<RedisCommand> lookup_commands(const RequestPlan& plan, bool want_ttl) {
  std::vector<RedisCommand> commands;
  commands.reserve(2);
  // One command for all: MGET costs Redis less than separate GETs. On a Redis Cluster every
  // key of it is in the guard's slot, the epoch's copy too, so it goes to one primary whole.
  RedisCommand mget{{"MGET", plan.key, plan.guard_key, plan.epoch_read_key}};
  if (!plan.epoch_stamp_key.empty()) {
    mget.args.push_back(plan.epoch_stamp_key);
  }
  commands.push_back(std::move(mget));
  if (is_bare_body(plan) || want_ttl) {
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
  const redisReply* guard = mget_element(mget, 1);
  // PTTL's answer when it was asked; -1 (no expiry) and -2 (gone) read as unknown, like none.
  int64_t remaining_ms = -1;
  if (replies.size() > 1) {
    remaining_ms = reply_integer(replies[1].get()).value_or(-1);
  }
  const std::optional<uint64_t> epoch = read_epoch(mget_element(mget, 2));
  // A miss keeps the guard it saw; a hit never needs it, so it is not copied on the hot path.
  auto note_guard = [&result, guard, &epoch] {
    if (!epoch || is_fence(guard)) {
      // Unknown epoch: nothing says which bumps a fill would come after. A fence: the key's
      // write may be committing upstream right now.
    } else if (is_nil(guard)) {
      result.seen_guard = std::string();
    } else if (guard != nullptr && guard->type == REDIS_REPLY_STRING) {
      result.seen_guard = std::string(reply_text(guard));
    }  // else: an error; without the guard a fill could not be made safe
    result.epoch = epoch.value_or(0);
  };
  auto miss = [&result, &note_guard](std::string problem) {
    note_guard();
    result.problem = std::move(problem);
    return std::move(result);
  };
  if (!is_nil(value) && (value == nullptr || value->type != REDIS_REPLY_STRING)) {
    std::string problem = "Redis answered ";
    problem += is_error(value) ? reply_text(value) : std::string_view("a non-string value");
    problem += "; treated as a miss";
    return miss(std::move(problem));
  }
  if (!epoch) {
    return miss("the cache epoch " + plan.epoch_read_key +
                " is not a number; nothing is served or stored until it is deleted");
  }
  if (is_nil(value) || is_fence(guard)) {
    return miss({});  // nothing stored, or fenced by a write in progress
  }
  if (plan.http_semantics && reply_text(value).starts_with(kVaryIndexMagic)) {
    auto vary = decode_vary_index(reply_text(value));
    if (!vary) {
      return miss("a malformed vary index; treated as a miss");
    }
    note_guard();  // the variant's fill must find it too
    result.kind = LookupResult::Kind::Varies;
    result.vary = std::move(*vary);
    return result;
  }
  if (is_bare_body(plan)) {
    if (read_epoch(mget_element(mget, 3)) != epoch || carries_soft_purge_mark(reply_text(value))) {
      return miss({});  // stored before the last epoch bump (or a stamp not ours)
    }
    // No stored time in a bare body: the age is how much of the TTL has run out.
    if (remaining_ms >= 0) {
      result.age_seconds = std::max<int64_t>(0, (plan.ttl.count() - remaining_ms) / 1000);
      result.ttl_left_ms = remaining_ms;
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
  if (decoded->epoch != *epoch) {
    return miss({});  // stored before the last epoch bump
  }
  result.after_purge_ms = decoded->stale_since_ms;
  if (decoded->stale_since_ms != 0 && !plan.http_semantics) {
    return miss({});  // soft-purged: only mode http knows how a stale entry may still serve
  }
  result.kind = LookupResult::Kind::Hit;
  result.entry = *decoded;
  result.age_seconds = (now_ms - decoded->stored_at_ms) / 1000;
  if (plan.http_semantics) {
    note_guard();  // a hit the origin must be asked about is refilled
  }
  if (remaining_ms >= 0) {
    result.ttl_left_ms = remaining_ms;
  }
  return result;
}

void judge_http_hit(LookupResult& result, const Headers& request, int64_t now_ms,
                    const Config::Cache& cache) {
  if (result.kind != LookupResult::Kind::Hit) {
    return;
  }
  // Parsed once: the verdict and the client's condition both read the stored fields.
  const Headers stored = parse_head_lines(result.entry.head_lines);
  result.http = judge_stored(result.entry, stored, request, now_ms / 1000, cache);
  result.age_seconds = result.http.age;
  if (result.http.kind == HttpVerdict::Kind::MustValidate) {
    result.kind = LookupResult::Kind::Stale;
    return;
  }
  result.refresh = result.http.kind == HttpVerdict::Kind::WhileRevalidating;
  if (client_has_current(stored, request)) {
    result.kind = LookupResult::Kind::NotModified;
  }
}

}  // namespace cachecar
