// redis/reply.h: RESP commands out, replies in, and the accessors over hiredis's replies.
//
// Every reply is fed in one piece, one byte at a time and split at every point, since that is
// what a socket delivers.

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "redis/reply.h"

namespace cachecar {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

std::string printable(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (byte < 0x20 || byte >= 0x7f) {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

// "string(abc)", "status(OK)", "error(ERR x)", "integer(5)", "nil", "array[a, b]".
std::string describe(const redisReply* reply) {
  if (reply == nullptr) {
    return "null";
  }
  switch (reply->type) {
    case REDIS_REPLY_STRING:
      return "string(" + printable(std::string_view(reply->str, reply->len)) + ")";
    case REDIS_REPLY_STATUS:
      return "status(" + printable(std::string_view(reply->str, reply->len)) + ")";
    case REDIS_REPLY_ERROR:
      return "error(" + printable(std::string_view(reply->str, reply->len)) + ")";
    case REDIS_REPLY_INTEGER:
      return "integer(" + std::to_string(reply->integer) + ")";
    case REDIS_REPLY_NIL:
      return "nil";
    case REDIS_REPLY_ARRAY: {
      std::string out = "array[";
      for (size_t i = 0; i < reply->elements; ++i) {
        out += (i == 0 ? "" : ", ") + describe(reply->element[i]);
      }
      return out + "]";
    }
    default:
      return "type " + std::to_string(reply->type);
  }
}

// Feeds `pieces` in order and describes every reply taken out, or "protocol error".
std::vector<std::string> read_all(const std::vector<std::string_view>& pieces) {
  std::vector<std::string> out;
  RespReader reader;
  for (std::string_view piece : pieces) {
    if (!reader.feed(piece)) {
      out.push_back("feed failed");
      return out;
    }
    while (true) {
      std::optional<RedisReplyPtr> reply = reader.next();
      if (!reply) {
        CHECK_FALSE(reader.error().empty());
        out.push_back("protocol error");
        return out;
      }
      if (*reply == nullptr) {
        break;
      }
      out.push_back(describe(reply->get()));
    }
  }
  return out;
}

std::vector<std::string_view> byte_by_byte(std::string_view bytes) {
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < bytes.size(); ++i) {
    pieces.push_back(bytes.substr(i, 1));
  }
  return pieces;
}

struct ReplyCase {
  std::string bytes;
  std::vector<std::string> replies;
};

void check_every_split(const ReplyCase& c) {
  const std::string shown = printable(c.bytes);
  CAPTURE(shown);
  CHECK(read_all({c.bytes}) == c.replies);
  CHECK(read_all(byte_by_byte(c.bytes)) == c.replies);
  for (size_t i = 0; i <= c.bytes.size(); ++i) {
    CAPTURE(i);
    const std::string_view all(c.bytes);
    CHECK(read_all({all.substr(0, i), all.substr(i)}) == c.replies);
  }
}

TEST_CASE("append_command writes RESP arrays of bulk strings") {
  struct Case {
    std::vector<std::string_view> argv;
    std::string expected;
  };
  const std::string long_arg(1000, 'x');
  const Case cases[] = {
      {{}, "*0\r\n"},
      {{"PING"}, "*1\r\n$4\r\nPING\r\n"},
      {{""}, "*1\r\n$0\r\n\r\n"},
      {{"GET", "product:42"}, "*2\r\n$3\r\nGET\r\n$10\r\nproduct:42\r\n"},
      {{"EVALSHA", "abc", "2", "k1", "k2", "", "10"},
       "*7\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n2\r\n$2\r\nk1\r\n$2\r\nk2\r\n$0\r\n\r\n"
       "$2\r\n10\r\n"},
      // Binary-safe: CRLF, NUL and a RESP look-alike inside an argument change nothing.
      {{"SET", "k\r\nDEL x", "a\0b"sv}, "*3\r\n$3\r\nSET\r\n$8\r\nk\r\nDEL x\r\n$3\r\na\0b\r\n"s},
      {{"\r\n*1\r\n$4\r\nQUIT\r\n"}, "*1\r\n$16\r\n\r\n*1\r\n$4\r\nQUIT\r\n\r\n"},
      {{"\0\0"sv}, "*1\r\n$2\r\n\0\0\r\n"s},
      {{long_arg}, "*1\r\n$1000\r\n" + long_arg + "\r\n"},
  };
  for (const Case& c : cases) {
    const std::string shown = printable(c.expected);
    CAPTURE(shown);
    std::string out;
    append_command(c.argv, out);
    CHECK(printable(out) == printable(c.expected));

    // A command is itself a valid RESP array: reading it back gives the arguments.
    RespReader reader;
    REQUIRE(reader.feed(out));
    std::optional<RedisReplyPtr> reply = reader.next();
    REQUIRE(reply.has_value());
    REQUIRE(*reply != nullptr);
    const redisReply* array = reply->get();
    REQUIRE(array->type == REDIS_REPLY_ARRAY);
    REQUIRE(array->elements == c.argv.size());
    for (size_t i = 0; i < c.argv.size(); ++i) {
      CAPTURE(i);
      CHECK(array->element[i]->type == REDIS_REPLY_STRING);
      CHECK(reply_text(array->element[i]) == c.argv[i]);
    }
  }
}

TEST_CASE("append_command appends") {
  std::string out = "*1\r\n$4\r\nPING\r\n";
  append_command({"GET", "k"}, out);
  CHECK(out == "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
}

TEST_CASE("RespReader reads every kind of reply, however it is split") {
  const ReplyCase cases[] = {
      {"+OK\r\n", {"status(OK)"}},
      {"+\r\n", {"status()"}},
      {"-ERR unknown command 'X'\r\n", {"error(ERR unknown command 'X')"}},
      {"-NOSCRIPT No matching script. Please use EVAL.\r\n",
       {"error(NOSCRIPT No matching script. Please use EVAL.)"}},
      {":0\r\n", {"integer(0)"}},
      {":42\r\n", {"integer(42)"}},
      {":-7\r\n", {"integer(-7)"}},
      {":9223372036854775807\r\n", {"integer(9223372036854775807)"}},
      {"$5\r\nhello\r\n", {"string(hello)"}},
      {"$0\r\n\r\n", {"string()"}},
      {"$8\r\na\r\n\0b\r\nc\r\n"s, {"string(a\\r\\n\\x00b\\r\\nc)"}},
      {"$-1\r\n", {"nil"}},
      {"*-1\r\n", {"nil"}},
      {"*0\r\n", {"array[]"}},
      {"*3\r\n:1\r\n$3\r\nabc\r\n$-1\r\n", {"array[integer(1), string(abc), nil]"}},
      {"*2\r\n+OK\r\n-ERR x\r\n", {"array[status(OK), error(ERR x)]"}},
      {"*2\r\n*2\r\n+a\r\n:2\r\n*1\r\n*0\r\n",
       {"array[array[status(a), integer(2)], array[array[]]]"}},
      {"*3\r\n$1\r\nx\r\n*2\r\n$-1\r\n*-1\r\n:5\r\n",
       {"array[string(x), array[nil, nil], integer(5)]"}},
      // Several replies in one stream (pipelining), in order.
      {"+OK\r\n:1\r\n$1\r\nv\r\n", {"status(OK)", "integer(1)", "string(v)"}},
      {"$-1\r\n*1\r\n:1\r\n-ERR\r\n", {"nil", "array[integer(1)]", "error(ERR)"}},
  };
  for (const ReplyCase& c : cases) {
    check_every_split(c);
  }
}

TEST_CASE("RespReader waits for a whole reply") {
  RespReader reader;
  const std::string_view pieces[] = {"*2\r\n", "$3\r\nab", "c\r\n", ":", "1\r"};
  for (std::string_view piece : pieces) {
    CAPTURE(piece);
    REQUIRE(reader.feed(piece));
    std::optional<RedisReplyPtr> reply = reader.next();
    REQUIRE(reply.has_value());
    CHECK(*reply == nullptr);
  }
  REQUIRE(reader.feed("\n"));
  std::optional<RedisReplyPtr> reply = reader.next();
  REQUIRE(reply.has_value());
  CHECK(describe(reply->get()) == "array[string(abc), integer(1)]");
  reply = reader.next();
  REQUIRE(reply.has_value());
  CHECK(*reply == nullptr);
}

TEST_CASE("RespReader reports a protocol error") {
  const ReplyCase cases[] = {
      {"x\r\n", {"protocol error"}},
      {"@\r\n", {"protocol error"}},
      {"\r\n", {"protocol error"}},
      {"*1\r\n?oops\r\n", {"protocol error"}},
      {"+OK\r\nx\r\n", {"status(OK)", "protocol error"}},
      // Deeper nesting than hiredis supports.
      {"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*0\r\n", {"protocol error"}},
  };
  for (const ReplyCase& c : cases) {
    const std::string shown = printable(c.bytes);
    CAPTURE(shown);
    CHECK(read_all({c.bytes}) == c.replies);
    CHECK(read_all(byte_by_byte(c.bytes)) == c.replies);
  }
}

TEST_CASE("RespReader stays failed after a protocol error") {
  RespReader reader;
  REQUIRE(reader.feed("x\r\n"));
  CHECK_FALSE(reader.next().has_value());
  const std::string error = reader.error();
  CHECK_FALSE(error.empty());
  CHECK_FALSE(reader.feed("+OK\r\n"));
  CHECK_FALSE(reader.next().has_value());
}

// One reply parsed from bytes, kept alive for the accessors.
RedisReplyPtr parse(std::string_view bytes) {
  RespReader reader;
  REQUIRE(reader.feed(bytes));
  std::optional<RedisReplyPtr> reply = reader.next();
  REQUIRE(reply.has_value());
  REQUIRE(*reply != nullptr);
  return std::move(*reply);
}

TEST_CASE("reply accessors") {
  struct Case {
    std::string bytes;
    bool error;
    bool nil;
    std::string text;
    std::optional<long long> integer;
  };
  const Case cases[] = {
      {"+OK\r\n", false, false, "OK", std::nullopt},
      {"-ERR wrong\r\n", true, false, "ERR wrong", std::nullopt},
      {":42\r\n", false, false, "", 42},
      {":-1\r\n", false, false, "", -1},
      {":0\r\n", false, false, "", 0},
      {"$3\r\nabc\r\n", false, false, "abc", std::nullopt},
      {"$0\r\n\r\n", false, false, "", std::nullopt},
      {"$3\r\na\0b\r\n"s, false, false, "a\0b"s, std::nullopt},
      // A bulk string that looks like a number is still text.
      {"$2\r\n42\r\n", false, false, "42", std::nullopt},
      {"$-1\r\n", false, true, "", std::nullopt},
      {"*-1\r\n", false, true, "", std::nullopt},
      {"*1\r\n:1\r\n", false, false, "", std::nullopt},
      {"*0\r\n", false, false, "", std::nullopt},
  };
  for (const Case& c : cases) {
    const std::string shown = printable(c.bytes);
    CAPTURE(shown);
    const RedisReplyPtr reply = parse(c.bytes);
    CHECK(is_error(reply.get()) == c.error);
    CHECK(is_nil(reply.get()) == c.nil);
    CHECK(reply_text(reply.get()) == c.text);
    CHECK(reply_integer(reply.get()) == c.integer);
  }
}

TEST_CASE("reply accessors on no reply") {
  CHECK_FALSE(is_error(nullptr));
  CHECK_FALSE(is_nil(nullptr));
  CHECK(reply_text(nullptr).empty());
  CHECK_FALSE(reply_integer(nullptr).has_value());
  CHECK_FALSE(error_is(nullptr, "NOSCRIPT"));
}

TEST_CASE("error_is matches the error code, a whole word") {
  struct Case {
    std::string_view bytes;
    std::string_view code;
    bool expected;
  };
  const Case cases[] = {
      {"-NOSCRIPT No matching script. Please use EVAL.\r\n", "NOSCRIPT", true},
      {"-NOSCRIPT\r\n", "NOSCRIPT", true},
      {"-NOSCRIPTX\r\n", "NOSCRIPT", false},
      {"-NOSCRIPTX No matching script\r\n", "NOSCRIPT", false},
      {"-NOSCRIPT No matching script\r\n", "NOSCRIP", false},
      {"-NOSCRIPT No matching script\r\n", "READONLY", false},
      {"-ERR NOSCRIPT\r\n", "NOSCRIPT", false},
      {"- NOSCRIPT\r\n", "NOSCRIPT", false},
      {"-\r\n", "NOSCRIPT", false},
      {"-READONLY You can't write against a read only replica.\r\n", "READONLY", true},
      {"-OOM command not allowed when used memory > 'maxmemory'.\r\n", "OOM", true},
      {"-ERR unknown command\r\n", "ERR", true},
      {"-ERRX\r\n", "ERR", false},
      // Only errors have a code.
      {"+NOSCRIPT No matching script\r\n", "NOSCRIPT", false},
      {"$8\r\nNOSCRIPT\r\n", "NOSCRIPT", false},
      {":1\r\n", "NOSCRIPT", false},
      {"$-1\r\n", "NOSCRIPT", false},
  };
  for (const Case& c : cases) {
    const std::string shown = printable(c.bytes);
    CAPTURE(shown);
    CAPTURE(c.code);
    const RedisReplyPtr reply = parse(c.bytes);
    CHECK(error_is(reply.get(), c.code) == c.expected);
  }
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

// Found by tests/fuzz (redis_reply): hiredis allocates an array's element vector when it reads
// the count, so "*288888301" asked for 2.3 GB. The framer refuses it before hiredis sees it.
TEST_CASE("RespReader refuses absurd element counts and bulk lengths before allocating") {
  const std::string_view cases[] = {
      "*288888301\r\n:3\r\n",
      "*1\r\n*1048577\r\n",
      "$536870913\r\nab",
      "*2\r\n:1\r\n$-2\r\n",
  };
  for (std::string_view bytes : cases) {
    CAPTURE(bytes);
    RespReader reader;
    REQUIRE(reader.feed(bytes));
    CHECK_FALSE(reader.next().has_value());
    CHECK_FALSE(reader.error().empty());
  }
  // The replies before the bad one are still delivered.
  RespReader reader;
  REQUIRE(reader.feed("+OK\r\n*99999999\r\n"));
  auto first = reader.next();
  REQUIRE(first.has_value());
  REQUIRE(*first != nullptr);
  CHECK(reply_text(first->get()) == "OK");
  CHECK_FALSE(reader.next().has_value());
  CHECK(reader.error() == "array reply with too many elements");
}

TEST_CASE("RespReader frames lines at CRLF only, as hiredis does") {
  // A lone LF is part of a line to hiredis. The framer once ended lines there too, so a status
  // line with an LF in it hid an absurd count from the framer that hiredis then allocated for
  // (redis_reply_fuzz: a 2.3 GB calloc).
  const ReplyCase cases[] = {
      {"+a\nb\r\n:1\r\n", {"status(a\\nb)", "integer(1)"}},
      {"-ERR x\ny\r\n", {"error(ERR x\\ny)"}},
      {"+a\n*288888301\r\n", {"status(a\\n*288888301)"}},
  };
  for (const ReplyCase& c : cases) {
    check_every_split(c);
  }
  // The count hidden after a lone LF is seen for what it is once the line really ends.
  RespReader reader;
  REQUIRE(reader.feed("+a\n\r\n*288888301\r\n:3\r\n"));
  auto first = reader.next();
  REQUIRE(first.has_value());
  REQUIRE(*first != nullptr);
  CHECK(reply_text(first->get()) == "a\n");
  CHECK_FALSE(reader.next().has_value());
  CHECK(reader.error() == "array reply with too many elements");
}

}  // namespace
}  // namespace cachecar
