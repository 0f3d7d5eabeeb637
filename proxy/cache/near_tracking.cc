#include "cache/near_tracking.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "cache/key.h"

namespace cachecar {
namespace {

constexpr uint64_t kPingIntervalMs = 1000;

}  // namespace

NearTracking::NearTracking(uv_loop_t* loop, RedisClient& redis, const Config& config)
    : loop_(loop),
      prefixes_(tracked_prefixes(config)),
      epoch_key_(epoch_key_for(config.cache.key_prefix)),
      cache_(config.cache.near.max_bytes, config.cache.near.max_ttl),
      state_(config.cache.near.tracking ? State::Waiting : State::Untracked) {
  if (state_ == State::Untracked) {
    return;
  }
  ping_timer_ = make_timer(loop_, this);
  redis.watch_nodes([this](RedisNode& data) { add_link(data); },
                    [this](RedisNode& data) { remove_link(data); });
}

NearTracking::~NearTracking() { stop(); }

void NearTracking::start() {
  if (state_ == State::Untracked || stopped_) {
    return;
  }
  started_ = true;
  for (auto& [data, link] : links_) {
    link->start();
  }
  // A connection that stopped answering is found by the PING's command timeout: the client
  // then drops it, and the link's loss empties the near cache.
  uv_timer_start(
      ping_timer_.get(), [](uv_timer_t* t) { owner_of<NearTracking>(t)->ping(); }, kPingIntervalMs,
      kPingIntervalMs);
}

void NearTracking::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  ping_timer_.reset();
  for (auto& [data, link] : links_) {
    link->stop();
  }
  cache_.clear();
}

void NearTracking::apply(const Config& config) {
  if (!config.cache.near.enabled || config.cache.near.tracking != (state_ != State::Untracked)) {
    // The invalidation connections and the tracking they carry are set up at start.
    spdlog::warn(
        "near cache: turning it or its tracking on or off takes effect at the next "
        "restart");
  }
  cache_.set_limits(config.cache.near.max_bytes, config.cache.near.max_ttl);
  std::vector<std::string> prefixes = tracked_prefixes(config);
  if (prefixes == prefixes_ || state_ == State::Untracked || state_ == State::Refused) {
    return;
  }
  prefixes_ = std::move(prefixes);
  epoch_key_ = epoch_key_for(config.cache.key_prefix);
  if (state_ == State::Tracking) {
    spdlog::info("near cache: the routes' key prefixes changed; emptied until Redis tracks them");
  }
  state_ = State::Waiting;
  cache_.clear();
  for (auto& [data, link] : links_) {
    link->retrack();
  }
}

void NearTracking::ping() {
  for (auto& [data, link] : links_) {
    link->ping();
  }
}

void NearTracking::add_link(RedisNode& data) {
  TrackingLink::Listener& listener = *this;  // a private base: converted here, not in make_unique
  auto link = std::make_unique<TrackingLink>(loop_, data, listener, prefixes_);
  if (started_ && !stopped_ && state_ != State::Refused) {
    link->start();
  }
  links_[&data] = std::move(link);
  update_state("a Redis server joined");  // its keys are not tracked yet
}

void NearTracking::remove_link(RedisNode& data) {
  const auto found = links_.find(&data);
  if (found == links_.end()) {
    return;
  }
  found->second->stop();
  links_.erase(found);
  // Announcements it would have carried may be lost: its keys are elsewhere now.
  cache_.clear();
  update_state("a Redis server left");
}

void NearTracking::update_state(const char* why) {
  if (stopped_ || state_ == State::Untracked || state_ == State::Refused) {
    return;
  }
  const bool all_tracking =
      !links_.empty() && std::all_of(links_.begin(), links_.end(), [](const auto& entry) {
        return entry.second->state() == TrackingLink::State::Tracking;
      });
  const State next = all_tracking ? State::Tracking : State::Waiting;
  if (next == state_) {
    return;
  }
  if (next == State::Tracking) {
    spdlog::info(
        "near cache: Redis tracks its keys on {} server(s) ({} prefix(es)); serving hits locally",
        links_.size(), prefixes_.size());
  } else {
    spdlog::warn("near cache: emptied, {}; hits go to Redis until tracking is back", why);
    cache_.clear();
  }
  state_ = next;
}

void NearTracking::on_link_tracking(TrackingLink& /*link*/) {
  // Reads sent before tracking was on were never tracked: no mark of theirs may be honoured.
  cache_.clear();
  update_state("tracking confirmed");
}

void NearTracking::on_link_lost(TrackingLink& link, const char* why) {
  cache_.clear();
  const std::string reason = std::string(why) + " (" + link.server().to_string() + ")";
  update_state(reason.c_str());
}

void NearTracking::on_link_refused(TrackingLink& link, std::string_view command,
                                   std::string_view answer) {
  if (state_ == State::Refused) {
    return;
  }
  spdlog::warn("near cache: off, Redis at {} refused {} ({}); every hit is read from Redis",
               link.server().to_string(), command, answer);
  state_ = State::Refused;
  cache_.clear();
  ping_timer_.reset();
  for (auto& [data, other] : links_) {
    other->stop();  // the refusing link stopped itself; links are destroyed only with this
  }
}

void NearTracking::on_link_message(const redisReply& keys) {
  if (keys.type != REDIS_REPLY_ARRAY) {
    cache_.clear();  // a null payload: FLUSHALL or FLUSHDB
    return;
  }
  for (size_t i = 0; i < keys.elements; ++i) {
    const std::string_view key = reply_text(keys.element[i]);
    if (is_epoch_key(epoch_key_, key)) {
      cache_.clear();  // every entry stored before the bump is a miss now
      return;
    }
    cache_.invalidate(key);
  }
}

}  // namespace cachecar
