#include "router/background_refresh.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <utility>

#include "cache/cache_store.h"
#include "cache/cacheability.h"
#include "cache/key.h"
#include "cache/recording.h"
#include "cache/scripts.h"
#include "cache/surrogate_keys.h"
#include "http/headers.h"
#include "http/writer.h"
#include "redis/redis_client.h"
#include "router/session_stage.h"
#include "router/stored_copy.h"
#include "upstream/pool.h"
#include "upstream/upstream_connection.h"
#include "uv/unix_clock.h"

namespace cachecar {
namespace {

int64_t unix_now_seconds() { return unix_now_ms() / 1000; }

}  // namespace

class BackgroundRefresh final : private RedisWaiter, private UpstreamHandler {
 public:
  BackgroundRefresh(BackgroundRefreshes& owner, std::shared_ptr<const Config> config,
                    std::string key, const RequestPlan& plan, const RequestHead& request,
                    const Headers& vary_request, std::string_view client_address,
                    const CachedView& entry, const HttpVerdict& verdict, std::string seen_guard,
                    uint64_t epoch, const std::optional<std::string>& user)
      : owner_(owner),
        context_(owner.context_),
        config_(std::move(config)),
        key_(std::move(key)),
        plan_(plan),
        request_(request),
        vary_request_(vary_request),
        client_address_(client_address),
        seen_guard_(std::move(seen_guard)),
        epoch_(epoch),
        user_(user),
        looked_up_unix_ms_(tag_check_lookup_ms(unix_now_ms(), entry.stale_since_ms)) {
    copy_.keep(entry, verdict);
  }

  ~BackgroundRefresh() { stop(); }
  BackgroundRefresh(const BackgroundRefresh&) = delete;
  BackgroundRefresh& operator=(const BackgroundRefresh&) = delete;

  const std::string& key() const { return key_; }

  // Takes the fleet's lease on the key; the upstream is asked only with it.
  void start() {
    const auto lease_ms = config_->upstream.connect_timeout + config_->upstream.timeout;
    std::vector<RedisCommand> commands;
    commands.push_back({{"SET", lease_key_for(config_->cache.key_prefix, key_), "1", "NX", "PX",
                         std::to_string(lease_ms.count())}});
    call_ = context_.cache->available()
                ? context_.cache->redis().submit(std::move(commands), *this, 0)
                : nullptr;
    if (call_ == nullptr) {
      end();
    }
  }

  // No callback reaches this refresh afterwards.
  void stop() {
    if (call_ != nullptr) {
      context_.cache->redis().cancel(call_);
      call_ = nullptr;
    }
    if (upstream_ != nullptr) {
      upstream_->detach();
      upstream_ = nullptr;
    }
  }

 private:
  void on_redis_done(uint64_t /*tag*/, std::vector<RedisReplyPtr>& replies) override {
    call_ = nullptr;
    const redisReply* reply = replies.empty() ? nullptr : replies[0].get();
    if (reply == nullptr || reply->type != REDIS_REPLY_STATUS) {
      end();  // another replica holds the lease (nil), or Redis did not say
      return;
    }
    forward();
  }

  void forward() {
    RequestHead head = request_;
    head.method = "GET";
    head.framing = BodyFraming::None;
    head.content_length = 0;
    head.headers.remove("Range");
    head.headers.remove("If-Range");
    copy_.ask_about_copy(head.headers);
    name_session_user(head.headers, *config_, user_);
    prepare_upstream_request_headers(head.headers, ForwardingInfo{client_address_, "http"});
    const std::string& prefix = config_->upstream.url.path_prefix;
    const std::string& target = plan_.upstream_target.empty() ? head.target : plan_.upstream_target;
    std::string bytes;
    write_request_head(head, prefix.empty() ? target : prefix + target, bytes);
    upstream_ = context_.upstream->acquire(false);
    if (upstream_ == nullptr) {
      end();
      return;
    }
    request_time_ = unix_now_seconds();
    upstream_->attach(*this, false);
    upstream_->send(std::move(bytes));
    if (upstream_ != nullptr) {
      upstream_->finish_request();
    }
  }

  void on_upstream_head(ResponseHead& head) override {
    const int64_t now = unix_now_seconds();
    prepare_client_response_headers(head.headers);
    std::vector<std::string> tags = take_tags(head.headers, config_->cache.tags);
    if (copy_.absorbs(head, request_.headers, request_time_, now, config_->cache)) {
      copy_.tag_confirmed(std::move(tags));
      return;  // confirmed by a 304 (stored on completion), or a failure: the entry stays
    }
    const StoreDecision decision =
        decide_storage(head, plan_, request_.headers, config_->cache, request_time_, now);
    if (!decision.store) {
      spdlog::debug("refresh of {}: not stored: {}", key_, decision.reason);
      return;
    }
    recording_.begin(head.status, stored_head_lines(head.headers), decision.ttl,
                     config_->cache.max_object_size, decision.initial_age * 1000);
    recording_.set_tags(std::move(tags));
  }

  void on_upstream_body(std::string_view chunk) override {
    if (recording_.recording()) {
      recording_.add_body(chunk);
    }
  }

  void on_upstream_complete() override {
    upstream_ = nullptr;
    if (copy_.use() == StoredCopy::Use::Confirmed) {
      if (copy_.refreshed_storable()) {
        store(*copy_.response(), copy_.refreshed_ttl());
      }
    } else if (auto response = recording_.finish(unix_now_ms())) {
      store(*response, recording_.ttl());
    }
    end();
  }

  void on_upstream_error(UpstreamError error, bool /*retryable*/) override {
    upstream_ = nullptr;
    recording_.cancel();
    spdlog::debug("refresh of {}: upstream failed ({}); the stale entry stays", key_,
                  label(error));
    end();
  }

  void on_upstream_drained() override {}

  void store(const CachedResponse& response, Duration ttl) {
    if (context_.cache->available()) {
      context_.cache->store_response(plan_, vary_request_, seen_guard_, epoch_, response, ttl,
                                     config_->cache.key_prefix, looked_up_unix_ms_);
    }
  }

  void end() { owner_.finished(*this); }

  BackgroundRefreshes& owner_;
  WorkerContext& context_;
  const std::shared_ptr<const Config> config_;  // the request's: plan_.route points into it
  const std::string key_;
  const RequestPlan plan_;
  const RequestHead request_;
  const Headers vary_request_;
  const std::string client_address_;
  const std::string seen_guard_;
  const uint64_t epoch_;
  const std::optional<std::string> user_;
  // About when the request that started this refresh read seen_guard_ (just before, in the
  // same turn of the loop; the tag check allows for more skew than that).
  const int64_t looked_up_unix_ms_;
  StoredCopy copy_;
  ResponseRecording recording_;
  RedisClient::Call* call_ = nullptr;
  UpstreamConnection* upstream_ = nullptr;
  int64_t request_time_ = 0;
};

BackgroundRefreshes::BackgroundRefreshes(WorkerContext& context) : context_(context) {}

BackgroundRefreshes::~BackgroundRefreshes() { stop(); }

void BackgroundRefreshes::start(std::shared_ptr<const Config> config, const RequestPlan& plan,
                                const std::string& lookup_key, const RequestHead& request,
                                const Headers& vary_request, std::string_view client_address,
                                const CachedView& entry, const HttpVerdict& verdict,
                                std::string seen_guard, uint64_t epoch,
                                const std::optional<std::string>& user) {
  finished_.clear();
  if (running_.contains(lookup_key)) {
    return;
  }
  auto refresh = std::make_unique<BackgroundRefresh>(*this, std::move(config), lookup_key, plan,
                                                     request, vary_request, client_address, entry,
                                                     verdict, std::move(seen_guard), epoch, user);
  BackgroundRefresh& started = *refresh;
  running_.emplace(lookup_key, std::move(refresh));
  started.start();
}

void BackgroundRefreshes::finished(BackgroundRefresh& refresh) {
  auto found = running_.find(refresh.key());
  if (found == running_.end() || found->second.get() != &refresh) {
    return;
  }
  finished_.push_back(std::move(found->second));
  running_.erase(found);
}

void BackgroundRefreshes::stop() {
  for (auto& [key, refresh] : running_) {
    refresh->stop();
  }
  running_.clear();
  finished_.clear();
}

}  // namespace cachecar
