// cache/envelope.h: the stored form of a cached response, and the bytes of a hit.
//
// A value read from Redis may have been written by anyone, so decode_envelope is fed every
// truncation of a valid envelope and every kind of malformed header line.

#include "cache/envelope.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cachecar {
namespace {

using namespace std::string_literals;

using Fields = std::vector<std::pair<std::string_view, std::string_view>>;

// Shows control bytes, so a failing CHECK on binary text is readable.
std::string printable(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\\') {
      out += "\\\\";
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

std::string le(uint64_t value, size_t bytes) {
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    out += static_cast<char>((value >> (8 * i)) & 0xff);
  }
  return out;
}

// An envelope built by hand from its documented layout, so any field may be made invalid.
std::string raw_envelope(uint64_t status, std::string_view head, std::string_view body,
                         std::string_view magic = "CCE1", uint64_t stored_at = 1) {
  return std::string(magic) + le(stored_at, 8) + le(status, 2) + le(head.size(), 4) +
         std::string(head) + le(body.size(), 4) + std::string(body);
}

std::string many_header_lines(int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    out += "X-Field-" + std::to_string(i) + ": value " + std::to_string(i) + "\r\n";
  }
  return out;
}

std::string all_bytes() {
  std::string out;
  for (int i = 0; i < 256; ++i) {
    out += static_cast<char>(i);
  }
  return out;
}

void check_decode_fails(std::string_view bytes) {
  const std::string shown = printable(bytes);
  CAPTURE(shown);
  std::string error;
  const auto decoded = decode_envelope(bytes, error);
  CHECK_FALSE(decoded.has_value());
  CHECK_FALSE(error.empty());
}

TEST_CASE("encode_envelope writes the documented layout") {
  CachedResponse response;
  response.status = 404;
  response.head_lines = "A: b\r\n";
  response.body = "xy";
  response.stored_at_ms = 0x0102030405060708;
  const std::string expected =
      "CCE1"
      "\x08\x07\x06\x05\x04\x03\x02\x01"
      "\x94\x01"
      "\x06\x00\x00\x00"
      "A: b\r\n"
      "\x02\x00\x00\x00"
      "xy"s;
  CHECK(printable(encode_envelope(response)) == printable(expected));
}

TEST_CASE("encode_envelope: a nonzero epoch writes CCE2, with the epoch after the time") {
  CachedResponse response;
  response.status = 404;
  response.head_lines = "A: b\r\n";
  response.body = "xy";
  response.stored_at_ms = 0x0102030405060708;
  const std::string expected =
      "CCE2"
      "\x08\x07\x06\x05\x04\x03\x02\x01"
      "\x03\x00\x00\x00\x00\x00\x00\x00"
      "\x94\x01"
      "\x06\x00\x00\x00"
      "A: b\r\n"
      "\x02\x00\x00\x00"
      "xy"s;
  const std::string bytes = encode_envelope(response, 3);
  CHECK(printable(bytes) == printable(expected));
  std::string error;
  const auto view = view_envelope(bytes, error);
  REQUIRE_MESSAGE(view.has_value(), error);
  CHECK(view->epoch == 3);
  CHECK(view->status == 404);
  CHECK(view->stored_at_ms == 0x0102030405060708);
  CHECK(view->head_lines == "A: b\r\n");
  CHECK(view->body == "xy");
  // CCE1 is epoch 0; the largest epoch survives the trip.
  CHECK(view_envelope(encode_envelope(response), error)->epoch == 0);
  CHECK(view_envelope(encode_envelope(response, UINT64_MAX), error)->epoch == UINT64_MAX);
  // A CCE2 cut inside its epoch is refused, not read as CCE1.
  CHECK_FALSE(view_envelope(bytes.substr(0, 20), error).has_value());
  // CCE2 never carries epoch 0 (that is CCE1), so each entry has one encoding.
  std::string zero = bytes;
  zero[12] = '\0';
  CHECK_FALSE(view_envelope(zero, error).has_value());
  CHECK(error == "CCE2 with epoch 0");
}

TEST_CASE("encode_envelope and decode_envelope round trip") {
  struct Case {
    std::string_view name;
    CachedResponse response;
  };
  const Case cases[] = {
      {"plain", {200, "Content-Type: application/json\r\n", "{\"id\":42}", 1'700'000'000'000}},
      {"empty body", {200, "Content-Type: text/plain\r\n", "", 1}},
      {"no header lines", {200, "", "body", 2}},
      {"nothing at all", {200, "", "", 0}},
      {"binary body", {200, "Content-Type: application/octet-stream\r\n", all_bytes(), 3}},
      {"NULs and CRLFs in the body", {200, "A: b\r\n", "\0\r\n\r\n\0HTTP/1.1 200 OK\r\n\0"s, 4}},
      {"an envelope in the body", {200, "", raw_envelope(200, "A: b\r\n", "x"), 5}},
      {"many headers", {200, many_header_lines(200), "x", 6}},
      {"a long body", {200, "A: b\r\n", std::string(1 << 20, 'z'), 7}},
      {"lowest status", {200, "", "", 8}},
      {"highest status", {599, "", "", 9}},
      {"404", {404, "Content-Type: text/plain\r\n", "not here", 10}},
      {"empty value, tab, obs-text",
       {200, "A:\r\nB: x\ty\r\nC: caf\xc3\xa9\r\nD:no-space\r\n", "", 11}},
      {"every tchar in a name", {200, "!#$%&'*+-.^_`|~09azAZ: v\r\n", "", 12}},
      {"latest time", {200, "", "", std::numeric_limits<int64_t>::max()}},
      {"negative time", {200, "", "", -1}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const std::string bytes = encode_envelope(c.response);
    CHECK(bytes.size() == 22 + c.response.head_lines.size() + c.response.body.size());
    CHECK(bytes.substr(0, 4) == "CCE1");
    std::string error;
    const auto decoded = decode_envelope(bytes, error);
    CAPTURE(error);
    REQUIRE(decoded.has_value());
    CHECK(decoded->status == c.response.status);
    CHECK(decoded->head_lines == c.response.head_lines);
    CHECK(decoded->body == c.response.body);
    CHECK(decoded->stored_at_ms == c.response.stored_at_ms);
  }
}

TEST_CASE("stored_head_lines keeps end-to-end fields only") {
  struct Case {
    Fields fields;
    std::string_view expected;
  };
  const Case cases[] = {
      {{}, ""},
      {{{"Content-Type", "application/json"}}, "Content-Type: application/json\r\n"},
      // Order and repeats are kept; values are copied as they are.
      {{{"ETag", "\"v1\""}, {"Cache-Control", "max-age=60"}, {"X-A", "1"}, {"X-A", "2"}},
       "ETag: \"v1\"\r\nCache-Control: max-age=60\r\nX-A: 1\r\nX-A: 2\r\n"},
      {{{"X-Empty", ""}}, "X-Empty: \r\n"},
      // Fields a hit adds fresh, or that are private to one client.
      {{{"Set-Cookie", "a=1"}, {"Age", "3"}, {"Via", "1.1 upstream"}, {"X-Cache", "MISS"}}, ""},
      // Framing and hop-by-hop fields.
      {{{"Content-Length", "5"},
        {"Transfer-Encoding", "chunked"},
        {"Connection", "keep-alive"},
        {"Keep-Alive", "timeout=5"},
        {"TE", "trailers"},
        {"Trailer", "X-Sum"},
        {"Upgrade", "h2c"}},
       ""},
      {{{"Proxy-Authenticate", "Basic"}, {"Proxy-Connection", "close"}, {"proxy-x", "1"}}, ""},
      // One client's quota at one moment, never to be served to another.
      {{{"RateLimit-Remaining", "99"},
        {"ratelimit-policy", "100;w=60"},
        {"RateLimit", "limit=100, remaining=99"},
        {"X-RateLimit-Remaining", "5"}},
       ""},
      // Case-insensitively.
      {{{"set-cookie", "a=1"}, {"CONTENT-LENGTH", "5"}, {"x-cache", "HIT"}, {"aGe", "1"}}, ""},
      // Names that only start like a dropped one are kept.
      {{{"Ages", "1"}, {"Vias", "2"}, {"Proxy", "3"}, {"Set-Cookie2", "4"}, {"X-Cache-Key", "5"}},
       "Ages: 1\r\nVias: 2\r\nProxy: 3\r\nSet-Cookie2: 4\r\nX-Cache-Key: 5\r\n"},
      // Dropped ones among kept ones.
      {{{"Content-Type", "text/plain"},
        {"Set-Cookie", "a=1"},
        {"Content-Length", "2"},
        {"Last-Modified", "Tue, 01 Jan 2030 00:00:00 GMT"},
        {"Via", "1.1 cachecar"},
        {"Vary", "Accept-Encoding"}},
       "Content-Type: text/plain\r\nLast-Modified: Tue, 01 Jan 2030 00:00:00 GMT\r\n"
       "Vary: Accept-Encoding\r\n"},
  };
  for (const Case& c : cases) {
    Headers headers;
    std::string fields;
    for (const auto& [name, value] : c.fields) {
      headers.add(std::string(name), std::string(value));
      fields += " [" + std::string(name) + ": " + std::string(value) + "]";
    }
    CAPTURE(fields);
    const std::string lines = stored_head_lines(headers);
    CHECK(lines == c.expected);
    // What is stored must decode again.
    std::string error;
    CHECK(decode_envelope(encode_envelope({200, lines, "", 0}), error).has_value());
  }
}

TEST_CASE("decode_envelope rejects a foreign value") {
  const std::string valid = raw_envelope(200, "A: b\r\n", "body");
  const std::string values[] = {
      "",
      "CCE1",
      "{\"id\":42}",
      "CCE2" + valid.substr(4),
      "cce1" + valid.substr(4),
      "CCE0" + valid.substr(4),
      "XCE1" + valid.substr(4),
      "\0CE1"s + valid.substr(4),
      std::string(64, '\0'),
  };
  for (const std::string& value : values) {
    check_decode_fails(value);
  }
}

TEST_CASE("decode_envelope rejects every truncation of a valid envelope") {
  const CachedResponse responses[] = {
      {200, "Content-Type: text/plain\r\nETag: \"1\"\r\n", "hello, world", 1'700'000'000'000},
      {200, "", "", 0},
      {200, "A: b\r\n", "", 1},
      {200, "", "\0\0\0\0"s, 2},
      {404, many_header_lines(3), all_bytes(), 3},
  };
  for (const CachedResponse& response : responses) {
    const std::string valid = encode_envelope(response);
    std::string error;
    REQUIRE(decode_envelope(valid, error).has_value());
    for (size_t length = 0; length < valid.size(); ++length) {
      CAPTURE(length);
      check_decode_fails(std::string_view(valid).substr(0, length));
    }
  }
}

TEST_CASE("decode_envelope rejects trailing bytes and lengths that do not add up") {
  const std::string valid = raw_envelope(200, "A: b\r\n", "body");
  const std::string values[] = {
      valid + "x",
      valid + "\0"s,
      valid + valid,
      // Header length past the end, or eating into the body length.
      "CCE1" + le(1, 8) + le(200, 2) + le(0xffffffff, 4) + "A: b\r\n" + le(4, 4) + "body",
      "CCE1" + le(1, 8) + le(200, 2) + le(7, 4) + "A: b\r\n" + le(4, 4) + "body",
      "CCE1" + le(1, 8) + le(200, 2) + le(5, 4) + "A: b\r\n" + le(4, 4) + "body",
      // Body length too large or too small.
      "CCE1" + le(1, 8) + le(200, 2) + le(6, 4) + "A: b\r\n" + le(0xffffffff, 4) + "body",
      "CCE1" + le(1, 8) + le(200, 2) + le(6, 4) + "A: b\r\n" + le(5, 4) + "body",
      "CCE1" + le(1, 8) + le(200, 2) + le(6, 4) + "A: b\r\n" + le(3, 4) + "body",
      "CCE1" + le(1, 8) + le(200, 2) + le(0, 4) + le(0xffffffff, 4),
  };
  for (const std::string& value : values) {
    check_decode_fails(value);
  }
}

TEST_CASE("decode_envelope accepts statuses 200 to 599 only") {
  struct Case {
    uint64_t status;
    bool valid;
  };
  const Case cases[] = {
      {0, false},   {1, false},    {99, false},     {100, false},    {101, false}, {199, false},
      {200, true},  {204, true},   {301, true},     {404, true},     {599, true},  {600, false},
      {999, false}, {1000, false}, {0x8000, false}, {0xffff, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.status);
    const std::string bytes = raw_envelope(c.status, "A: b\r\n", "x");
    if (c.valid) {
      std::string error;
      const auto decoded = decode_envelope(bytes, error);
      CAPTURE(error);
      REQUIRE(decoded.has_value());
      CHECK(decoded->status == static_cast<int>(c.status));
    } else {
      check_decode_fails(bytes);
    }
  }
}

TEST_CASE("decode_envelope rejects malformed or forbidden header lines") {
  const std::string lines[] = {
      // Line endings.
      "A: b",
      "A: b\n",
      "A: b\r",
      "A: b\nC: d\r\n",
      "A: b\r\nC: d\n",
      "A: b\r\nC: d",
      "\r\n",
      "A: b\r\n\r\n",
      "A: b\r\n\r\nC: d\r\n",
      // Bytes a value may not hold.
      "A: b\rc\r\n",
      "A: b\r\rc\r\n",
      "A: \r\r\n",
      "A: b\x7f\r\n",
      "A: \0\r\n"s,
      "A: b\x01\r\n",
      "A: b\x1b[0m\r\n",
      // No name, or a name that is not a token.
      "A\r\n",
      "A b\r\n",
      ": b\r\n",
      ":\r\n",
      " A: b\r\n",
      "A : b\r\n",
      "A\t: b\r\n",
      "A(: b\r\n",
      "A/B: c\r\n",
      "A\"B: c\r\n",
      "A\x01: b\r\n",
      "\xc3\xa9: b\r\n",
      "\0: b\r\n"s,
      // A good line before a bad one.
      "Content-Type: text/plain\r\nA b\r\n",
      "Content-Type: text/plain\r\nA: b\r\nInjected\r\n",
      // Fields cachecar frames or adds itself: a crafted value must not split a response.
      "Content-Length: 0\r\n",
      "content-length: 100\r\n",
      "Content-Type: text/plain\r\nContent-Length: 5\r\n",
      "Transfer-Encoding: chunked\r\n",
      "TRANSFER-ENCODING: chunked\r\n",
      "Connection: keep-alive\r\n",
      "Content-Type: text/plain\r\nConnection: close\r\n",
      "Keep-Alive: timeout=5\r\n",
      "Upgrade: h2c\r\n",
      "Trailer: X-Sum\r\n",
      "TE: trailers\r\n",
      "Proxy-Connection: keep-alive\r\n",
      "Set-Cookie: session=stolen\r\n",
      "Age: 100\r\n",
      "Via: 1.1 elsewhere\r\n",
      "X-Cache: HIT\r\n",
  };
  for (const std::string& head : lines) {
    check_decode_fails(raw_envelope(200, head, "body"));
  }
}

TEST_CASE("response_from_body") {
  struct Case {
    std::string body;
    std::string_view content_type;
  };
  const Case cases[] = {
      {"{\"id\":42}", "application/json"},
      {"", "application/json"},
      {"plain \0 text"s, "text/plain; charset=utf-8"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.content_type);
    const CachedResponse response = response_from_body(c.body, c.content_type);
    CHECK(response.status == 200);
    CHECK(response.head_lines == "Content-Type: " + std::string(c.content_type) + "\r\n");
    CHECK(response.body == c.body);
    CHECK(response.stored_at_ms == 0);
  }
  std::string out;
  write_cached_response(response_from_body("{}", "application/json").view(), HitFraming{}, out);
  CHECK(out ==
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nAge: 0\r\nX-Cache: HIT\r\n"
        "Via: 1.1 cachecar\r\nContent-Length: 2\r\n\r\n{}");
}

TEST_CASE("write_cached_response writes the exact bytes of a hit") {
  const CachedResponse hello{200, "Content-Type: text/plain\r\nETag: \"1\"\r\n", "hello", 0};
  const CachedResponse missing{404, "", "gone", 0};
  const CachedResponse empty{200, "", "", 0};
  const CachedResponse binary{200, "", "a\0\r\n\0b"s, 0};
  const CachedResponse no_content{204, "ETag: \"2\"\r\n", "", 0};
  struct Case {
    std::string_view name;
    const CachedResponse* response;
    HitFraming framing;
    std::string expected;
  };
  const Case cases[] = {
      {"hit",
       &hello,
       {5, "HIT", true, false, {}},
       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"1\"\r\nAge: 5\r\nX-Cache: HIT\r\n"
       "Via: 1.1 cachecar\r\nContent-Length: 5\r\n\r\nhello"},
      {"not keep-alive",
       &hello,
       {5, "HIT", false, false, {}},
       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"1\"\r\nAge: 5\r\nX-Cache: HIT\r\n"
       "Via: 1.1 cachecar\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"},
      {"HEAD: the length of the body, without it",
       &hello,
       {5, "HIT", true, true, {}},
       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"1\"\r\nAge: 5\r\nX-Cache: HIT\r\n"
       "Via: 1.1 cachecar\r\nContent-Length: 5\r\n\r\n"},
      {"HEAD, not keep-alive",
       &hello,
       {0, "HIT", false, true, {}},
       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"1\"\r\nAge: 0\r\nX-Cache: HIT\r\n"
       "Via: 1.1 cachecar\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"},
      {"negative age (clock skew) is 0",
       &empty,
       {-30, "HIT", true, false, {}},
       "HTTP/1.1 200 OK\r\nAge: 0\r\nX-Cache: HIT\r\nVia: 1.1 cachecar\r\nContent-Length: "
       "0\r\n\r\n"},
      {"lowest age",
       &empty,
       {std::numeric_limits<int64_t>::min(), "HIT", true, false, {}},
       "HTTP/1.1 200 OK\r\nAge: 0\r\nX-Cache: HIT\r\nVia: 1.1 cachecar\r\nContent-Length: "
       "0\r\n\r\n"},
      {"large age",
       &empty,
       {86'400'000, "HIT", true, false, {}},
       "HTTP/1.1 200 OK\r\nAge: 86400000\r\nX-Cache: HIT\r\nVia: 1.1 cachecar\r\n"
       "Content-Length: 0\r\n\r\n"},
      {"another X-Cache value",
       &missing,
       {1, "HIT-COALESCED", true, false, {}},
       "HTTP/1.1 404 Not Found\r\nAge: 1\r\nX-Cache: HIT-COALESCED\r\nVia: 1.1 cachecar\r\n"
       "Content-Length: 4\r\n\r\ngone"},
      {"binary body",
       &binary,
       {2, "HIT", true, false, {}},
       "HTTP/1.1 200 OK\r\nAge: 2\r\nX-Cache: HIT\r\nVia: 1.1 cachecar\r\nContent-Length: 6\r\n\r\n"
       "a\0\r\n\0b"s},
      {"204: no Content-Length (RFC 9110 §8.6)",
       &no_content,
       {3, "HIT", true, false, {}},
       "HTTP/1.1 204 No Content\r\nETag: \"2\"\r\nAge: 3\r\nX-Cache: HIT\r\nVia: 1.1 cachecar\r\n\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    std::string out;
    write_cached_response(c.response->view(), c.framing, out);
    CHECK(printable(out) == printable(c.expected));
  }
}

TEST_CASE("write_cached_response appends to what is already there") {
  std::string out = "previous response";
  write_cached_response({200, "", "x", 0}, HitFraming{}, out);
  CHECK(out ==
        "previous responseHTTP/1.1 200 OK\r\nAge: 0\r\nX-Cache: HIT\r\nVia: 1.1 cachecar\r\n"
        "Content-Length: 1\r\n\r\nx");
}

TEST_CASE("a decoded envelope writes the response it was made from") {
  Headers headers;
  headers.add("Content-Type", "application/json");
  headers.add("Set-Cookie", "a=1");
  headers.add("Content-Length", "9");
  headers.add("Cache-Control", "max-age=60");
  const CachedResponse stored{200, stored_head_lines(headers), "{\"id\":42}", 1'000};
  std::string error;
  const auto decoded = decode_envelope(encode_envelope(stored), error);
  CAPTURE(error);
  REQUIRE(decoded.has_value());
  std::string out;
  write_cached_response(decoded->view(), HitFraming{12, "HIT", true, false, {}}, out);
  CHECK(out ==
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: max-age=60\r\n"
        "Age: 12\r\nX-Cache: HIT\r\nVia: 1.1 cachecar\r\nContent-Length: 9\r\n\r\n{\"id\":42}");
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

TEST_CASE("view_envelope sees the same response as decode_envelope, in place") {
  const CachedResponse original{201, "A: 1\r\nB: two\r\n", std::string("bo\0dy", 5), 1234};
  const std::string bytes = encode_envelope(original);
  std::string error;
  const auto view = view_envelope(bytes, error);
  REQUIRE(view.has_value());
  CHECK(view->status == 201);
  CHECK(view->head_lines == original.head_lines);
  CHECK(view->body == original.body);
  CHECK(view->stored_at_ms == 1234);
  // In place: the views point into the bytes.
  CHECK(view->body.data() == bytes.data() + bytes.size() - original.body.size());
  CHECK_FALSE(view_envelope(bytes.substr(0, bytes.size() - 1), error).has_value());
}

// A soft purge marks an entry in place (cache/scripts.h: kInvalidateScript): "CCE" becomes
// "CCS" and the purge's time follows the body. Both layouts read back whole, with the time.
TEST_CASE("view_envelope reads a soft purge's mark on either layout") {
  CachedResponse response;
  response.status = 200;
  response.head_lines = "ETag: \"7\"\r\n";
  response.body = "body";
  response.stored_at_ms = 1'700'000'000'000;
  for (const uint64_t epoch : {uint64_t{0}, uint64_t{5}}) {
    CAPTURE(epoch);
    std::string marked = encode_envelope(response, epoch);
    marked[2] = 'S';
    marked += le(1'700'000'123'456, 8);
    std::string error;
    const auto view = view_envelope(marked, error);
    REQUIRE_MESSAGE(view.has_value(), error);
    CHECK(view->stale_since_ms == 1'700'000'123'456);
    CHECK(view->epoch == epoch);
    CHECK(view->stored_at_ms == response.stored_at_ms);
    CHECK(view->head_lines == response.head_lines);
    CHECK(view->body == "body");
    // Unmarked, nothing is stale.
    CHECK(view_envelope(encode_envelope(response, epoch), error)->stale_since_ms == 0);
    // The mark's time is part of the value: cut short or missing, the value is refused, not
    // read with a body eaten into.
    for (size_t cut = 1; cut <= 8; ++cut) {
      CAPTURE(cut);
      check_decode_fails(std::string_view(marked).substr(0, marked.size() - cut));
    }
    std::string no_time = marked;
    no_time.replace(no_time.size() - 8, 8, le(0, 8));
    check_decode_fails(no_time);
    // What the purge's script checks before marking: the mark, and lengths that add up.
    CHECK(carries_soft_purge_mark(marked));
    CHECK_FALSE(carries_soft_purge_mark(encode_envelope(response, epoch)));
    CHECK_FALSE(carries_soft_purge_mark(marked.substr(0, marked.size() - 1)));
    CHECK_FALSE(carries_soft_purge_mark(marked + "x"));
    CHECK_FALSE(carries_soft_purge_mark("CCS1,csv"));
    // Lengths that add up are enough: a bare body the script marked is told apart even when
    // it is no valid envelope (here: status 0).
    std::string no_status = marked;
    no_status[epoch == 0 ? 12 : 20] = '\0';
    no_status[epoch == 0 ? 13 : 21] = '\0';
    check_decode_fails(no_status);
    CHECK(carries_soft_purge_mark(no_status));
    // Only the third letter marks: "CSE1" or "SCE1" are foreign.
    for (const size_t letter : {size_t{0}, size_t{1}, size_t{3}}) {
      std::string other = encode_envelope(response, epoch) + le(1'700'000'123'456, 8);
      other[letter] = 'S';
      check_decode_fails(other);
    }
  }
}

}  // namespace
}  // namespace cachecar
