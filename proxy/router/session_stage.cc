#include "router/session_stage.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "session/session_cookie.h"
#include "session/session_record.h"

namespace cachecar {

void SessionStage::begin(const Config& config, const RouteConfig* route, const Headers& request,
                         bool wants_user) {
  config_ = &config;
  use_ = route != nullptr ? route->session : SessionUse::Off;
  const Config::Session& session = config.session;
  if (session.secrets.empty()) {
    return;  // sessions are not configured: cookies mean nothing to cachecar
  }
  const auto cookie = find_cookie(request, session.cookie_name);
  if (!cookie) {
    return;
  }
  const auto sid = unsign_session_cookie(*cookie, session.secrets);
  if (!sid) {
    spdlog::debug("session cookie with a signature no configured secret made");
    return;
  }
  signed_ = true;
  if (use_ != SessionUse::Off || wants_user) {
    key_ = session.key_prefix + *sid;
  }
}

void SessionStage::add_commands(RedisBatch& batch) {
  if (!key_.empty()) {
    add_to(batch, RedisCommand{{"GET", key_}});
  }
}

std::optional<Refusal> SessionStage::finish(const std::vector<RedisReplyPtr>& batch_replies,
                                            WorkerMetrics& metrics) {
  const Refusal unauthenticated{401, "authentication required", false};
  if (key_.empty()) {
    return use_ == SessionUse::Required ? std::optional(unauthenticated) : std::nullopt;
  }
  const StageReplies replies = own_replies(batch_replies);
  const redisReply* reply = replies.empty() ? nullptr : replies[0].get();
  if (is_error(reply)) {
    // WRONGTYPE, say, when session.key_prefix collides with other keys: worth a line, not one
    // per request.
    static thread_local uint64_t last_logged_ms = 0;
    const uint64_t now_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now().time_since_epoch())
            .count());
    if (last_logged_ms == 0 || now_ms - last_logged_ms > 10'000) {
      last_logged_ms = now_ms;
      spdlog::warn("reading a session, Redis answered {}", reply_text(reply));
    }
  }
  if (reply == nullptr || is_error(reply)) {
    metrics.session_unavailable.add();
    unavailable_ = true;
    // The session may well be valid: a store that cannot say is not a stranger at the door.
    return use_ == SessionUse::Required
               ? std::optional(Refusal{503, "session store unavailable", false})
               : std::nullopt;
  }
  if (reply->type == REDIS_REPLY_STRING) {
    if (auto record = read_session_record(reply_text(reply), config_->session.user_field)) {
      found_ = true;
      user_ = std::move(record->user);
      max_age_ms_ = record->original_max_age_ms;
    } else {
      spdlog::warn("a stored session is not a JSON object; treated as no session");
    }
  }
  (user_ ? metrics.session_user : metrics.session_no_user).add();
  if (use_ == SessionUse::Required && !user_) {
    return unauthenticated;  // destroyed, expired, or never logged in
  }
  return std::nullopt;
}

void name_session_user(Headers& request, const Config& config,
                       const std::optional<std::string>& user) {
  request.remove(config.session.user_header);
  if (user) {
    request.add(config.session.user_header, *user);
  }
}

const std::optional<std::string>& SessionStage::upstream_user() const {
  static const std::optional<std::string> kNobody;
  return use_ != SessionUse::Off ? user_ : kNobody;
}

std::optional<RedisCommand> SessionStage::touch_command() const {
  if (!found_ || !max_age_ms_ || !config_->session.touch) {
    return std::nullopt;  // a browser-session cookie has no maxAge: connect-redis's own ttl
  }
  const int64_t seconds = (*max_age_ms_ + 999) / 1000;
  return RedisCommand{{"EXPIRE", key_, std::to_string(seconds)}};
}

}  // namespace cachecar
