// http/parser.h: the request and response parsers, fed the way the network delivers bytes.
//
// Every valid message is fed at every split point (two pieces, [0,i) and [i,n)) and one byte at
// a time, and must give the same events each time. Paused results are honoured exactly as the
// connections do: resume(), then execute() the bytes not yet consumed.

#include "http/parser.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace cachecar {
namespace {

using Events = std::vector<std::string>;

// One event per line, so that a failing CHECK prints both sides readably.
std::string text(const Events& events) {
  std::string out;
  for (const std::string& event : events) {
    out += "\n  " + event;
  }
  return out;
}

std::string framing_name(BodyFraming framing) {
  switch (framing) {
    case BodyFraming::None:
      return "none";
    case BodyFraming::ContentLength:
      return "length";
    case BodyFraming::Chunked:
      return "chunked";
    case BodyFraming::UntilClose:
      return "until-close";
  }
  return "?";
}

std::string version_text(const HttpVersion& v) {
  return "HTTP/" + std::to_string(v.major) + "." + std::to_string(v.minor);
}

std::string fields_text(const Headers& headers) {
  std::string out;
  for (const Header& h : headers.list()) {
    out += " [" + h.name + ": " + h.value + "]";
  }
  return out;
}

// "head GET /x HTTP/1.1 none cl=0 keep-alive [Host: a]", with "expect-100" when set.
std::string describe(const RequestHead& h) {
  std::string out = "head " + h.method + " " + h.target + " " + version_text(h.version) + " " +
                    framing_name(h.framing) + " cl=" + std::to_string(h.content_length) +
                    (h.keep_alive ? " keep-alive" : " close");
  if (h.expect_continue) {
    out += " expect-100";
  }
  return out + fields_text(h.headers);
}

// "head 200 OK HTTP/1.1 length cl=5 announced keep-alive [Content-Length: 5]"
std::string describe(const ResponseHead& h) {
  return "head " + std::to_string(h.status) + " " + h.reason + " " + version_text(h.version) + " " +
         framing_name(h.framing) + " cl=" + std::to_string(h.content_length) +
         (h.length_announced ? " announced" : "") + (h.keep_alive ? " keep-alive" : " close") +
         fields_text(h.headers);
}

// Body pieces depend on where the bytes were split, so consecutive pieces are merged (and an
// empty piece adds nothing).
void record_body(Events& events, std::string_view chunk) {
  if (chunk.empty()) {
    return;
  }
  if (!events.empty() && events.back().rfind("body ", 0) == 0) {
    events.back().append(chunk);
  } else {
    events.push_back("body " + std::string(chunk));
  }
}

enum class Pausing {
  OnComplete,  // as both connections do: one message at a time
  Everywhere,  // after every head, non-empty body piece and completion
};

class RequestRecorder final : public RequestParser::Listener {
 public:
  explicit RequestRecorder(Pausing pausing) : pausing_(pausing) {}

  ParseStep on_request_head(RequestHead& head) override {
    events.push_back(describe(head));
    [[maybe_unused]] const RequestHead taken = std::move(head);  // the listener may take the head
    return fail_on_head ? ParseStep::Fail : maybe_pause();
  }
  ParseStep on_request_body(std::string_view chunk) override {
    record_body(events, chunk);
    return chunk.empty() ? ParseStep::Continue : maybe_pause();
  }
  ParseStep on_request_complete() override {
    events.push_back("complete");
    return ParseStep::Pause;
  }

  Events events;
  bool fail_on_head = false;

 private:
  ParseStep maybe_pause() const {
    return pausing_ == Pausing::Everywhere ? ParseStep::Pause : ParseStep::Continue;
  }
  Pausing pausing_;
};

class ResponseRecorder final : public ResponseParser::Listener {
 public:
  explicit ResponseRecorder(Pausing pausing) : pausing_(pausing) {}

  ParseStep on_response_head(ResponseHead& head) override {
    events.push_back(describe(head));
    [[maybe_unused]] const ResponseHead taken = std::move(head);
    return fail_on_head ? ParseStep::Fail : maybe_pause();
  }
  ParseStep on_response_body(std::string_view chunk) override {
    record_body(events, chunk);
    return chunk.empty() ? ParseStep::Continue : maybe_pause();
  }
  ParseStep on_response_complete() override {
    events.push_back("complete");
    return ParseStep::Pause;
  }

  Events events;
  bool fail_on_head = false;

 private:
  ParseStep maybe_pause() const {
    return pausing_ == Pausing::Everywhere ? ParseStep::Pause : ParseStep::Continue;
  }
  Pausing pausing_;
};

// Feeds one piece as a connection does: on Paused, resume() and feed the unconsumed rest (a
// connection never executes zero bytes). `on_pause` runs before resume(), where a connection
// would prepare the next message.
template <typename Parser, typename OnPause>
ParseResult feed(Parser& parser, std::string_view data, OnPause&& on_pause) {
  for (int guard = 0; guard < 100'000; ++guard) {
    const ParseResult result = parser.execute(data);
    if (result.kind != ParseResult::Kind::Paused) {
      if (result.kind == ParseResult::Kind::Ok) {
        CHECK(result.consumed == data.size());
      }
      return result;
    }
    REQUIRE(result.consumed <= data.size());
    on_pause();
    parser.resume();
    data.remove_prefix(result.consumed);
    if (data.empty()) {
      return ParseResult{ParseResult::Kind::Ok, 0, 0, {}};
    }
  }
  FAIL("the parser keeps pausing without progress");
  return {};
}

// After a pause in a head or body callback at the very end of the bytes, llhttp still owes
// the callbacks that need no further byte (the completion of a body-less message, or of a body
// that ended there); they run on its next execute(). Connections only pause there when they
// are closing anyway, so the Everywhere runs collect them with zero-byte executes.
template <typename Parser, typename OnPause>
ParseResult flush(Parser& parser, OnPause&& on_pause) {
  for (int guard = 0; guard < 100; ++guard) {
    static constexpr char kNothing[] = "";
    const ParseResult result = parser.execute(std::string_view(kNothing, 0));
    if (result.kind != ParseResult::Kind::Paused) {
      return result;
    }
    on_pause();
    parser.resume();
  }
  FAIL("the parser keeps pausing on zero bytes");
  return {};
}

struct Run {
  Events events;
  ParseResult::Kind kind = ParseResult::Kind::Ok;
  int status = 0;
  bool in_message = false;
};

std::string kind_name(ParseResult::Kind kind) {
  switch (kind) {
    case ParseResult::Kind::Ok:
      return "ok";
    case ParseResult::Kind::Paused:
      return "paused";
    case ParseResult::Kind::Error:
      return "error";
  }
  return "?";
}

// The ways of cutting `n` bytes into pieces: every two-piece split, plus one byte at a time.
// Messages over 8 KiB (only the 64 KiB header-limit case) would make that quadratic in time,
// so there the two-piece splits are the first and last 256 and every 61st in between.
std::vector<std::vector<size_t>> all_cuts(size_t n) {
  constexpr size_t kEveryPointUpTo = 8 * 1024;
  constexpr size_t kEdge = 256;
  constexpr size_t kStride = 61;
  std::vector<std::vector<size_t>> out;
  for (size_t i = 0; i <= n; ++i) {
    if (n <= kEveryPointUpTo || i < kEdge || n - i < kEdge || i % kStride == 0) {
      out.push_back({i});
    }
  }
  std::vector<size_t> bytewise;
  for (size_t i = 1; i < n; ++i) {
    bytewise.push_back(i);
  }
  out.push_back(bytewise);
  return out;
}

std::string cuts_text(const std::vector<size_t>& cuts) {
  if (cuts.size() == 1) {
    return "split at " + std::to_string(cuts[0]);
  }
  return "one byte at a time";
}

std::vector<std::string_view> pieces(std::string_view bytes, const std::vector<size_t>& cuts) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t cut : cuts) {
    out.push_back(bytes.substr(start, cut - start));
    start = cut;
  }
  out.push_back(bytes.substr(start));
  return out;
}

Run run_request(std::string_view bytes, const std::vector<size_t>& cuts,
                const RequestParser::Limits& limits, Pausing pausing, bool fail_on_head = false) {
  RequestRecorder recorder(pausing);
  recorder.fail_on_head = fail_on_head;
  RequestParser parser(recorder, limits);
  Run run;
  for (std::string_view piece : pieces(bytes, cuts)) {
    if (piece.empty()) {
      continue;  // a connection never executes zero bytes
    }
    const ParseResult result = feed(parser, piece, [] {});
    run.kind = result.kind;
    if (result.kind == ParseResult::Kind::Error) {
      run.status = result.status;
      CHECK(!result.reason.empty());
      CHECK(result.consumed <= piece.size());
      // The error is sticky: the stream stays unusable.
      const ParseResult again = parser.execute("GET / HTTP/1.1\r\n\r\n");
      CHECK(again.kind == ParseResult::Kind::Error);
      CHECK(again.status == result.status);
      break;
    }
  }
  if (pausing == Pausing::Everywhere && run.kind != ParseResult::Kind::Error) {
    run.kind = flush(parser, [] {}).kind;
  }
  run.events = recorder.events;
  run.in_message = parser.in_message();
  return run;
}

// `finish` simulates the upstream closing after the last byte.
Run run_response(std::string_view bytes, const std::vector<size_t>& cuts, bool head_request,
                 bool finish, Pausing pausing, bool fail_on_head = false) {
  ResponseRecorder recorder(pausing);
  recorder.fail_on_head = fail_on_head;
  ResponseParser parser(recorder);
  parser.expect_response(head_request);
  // A connection sets up the next exchange while the parser is paused after a response.
  auto next_exchange = [&] { parser.expect_response(head_request); };
  Run run;
  for (std::string_view piece : pieces(bytes, cuts)) {
    if (piece.empty()) {
      continue;
    }
    const ParseResult result = feed(parser, piece, next_exchange);
    run.kind = result.kind;
    if (result.kind == ParseResult::Kind::Error) {
      run.status = result.status;
      CHECK(!result.reason.empty());
      break;
    }
  }
  if (pausing == Pausing::Everywhere && run.kind != ParseResult::Kind::Error) {
    run.kind = flush(parser, next_exchange).kind;
  }
  if (finish && run.kind != ParseResult::Kind::Error) {
    const ParseResult result = parser.finish();
    run.kind = result.kind;
    run.status = result.status;
    if (result.kind == ParseResult::Kind::Paused) {
      parser.resume();
      run.kind = ParseResult::Kind::Ok;
    }
  }
  run.events = recorder.events;
  run.in_message = parser.in_message();
  return run;
}

std::string repeat(std::string_view text, size_t times) {
  std::string out;
  for (size_t i = 0; i < times; ++i) {
    out += text;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// RequestParser: valid requests

struct RequestCase {
  std::string_view name;
  std::string bytes;
  Events expected;
  RequestParser::Limits limits{};
};

std::vector<RequestCase> valid_requests() {
  RequestParser::Limits three_headers;
  three_headers.max_headers = 3;
  RequestParser::Limits ten_byte_body;
  ten_byte_body.max_body_bytes = 10;
  return {
      {"GET without a body",
       "GET /products/42?x=1 HTTP/1.1\r\nHost: shop.example\r\nAccept: */*\r\n\r\n",
       {"head GET /products/42?x=1 HTTP/1.1 none cl=0 keep-alive [Host: shop.example] [Accept: "
        "*/*]",
        "complete"}},
      {"POST with Content-Length",
       "POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
       {"head POST /orders HTTP/1.1 length cl=11 keep-alive [Host: a] [Content-Length: 11]",
        "body hello world", "complete"}},
      {"POST with Content-Length: 0",
       "POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
       {"head POST /orders HTTP/1.1 length cl=0 keep-alive [Host: a] [Content-Length: 0]",
        "complete"}},
      {"chunked with extensions and trailers",
       "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5;name=value\r\nhello\r\n"
       "6;a;b=\"quoted; value\"\r\n world\r\n"
       "0;last\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n",
       {"head POST /upload HTTP/1.1 chunked cl=0 keep-alive [Host: a] [Transfer-Encoding: chunked]",
        "body hello world", "complete"}},
      {"chunked with upper-case hex sizes",
       "PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "A\r\n0123456789\r\n0\r\n\r\n",
       {"head PUT /x HTTP/1.1 chunked cl=0 keep-alive [Host: a] [Transfer-Encoding: chunked]",
        "body 0123456789", "complete"}},
      {"chunked with no data",
       "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       {"head POST /x HTTP/1.1 chunked cl=0 keep-alive [Host: a] [Transfer-Encoding: chunked]",
        "complete"}},
      {"two pipelined requests",
       "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
       {"head GET /a HTTP/1.1 none cl=0 keep-alive [Host: a]", "complete",
        "head GET /b HTTP/1.1 none cl=0 keep-alive [Host: a]", "complete"}},
      {"pipelined POST, chunked POST and GET",
       "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
       "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
       "GET /c HTTP/1.1\r\nHost: a\r\n\r\n",
       {"head POST /a HTTP/1.1 length cl=3 keep-alive [Host: a] [Content-Length: 3]", "body abc",
        "complete",
        "head POST /b HTTP/1.1 chunked cl=0 keep-alive [Host: a] [Transfer-Encoding: chunked]",
        "body de", "complete", "head GET /c HTTP/1.1 none cl=0 keep-alive [Host: a]", "complete"}},
      {"HTTP/1.0 with keep-alive",
       "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
       {"head GET / HTTP/1.0 none cl=0 keep-alive [Connection: keep-alive]", "complete"}},
      {"HTTP/1.0 without keep-alive",
       "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
       {"head GET / HTTP/1.0 none cl=0 close [Host: a]", "complete"}},
      {"HTTP/1.1 with Connection: close",
       "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
       {"head GET / HTTP/1.1 none cl=0 close [Host: a] [Connection: close]", "complete"}},
      {"close among other Connection tokens",
       "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Foo, Close\r\n\r\n",
       {"head GET / HTTP/1.1 none cl=0 close [Host: a] [Connection: X-Foo, Close]", "complete"}},
      {"Expect: 100-continue with a body",
       "POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
       {"head POST /e HTTP/1.1 length cl=3 keep-alive expect-100 [Host: a] "
        "[Expect: 100-continue] [Content-Length: 3]",
        "body abc", "complete"}},
      {"Expect: 100-continue is case-insensitive",
       "POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n"
       "0\r\n\r\n",
       {"head POST /e HTTP/1.1 chunked cl=0 keep-alive expect-100 [Host: a] "
        "[Expect: 100-Continue] [Transfer-Encoding: chunked]",
        "complete"}},
      {"Expect: 100-continue without a body expects nothing",
       "GET /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
       {"head GET /e HTTP/1.1 none cl=0 keep-alive [Host: a] [Expect: 100-continue]", "complete"}},
      {"header with an empty value",
       "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Blank: \r\n\r\n",
       {"head GET / HTTP/1.1 none cl=0 keep-alive [Host: a] [X-Empty: ] [X-Blank: ]", "complete"}},
      {"header values keep colons and inner spaces",
       "GET / HTTP/1.1\r\nHost: a:8080\r\nReferer: http://x.example:1/a b\r\nX-Tab:\tv\r\n\r\n",
       {"head GET / HTTP/1.1 none cl=0 keep-alive [Host: a:8080] "
        "[Referer: http://x.example:1/a b] [X-Tab: v]",
        "complete"}},
      {"Upgrade is ignored and the connection stays HTTP",
       "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
       "GET /next HTTP/1.1\r\nHost: a\r\n\r\n",
       {"head GET /ws HTTP/1.1 none cl=0 keep-alive [Host: a] [Connection: Upgrade] "
        "[Upgrade: websocket]",
        "complete", "head GET /next HTTP/1.1 none cl=0 keep-alive [Host: a]", "complete"}},
      {"exactly max_headers fields",
       "GET / HTTP/1.1\r\nHost: a\r\nB: 2\r\nC: 3\r\n\r\n",
       {"head GET / HTTP/1.1 none cl=0 keep-alive [Host: a] [B: 2] [C: 3]", "complete"},
       three_headers},
      {"a body of exactly max_body_bytes",
       "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789"
       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n",
       {"head POST / HTTP/1.1 length cl=10 keep-alive [Content-Length: 10]", "body 0123456789",
        "complete", "head POST / HTTP/1.1 chunked cl=0 keep-alive [Transfer-Encoding: chunked]",
        "body 0123456789", "complete"},
       ten_byte_body},
      {"obs-text in a field value, an empty value last, escaped UTF-8 in the target",
       "GET /caf%C3%A9 HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\r\nX-Empty:\r\n\r\n",
       {"head GET /caf%C3%A9 HTTP/1.1 none cl=0 keep-alive [Host: a] [X-Name: caf\xc3\xa9] "
        "[X-Empty: ]",
        "complete"}},
      {"empty lines before a request line",
       "\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
       {"head GET /a HTTP/1.1 none cl=0 keep-alive [Host: a]", "complete",
        "head GET /b HTTP/1.1 none cl=0 keep-alive [Host: a]", "complete"}},
      {"chunked with an empty trailer value",
       "POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "1;x\r\na\r\n0\r\nX-Empty:\r\nX-T: 1\r\n\r\n",
       {"head POST /t HTTP/1.1 chunked cl=0 keep-alive [Host: a] [Transfer-Encoding: chunked]",
        "body a", "complete"}},
      {"other methods and an absolute-form target",
       "DELETE http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n"
       "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
       {"head DELETE http://a.example/x HTTP/1.1 none cl=0 keep-alive [Host: a.example]",
        "complete", "head OPTIONS * HTTP/1.1 none cl=0 keep-alive [Host: a]", "complete"}},
  };
}

TEST_CASE("RequestParser: valid requests give the same events at every split point") {
  for (const RequestCase& c : valid_requests()) {
    CAPTURE(c.name);
    for (Pausing pausing : {Pausing::OnComplete, Pausing::Everywhere}) {
      const std::string pausing_text =
          pausing == Pausing::OnComplete ? "on complete" : "everywhere";
      CAPTURE(pausing_text);
      for (const auto& cuts : all_cuts(c.bytes.size())) {
        CAPTURE(cuts_text(cuts));
        const Run run = run_request(c.bytes, cuts, c.limits, pausing);
        CHECK(kind_name(run.kind) == "ok");
        CHECK(text(run.events) == text(c.expected));
        CHECK_FALSE(run.in_message);
      }
    }
  }
}

TEST_CASE("RequestParser: chunk extensions llhttp 8.1 cannot read get a clean 400") {
  // RFC 9112 §7.1.1 allows any number of name[=value] extensions, with BWS before ';', and
  // quoted-pairs in quoted values. Debian's llhttp 8.1.0 rejects a second extension after a
  // valued one and a quoted-pair (fixed upstream in nodejs/llhttp#248). Refusing is the safe
  // side of that bug: no hop can read these bodies differently from us. When the dependency
  // is upgraded this test fails, and should then expect the body instead.
  const std::string_view sizes[] = {"6;a=1;b=2", "6;a=1;b", "6 ;a=1", "6;b=\"q\\\"x\""};
  for (std::string_view size : sizes) {
    CAPTURE(size);
    const std::string bytes = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
                              std::string(size) + "\r\n world\r\n0\r\n\r\n";
    const Run run = run_request(bytes, {bytes.size()}, {}, Pausing::OnComplete);
    CHECK(kind_name(run.kind) == "error");
    CHECK(run.status == 400);
  }
}

TEST_CASE("RequestParser: a pause on completion reports what was consumed") {
  const std::string first = "POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nab";
  const std::string second = "GET /b HTTP/1.1\r\n\r\n";
  RequestRecorder recorder(Pausing::OnComplete);
  RequestParser parser(recorder, {});
  const ParseResult result = parser.execute(first + second);
  CHECK(kind_name(result.kind) == "paused");
  CHECK(result.consumed == first.size());
  CHECK(recorder.events.size() == 3);
  parser.resume();
  const ParseResult rest = parser.execute(second);
  CHECK(kind_name(rest.kind) == "paused");
  CHECK(rest.consumed == second.size());
  CHECK(recorder.events.size() == 5);
}

TEST_CASE("RequestParser: in_message is true from the first byte to the end of a message") {
  RequestRecorder recorder(Pausing::OnComplete);
  RequestParser parser(recorder, {});
  CHECK_FALSE(parser.in_message());
  CHECK(kind_name(parser.execute("GE").kind) == "ok");
  CHECK(parser.in_message());
  CHECK(kind_name(parser.execute("T / HTTP/1.1\r\nContent-Length: 3\r\n\r\na").kind) == "ok");
  CHECK(parser.in_message());
  CHECK(kind_name(parser.execute("bc").kind) == "paused");
  CHECK_FALSE(parser.in_message());
}

// ---------------------------------------------------------------------------------------------
// RequestParser: errors

struct RequestErrorCase {
  std::string_view name;
  std::string bytes;
  int status;
  RequestParser::Limits limits{};
};

std::vector<RequestErrorCase> request_errors() {
  RequestParser::Limits small_head;
  small_head.max_header_bytes = 1024;
  RequestParser::Limits three_headers;
  three_headers.max_headers = 3;
  RequestParser::Limits ten_byte_body;
  ten_byte_body.max_body_bytes = 10;
  return {
      {"request line without target and version", "GET\r\n\r\n", 400},
      {"unknown method", "BREW / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"garbage", "\x01\x02\x03 hello\r\n\r\n", 400},
      {"garbage after a valid request", "GET / HTTP/1.1\r\nHost: a\r\n\r\nHELLO\r\n\r\n", 400},
      {"Content-Length and Transfer-Encoding together",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
       "0\r\n\r\n",
       400},
      {"Transfer-Encoding before Content-Length",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
       "0\r\n\r\n",
       400},
      {"two different Content-Length values",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
      {"Content-Length given twice",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
      {"Content-Length as a list",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400},
      {"Content-Length not a number", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
       400},
      {"negative Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
      {"Transfer-Encoding not ending in chunked",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400},
      {"Transfer-Encoding without chunked",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400},
      {"bad chunk size",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
       400},
      {"chunk size overflow",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "fffffffffffffffff\r\nhello\r\n",
       400},
      {"chunk data longer than its size",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
       400},
      {"header section over max_header_bytes",
       "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(2000, 'x') + "\r\n\r\n", 431,
       small_head},
      {"many small headers over max_header_bytes",
       "GET / HTTP/1.1\r\n" + repeat("X-Field: 0123456789\r\n", 60) + "\r\n", 431, small_head},
      {"too many headers", "GET / HTTP/1.1\r\nHost: a\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431,
       three_headers},
      {"Content-Length over max_body_bytes",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n01234567890", 413, ten_byte_body},
      {"huge Content-Length",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999\r\n\r\n", 413},
      {"chunked body over max_body_bytes",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "6\r\n012345\r\n6\r\n678901\r\n0\r\n\r\n",
       413, ten_byte_body},
      {"CONNECT", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 405},
      {"Expect: something else",
       "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417},
      {"Expect on a request without a body", "GET / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n", 417},
      {"space before the colon of Content-Length",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 4\r\n\r\nabcd", 400},
      {"space before the colon of Transfer-Encoding",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n"
       "0\r\n\r\n",
       400},
      {"bare LF line endings", "GET / HTTP/1.1\nHost: a\n\n", 400},
      {"CR inside a header value", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400},
      {"header without a colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", 400},
      {"NUL in a header value", std::string("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29), 400},
      {"control byte in the target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
  };
}

TEST_CASE(
    "RequestParser: malformed and over-limit requests fail with their status at every split") {
  for (const RequestErrorCase& c : request_errors()) {
    CAPTURE(c.name);
    for (const auto& cuts : all_cuts(c.bytes.size())) {
      CAPTURE(cuts_text(cuts));
      const Run run = run_request(c.bytes, cuts, c.limits, Pausing::OnComplete);
      CHECK(kind_name(run.kind) == "error");
      CHECK(run.status == c.status);
    }
  }
}

TEST_CASE("RequestParser: a target over max_header_bytes is 414") {
  RequestParser::Limits limits;
  limits.max_header_bytes = 1024;
  const std::string targets[] = {"/" + std::string(1024, 'a'), "/" + std::string(5000, 'a')};
  for (const std::string& target : targets) {
    CAPTURE(target.size());
    const std::string bytes = "GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n";
    const Run run = run_request(bytes, {bytes.size()}, limits, Pausing::OnComplete);
    CHECK(kind_name(run.kind) == "error");
    CHECK(run.status == 414);
  }
}

TEST_CASE("RequestParser: a target over max_header_bytes is 414 at every split point") {
  // on_url compares the target so far with the limit, then adds it to the head byte count:
  // when a piece ends just inside the limit, the method's bytes push the count over first
  // and the answer is 431 instead of 414.
  RequestParser::Limits limits;
  limits.max_header_bytes = 1024;
  const std::string bytes = "GET /" + std::string(1100, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  for (const auto& cuts : all_cuts(bytes.size())) {
    CAPTURE(cuts_text(cuts));
    const Run run = run_request(bytes, cuts, limits, Pausing::OnComplete);
    CHECK(kind_name(run.kind) == "error");
    CHECK(run.status == 414);
  }
}

TEST_CASE("RequestParser: an over-long token is judged when it ends, the same at every split") {
  // llhttp hands a token over in one piece when it ends inside a buffer, in several when
  // buffers end inside it, and finds it malformed only at its bad byte. A 431 given on the
  // first pieces made a split stream answer 431 where the same bytes whole are a 400 for the
  // syntax (found by split_request_fuzz, seed partial_token_limit).
  RequestParser::Limits limits;
  limits.max_header_bytes = 1024;
  const std::string long_name(1100, 'a');
  struct Case {
    std::string_view name;
    std::string bytes;
    int status;
  };
  const Case cases[] = {
      {"a field name without its colon", "GET / HTTP/1.1\r\n" + long_name + "\r\nHost: a\r\n\r\n",
       400},
      {"a field name with a bad byte", "GET / HTTP/1.1\r\n" + long_name + "\x01: x\r\n\r\n", 400},
      {"a target with a control byte", "GET /" + long_name + "\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
       400},
      {"a well-formed long field name", "GET / HTTP/1.1\r\n" + long_name + ": x\r\n\r\n", 431},
      {"a well-formed long value", "GET / HTTP/1.1\r\nX: " + long_name + "\r\n\r\n", 431},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    for (const auto& cuts : all_cuts(c.bytes.size())) {
      CAPTURE(cuts_text(cuts));
      const Run run = run_request(c.bytes, cuts, limits, Pausing::OnComplete);
      CHECK(kind_name(run.kind) == "error");
      CHECK(run.status == c.status);
      CHECK(text(run.events) == text({}));
    }
  }
}

TEST_CASE("RequestParser: whitespace in or after a field name is 400") {
  // RFC 9112 §5.1: a server MUST reject whitespace between field name and colon with 400.
  // llhttp 8.1 enforces it only for the names it interprets itself (Content-Length,
  // Transfer-Encoding, Connection...); other names keep the space ("Host "), slip past the
  // case-insensitive matching of Host, TE, Expect, Proxy-* and X-Forwarded-For, and are
  // forwarded to an upstream that may read them as the real field.
  const std::string_view requests[] = {
      "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nTE\t: trailers\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For : 1.2.3.4\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nBad Name: a\r\n\r\n",
  };
  for (std::string_view bytes : requests) {
    CAPTURE(bytes);
    const Run run = run_request(bytes, {bytes.size()}, {}, Pausing::OnComplete);
    CHECK(kind_name(run.kind) == "error");
    CHECK(run.status == 400);
  }
}

TEST_CASE("RequestParser: obs-fold is rejected or replaced by a space, at every split point") {
  // RFC 9112 §5.2: reject with 400, or replace each obs-fold with SP before interpreting or
  // forwarding. Either way a folded line never reaches the upstream raw.
  const std::string bytes = "GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n";
  for (const auto& cuts : all_cuts(bytes.size())) {
    CAPTURE(cuts_text(cuts));
    const Run run = run_request(bytes, cuts, {}, Pausing::OnComplete);
    if (run.kind == ParseResult::Kind::Error) {
      CHECK(run.status == 400);
    } else {
      CHECK(text(run.events) ==
            text({"head GET / HTTP/1.1 none cl=0 keep-alive [Host: a] [X-Folded: one two]",
                  "complete"}));
    }
  }
}

TEST_CASE("RequestParser: a request line with an unsupported version fails") {
  // 505 is the precise answer; llhttp may already refuse the version text itself (400).
  const std::string_view lines[] = {
      "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
      "GET / HTTP/3.0\r\nHost: a\r\n\r\n",
      "GET / HTTP/0.9\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
  };
  for (std::string_view line : lines) {
    CAPTURE(line);
    for (const auto& cuts : all_cuts(line.size())) {
      CAPTURE(cuts_text(cuts));
      const Run run = run_request(line, cuts, {}, Pausing::OnComplete);
      CHECK(kind_name(run.kind) == "error");
      CHECK((run.status == 505 || run.status == 400));
    }
  }
}

TEST_CASE("RequestParser: the listener can reject a head (400)") {
  const std::string bytes = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  for (const auto& cuts : all_cuts(bytes.size())) {
    CAPTURE(cuts_text(cuts));
    const Run run = run_request(bytes, cuts, {}, Pausing::OnComplete, /*fail_on_head=*/true);
    CHECK(kind_name(run.kind) == "error");
    CHECK(run.status == 400);
    CHECK(run.events.size() == 1);
  }
}

TEST_CASE("RequestParser: limits are checked before the listener sees the head") {
  RequestParser::Limits limits;
  limits.max_body_bytes = 10;
  const std::string bytes =
      "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n";
  const Run run = run_request(bytes, {bytes.size()}, limits, Pausing::OnComplete);
  CHECK(run.status == 413);  // 413 instead of 100 Continue
  CHECK(run.events.empty());
}

TEST_CASE("RequestParser: set_limits applies to the next message") {
  RequestRecorder recorder(Pausing::OnComplete);
  RequestParser parser(recorder, {});
  const std::string request = "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
  CHECK(kind_name(feed(parser, request, [] {}).kind) == "ok");
  RequestParser::Limits limits;
  limits.max_body_bytes = 4;
  parser.set_limits(limits);
  const ParseResult result = feed(parser, request, [] {});
  CHECK(kind_name(result.kind) == "error");
  CHECK(result.status == 413);
}

// ---------------------------------------------------------------------------------------------
// ResponseParser

struct ResponseCase {
  std::string_view name;
  std::string bytes;
  bool head_request;
  bool finish;  // the upstream closes after the bytes
  Events expected;
  // The parser must tell llhttp to skip a body the length fields announce (HEAD, 304).
  bool skips_announced_body = false;
};

std::vector<ResponseCase> valid_responses() {
  return {
      {"Content-Length",
       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
       false,
       false,
       {"head 200 OK HTTP/1.1 length cl=5 announced keep-alive [Content-Type: text/plain] "
        "[Content-Length: 5]",
        "body hello", "complete"}},
      {"Content-Length: 0",
       "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
       false,
       false,
       {"head 200 OK HTTP/1.1 length cl=0 announced keep-alive [Content-Length: 0]", "complete"}},
      {"chunked",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n"
       "X-Trailer: 1\r\n\r\n",
       false,
       false,
       {"head 200 OK HTTP/1.1 chunked cl=0 keep-alive [Transfer-Encoding: chunked]", "body abcdefg",
        "complete"}},
      {"body delimited by EOF",
       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
       false,
       true,
       {"head 200 OK HTTP/1.1 until-close cl=0 close [Content-Type: text/plain]",
        "body until the end", "complete"}},
      {"empty body delimited by EOF",
       "HTTP/1.1 200 OK\r\n\r\n",
       false,
       true,
       {"head 200 OK HTTP/1.1 until-close cl=0 close", "complete"}},
      {"Transfer-Encoding without chunked reads to EOF",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz",
       false,
       true,
       {"head 200 OK HTTP/1.1 until-close cl=0 close [Transfer-Encoding: gzip]", "body zzz",
        "complete"}},
      {"204 has no body",
       "HTTP/1.1 204 No Content\r\nETag: \"v\"\r\n\r\n",
       false,
       false,
       {"head 204 No Content HTTP/1.1 none cl=0 keep-alive [ETag: \"v\"]", "complete"}},
      {"304 has no body, whatever its length says",
       "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
       false,
       false,
       {"head 304 Not Modified HTTP/1.1 none cl=10 announced keep-alive [Content-Length: 10]",
        "complete"},
       true},
      {"HEAD response with Content-Length",
       "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
       true,
       false,
       {"head 200 OK HTTP/1.1 none cl=1234 announced keep-alive [Content-Length: 1234]",
        "complete"},
       true},
      {"HEAD response with chunked",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
       true,
       false,
       {"head 200 OK HTTP/1.1 none cl=0 keep-alive [Transfer-Encoding: chunked]", "complete"},
       true},
      {"100 Continue is skipped",
       "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
       false,
       false,
       {"head 200 OK HTTP/1.1 length cl=2 announced keep-alive [Content-Length: 2]", "body ok",
        "complete"}},
      {"several interim responses are skipped",
       "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; "
       "rel=preload\r\n\r\n"
       "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
       false,
       false,
       {"head 201 Created HTTP/1.1 length cl=0 announced keep-alive [Content-Length: 0]",
        "complete"}},
      {"Connection: close",
       "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
       false,
       false,
       {"head 200 OK HTTP/1.1 length cl=2 announced close [Connection: close] [Content-Length: 2]",
        "body ok", "complete"}},
      {"HTTP/1.0",
       "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
       false,
       false,
       {"head 200 OK HTTP/1.0 length cl=2 announced close [Content-Length: 2]", "body ok",
        "complete"}},
      {"HTTP/1.0 with keep-alive",
       "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
       false,
       false,
       {"head 200 OK HTTP/1.0 length cl=2 announced keep-alive [Connection: keep-alive] "
        "[Content-Length: 2]",
        "body ok", "complete"}},
      {"no reason phrase, an empty field value",
       "HTTP/1.1 200\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n",
       false,
       false,
       {"head 200  HTTP/1.1 length cl=0 announced keep-alive [X-Empty: ] [Content-Length: 0]",
        "complete"}},
      {"reason phrase kept",
       "HTTP/1.1 404 Nothing Here\r\nContent-Length: 0\r\n\r\n",
       false,
       false,
       {"head 404 Nothing Here HTTP/1.1 length cl=0 announced keep-alive [Content-Length: 0]",
        "complete"}},
      {"two responses on one connection",
       "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
       false,
       false,
       {"head 200 OK HTTP/1.1 length cl=1 announced keep-alive [Content-Length: 1]", "body a",
        "complete", "head 200 OK HTTP/1.1 length cl=1 announced keep-alive [Content-Length: 1]",
        "body b", "complete"}},
  };
}

TEST_CASE("ResponseParser: valid responses give the same events at every split point") {
  for (const ResponseCase& c : valid_responses()) {
    CAPTURE(c.name);
    for (const auto& cuts : all_cuts(c.bytes.size())) {
      CAPTURE(cuts_text(cuts));
      const Run run = run_response(c.bytes, cuts, c.head_request, c.finish, Pausing::OnComplete);
      CHECK(kind_name(run.kind) == "ok");
      CHECK(text(run.events) == text(c.expected));
      CHECK_FALSE(run.in_message);
    }
  }
}

TEST_CASE("ResponseParser: pausing after every callback gives the same events") {
  for (const ResponseCase& c : valid_responses()) {
    if (c.skips_announced_body) {
      continue;  // see the next test case
    }
    CAPTURE(c.name);
    for (const auto& cuts : all_cuts(c.bytes.size())) {
      CAPTURE(cuts_text(cuts));
      const Run run = run_response(c.bytes, cuts, c.head_request, c.finish, Pausing::Everywhere);
      CHECK(kind_name(run.kind) == "ok");
      CHECK(text(run.events) == text(c.expected));
    }
  }
}

TEST_CASE("ResponseParser: pausing on the head of a HEAD or 304 response") {
  // ParseStep::Pause in on_response_head returns HPE_PAUSED instead of llhttp's "skip body"
  // result (1), so after resume() llhttp waits for the body that the Content-Length or
  // Transfer-Encoding of a HEAD or 304 response announces but never follows.
  for (const ResponseCase& c : valid_responses()) {
    if (!c.skips_announced_body) {
      continue;
    }
    CAPTURE(c.name);
    const Run run = run_response(c.bytes, {c.bytes.size()}, true, false, Pausing::Everywhere);
    CHECK(kind_name(run.kind) == "ok");
    CHECK(text(run.events) == text(c.expected));
    CHECK_FALSE(run.in_message);
  }
}

TEST_CASE("ResponseParser: a HEAD response without a length keeps the connection") {
  // No body follows a HEAD response whatever its framing fields say (RFC 9110 §9.3.2), so the
  // connection can be reused; keep_alive is computed before llhttp learns the body is skipped.
  const std::string bytes = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
  const Run run = run_response(bytes, {bytes.size()}, true, false, Pausing::OnComplete);
  CHECK(kind_name(run.kind) == "ok");
  CHECK(text(run.events) ==
        text({"head 200 OK HTTP/1.1 none cl=0 keep-alive [Content-Type: text/plain]", "complete"}));
}

TEST_CASE("ResponseParser: the head-request flag is per response") {
  // A GET response, then a HEAD response, then a GET response on one connection.
  ResponseRecorder recorder(Pausing::OnComplete);
  ResponseParser parser(recorder);
  const std::string get = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
  parser.expect_response(false);
  CHECK(kind_name(parser.execute(get).kind) == "paused");
  parser.resume();
  parser.expect_response(true);
  CHECK(kind_name(parser.execute(head).kind) == "paused");
  parser.resume();
  parser.expect_response(false);
  CHECK(kind_name(parser.execute(get).kind) == "paused");
  parser.resume();
  CHECK(
      text(recorder.events) ==
      text({"head 200 OK HTTP/1.1 length cl=2 announced keep-alive [Content-Length: 2]", "body ok",
            "complete", "head 200 OK HTTP/1.1 none cl=2 announced keep-alive [Content-Length: 2]",
            "complete", "head 200 OK HTTP/1.1 length cl=2 announced keep-alive [Content-Length: 2]",
            "body ok", "complete"}));
}

TEST_CASE("ResponseParser: finish() on an idle connection is not an error") {
  ResponseRecorder recorder(Pausing::OnComplete);
  ResponseParser parser(recorder);
  parser.expect_response(false);
  CHECK(kind_name(parser.finish().kind) == "ok");
  CHECK(recorder.events.empty());
}

struct ResponseErrorCase {
  std::string_view name;
  std::string bytes;
  bool head_request;
  bool finish;
};

TEST_CASE("ResponseParser: invalid and truncated responses fail with 502 at every split") {
  const ResponseErrorCase cases[] = {
      {"101 Switching Protocols",
       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
       false, false},
      {"truncated Content-Length body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false,
       true},
      {"truncated chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
       false, true},
      {"chunked body without the last chunk",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", false, true},
      {"truncated head", "HTTP/1.1 200 OK\r\nContent-Len", false, true},
      {"truncated status line", "HTTP/1.1 20", false, true},
      {"not HTTP", "SSH-2.0-OpenSSH_9.2\r\n\r\n", false, false},
      {"bad status code", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", false, false},
      {"Content-Length and Transfer-Encoding together",
       "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false,
       false},
      {"two different Content-Length values",
       "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", false, false},
      {"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", false,
       false},
      {"too many header fields",
       "HTTP/1.1 200 OK\r\n" + repeat("X-A: 1\r\n", ResponseParser::kMaxHeaders + 1) +
           "Content-Length: 0\r\n\r\n",
       false, false},
      {"header section too large",
       "HTTP/1.1 200 OK\r\nX-Big: " + std::string(ResponseParser::kMaxHeaderBytes, 'x') +
           "\r\nContent-Length: 0\r\n\r\n",
       false, false},
  };
  for (const ResponseErrorCase& c : cases) {
    CAPTURE(c.name);
    for (const auto& cuts : all_cuts(c.bytes.size())) {
      CAPTURE(cuts_text(cuts));
      const Run run = run_response(c.bytes, cuts, c.head_request, c.finish, Pausing::OnComplete);
      CHECK(kind_name(run.kind) == "error");
      CHECK(run.status == 502);
      if (c.finish) {
        CHECK(std::find(run.events.begin(), run.events.end(), "complete") == run.events.end());
      }
    }
  }
}

TEST_CASE("ResponseParser: obs-fold is rejected or replaced by a space, at every split point") {
  // RFC 9112 §5.2: a proxy answers 502 or replaces each obs-fold with SP before forwarding.
  const std::string bytes = "HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n";
  for (const auto& cuts : all_cuts(bytes.size())) {
    CAPTURE(cuts_text(cuts));
    const Run run = run_response(bytes, cuts, false, false, Pausing::OnComplete);
    if (run.kind == ParseResult::Kind::Error) {
      CHECK(run.status == 502);
    } else {
      CHECK(text(run.events) ==
            text({"head 200 OK HTTP/1.1 length cl=0 announced keep-alive [X-A: one two] "
                  "[Content-Length: 0]",
                  "complete"}));
    }
  }
}

TEST_CASE("ResponseParser: the listener can reject a head (502)") {
  const std::string bytes = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  for (const auto& cuts : all_cuts(bytes.size())) {
    CAPTURE(cuts_text(cuts));
    const Run run = run_response(bytes, cuts, false, false, Pausing::OnComplete, true);
    CHECK(kind_name(run.kind) == "error");
    CHECK(run.status == 502);
  }
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

// llhttp 8.1 leniencies that cachecar closes itself (tests/integration/security_test.cc has
// the end-to-end view): any two bytes taken as a chunk's CRLF, and obs-fold.
TEST_CASE("RequestParser: a chunk not followed by CRLF and obs-fold are 400 at every split") {
  const std::string_view cases[] = {
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\rX0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\nX0\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n",
  };
  for (std::string_view bytes : cases) {
    CAPTURE(bytes);
    for (Pausing pausing : {Pausing::OnComplete, Pausing::Everywhere}) {
      for (const auto& cuts : all_cuts(bytes.size())) {
        CAPTURE(cuts_text(cuts));
        const Run run = run_request(bytes, cuts, {}, pausing);
        CHECK(kind_name(run.kind) == "error");
        CHECK(run.status == 400);
      }
    }
  }
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

TEST_CASE("RequestParser: a folded Transfer-Encoding is 400 at every split") {
  const std::string_view bytes =
      "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
  for (const auto& cuts : all_cuts(bytes.size())) {
    CAPTURE(cuts_text(cuts));
    const Run run = run_request(bytes, cuts, {}, Pausing::OnComplete);
    CHECK(kind_name(run.kind) == "error");
    CHECK(run.status == 400);
  }
}

}  // namespace
}  // namespace cachecar

namespace cachecar {
namespace {

// What llhttp 9 refuses and Debian's llhttp 8.1 accepts (issue 12): cachecar checks it itself.
struct StrictCase {
  std::string_view name;
  std::string bytes;
  // The error is in the head, so the listener must never see one; otherwise in a chunk-size
  // line or the trailer section, after the head went out.
  bool in_head = true;
};

void check_refused_at_every_split(const StrictCase& c) {
  CAPTURE(c.name);
  for (Pausing pausing : {Pausing::OnComplete, Pausing::Everywhere}) {
    for (const auto& cuts : all_cuts(c.bytes.size())) {
      CAPTURE(cuts_text(cuts));
      const Run run = run_request(c.bytes, cuts, {}, pausing);
      CHECK(kind_name(run.kind) == "error");
      CHECK(run.status == 400);
      if (c.in_head) {
        CHECK(text(run.events) == text({}));
      } else {
        CHECK(std::find(run.events.begin(), run.events.end(), "complete") == run.events.end());
      }
    }
  }
}

TEST_CASE("RequestParser: an empty Transfer-Encoding is 400 at every split") {
  // llhttp 8.1 reads an empty Transfer-Encoding as none: with Content-Length it frames the
  // body by the length, which a hop that lets the field override the length does not
  // (RFC 9112 §6.1, §6.3 rules 3 and 4). llhttp 9.4.3 refuses it.
  const std::string post = "POST / HTTP/1.1\r\nHost: a\r\n";
  const StrictCase cases[] = {
      {"empty, then Content-Length", post + "Transfer-Encoding:\r\nContent-Length: 5\r\n\r\nhello"},
      {"whitespace only, then Content-Length",
       post + "Transfer-Encoding: \t \r\nContent-Length: 5\r\n\r\nhello"},
      {"Content-Length, then empty", post + "Content-Length: 5\r\nTransfer-Encoding:\r\n\r\nhello"},
      {"lower-case name", post + "transfer-encoding:\r\ncontent-length: 5\r\n\r\nhello"},
      {"empty and alone", post + "Transfer-Encoding:\r\n\r\n"},
      {"empty after chunked",
       post + "Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
  };
  for (const StrictCase& c : cases) {
    check_refused_at_every_split(c);
  }
}

TEST_CASE("RequestParser: a line not ended by CRLF is 400 at every split") {
  // RFC 9112 §2.2: a bare CR is invalid; llhttp 8.1 takes whatever byte follows the CR of an
  // empty field value, of the empty line or of a chunk size for its LF (CVE-2023-30589,
  // fixed in llhttp 8.1.1 and 9), and a lone LF in some places. Each line below ends in one
  // place for llhttp 8.1 and in another (or nowhere) for a hop that reads CRLF.
  const std::string get = "GET / HTTP/1.1\r\nHost: a\r\n";
  const std::string chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const StrictCase cases[] = {
      // Header lines separated by junk.
      {"CR and a byte after an empty value hide the next field's first byte",
       get + "X-Abc: \rxTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n"},
      {"CR and a byte after an empty value, no whitespace", get + "X-Abc:\rXY: b\r\n\r\n"},
      {"CR and a byte after a value", get + "X-Abc: v\rXY: b\r\n\r\n"},
      {"CR and a byte after the request line", "GET / HTTP/1.1\rXHost: a\r\n\r\n"},
      {"LF alone after the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n"},
      {"LF alone after a value", get + "X-Abc: v\nY: b\r\n\r\n"},
      {"LF alone after an empty value", get + "X-Abc:\nY: b\r\n\r\n"},
      // Empty lines separated by a lone CR.
      {"CR CR LF after an empty value ends the head early", get + "X-Abc:\r\r\nY: b\r\n\r\n"},
      {"CR CR LF after a value", get + "X-Abc: v\r\r\n\r\n"},
      {"CRLF CR CRLF ends the head", get + "\r\r\n"},
      {"LF CR CRLF ends the head", "GET / HTTP/1.1\r\nHost: a\n\r\r\n"},
      {"CR and a byte end the head", get + "\rX"},
      {"CR and a byte end the head before a body",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\rXhello"},
      {"LF alone ends the head", get + "\n"},
      // The same where a chunked body has lines.
      {"CR and a byte after a chunk size", chunked + "5\rXhello\r\n0\r\n\r\n", false},
      {"CR and a byte after a chunk extension", chunked + "5;a=b\rXhello\r\n0\r\n\r\n", false},
      {"LF alone after a chunk size", chunked + "5\nhello\r\n0\r\n\r\n", false},
      {"CR and a byte after the last chunk", chunked + "5\r\nhello\r\n0\rX\r\n", false},
      {"CR and a byte after an empty trailer value", chunked + "0\r\nT:\rXU: 1\r\n\r\n", false},
      {"LF alone after a trailer", chunked + "0\r\nT: 1\n\r\n", false},
      {"CR and a byte end the trailer section", chunked + "5\r\nhello\r\n0\r\n\rX", false},
      {"LF alone ends the trailer section", chunked + "5\r\nhello\r\n0\r\n\n", false},
  };
  for (const StrictCase& c : cases) {
    check_refused_at_every_split(c);
  }
}

TEST_CASE("RequestParser: a raw byte >= 0x80 in the target is 400 at every split") {
  // RFC 9112 §3.2: the target is URI characters, all ASCII; UTF-8 must be percent-encoded
  // (the valid case "escaped UTF-8 in the target" above). llhttp 8.1 outside its strict build
  // passes raw bytes in the path, query and fragment.
  const StrictCase cases[] = {
      {"UTF-8 in the path", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"one byte 0x80 in the path", "GET /a\x80/b HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"0xff in the query", "GET /a?q=\xff HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"UTF-8 in the fragment", "GET /a#caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"UTF-8 in an absolute-form host",
       "GET http://\xc3\xa9.example/ HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"UTF-8 in an absolute-form path",
       "GET http://a.example/caf\xc3\xa9 HTTP/1.1\r\nHost: a.example\r\n\r\n"},
  };
  for (const StrictCase& c : cases) {
    check_refused_at_every_split(c);
  }
}

TEST_CASE("ResponseParser: a head line not ended by CRLF is 502 at every split") {
  // The same leniencies of llhttp 8.1 on the upstream side (RFC 9112 §2.2), after the status
  // line too.
  const std::string_view cases[] = {
      "HTTP/1.1 200 OK\rXContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200\rXContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nX-A:\rXContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nX-A: \rxContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\rXok",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok",
      "HTTP/1.1 100 Continue\r\n\rXHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
  };
  for (std::string_view bytes : cases) {
    CAPTURE(bytes);
    for (const auto& cuts : all_cuts(bytes.size())) {
      CAPTURE(cuts_text(cuts));
      const Run run = run_response(bytes, cuts, false, false, Pausing::OnComplete);
      CHECK(kind_name(run.kind) == "error");
      CHECK(run.status == 502);
      CHECK(run.events.empty());
    }
  }
}

}  // namespace
}  // namespace cachecar
