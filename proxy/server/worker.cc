#include "server/worker.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "cache/cache_store.h"
#include "cache/coalescer.h"
#include "cache/key.h"
#include "cache/near_tracking.h"
#include "log/logging.h"
#include "ratelimit/batched_limiter.h"
#include "ratelimit/limiter.h"
#include "redis/redis_client.h"
#include "redis/redis_factory.h"
#include "redis/sentinel.h"
#include "router/background_refresh.h"
#include "router/session_touches.h"
#include "server/client_connection.h"
#include "upstream/pool.h"

namespace cachecar {
namespace {

constexpr int kListenBacklog = 511;
constexpr uint64_t kHeartbeatMs = 1000;

uint64_t steady_now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

UpstreamSettings upstream_settings(const Config& config) {
  UpstreamSettings settings;
  settings.connect_timeout = config.upstream.connect_timeout;
  settings.timeout = config.upstream.timeout;
  settings.max_idle = config.upstream.max_idle_connections;
  return settings;
}

}  // namespace

Worker::Worker(int index, std::shared_ptr<const Config> config, int listen_fd,
               std::optional<SocketAddress> upstream_address, ProcessState& process,
               std::function<void()> on_exit)
    : index_(index),
      listen_fd_(listen_fd),
      upstream_address_(std::move(upstream_address)),
      process_(process),
      on_exit_(std::move(on_exit)),
      read_buffer_(kReadBufferSize) {
  context_.config = std::move(config);
  context_.index = index;
  context_.metrics = metrics_.get();
  heartbeat_ms_ = steady_now_ms();
}

Worker::~Worker() {
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);  // never handed to libuv
  }
}

void Worker::start() {
  uv_check("uv_loop_init", uv_loop_init(&loop_));
  context_.loop = &loop_;
  const Config& config = *context_.config;
  pool_ = std::make_unique<UpstreamPool>(&loop_, config.upstream.url, upstream_settings(config),
                                         upstream_address_);
  context_.upstream = pool_.get();
  RedisConnection redis = make_redis_connection(&loop_, config);
  sentinels_ = std::move(redis.sentinels);
  redis_ = std::move(redis.client);
  CacheStore::register_scripts(*redis_);
  redis_->register_script(&kFixedWindowScript);
  redis_->register_script(&kSlidingWindowScript);
  redis_->register_script(&kSettleScript);
  cache_ = std::make_unique<CacheStore>(&loop_, *redis_, config.cache.journal_max_keys,
                                        config.redis.url.uses_cluster());
  // Between a replica's promotion and the old primary's demotion, the old one still takes this
  // fleet's invalidations, then replaces its data with the new one's, which never saw them.
  // Any key may be stale on the new primary, so the move bumps the cache epoch before anything
  // is served from it.
  redis_->on_primary_moved([this](const std::string& why) {
    cache_->owe_epoch_bump(epoch_key_for(context_.config->cache.key_prefix),
                           why + "; invalidations the old one took after the promotion are lost");
  });
  // A drain waits for owed invalidations too (until drain_timeout): see finish_if_drained.
  cache_->on_journal_emptied([this] { finish_if_drained(); });
  coalescer_ = std::make_unique<Coalescer>();
  context_.cache = cache_.get();
  context_.coalescer = coalescer_.get();
  if (config.cache.near.enabled) {
    near_ = std::make_unique<NearTracking>(&loop_, *redis_, config);
    cache_->set_near_cache(&near_->cache());
    context_.near = near_.get();
    near_->start();
  }
  limiter_ = std::make_unique<BatchedLimiter>(&loop_, *redis_, *metrics_);
  context_.limiter = limiter_.get();
  refreshes_ = std::make_unique<BackgroundRefreshes>(context_);
  context_.refreshes = refreshes_.get();
  touches_ = std::make_unique<SessionTouches>(*redis_, *metrics_);
  context_.touches = touches_.get();
  redis_->start();

  listener_.reset(new uv_tcp_t);
  uv_check("uv_tcp_init", uv_tcp_init(&loop_, listener_.get()));
  listener_->data = this;
  uv_check("uv_tcp_open", uv_tcp_open(listener_.get(), listen_fd_));
  listen_fd_ = -1;  // the handle owns it now
  // The fd was bound before any worker started, so listen() failing here is a broken
  // environment, not a user error.
  uv_check("uv_listen", uv_listen(reinterpret_cast<uv_stream_t*>(listener_.get()), kListenBacklog,
                                  [](uv_stream_t* server, int status) {
                                    auto* self = owner_of<Worker>(server);
                                    if (status < 0) {
                                      spdlog::warn("accept: {}", uv_strerror(status));
                                      return;
                                    }
                                    ClientConnection::accept(*self, server);
                                  }));

  drain_signal_.reset(new uv_async_t);
  uv_check("uv_async_init", uv_async_init(&loop_, drain_signal_.get(), [](uv_async_t* async) {
             owner_of<Worker>(async)->begin_drain();
           }));
  drain_signal_->data = this;

  config_signal_.reset(new uv_async_t);
  uv_check("uv_async_init", uv_async_init(&loop_, config_signal_.get(), [](uv_async_t* async) {
             owner_of<Worker>(async)->on_config_signal();
           }));
  config_signal_->data = this;

  heartbeat_timer_ = make_timer(&loop_, this);
  uv_timer_start(
      heartbeat_timer_.get(), [](uv_timer_t* t) { owner_of<Worker>(t)->on_heartbeat(); },
      kHeartbeatMs, kHeartbeatMs);

  ready_idle_.reset(new uv_idle_t);
  uv_check("uv_idle_init", uv_idle_init(&loop_, ready_idle_.get()));
  ready_idle_->data = this;

  // Prepare runs just before the loop blocks, so every line of an iteration, from a timer, a
  // read or a close callback, is written before the loop waits again.
  access_log_flush_.reset(new uv_prepare_t);
  uv_check("uv_prepare_init", uv_prepare_init(&loop_, access_log_flush_.get()));
  uv_prepare_start(access_log_flush_.get(), [](uv_prepare_t*) { flush_access_log(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(access_log_flush_.get()));

  thread_ = std::thread([this] { run(); });
}

void Worker::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  flush_access_log();
  refreshes_.reset();
  touches_.reset();
  near_.reset();
  cache_.reset();
  coalescer_.reset();
  limiter_.reset();
  redis_.reset();
  sentinels_.reset();
  pool_.reset();
  const int rc = uv_loop_close(&loop_);
  if (rc != 0) {
    // A handle outlived the drain: a lifetime bug worth hearing about in tests.
    spdlog::error("worker {}: loop closed with open handles: {}", index_, uv_strerror(rc));
    uv_walk(
        &loop_,
        [](uv_handle_t* handle, void*) {
          spdlog::error("  open handle: {}", uv_handle_type_name(uv_handle_get_type(handle)));
        },
        nullptr);
  }
  if (on_exit_) {
    on_exit_();
  }
}

void Worker::request_drain() {
  // The worker closes its async handle once drained, so it may be signalled only once.
  if (!drain_requested_.exchange(true)) {
    uv_async_send(drain_signal_.get());
  }
}

void Worker::apply_config(std::shared_ptr<const Config> config) {
  {
    std::lock_guard<std::mutex> lock(pending_config_mutex_);
    pending_config_ = std::move(config);
  }
  uv_async_send(config_signal_.get());
}

void Worker::on_config_signal() {
  std::shared_ptr<const Config> config;
  {
    std::lock_guard<std::mutex> lock(pending_config_mutex_);
    config.swap(pending_config_);
  }
  if (!config || draining_) {
    return;
  }
  context_.config = config;
  pool_->set_settings(upstream_settings(*config));
  redis_->set_command_timeout(config->redis.command_timeout);
  redis_->set_connect_timeout(config->redis.connect_timeout);
  cache_->set_journal_max_keys(config->cache.journal_max_keys);
  if (near_) {
    near_->apply(*config);
  } else if (config->cache.near.enabled) {
    spdlog::warn("worker {}: cache.near turned on takes effect at the next restart", index_);
  }
}

// Proves to /healthz that this loop turns, and copies the worker's state into its metrics.
void Worker::on_heartbeat() {
  heartbeat_ms_.store(steady_now_ms(), std::memory_order_relaxed);
  WorkerMetrics& m = *metrics_;
  m.client_connections.set(static_cast<uint64_t>(connection_count_));
  m.upstream_idle.set(pool_->idle_count());
  m.upstream_busy.set(pool_->open_count() - pool_->idle_count());
  m.redis_connected.set(redis_->ready() ? 1 : 0);
  const RedisStats redis = redis_->stats();
  m.redis_commands.set(redis.commands);
  m.redis_writes.set(redis.writes);
  m.redis_errors.set(redis.errors);
  m.redis_timeouts.set(redis.timeouts);
  m.redis_disconnects.set(redis.disconnects);
  m.redis_redirections.set(redis.redirections);
  m.redis_servers.set(redis.servers);
  m.redis_servers_connected.set(redis.servers_ready);
  const CacheStats& cache = cache_->stats();
  m.cache_fills.set(cache.fills);
  m.cache_fills_refused.set(cache.fills_refused);
  m.cache_fill_errors.set(cache.fill_errors);
  m.cache_invalidations.set(cache.invalidations);
  const InvalidationJournal& journal = cache_->journal();
  m.journal_keys.set(journal.size());
  m.journal_recorded.set(journal.stats().recorded);
  m.journal_replayed.set(journal.stats().replayed);
  m.journal_overflows.set(journal.stats().overflows);
  m.epoch_bumps.set(journal.stats().epoch_bumps);
  m.epoch_bump_owed.set(journal.epoch_owed() ? 1 : 0);
  if (near_) {
    const NearCache& near = near_->cache();
    m.near_hits.set(near.stats().hits);
    m.near_stores.set(near.stats().stores);
    m.near_invalidations.set(near.stats().invalidations);
    m.near_evictions.set(near.stats().evictions);
    m.near_flushes.set(near.stats().flushes);
    m.near_entries.set(near.size());
    m.near_bytes.set(near.bytes());
    m.near_usable.set(near_->usable() != nullptr ? 1 : 0);
  }
}

void Worker::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

uv_buf_t Worker::read_buffer() {
  return uv_buf_init(read_buffer_.data(), static_cast<unsigned>(read_buffer_.size()));
}

bool Worker::admit(ClientConnection* connection) {
  const int max = context_.config->limits.max_connections;
  if (process_.open_connections.fetch_add(1, std::memory_order_relaxed) >= max) {
    process_.open_connections.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  connection->next = connections_;
  if (connections_ != nullptr) {
    connections_->prev = connection;
  }
  connections_ = connection;
  ++connection_count_;
  if (draining_) {
    connection->begin_drain();
  }
  return true;
}

void Worker::forget(ClientConnection* connection) {
  if (connection->prev != nullptr) {
    connection->prev->next = connection->next;
  } else {
    connections_ = connection->next;
  }
  if (connection->next != nullptr) {
    connection->next->prev = connection->prev;
  }
  connection->prev = connection->next = nullptr;
  --connection_count_;
  process_.open_connections.fetch_sub(1, std::memory_order_relaxed);
  finish_if_drained();
}

void Worker::schedule_ready(ClientConnection* connection) {
  // A flag, not a search of the list: a busy loop readies dozens of connections at a time.
  if (!connection->in_ready_list) {
    connection->in_ready_list = true;
    ready_.push_back(connection);
  }
  if (ready_idle_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(ready_idle_.get()))) {
    uv_idle_start(ready_idle_.get(),
                  [](uv_idle_t* idle) { owner_of<Worker>(idle)->run_ready_list(); });
  }
}

void Worker::unschedule_ready(ClientConnection* connection) {
  if (connection->in_ready_list) {
    connection->in_ready_list = false;
    ready_.erase(std::remove(ready_.begin(), ready_.end(), connection), ready_.end());
  }
}

void Worker::run_ready_list() {
  ready_batch_.clear();
  ready_batch_.swap(ready_);
  // No connection is deleted while this runs: deletion happens only in close callbacks. One
  // that on_ready() readies again goes to ready_, for the next run.
  for (ClientConnection* connection : ready_batch_) {
    connection->in_ready_list = false;
    connection->on_ready();
  }
  ready_batch_.clear();
  if (ready_.empty() && ready_idle_) {
    uv_idle_stop(ready_idle_.get());
  }
}

void Worker::begin_drain() {
  if (draining_) {
    return;
  }
  draining_ = true;
  listener_.reset();
  spdlog::info("worker {}: draining {} connection(s)", index_, connection_count_);
  for (ClientConnection* c = connections_; c != nullptr; c = c->next) {
    c->begin_drain();
  }
  drain_timer_ = make_timer(&loop_, this);
  uv_timer_start(
      drain_timer_.get(),
      [](uv_timer_t* timer) {
        auto* self = owner_of<Worker>(timer);
        spdlog::warn("worker {}: drain_timeout passed; closing {} connection(s)", self->index_,
                     self->connection_count_);
        self->drain_deadline_passed_ = true;
        for (ClientConnection* c = self->connections_; c != nullptr; c = c->next) {
          c->close();
        }
        self->finish_if_drained();
      },
      static_cast<uint64_t>(context_.config->drain_timeout.count()), 0);
  finish_if_drained();
}

void Worker::finish_if_drained() {
  if (!draining_ || finished_ || connection_count_ > 0) {
    return;
  }
  const InvalidationJournal& journal = cache_->journal();
  if (!journal.empty() && !drain_deadline_passed_) {
    if (!waiting_for_journal_) {
      waiting_for_journal_ = true;
      spdlog::info("worker {}: waiting up to drain_timeout to replay {} owed invalidation(s)",
                   index_, journal.size() + (journal.epoch_owed() ? 1 : 0));
    }
    return;  // the replay, or the drain timer, calls again
  }
  finished_ = true;
  if (!journal.empty()) {
    // Nothing else remembers these: say which entries may now be served stale, and how many.
    const std::vector<std::string> keys = journal.keys();
    const std::string named = named_keys(keys, 100);  // one line, even for a full journal
    spdlog::error(
        "worker {}: stopping with {} invalidation(s) Redis never confirmed{}; these "
        "entries may be served stale by other replicas until their TTL: {}",
        index_, keys.size(), journal.epoch_owed() ? " and a cache epoch bump" : "",
        named.empty() ? "(every entry: the epoch bump)" : named);
    metrics_->journal_abandoned.set(keys.size() + (journal.epoch_owed() ? 1 : 0));
  }
  on_heartbeat();  // the last numbers, for a scrape during shutdown
  drain_signal_.reset();
  config_signal_.reset();
  heartbeat_timer_.reset();
  drain_timer_.reset();
  ready_idle_.reset();
  access_log_flush_.reset();
  refreshes_->stop();
  cache_->stop();
  if (near_) {
    near_->stop();
  }
  limiter_->stop();  // counts not yet settled are lost with the worker (README)
  redis_->stop();
  if (sentinels_) {
    sentinels_->stop();
  }
  pool_->shutdown();
}

}  // namespace cachecar
