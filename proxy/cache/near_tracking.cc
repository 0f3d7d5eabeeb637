#include "cache/near_tracking.h"

#include <spdlog/spdlog.h>

#include "cache/key.h"

namespace cachecar {
namespace {

constexpr uint64_t kSubscribeTag = 1;
constexpr uint64_t kPingTag = 2;
// A tracking call's tag carries the client id it redirects to: its answer counts only if
// that is still the invalidation connection's.
constexpr uint64_t kTrackingTagBit = uint64_t{1} << 63;
constexpr uint64_t kPingIntervalMs = 1000;
constexpr std::string_view kInvalidateChannel = "__redis__:invalidate";

RedisSettings invalidation_settings(RedisSettings settings) {
  settings.role = "invalidations";
  return settings;
}

}  // namespace

NearTracking::NearTracking(uv_loop_t* loop, RedisClient& data, RedisSettings settings,
                           const Config& config)
    : data_(data),
      invalidations_(loop, invalidation_settings(std::move(settings))),
      prefixes_(tracked_prefixes(config)),
      epoch_key_(epoch_key_for(config.cache.key_prefix)),
      cache_(config.cache.near.max_bytes, config.cache.near.max_ttl),
      state_(config.cache.near.tracking ? State::Waiting : State::Untracked) {
  if (state_ == State::Untracked) {
    return;
  }
  invalidations_.on_ready([this] {
    std::vector<RedisCommand> commands;
    commands.push_back({{"CLIENT", "ID"}});
    commands.push_back({{"SUBSCRIBE", std::string(kInvalidateChannel)}});
    invalidations_.submit(std::move(commands), *this, kSubscribeTag);
  });
  invalidations_.on_lost([this] {
    client_id_ = 0;  // a new connection has a new id, which tracking must redirect to
    lose("the invalidation connection was lost");
  });
  invalidations_.on_message([this](const redisReply& message) { on_message(message); });
  data_.on_ready([this] { enable_tracking(); });
  data_.on_lost([this] { lose("the data connection was lost"); });
  ping_timer_ = make_timer(loop, this);
}

NearTracking::~NearTracking() { stop(); }

void NearTracking::start() {
  if (state_ == State::Untracked) {
    return;
  }
  invalidations_.start();
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
  invalidations_.stop();
  cache_.clear();
}

void NearTracking::apply(const Config& config) {
  if (!config.cache.near.enabled || config.cache.near.tracking != (state_ != State::Untracked)) {
    // The invalidation connection and the tracking it carries are set up at start.
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
  enable_tracking();
}

void NearTracking::ping() {
  // A connection that stopped answering is found by the PING's command timeout: the client
  // then drops it, and lose() empties the near cache.
  std::vector<RedisCommand> commands;
  commands.push_back({{"PING"}});
  invalidations_.submit(std::move(commands), *this, kPingTag);
}

void NearTracking::on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) {
  if (stopped_ || state_ == State::Refused) {
    return;
  }
  if (tag == kSubscribeTag) {
    on_subscribed(replies);
  } else if ((tag & kTrackingTagBit) != 0) {
    on_tracking_answer(replies, tag & ~kTrackingTagBit);
  }
  // A PING's answer says only that the connection stands; its failure is seen as a loss.
}

void NearTracking::on_subscribed(std::vector<RedisReplyPtr>& replies) {
  if (replies.size() != 2) {
    return;  // the connection failed; on_lost said so
  }
  const auto id = reply_integer(replies[0].get());
  if (!id || *id <= 0) {
    refuse("CLIENT ID", is_error(replies[0].get()) ? reply_text(replies[0].get()) : "no id");
    return;
  }
  const redisReply* subscribed = replies[1].get();
  if (subscribed->type != REDIS_REPLY_ARRAY || subscribed->elements < 1 ||
      reply_text(subscribed->element[0]) != "subscribe") {
    refuse("SUBSCRIBE", is_error(subscribed) ? reply_text(subscribed) : "an unexpected answer");
    return;
  }
  client_id_ = *id;
  enable_tracking();
}

void NearTracking::enable_tracking() {
  if (stopped_ || state_ == State::Refused || client_id_ == 0 || !data_.ready()) {
    return;  // the other half calls again when it is ready
  }
  // Off first: a connection that still tracks for a former redirect target would refuse a
  // second "on" with other options. No NOLOOP: every write cachecar makes is a script, and
  // Redis 7.0 announces a script's writes even to the connection that ran it.
  RedisCommand on{{"CLIENT", "TRACKING", "on", "REDIRECT", std::to_string(client_id_), "BCAST"}};
  for (const std::string& prefix : prefixes_) {
    if (!prefix.empty()) {
      on.args.push_back("PREFIX");
      on.args.push_back(prefix);
    }
  }
  std::vector<RedisCommand> commands;
  commands.push_back({{"CLIENT", "TRACKING", "off"}});
  commands.push_back(std::move(on));
  data_.submit(std::move(commands), *this, kTrackingTagBit | static_cast<uint64_t>(client_id_));
}

void NearTracking::on_tracking_answer(std::vector<RedisReplyPtr>& replies, uint64_t client_id) {
  if (replies.size() != 2) {
    return;  // the data connection failed; it calls enable_tracking() again when ready
  }
  for (const RedisReplyPtr& reply : replies) {
    if (is_error(reply.get())) {
      refuse("CLIENT TRACKING", reply_text(reply.get()));
      return;
    }
  }
  if (static_cast<uint64_t>(client_id_) != client_id) {
    return;  // redirected to an invalidation connection that has gone since
  }
  // Reads sent before tracking was on were never tracked: no mark of theirs may be honoured.
  cache_.clear();
  if (state_ != State::Tracking) {
    spdlog::info("near cache: Redis tracks its keys ({} prefix(es)); serving hits locally",
                 prefixes_.size());
  }
  state_ = State::Tracking;
}

void NearTracking::on_message(const redisReply& message) {
  if (reply_text(message.element[1]) != kInvalidateChannel) {
    return;
  }
  const redisReply* keys = message.element[2];
  if (keys->type != REDIS_REPLY_ARRAY) {
    cache_.clear();  // a null payload: FLUSHALL or FLUSHDB
    return;
  }
  for (size_t i = 0; i < keys->elements; ++i) {
    const std::string_view key = reply_text(keys->element[i]);
    if (key == epoch_key_) {
      cache_.clear();  // every entry stored before the bump is a miss now
      return;
    }
    cache_.invalidate(key);
  }
}

void NearTracking::lose(const char* why) {
  if (stopped_ || state_ == State::Refused) {
    return;
  }
  if (state_ == State::Tracking) {
    spdlog::warn("near cache: emptied, {}; hits go to Redis until tracking is back", why);
  }
  state_ = State::Waiting;
  cache_.clear();
}

void NearTracking::refuse(std::string_view command, std::string_view answer) {
  spdlog::warn("near cache: off, Redis refused {} ({}); every hit is read from Redis", command,
               answer);
  state_ = State::Refused;
  cache_.clear();
  ping_timer_.reset();
  invalidations_.stop();
}

}  // namespace cachecar
