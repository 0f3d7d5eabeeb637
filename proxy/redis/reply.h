#pragma once
// Redis replies as hiredis's reader builds them, with owned lifetime, plus the RESP encoding
// of commands. Pure: no socket. Commands are encoded as arrays of bulk strings, so every
// argument is binary-safe and no byte of a key can change the command.

#include <hiredis/hiredis.h>

#include <cstdint>
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

// Replies a Redis Cluster client puts together from several nodes' answers (an MGET split by
// slot). Allocated as hiredis 0.14 allocates its own (malloc), so RedisReplyDeleter frees them.
RedisReplyPtr make_array_reply(std::vector<RedisReplyPtr> elements);
RedisReplyPtr make_integer_reply(long long value);
// Element `index` of an array reply, taken out of it: freeReplyObject skips the null left
// behind. nullptr when `array` is no array or is too short.
RedisReplyPtr take_element(redisReply* array, size_t index);

// Appends "*<n>\r\n" and "$<len>\r\n<arg>\r\n" per argument.
void append_command(const std::vector<std::string_view>& argv, std::string& out);
// The two pieces of append_command, for callers that have their arguments in several places.
void append_array_header(size_t count, std::string& out);
void append_bulk(std::string_view arg, std::string& out);

bool is_error(const redisReply* reply);
bool is_nil(const redisReply* reply);
// The reply's text for strings, statuses and errors; empty otherwise.
std::string_view reply_text(const redisReply* reply);
// The integer, or nullopt when the reply is not an integer.
std::optional<long long> reply_integer(const redisReply* reply);
// True when an error reply starts with `code` ("NOSCRIPT", "READONLY", "OOM", ...).
bool error_is(const redisReply* reply, std::string_view code);

// Incremental RESP reader: feed bytes as they arrive, take whole replies out. hiredis builds
// the replies; before it sees any byte, a framer of ours checks every aggregate's element
// count and every bulk length, because hiredis 0.14 allocates an array's element vector as
// soon as it reads the count: "*300000000" from a broken or hostile server would cost gigabytes.
class RespReader {
 public:
  RespReader();
  ~RespReader();
  RespReader(const RespReader&) = delete;
  RespReader& operator=(const RespReader&) = delete;

  // False when the stream is known to be broken. A framing error found in these bytes shows
  // in next(), after the replies that preceded it; later feeds return false.
  bool feed(std::string_view bytes);
  // The next complete reply, nullptr when more bytes are needed, or nullopt on a protocol
  // error.
  std::optional<RedisReplyPtr> next();
  std::string error() const;

  static constexpr int64_t kMaxElements = int64_t{1} << 20;
  static constexpr int64_t kMaxBulkBytes = int64_t{512} << 20;  // Redis's proto-max-bulk-len

 private:
  // How many of `bytes` are well framed; at the first bad one, frame_error_ says why.
  size_t frame(std::string_view bytes);
  void element_done();

  redisReader* reader_;
  // Framer state: the reply structure seen so far, without building anything.
  enum class FrameState { Type, Line, Bulk } state_ = FrameState::Type;
  char type_ = 0;
  std::string line_;
  int64_t bulk_left_ = 0;
  std::vector<int64_t> open_;  // elements still expected by each open aggregate
  std::string frame_error_;
};

}  // namespace cachecar
