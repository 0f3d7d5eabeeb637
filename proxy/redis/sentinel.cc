#include "redis/sentinel.h"

#include <spdlog/spdlog.h>

#include <charconv>

namespace cachecar {
namespace {

constexpr uint64_t kSubscriptionTag = 1;
constexpr std::string_view kSwitchMaster = "+switch-master";

RedisSettings sentinel_settings(const RedisSettings& master, std::string role,
                                const std::shared_ptr<RotatingLocator>& sentinels) {
  RedisSettings settings = master;
  settings.role = std::move(role);
  settings.sentinel_peer = true;
  settings.locator = sentinels;
  return settings;
}

// ["master-host", "port"] from SENTINEL get-master-addr-by-name.
std::optional<HostPort> master_address(const redisReply* reply) {
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
      reply->element[0]->type != REDIS_REPLY_STRING ||
      reply->element[1]->type != REDIS_REPLY_STRING) {
    return std::nullopt;
  }
  const std::string_view port_text = reply_text(reply->element[1]);
  uint16_t port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0) {
    return std::nullopt;
  }
  return HostPort{std::string(reply_text(reply->element[0])), port};
}

}  // namespace

SentinelDirectory::SentinelDirectory(uv_loop_t* loop, const RedisSettings& master)
    : master_name_(master.url.master_name),
      questions_(loop, sentinel_settings(master, "sentinel",
                                         std::make_shared<RotatingLocator>(master.url.sentinels))),
      announcements_(loop,
                     sentinel_settings(master, "sentinel announcements",
                                       std::make_shared<RotatingLocator>(master.url.sentinels))) {
  questions_.on_ready([this] {
    for (auto& [tag, question] : open_) {
      if (question.call == nullptr) {
        ask(tag, question);
      }
    }
  });
  announcements_.on_ready([this] {
    std::vector<RedisCommand> subscribe;
    subscribe.push_back({{"SUBSCRIBE", std::string(kSwitchMaster)}});
    announcements_.submit(std::move(subscribe), *this, kSubscriptionTag);
  });
  announcements_.on_message([this](const redisReply& message) { on_announcement(message); });
}

SentinelDirectory::~SentinelDirectory() { stop(); }

void SentinelDirectory::start() {
  questions_.start();
  announcements_.start();
}

void SentinelDirectory::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  questions_.stop();  // fails the questions in flight, which answers them
  announcements_.stop();
  std::map<uint64_t, Question> unanswered;
  unanswered.swap(open_);
  tag_of_.clear();
  for (auto& [tag, question] : unanswered) {
    question.located(std::nullopt, "stopping");
  }
}

void SentinelDirectory::locate(const void* asker, Located located) {
  if (stopped_) {
    located(std::nullopt, "stopping");
    return;
  }
  forget_question(asker);
  const uint64_t tag = next_tag_++;
  tag_of_[asker] = tag;
  Question& question = open_[tag];
  question.located = std::move(located);
  if (questions_.ready()) {
    ask(tag, question);
  }
  // else asked once a sentinel answers; the asker's connect deadline bounds the wait
}

void SentinelDirectory::ask(uint64_t tag, Question& question) {
  std::vector<RedisCommand> command;
  command.push_back({{"SENTINEL", "get-master-addr-by-name", master_name_}});
  question.call = questions_.submit(std::move(command), *this, tag);
}

void SentinelDirectory::forget(const void* asker) {
  forget_question(asker);
  watchers_.erase(asker);
}

void SentinelDirectory::forget_question(const void* asker) {
  auto it = tag_of_.find(asker);
  if (it == tag_of_.end()) {
    return;
  }
  auto question = open_.find(it->second);
  if (question != open_.end()) {
    if (question->second.call != nullptr) {
      questions_.cancel(question->second.call);
    }
    open_.erase(question);
  }
  tag_of_.erase(it);
}

void SentinelDirectory::watch(const void* asker, std::function<void()> moved) {
  watchers_[asker] = std::move(moved);
}

void SentinelDirectory::on_redis_done(uint64_t tag, std::vector<RedisReplyPtr>& replies) {
  if (tag == kSubscriptionTag) {
    return;  // subscribed, or the connection failed and a reconnect subscribes again
  }
  auto it = open_.find(tag);
  if (it == open_.end()) {
    return;
  }
  Located located = std::move(it->second.located);
  open_.erase(it);
  for (auto asker = tag_of_.begin(); asker != tag_of_.end(); ++asker) {
    if (asker->second == tag) {
      tag_of_.erase(asker);
      break;
    }
  }
  if (replies.empty()) {
    located(std::nullopt, "no sentinel answered");
    return;
  }
  const redisReply* reply = replies.front().get();
  if (auto address = master_address(reply)) {
    located(std::move(*address), "");
  } else if (reply->type == REDIS_REPLY_NIL) {
    located(std::nullopt, "the sentinels know no master named " + master_name_);
  } else {
    located(std::nullopt, "unexpected sentinel answer: " + std::string(reply_text(reply)));
  }
}

void SentinelDirectory::on_announcement(const redisReply& message) {
  // ["message", "+switch-master", "<name> <old-ip> <old-port> <new-ip> <new-port>"]
  const std::string_view payload = reply_text(message.element[2]);
  if (payload.substr(0, master_name_.size() + 1) != master_name_ + " ") {
    return;
  }
  spdlog::info("redis sentinel: {} switched master ({}); reconnecting", master_name_, payload);
  // A watcher reconnects, which may forget or watch again: run a copy.
  const auto watchers = watchers_;
  for (const auto& [asker, moved] : watchers) {
    moved();
  }
}

}  // namespace cachecar
