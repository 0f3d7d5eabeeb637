#include "cache/tracking_link.h"

namespace cachecar {
namespace {

constexpr uint64_t kSubscribeTag = 1;
constexpr uint64_t kPingTag = 2;
// A tracking call's tag carries the client id it redirects to: its answer counts only if
// that is still the invalidation connection's.
constexpr uint64_t kTrackingTagBit = uint64_t{1} << 63;
constexpr std::string_view kInvalidateChannel = "__redis__:invalidate";

// The data connection's settings (its server, or its Sentinel locator, TLS and timeouts), for
// a connection of its own to the same server.
RedisSettings invalidation_settings(RedisSettings settings) {
  settings.role = settings.role.empty() ? "invalidations" : settings.role + " invalidations";
  return settings;
}

}  // namespace

TrackingLink::TrackingLink(uv_loop_t* loop, RedisNode& data, Listener& listener,
                           const std::vector<std::string>& prefixes)
    : data_(data),
      invalidations_(loop, invalidation_settings(data.settings())),
      listener_(listener),
      prefixes_(prefixes) {
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
}

TrackingLink::~TrackingLink() { stop(); }

void TrackingLink::start() { invalidations_.start(); }

void TrackingLink::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  invalidations_.stop();
}

void TrackingLink::ping() {
  if (stopped_ || state_ == State::Refused) {
    return;
  }
  std::vector<RedisCommand> commands;
  commands.push_back({{"PING"}});
  invalidations_.submit(std::move(commands), *this, kPingTag);
}

void TrackingLink::retrack() {
  if (stopped_ || state_ == State::Refused) {
    return;
  }
  state_ = State::Waiting;
  enable_tracking();
}

void TrackingLink::on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) {
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

void TrackingLink::on_subscribed(std::vector<RedisReplyPtr>& replies) {
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

void TrackingLink::enable_tracking() {
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

void TrackingLink::on_tracking_answer(std::vector<RedisReplyPtr>& replies, uint64_t client_id) {
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
  state_ = State::Tracking;
  listener_.on_link_tracking(*this);
}

void TrackingLink::on_message(const redisReply& message) {
  if (stopped_ || reply_text(message.element[1]) != kInvalidateChannel) {
    return;
  }
  listener_.on_link_message(*message.element[2]);
}

void TrackingLink::lose(const char* why) {
  if (stopped_ || state_ == State::Refused) {
    return;
  }
  state_ = State::Waiting;
  listener_.on_link_lost(*this, why);
}

void TrackingLink::refuse(std::string_view command, std::string_view answer) {
  state_ = State::Refused;
  invalidations_.stop();
  listener_.on_link_refused(*this, command, answer);
}

}  // namespace cachecar
