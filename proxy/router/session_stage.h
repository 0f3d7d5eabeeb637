#pragma once
// The session stage (issue 17): the session the Express app keeps in Redis (express-session
// with connect-redis), read in the request's one batch with the limiter and the lookup, on the
// routes that use it and for requests limited or cached per user (whose limit and lookup then
// wait for it: the exchange's second batch). Only a cookie whose signature one of the configured
// secrets verifies costs a Redis read; the key's existence is the truth (connect-redis's touch only
// renews the expiry, so the stored cookie.expires may lag behind).
//
//   required: no valid session with a user → 401 {"error":"authentication required"}, or 503
//             when Redis cannot say; the upstream is not contacted.
//   optional: a valid session names its user to the upstream; none is fine.
// Either way the upstream hears of a user only from cachecar: a client's own copy of the user
// header is removed from every request.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "admin/metrics.h"
#include "config/config.h"
#include "http/message.h"
#include "redis/batch.h"
#include "router/stage.h"

namespace cachecar {

// Only cachecar names a user to the upstream: `request`'s own copy of session.user_header goes,
// and `user`, when there is one, is named.
void name_session_user(Headers& request, const Config& config,
                       const std::optional<std::string>& user);

class SessionStage final : private BatchedStage {
 public:
  // Reads the cookie whenever a secret is configured: a signed-in request is kept from the
  // cache on routes that do not say how to cache it. The session itself is read on a route
  // that uses it, or when `wants_user` (the request's rate limit or cache key is its user's).
  // Requires: `config` outlives the stage.
  void begin(const Config& config, const RouteConfig* route, const Headers& request,
             bool wants_user);
  // A signed session cookie came with the request (its session may still be gone).
  bool has_signed_cookie() const { return signed_; }
  // The session is read in this request's batch.
  bool reads_session() const { return !key_.empty(); }
  void add_commands(RedisBatch& batch);
  // Decides from this stage's replies in `batch_replies` (empty: Redis was not asked or did
  // not answer), and counts what the session said in `metrics`.
  std::optional<Refusal> finish(const std::vector<RedisReplyPtr>& batch_replies,
                                WorkerMetrics& metrics);
  // The request about to be forwarded: the client's user header removed (on every request,
  // whatever its route), the session's user added where the route uses sessions.
  void prepare_upstream_request(Headers& request, const Config& config) const {
    name_session_user(request, config, upstream_user());
  }
  const std::optional<std::string>& user() const { return user_; }
  // The user the upstream is told of: the session's, where the route uses sessions.
  const std::optional<std::string>& upstream_user() const;
  // The session was to be read and Redis could not say what it holds.
  bool unavailable() const { return unavailable_; }
  // What renews the session when cachecar answers the request itself, as express-session's
  // touch would have renewed it had the app answered (connect-redis: EXPIRE by
  // cookie.originalMaxAge, rounded up to seconds); nullopt when there is nothing to renew, or
  // session.touch is off.
  std::optional<RedisCommand> touch_command() const;

 private:
  const Config* config_ = nullptr;
  SessionUse use_ = SessionUse::Off;
  bool signed_ = false;
  std::string key_;     // sess:<sid> of a verified cookie, when the session is read
  bool found_ = false;  // the session exists
  bool unavailable_ = false;
  std::optional<std::string> user_;
  std::optional<int64_t> max_age_ms_;
};

}  // namespace cachecar
