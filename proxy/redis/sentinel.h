#pragma once
// Redis behind Sentinel (redis+sentinel://s1,s2,s3/mymaster): the worker's Redis clients
// connect wherever the sentinels say the master is. Each connection attempt asks again
// (SENTINEL get-master-addr-by-name), the client confirms the answer with ROLE, and a
// +switch-master announcement moves every client at once instead of at its next failure.
//
// Per worker: one connection to a sentinel for questions and one subscribed to
// +switch-master; either moves to the next sentinel in the list when it fails.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "redis/redis_node.h"
#include "redis/redis_locator.h"

namespace cachecar {

class SentinelDirectory final : public RedisLocator, private RedisWaiter {
 public:
  // `master`: the settings of the clients that will connect to the master (URL, TLS,
  // timeouts); the sentinels are reached with the same TLS and timeouts, without AUTH.
  SentinelDirectory(uv_loop_t* loop, const RedisSettings& master);
  ~SentinelDirectory() override;
  SentinelDirectory(const SentinelDirectory&) = delete;
  SentinelDirectory& operator=(const SentinelDirectory&) = delete;

  void start();
  // Answers every open question with an error; no sentinel is contacted after it.
  void stop();

  void locate(const void* asker, Located located) override;
  void forget(const void* asker) override;
  void watch(const void* asker, std::function<void()> moved) override;

 private:
  struct Question {
    Located located;
    RedisClient::Call* call = nullptr;  // null while no sentinel is ready to be asked
  };

  void ask(uint64_t tag, Question& question);
  void forget_question(const void* asker);
  void on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) override;
  void on_announcement(const redisReply& message);

  std::string master_name_;
  RedisNode questions_;
  RedisNode announcements_;
  std::map<uint64_t, Question> open_;  // by tag
  std::map<const void*, uint64_t> tag_of_;
  std::map<const void*, std::function<void()>> watchers_;
  uint64_t next_tag_ = 2;  // 1 is the subscription's
  bool stopped_ = false;
};

}  // namespace cachecar
