// http/writer.h and http/error_page.h: the exact bytes cachecar puts on the wire.

#include "http/writer.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/error_page.h"

namespace cachecar {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

Headers make(const Fields& fields) {
  Headers headers;
  for (const auto& [name, value] : fields) {
    headers.add(name, value);
  }
  return headers;
}

TEST_CASE("write_request_head writes the request line, the headers and cachecar's framing") {
  struct Case {
    std::string_view name;
    std::string_view method;
    std::string_view target;
    Fields headers;
    BodyFraming framing;
    uint64_t content_length;
    std::string_view expected;
  };
  const Case cases[] = {
      {"no body",
       "GET",
       "/products/42?x=1",
       {{"Host", "a"}, {"Accept", "*/*"}},
       BodyFraming::None,
       0,
       "GET /products/42?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"},
      {"Content-Length",
       "POST",
       "/p",
       {{"Host", "a"}},
       BodyFraming::ContentLength,
       11,
       "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"},
      {"empty Content-Length body",
       "PUT",
       "/p",
       {},
       BodyFraming::ContentLength,
       0,
       "PUT /p HTTP/1.1\r\nContent-Length: 0\r\n\r\n"},
      {"largest Content-Length",
       "PUT",
       "/p",
       {},
       BodyFraming::ContentLength,
       18'446'744'073'709'551'615ULL,
       "PUT /p HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n"},
      {"chunked",
       "POST",
       "/c",
       {{"Host", "a"}},
       BodyFraming::Chunked,
       0,
       "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"},
      {"UntilClose is not a request framing: nothing written",
       "GET",
       "/",
       {{"Host", "a"}},
       BodyFraming::UntilClose,
       0,
       "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"no headers", "DELETE", "/x", {}, BodyFraming::None, 0, "DELETE /x HTTP/1.1\r\n\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    RequestHead head;
    head.method = std::string(c.method);
    head.target = "/ignored";          // the target argument is what goes on the wire
    head.version = HttpVersion{1, 0};  // cachecar always speaks HTTP/1.1 upstream
    head.headers = make(c.headers);
    head.framing = c.framing;
    head.content_length = c.content_length;
    std::string out = "previous";
    write_request_head(head, c.target, out);
    CHECK(out == "previous" + std::string(c.expected));
  }
}

TEST_CASE("write_response_head writes status, headers, framing and Connection: close") {
  struct Case {
    std::string_view name;
    int status;
    std::string_view reason;
    Fields headers;
    ResponseFraming framing;
    std::string_view expected;
  };
  const Case cases[] = {
      {"Content-Length",
       200,
       "",
       {{"Content-Type", "text/plain"}},
       {BodyFraming::ContentLength, 5, false, true, {}},
       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"},
      {"the upstream's reason phrase kept",
       200,
       "Fine Thanks",
       {},
       {BodyFraming::ContentLength, 0, false, true, {}},
       "HTTP/1.1 200 Fine Thanks\r\nContent-Length: 0\r\n\r\n"},
      {"chunked",
       200,
       "OK",
       {{"Content-Type", "application/json"}},
       {BodyFraming::Chunked, 0, false, true, {}},
       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"},
      {"no body",
       204,
       "",
       {{"ETag", "\"v1\""}},
       {BodyFraming::None, 0, false, true, {}},
       "HTTP/1.1 204 No Content\r\nETag: \"v1\"\r\n\r\n"},
      {"HEAD: the length announced, no body",
       200,
       "",
       {},
       {BodyFraming::None, 1234, true, true, {}},
       "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"},
      {"304 with the announced length",
       304,
       "",
       {},
       {BodyFraming::None, 42, true, true, {}},
       "HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\n\r\n"},
      {"body until close",
       200,
       "",
       {{"Content-Type", "text/plain"}},
       {BodyFraming::UntilClose, 0, false, false, {}},
       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"},
      {"Content-Length and close",
       404,
       "",
       {},
       {BodyFraming::ContentLength, 9, false, false, {}},
       "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"},
      {"chunked and close",
       500,
       "",
       {},
       {BodyFraming::Chunked, 0, false, false, {}},
       "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\nConnection: "
       "close\r\n\r\n"},
      {"extra lines before the framing",
       200,
       "",
       {{"A", "1"}},
       {BodyFraming::ContentLength, 2, false, true, "RateLimit-Limit: 5\r\n"},
       "HTTP/1.1 200 OK\r\nA: 1\r\nRateLimit-Limit: 5\r\nContent-Length: 2\r\n\r\n"},
      {"status without a standard phrase",
       299,
       "",
       {},
       {BodyFraming::None, 0, false, true, {}},
       "HTTP/1.1 299 Unknown\r\n\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    std::string out = "previous";
    write_response_head(c.status, c.reason, make(c.headers), c.framing, out);
    CHECK(out == "previous" + std::string(c.expected));
  }
}

TEST_CASE("frame_for_client: the upstream's framing, the client's version and keep-alive") {
  constexpr auto kNone = BodyFraming::None;
  constexpr auto kLength = BodyFraming::ContentLength;
  constexpr auto kChunked = BodyFraming::Chunked;
  constexpr auto kUntilClose = BodyFraming::UntilClose;
  struct Case {
    std::string_view name;
    BodyFraming upstream;
    int status;
    bool length_announced;
    HttpVersion client;
    bool wants_body;
    bool keep_alive;
    // expected
    BodyFraming framing;
    bool announce_length;
    bool chunked;
    bool keeps;
    bool announce_keep_alive;
  };
  const Case cases[] = {
      {"length to 1.1", kLength, 200, true, {1, 1}, true, true, kLength, false, false, true, false},
      {"length to 1.0 keeps when told", kLength, 200, true, {1, 0}, true, true, kLength, false,
       false, true, true},
      {"chunked to 1.1 stays chunked", kChunked, 200, false, {1, 1}, true, true, kChunked, false,
       true, true, false},
      {"until close to 1.1 becomes chunked", kUntilClose, 200, false, {1, 1}, true, true, kChunked,
       false, true, true, false},
      {"chunked to 1.0 ends with the connection", kChunked, 200, false, {1, 0}, true, true,
       kUntilClose, false, false, false, false},
      {"HEAD passes the announced length on", kLength, 200, true, {1, 1}, false, true, kNone, true,
       false, true, false},
      {"304 without a body keeps its length", kNone, 304, true, {1, 1}, true, true, kNone, true,
       false, true, false},
      {"204 never announces a length", kNone, 204, true, {1, 1}, true, true, kNone, false, false,
       true, false},
      {"no keep-alive wanted", kLength, 200, true, {1, 1}, true, false, kLength, false, false,
       false, false},
      {"1.0 without keep-alive is not told to keep", kLength, 200, true, {1, 0}, true, false,
       kLength, false, false, false, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    ResponseHead head;
    head.status = c.status;
    head.framing = c.upstream;
    head.content_length = c.upstream == kLength || c.length_announced ? 42 : 0;
    head.length_announced = c.length_announced;
    const ClientFraming out = frame_for_client(head, c.client, c.wants_body, c.keep_alive);
    CHECK(out.framing.framing == c.framing);
    CHECK(out.framing.announce_length == c.announce_length);
    CHECK(out.chunked == c.chunked);
    CHECK(out.framing.keep_alive == c.keeps);
    CHECK(out.announce_keep_alive == c.announce_keep_alive);
    if (c.framing == kLength || c.announce_length) {
      CHECK(out.framing.content_length == 42);
    }
  }
}

TEST_CASE("write_chunk frames data with a lower-case hex size") {
  struct Case {
    std::string data;
    std::string expected;
  };
  const Case cases[] = {
      {"", ""},  // a zero-size chunk would end the body: nothing is written
      {"a", "1\r\na\r\n"},
      {"hello", "5\r\nhello\r\n"},
      {std::string(10, 'x'), "a\r\n" + std::string(10, 'x') + "\r\n"},
      {std::string(15, 'x'), "f\r\n" + std::string(15, 'x') + "\r\n"},
      {std::string(16, 'x'), "10\r\n" + std::string(16, 'x') + "\r\n"},
      {"abcdefghijklmnopqrstuvwxyz", "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n"},
      {std::string(255, 'x'), "ff\r\n" + std::string(255, 'x') + "\r\n"},
      {std::string(256, 'x'), "100\r\n" + std::string(256, 'x') + "\r\n"},
      {std::string(4096, 'x'), "1000\r\n" + std::string(4096, 'x') + "\r\n"},
      {std::string(65535, 'x'), "ffff\r\n" + std::string(65535, 'x') + "\r\n"},
      // Any bytes, CRLF and NUL included: the size frames them.
      {std::string("\r\n0\r\n\0", 6), std::string("6\r\n\r\n0\r\n\0\r\n", 11)},
  };
  for (const Case& c : cases) {
    CAPTURE(c.data.size());
    std::string out = "previous";
    write_chunk(c.data, out);
    CHECK(out == "previous" + c.expected);
  }
}

TEST_CASE("write_last_chunk ends the body with an empty trailer section") {
  std::string out = "5\r\nhello\r\n";
  write_last_chunk(out);
  CHECK(out == "5\r\nhello\r\n0\r\n\r\n");
}

TEST_CASE("append_json_escaped escapes quotes, backslashes and control bytes") {
  struct Case {
    std::string text;
    std::string expected;
  };
  const Case cases[] = {
      {"", ""},
      {"upstream timed out", "upstream timed out"},
      {"say \"hi\"", "say \\\"hi\\\""},
      {"a\\b", "a\\\\b"},
      {"\n\r\t", "\\n\\r\\t"},
      {std::string(1, '\0'), "\\u0000"},
      {"\x01", "\\u0001"},
      {"\x08\x0c", "\\u0008\\u000c"},
      {"\x1f", "\\u001f"},
      {"\x7f", "\\u007f"},
      {" ~/", " ~/"},
      {"caf\xc3\xa9", "caf\xc3\xa9"},  // UTF-8 passes through
      {"</script>", "</script>"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string out = "previous";
    append_json_escaped(c.text, out);
    CHECK(out == "previous" + c.expected);
  }
}

TEST_CASE("json_error_body") {
  CHECK(json_error_body("not found") == "{\"error\":\"not found\"}");
  CHECK(json_error_body("") == "{\"error\":\"\"}");
  CHECK(json_error_body("bad \"x\"\n") == "{\"error\":\"bad \\\"x\\\"\\n\"}");
}

TEST_CASE("error_response: exact bytes") {
  struct Case {
    std::string_view name;
    int status;
    std::string_view message;
    bool keep_alive;
    std::string_view extra;
    bool head_only;
    std::string_view expected;
  };
  const Case cases[] = {
      {"keep-alive", 404, "not found", true, "", false,
       "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n"
       "{\"error\":\"not found\"}"},
      {"Connection: close when not keep-alive", 400, "bad request", false, "", false,
       "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 23\r\n"
       "Connection: close\r\n\r\n{\"error\":\"bad request\"}"},
      {"extra headers verbatim, before Connection", 429, "slow down", false, "Retry-After: 1\r\n",
       false,
       "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: 21\r\n"
       "Retry-After: 1\r\nConnection: close\r\n\r\n{\"error\":\"slow down\"}"},
      {"HEAD: no body, Content-Length of the body a GET gets", 502, "upstream unavailable", true,
       "", true,
       "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: 32\r\n\r\n"},
      {"HEAD and close", 504, "upstream timed out", false, "", true,
       "HTTP/1.1 504 Gateway Timeout\r\nContent-Type: application/json\r\nContent-Length: 30\r\n"
       "Connection: close\r\n\r\n"},
      {"escaped message", 400, "bad \"x\"", true, "", false,
       "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n"
       "{\"error\":\"bad \\\"x\\\"\"}"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK(error_response(c.status, c.message, c.keep_alive, c.extra, c.head_only) == c.expected);
  }
}

TEST_CASE("error_response: Content-Length always matches the escaped body") {
  const std::string messages[] = {
      "",
      "plain",
      "quote \" backslash \\",
      std::string("nul \0 and \x01\x1f\x7f", 13),
      "line\r\nInjected: header",
      "caf\xc3\xa9",
      std::string(5000, '"'),
  };
  for (const std::string& message : messages) {
    CAPTURE(message);
    const std::string full = error_response(400, message, true);
    const std::string head_only = error_response(400, message, true, {}, true);
    const size_t end = full.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    const std::string body = full.substr(end + 4);
    CHECK(body == json_error_body(message));
    CHECK(full.find("Content-Length: " + std::to_string(body.size()) + "\r\n") < end);
    // The head is identical with and without the body.
    CHECK(head_only == full.substr(0, end + 4));
    // Control bytes never reach the wire raw: the message cannot inject header lines.
    CHECK(std::none_of(body.begin(), body.end(),
                       [](char ch) { return static_cast<unsigned char>(ch) < 0x20; }));
  }
}

}  // namespace
}  // namespace cachecar
