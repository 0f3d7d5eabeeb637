#include "cache/purger.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_set>

#include "cache/cache_store.h"
#include "cache/key.h"
#include "cache/plan.h"
#include "cache/scripts.h"
#include "redis/redis_node.h"
#include "redis/sentinel.h"

namespace cachecar {
namespace {

// Keys per invalidation script call: a purge of many keys must not hold Redis in one script.
constexpr size_t kKeysPerInvalidation = 256;
// SCAN's COUNT: how much of the keyspace one call walks.
constexpr const char* kScanCount = "1000";
// A long prefix purge logs how far it got every so many keys.
constexpr size_t kProgressEvery = 10'000;

bool starts_with(std::string_view text, std::string_view prefix) {
  return !prefix.empty() && text.substr(0, prefix.size()) == prefix;
}

}  // namespace

struct Purger::Job {
  uint64_t id = 0;
  PurgeOrder order;
  Done done;
  std::shared_ptr<const Config> config;
  PurgeReport report;
  std::vector<OwedInvalidation> owed;
  std::unordered_set<std::string> owed_keys;
  bool tags_done = false;
  bool scan_done = false;
  bool keys_done = false;
  size_t invalidated_count = 0;  // owed[0, this) confirmed
  size_t sent_count = 0;         // owed[invalidated_count, this) in the call out
  bool epoch_needed = false;  // a tag or prefix purge could not read what it removes
  std::vector<std::string> patterns;
  size_t pattern = 0;
  std::string cursor = "0";
  // The servers a prefix purge reads, as they were when it began; one that leaves is nulled.
  std::vector<RedisNode*> servers;
  size_t server = 0;
  RedisClient* call_client = nullptr;  // where `call` went
  size_t logged_progress = 0;  // owed.size() / kProgressEvery when last logged
  RedisClient::Call* call = nullptr;

  void owe(OwedInvalidation invalidation) {
    if (owed_keys.insert(invalidation.key).second) {
      owed.push_back(std::move(invalidation));
    }
  }
};

Purger::Purger(uv_loop_t* loop, std::shared_ptr<const Config> config)
    : loop_(loop), config_(std::move(config)) {
  redis_ = make_redis_connection(loop_, *config_, "purges");
  CacheStore::register_scripts(*redis_.client);
  redis_.client->watch_nodes([this](RedisNode& server) { servers_.push_back(&server); },
                             [this](RedisNode& server) {
                               std::erase(servers_, &server);
                               for (auto& [id, job] : jobs_) {
                                 std::replace(job->servers.begin(), job->servers.end(), &server,
                                              static_cast<RedisNode*>(nullptr));
                               }
                             });
  store_ = std::make_unique<CacheStore>(loop_, *redis_.client, config_->cache.journal_max_keys,
                                        config_->redis.url.uses_cluster());
  redis_.client->start();
}

Purger::~Purger() { stop(); }

void Purger::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  std::vector<std::unique_ptr<Job>> cut_off;
  for (auto& [id, job] : jobs_) {
    if (job->call != nullptr) {
      job->call_client->cancel(job->call);
    }
    cut_off.push_back(std::move(job));
  }
  jobs_.clear();
  for (const auto& job : cut_off) {
    job->report.status = 503;
    job->report.error = "cachecar stopped before the purge was done";
    job->done(job->report);
  }
  store_->stop();
  redis_.client->stop();
  if (redis_.sentinels) {
    redis_.sentinels->stop();
  }
}

void Purger::purge(PurgeOrder order, Done done) {
  auto job = std::make_unique<Job>();
  job->id = next_job_++;
  job->config = config_;
  job->report.kind = order.kind();
  job->report.soft = order.soft;
  job->done = std::move(done);
  if (stopped_) {
    job->report.status = 503;
    job->report.error = "shutting down";
    job->done(job->report);
    return;
  }
  if (order.prefix) {
    const std::string start = glob_escaped(config_->cache.key_prefix + *order.prefix);
    // Route keys, and the variants and users' entries that carry them as a hash tag.
    job->patterns = {start + "*", "{" + start + "*"};
    job->servers = servers_;
    // No server known yet (a cluster whose map has not come): nothing can be read.
    job->epoch_needed = job->servers.empty();
  }
  job->order = std::move(order);
  Job& started = *job;
  jobs_.emplace(started.id, std::move(job));
  advance(started);
}

bool Purger::send(Job& job, Step step, std::vector<RedisCommand> commands) {
  // SCAN reads one server's keys; the rest go where their keys' slots are.
  job.call_client = step == Step::Scan ? job.servers[job.server] : redis_.client.get();
  job.call =
      job.call_client->submit(std::move(commands), *this, job.id * 4 + static_cast<uint64_t>(step));
  return job.call != nullptr;
}

void Purger::advance(Job& job) {
  const std::string& prefix = job.config->cache.key_prefix;
  if (!job.tags_done) {
    job.tags_done = true;
    if (!job.order.tags.empty()) {
      std::vector<RedisCommand> commands;
      for (const std::string& tag : job.order.tags) {
        commands.push_back(purge_tag_command(prefix, tag, job.order.soft));
      }
      if (send(job, Step::Tags, std::move(commands))) {
        return;
      }
      job.epoch_needed = true;
    }
  }
  if (!job.scan_done) {
    if (job.order.prefix) {
      scan_next(job);
      return;
    }
    job.scan_done = true;
  }
  if (!job.keys_done) {
    job.keys_done = true;
    for (const std::string& key : job.order.keys) {
      job.owe(invalidation_of(prefix, prefix + key));
    }
  }
  job.report.named = job.owed.size();
  invalidate_next(job);
}

// One chunk a call, each under redis.command_timeout: a purge of many keys must neither hold
// Redis in one script nor outlast the timeout in one call.
void Purger::invalidate_next(Job& job) {
  if (job.invalidated_count >= job.owed.size()) {
    finish(job);
    return;
  }
  const size_t last = std::min(job.owed.size(), job.invalidated_count + kKeysPerInvalidation);
  const std::vector<OwedInvalidation> chunk(
      job.owed.begin() + static_cast<long>(job.invalidated_count),
      job.owed.begin() + static_cast<long>(last));
  if (send(job, Step::Invalidate,
           job.order.soft ? store_->soft_purge_commands(chunk)
                          : store_->invalidation_commands(chunk))) {
    job.sent_count = last;
    return;
  }
  owe_invalidation(job, "Redis is not connected");
  finish(job);
}

void Purger::scan_next(Job& job) {
  if (job.owed.size() >= kMaxPrefixKeys) {
    job.report.complete = false;
    job.scan_done = true;
    advance(job);
    return;
  }
  if (scan_server(job) == nullptr) {
    job.scan_done = true;
    advance(job);
    return;
  }
  std::vector<RedisCommand> commands;
  commands.push_back(
      {{"SCAN", job.cursor, "MATCH", job.patterns[job.pattern], "COUNT", kScanCount}});
  if (send(job, Step::Scan, std::move(commands))) {
    return;
  }
  job.epoch_needed = true;
  job.scan_done = true;
  advance(job);
}

RedisNode* Purger::scan_server(Job& job) {
  while (job.server < job.servers.size() && job.servers[job.server] == nullptr) {
    // It left before its keys were read (a failover): nothing names what it held.
    job.epoch_needed = true;
    ++job.server;
  }
  return job.server < job.servers.size() ? job.servers[job.server] : nullptr;
}

void Purger::on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) {
  auto found = jobs_.find(tag / 4);
  if (found == jobs_.end()) {
    return;
  }
  Job& job = *found->second;
  job.call = nullptr;
  switch (static_cast<Step>(tag % 4)) {
    case Step::Tags:
      on_tags(job, replies);
      return;
    case Step::Scan:
      on_scan(job, replies);
      return;
    case Step::Invalidate:
      on_invalidated(job, replies);
      return;
  }
}

void Purger::on_tags(Job& job, const std::vector<RedisReplyPtr>& replies) {
  if (!read_tag_members(replies, job.order.tags.size(), job.config->cache.key_prefix,
                        [&job](OwedInvalidation owed) { job.owe(std::move(owed)); })) {
    job.epoch_needed = true;
  }
  advance(job);
}

void Purger::on_scan(Job& job, const std::vector<RedisReplyPtr>& replies) {
  const redisReply* reply = replies.empty() ? nullptr : replies.front().get();
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
      reply->element[1]->type != REDIS_REPLY_ARRAY) {
    job.epoch_needed = true;
    job.scan_done = true;
    advance(job);
    return;
  }
  const Config& config = *job.config;
  const std::string& prefix = config.cache.key_prefix;
  const redisReply* keys = reply->element[1];
  for (size_t i = 0; i < keys->elements; ++i) {
    const std::string_view key = reply_text(keys->element[i]);
    // The app's sessions and the limiter's counters may share the cache's namespace (an empty
    // cache.key_prefix): never theirs to purge.
    if (is_companion_key(key, prefix) ||
        (starts_with(key, config.session.key_prefix) &&
         !starts_with(prefix, config.session.key_prefix)) ||
        (starts_with(key, config.rate_limit.key_prefix) &&
         !starts_with(prefix, config.rate_limit.key_prefix))) {
      continue;
    }
    job.owe(invalidation_of(prefix, base_key_of(key)));
  }
  if (job.owed.size() / kProgressEvery != job.logged_progress) {
    job.logged_progress = job.owed.size() / kProgressEvery;
    spdlog::info("purge by prefix '{}': {} keys found so far", *job.order.prefix, job.owed.size());
  }
  job.cursor = std::string(reply_text(reply->element[0]));
  if (job.cursor == "0" || job.cursor.empty()) {
    job.cursor = "0";
    if (++job.pattern == job.patterns.size()) {
      job.pattern = 0;
      ++job.server;  // scan_next() ends the walk after the last server
    }
  }
  scan_next(job);
}

void Purger::on_invalidated(Job& job, const std::vector<RedisReplyPtr>& replies) {
  if (replies.empty()) {
    owe_invalidation(job, "Redis did not answer");
    finish(job);
    return;
  }
  for (const RedisReplyPtr& reply : replies) {
    if (is_error(reply.get())) {
      owe_invalidation(job, "Redis answered " + std::string(reply_text(reply.get())));
      finish(job);
      return;
    }
    const auto count = static_cast<uint64_t>(reply_integer(reply.get()).value_or(0));
    (job.order.soft ? job.report.marked : job.report.deleted) += count;
  }
  job.invalidated_count = job.sent_count;
  invalidate_next(job);
}

void Purger::owe_invalidation(Job& job, std::string_view why) {
  // What is not confirmed yet, as a write's invalidation would have journaled it.
  RequestPlan plan;
  for (size_t i = job.invalidated_count; i < job.owed.size(); ++i) {
    add_invalidation(plan, job.owed[i]);
  }
  const std::string& prefix = job.config->cache.key_prefix;
  store_->owe_invalidation(journal_form(plan, prefix), "purge: " + std::string(why));
  job.report.pending = "journal";
}

void Purger::finish(Job& job) {
  if (job.epoch_needed) {
    store_->owe_epoch_bump(epoch_key_for(job.config->cache.key_prefix),
                           "a purge by tag or prefix could not read its keys from Redis");
    job.report.pending = job.report.pending.empty() ? "epoch" : job.report.pending + "+epoch";
  }
  PurgeReport& report = job.report;
  if (!report.pending.empty()) {
    report.status = 202;
    ++stats_.owed;
  }
  stats_.by_keys += job.order.keys.empty() ? 0 : 1;
  stats_.by_prefix += job.order.prefix ? 1 : 0;
  stats_.by_tags += job.order.tags.empty() ? 0 : 1;
  stats_.keys_removed += report.deleted;
  stats_.soft += job.order.soft ? 1 : 0;
  stats_.keys_marked += report.marked;
  const PurgeReport answer = report;
  const Done done = std::move(job.done);
  jobs_.erase(job.id);  // `job` is gone from here on
  done(answer);
}

}  // namespace cachecar
