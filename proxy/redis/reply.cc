#include "redis/reply.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <utility>

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

namespace {

redisReply* allocate_reply(int type) {
  auto* reply = static_cast<redisReply*>(std::calloc(1, sizeof(redisReply)));
  if (reply == nullptr) {
    std::fputs("cachecar: fatal: out of memory building a Redis reply\n", stderr);
    std::abort();
  }
  reply->type = type;
  return reply;
}

}  // namespace

RedisReplyPtr make_array_reply(std::vector<RedisReplyPtr> elements) {
  RedisReplyPtr array(allocate_reply(REDIS_REPLY_ARRAY));
  if (elements.empty()) {
    return array;
  }
  array->element = static_cast<redisReply**>(std::calloc(elements.size(), sizeof(redisReply*)));
  if (array->element == nullptr) {
    std::fputs("cachecar: fatal: out of memory building a Redis reply\n", stderr);
    std::abort();
  }
  array->elements = elements.size();
  for (size_t i = 0; i < elements.size(); ++i) {
    array->element[i] = elements[i].release();
  }
  return array;
}

RedisReplyPtr make_integer_reply(long long value) {
  RedisReplyPtr reply(allocate_reply(REDIS_REPLY_INTEGER));
  reply->integer = value;
  return reply;
}

RedisReplyPtr take_element(redisReply* array, size_t index) {
  if (array == nullptr || array->type != REDIS_REPLY_ARRAY || index >= array->elements) {
    return nullptr;
  }
  return RedisReplyPtr(std::exchange(array->element[index], nullptr));
}

void append_array_header(size_t count, std::string& out) { append_length_line('*', count, out); }

void append_bulk(std::string_view arg, std::string& out) {
  append_length_line('$', arg.size(), out);
  out += arg;
  out += "\r\n";
}

void append_command(const std::vector<std::string_view>& argv, std::string& out) {
  append_array_header(argv.size(), out);
  for (std::string_view arg : argv) {
    append_bulk(arg, out);
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
  if (!frame_error_.empty()) {
    return false;  // the stream is unusable from the bad bytes on
  }
  const size_t valid = frame(bytes);
  return redisReaderFeed(reader_, bytes.data(), valid) == REDIS_OK;
}

void RespReader::element_done() {
  while (!open_.empty()) {
    if (--open_.back() > 0) {
      return;
    }
    open_.pop_back();  // the aggregate is complete: it is itself an element of its parent
  }
}

size_t RespReader::frame(std::string_view bytes) {
  constexpr size_t kMaxLine = 1 << 20;
  size_t i = 0;
  while (i < bytes.size()) {
    switch (state_) {
      case FrameState::Type:
        type_ = bytes[i];
        if (std::string_view("+-:$*").find(type_) == std::string_view::npos) {
          frame_error_ = "unknown reply type";
          return i;
        }
        ++i;
        line_.clear();
        state_ = FrameState::Line;
        break;
      case FrameState::Line: {
        const size_t end = bytes.find('\n', i);
        const size_t take = (end == std::string_view::npos ? bytes.size() : end + 1) - i;
        line_.append(bytes.substr(i, take));
        i += take;
        if (line_.size() > kMaxLine) {
          frame_error_ = "reply line too long";
          return i - take;
        }
        // hiredis ends a line only at CRLF; a lone LF is part of the line. Framing it any other
        // way would let the two disagree on where a reply begins, and hiredis would then
        // allocate for a count this framer never saw (found by redis_reply_fuzz).
        if (line_.size() < 2 || line_[line_.size() - 2] != '\r' || line_.back() != '\n') {
          break;  // the rest of the line comes with the next bytes
        }
        if (type_ != '$' && type_ != '*') {
          state_ = FrameState::Type;
          element_done();
          break;
        }
        int64_t count = 0;
        const char* first = line_.data();
        const char* last = line_.data() + line_.size() - 2;
        auto [end_ptr, ec] = std::from_chars(first, last, count);
        if (ec != std::errc() || end_ptr != last || count < -1) {
          frame_error_ = "invalid length";
          return i - take;
        }
        state_ = FrameState::Type;
        if (type_ == '$') {
          if (count > kMaxBulkBytes) {
            frame_error_ = "bulk reply larger than 512 MiB";
            return i - take;
          }
          if (count >= 0) {
            bulk_left_ = count + 2;  // the bytes and their CRLF
            state_ = FrameState::Bulk;
          } else {
            element_done();
          }
        } else if (count > kMaxElements) {
          frame_error_ = "array reply with too many elements";
          return i - take;
        } else if (count <= 0) {
          element_done();
        } else {
          open_.push_back(count);
        }
        break;
      }
      case FrameState::Bulk: {
        const auto take = static_cast<size_t>(
            std::min<int64_t>(bulk_left_, static_cast<int64_t>(bytes.size() - i)));
        bulk_left_ -= static_cast<int64_t>(take);
        i += take;
        if (bulk_left_ == 0) {
          state_ = FrameState::Type;
          element_done();
        }
        break;
      }
    }
  }
  return bytes.size();
}

std::optional<RedisReplyPtr> RespReader::next() {
  void* reply = nullptr;
  if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
    return std::nullopt;
  }
  if (reply == nullptr && !frame_error_.empty()) {
    return std::nullopt;  // every reply before the bad bytes has been taken
  }
  return RedisReplyPtr(static_cast<redisReply*>(reply));
}

std::string RespReader::error() const {
  return frame_error_.empty() ? std::string(reader_->errstr) : frame_error_;
}

}  // namespace cachecar
