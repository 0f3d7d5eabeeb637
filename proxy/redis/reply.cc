#include "redis/reply.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>

namespace cachecar {
namespace {

void append_length_line(char prefix, size_t value, std::string& out) {
  char buffer[24];
  buffer[0] = prefix;
  auto [end, ec] = std::to_chars(buffer + 1, buffer + sizeof(buffer), value);
  out.append(buffer, end);
  out += "\r\n";
}

}  // namespace

void append_command(const std::vector<std::string_view>& argv, std::string& out) {
  append_length_line('*', argv.size(), out);
  for (std::string_view arg : argv) {
    append_length_line('$', arg.size(), out);
    out += arg;
    out += "\r\n";
  }
}

bool is_error(const redisReply* reply) {
  return reply != nullptr && reply->type == REDIS_REPLY_ERROR;
}

bool is_nil(const redisReply* reply) { return reply != nullptr && reply->type == REDIS_REPLY_NIL; }

std::string_view reply_text(const redisReply* reply) {
  if (reply == nullptr || reply->str == nullptr) {
    return {};
  }
  switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return std::string_view(reply->str, reply->len);
    default:
      return {};
  }
}

std::optional<long long> reply_integer(const redisReply* reply) {
  if (reply == nullptr || reply->type != REDIS_REPLY_INTEGER) {
    return std::nullopt;
  }
  return reply->integer;
}

bool error_is(const redisReply* reply, std::string_view code) {
  if (!is_error(reply)) {
    return false;
  }
  const std::string_view text = reply_text(reply);
  return text.substr(0, code.size()) == code &&
         (text.size() == code.size() || text[code.size()] == ' ');
}

RespReader::RespReader() : reader_(redisReaderCreate()) {
  if (reader_ == nullptr) {
    std::fputs("cachecar: fatal: out of memory creating a RESP reader\n", stderr);
    std::abort();
  }
}

RespReader::~RespReader() { redisReaderFree(reader_); }

bool RespReader::feed(std::string_view bytes) {
  return redisReaderFeed(reader_, bytes.data(), bytes.size()) == REDIS_OK;
}

std::optional<RedisReplyPtr> RespReader::next() {
  void* reply = nullptr;
  if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
    return std::nullopt;
  }
  return RedisReplyPtr(static_cast<redisReply*>(reply));
}

std::string RespReader::error() const { return reader_->errstr; }

}  // namespace cachecar
