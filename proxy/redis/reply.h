#pragma once
// Redis replies as hiredis's reader builds them, with owned lifetime, plus the RESP encoding
// of commands. Pure: no socket. Commands are encoded as arrays of bulk strings, so every
// argument is binary-safe and no byte of a key can change the command.

#include <hiredis/hiredis.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cachecar {

struct RedisReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

// Appends "*<n>\r\n" and "$<len>\r\n<arg>\r\n" per argument.
void append_command(const std::vector<std::string_view>& argv, std::string& out);

bool is_error(const redisReply* reply);
bool is_nil(const redisReply* reply);
// The reply's text for strings, statuses and errors; empty otherwise.
std::string_view reply_text(const redisReply* reply);
// The integer, or nullopt when the reply is not an integer.
std::optional<long long> reply_integer(const redisReply* reply);
// True when an error reply starts with `code` ("NOSCRIPT", "READONLY", "OOM", ...).
bool error_is(const redisReply* reply, std::string_view code);

// Incremental RESP reader: feed bytes as they arrive, take whole replies out.
class RespReader {
 public:
  RespReader();
  ~RespReader();
  RespReader(const RespReader&) = delete;
  RespReader& operator=(const RespReader&) = delete;

  // False on a protocol error (the stream is then unusable).
  bool feed(std::string_view bytes);
  // The next complete reply, nullptr when more bytes are needed, or nullopt on a protocol
  // error.
  std::optional<RedisReplyPtr> next();
  std::string error() const;

 private:
  redisReader* reader_;
};

}  // namespace cachecar
