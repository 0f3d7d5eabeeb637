// Hostile input: request smuggling vectors are refused with 400 and a close, cache poisoning
// and deception vectors cannot reach a stored entry, and slow-header connections do not starve
// normal requests. Each test is one a naive proxy (forwarding framing and headers as sent,
// keying the raw path) would fail.

#include <doctest/doctest.h>
#include <sys/resource.h>

#include <future>
#include <thread>

#include "harness.h"

namespace cachecar::test {
namespace {

constexpr const char* kRoutes =
    "  - path: /products/{id}\n"
    "    key: product:{id}\n"
    "    ttl: 60s\n";

// Sends `bytes` on a fresh connection; expects a 400, the connection closed, and nothing
// forwarded.
void check_refused(Stack& stack, const std::string& bytes) {
  CAPTURE(bytes);
  const size_t forwarded = stack.upstream.request_count();
  HttpConnection client(stack.port());
  client.try_send_raw(bytes);
  auto response = client.read_response();
  REQUIRE(response);
  CHECK(response->status == 400);
  CHECK(client.closed_by_peer(1s));
  CHECK(stack.upstream.request_count() == forwarded);
}

TEST_CASE("smuggling: CL.TE, TE.CL and TE.TE requests are refused") {
  Stack stack;
  const std::string post = "POST /a HTTP/1.1\r\nHost: t\r\n";
  // CL.TE: a front end that reads Content-Length forwards "G..." as the start of the next
  // request to a back end that reads chunked.
  check_refused(stack, post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG");
  // TE.CL: the reverse.
  check_refused(stack, post +
                           "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "8\r\nSMUGGLED\r\n0\r\n\r\n");
  // TE.TE: obfuscated Transfer-Encoding that one hop ignores and the other honours.
  for (const char* te :
       {"Transfer-Encoding: xchunked\r\n", "Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: identity\r\n", "Transfer-Encoding : chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: cow\r\n",
        "Transfer-Encoding:\r\n chunked\r\n"}) {
    check_refused(stack, post + te + "\r\n5\r\nhello\r\n0\r\n\r\n");
  }
}

TEST_CASE("smuggling: a Transfer_Encoding field never reaches the upstream") {
  Stack stack;
  HttpConnection client(stack.port());
  // Not a framing field to cachecar (underscore), but HTTP_TRANSFER_ENCODING to a CGI-style
  // upstream. The POST is forwarded without it and without a body; the "chunks" after it are
  // then a malformed next request.
  client.send_raw(
      "POST /a HTTP/1.1\r\nHost: t\r\nTransfer_Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  auto first = client.read_response();
  REQUIRE(first);
  CHECK(first->status == 200);
  auto second = client.read_response();
  REQUIRE(second);
  CHECK(second->status == 400);
  CHECK(client.closed_by_peer(1s));
  REQUIRE(stack.upstream.request_count() == 1);
  auto seen = stack.upstream.last_request();
  CHECK_FALSE(seen->header("Transfer_Encoding").has_value());
  CHECK(seen->body.empty());
}

TEST_CASE("smuggling: ambiguous lengths, bad chunks, folds and bare line ends are refused") {
  Stack stack;
  const std::string post = "POST /a HTTP/1.1\r\nHost: t\r\n";
  check_refused(stack, post + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
  check_refused(stack, post + "Content-Length: 3, 4\r\n\r\nabcd");
  check_refused(stack, post + "Content-Length: +3\r\n\r\nabc");
  check_refused(stack, post + "Content-Length: 0x3\r\n\r\nabc");
  for (const char* chunk :
       {"zz\r\nhello\r\n0\r\n\r\n", "-1\r\nx\r\n0\r\n\r\n", "5 5\r\nhello\r\n0\r\n\r\n",
        "fffffffffffffffff1\r\nx\r\n", "5\r\nhelloXX0\r\n\r\n"}) {
    check_refused(stack, post + "Transfer-Encoding: chunked\r\n\r\n" + chunk);
  }
  // A chunk extension longer than any real one.
  check_refused(stack, post + "Transfer-Encoding: chunked\r\n\r\n5;" + std::string(2000, 'x') +
                           "\r\nhello\r\n0\r\n\r\n");
  // obs-fold, whitespace before the colon, bare CR, bare LF.
  check_refused(stack, "GET /a HTTP/1.1\r\nHost: t\r\nX-A: b\r\n c\r\n\r\n");
  check_refused(stack, "GET /a HTTP/1.1\r\nHost : t\r\n\r\n");
  check_refused(stack, "GET /a HTTP/1.1\r\nHost: t\rX-B: c\r\n\r\n");
  check_refused(stack, "GET /a HTTP/1.1\nHost: t\n\n");
  // Dot segments above the root and broken escapes in the path.
  check_refused(stack, "GET /../etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n");
  check_refused(stack, "GET /a%zz HTTP/1.1\r\nHost: t\r\n\r\n");
}

// What llhttp 9 refuses and Debian's llhttp 8.1 forwards (issue 12; the parser's own tests
// feed each at every split point).
TEST_CASE("smuggling: an empty Transfer-Encoding is refused") {
  Stack stack;
  const std::string post = "POST /a HTTP/1.1\r\nHost: t\r\n";
  // A hop that reads an empty Transfer-Encoding as none frames by Content-Length; one that
  // lets its presence override the length (RFC 9112 §6.3) does not.
  check_refused(stack, post + "Transfer-Encoding:\r\nContent-Length: 5\r\n\r\nhello");
  check_refused(stack, post + "Transfer-Encoding: \r\nContent-Length: 5\r\n\r\nhello");
  check_refused(stack, post + "Content-Length: 5\r\nTransfer-Encoding:\r\n\r\nhello");
  check_refused(stack, post + "Transfer-Encoding:\r\n\r\n");
  check_refused(
      stack,
      post + "Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  CHECK(stack.upstream.request_count() == 0);
}

TEST_CASE("smuggling: lines separated by junk or by a lone CR are refused") {
  Stack stack;
  const std::string get = "GET /a HTTP/1.1\r\nHost: t\r\n";
  const std::string chunked = "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  // Header lines separated by junk: llhttp 8.1 takes the byte after the CR of an empty value
  // for the LF, so "x" vanishes and Transfer-Encoding frames this GET (CVE-2023-30589).
  check_refused(stack, get + "X-Abc: \rxTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n");
  check_refused(stack, get + "X-Abc:\rXY: b\r\n\r\n");
  check_refused(stack, "GET /a HTTP/1.1\nHost: t\r\n\r\n");
  check_refused(stack, get + "X-Abc:\nY: b\r\n\r\n");
  // Empty lines separated by a lone CR, or ended by junk or a lone LF.
  check_refused(stack, get + "X-Abc:\r\r\nY: b\r\n\r\n");
  check_refused(stack, get + "\r\r\n");
  check_refused(stack, "GET /a HTTP/1.1\r\nHost: t\n\r\r\n");
  check_refused(stack, get + "X-Abc: v\r\r\n\r\n");
  check_refused(stack, get + "\rX");
  check_refused(stack, "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\rXhello");
  check_refused(stack, get + "\n");
  // The same in the lines of a chunked body.
  check_refused(stack, chunked + "5\rXhello\r\n0\r\n\r\n");
  check_refused(stack, chunked + "5;a=b\rXhello\r\n0\r\n\r\n");
  check_refused(stack, chunked + "5\r\nhello\r\n0\rX\r\n");
  check_refused(stack, chunked + "0\r\nT:\rXU: 1\r\n\r\n");
  check_refused(stack, chunked + "5\r\nhello\r\n0\r\n\rX");
  CHECK(stack.upstream.request_count() == 0);
}

TEST_CASE("smuggling: raw bytes >= 0x80 in the request target are refused") {
  Stack stack;
  // RFC 9112 §3.2: UTF-8 in a target is percent-encoded; raw, each hop decodes it its own way.
  check_refused(stack, "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n");
  check_refused(stack, "GET /a\x80 HTTP/1.1\r\nHost: t\r\n\r\n");
  check_refused(stack, "GET /a?q=\xff HTTP/1.1\r\nHost: t\r\n\r\n");
  check_refused(stack, "GET /a#caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n");
  check_refused(stack, "GET http://t/caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(stack.upstream.request_count() == 0);
  // Percent-encoded, the same path passes.
  CHECK(http_request(stack.port(), "GET", "/caf%C3%A9").status == 200);
  CHECK(stack.upstream.request_count() == 1);
}

TEST_CASE("smuggling: the upstream sees cachecar's framing, never the client's") {
  Stack stack;
  HttpConnection client(stack.port());
  client.send_raw(
      "POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n");
  auto response = client.read_response();
  REQUIRE(response);
  CHECK(response->status == 200);
  auto seen = stack.upstream.last_request();
  REQUIRE(seen);
  CHECK(seen->body == "abc");
  CHECK(seen->header("Transfer-Encoding") == "chunked");
  CHECK_FALSE(seen->header("Content-Length"));
}

TEST_CASE("poisoning: fields that rewrite the path, method or host never reach the upstream") {
  Stack stack("", kRoutes);
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    // A naive upstream framework honouring every override.
    std::string body = request.target;
    for (const char* name : {"X-Original-URL", "X-Rewrite-URL", "X-HTTP-Method-Override",
                             "X-Forwarded-Host", "X-Host"}) {
      if (auto value = request.header(name)) {
        body += std::string(" ") + name + "=" + *value;
      }
    }
    reply.body = body;
    return reply;
  });
  auto poisoned = http_request(stack.port(), "GET", "/products/1",
                               {{"Host", "shop"},
                                {"X-Original-URL", "/admin"},
                                {"X-Rewrite-URL", "/admin"},
                                {"X-HTTP-Method-Override", "DELETE"},
                                {"X-Forwarded-Host", "evil.example"},
                                {"X-Host", "evil.example"}});
  CHECK(poisoned.body == "/products/1 X-Forwarded-Host=shop");
  auto victim = http_request(stack.port(), "GET", "/products/1", {{"Host", "shop"}});
  CHECK(victim.header("X-Cache") == "HIT");
  CHECK(victim.body == "/products/1 X-Forwarded-Host=shop");
}

TEST_CASE("poisoning: the path is normalised the same way for the key and the upstream") {
  Stack stack("", kRoutes);
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.body = request.target;
    return reply;
  });
  // Every spelling reaches the upstream as the canonical path and shares one entry.
  CHECK(http_request(stack.port(), "GET", "/products/%34%32").body == "/products/42");
  for (const char* spelling : {"/products/42", "//products//42", "/products/./42",
                               "/products/x/../42", "/products/%2e/42"}) {
    CAPTURE(spelling);
    auto response = http_request(stack.port(), "GET", spelling);
    CHECK(response.header("X-Cache") == "HIT");
    CHECK(response.body == "/products/42");
  }
  CHECK(stack.upstream.request_count() == 1);
  // One write invalidates every spelling, since there is only one entry.
  CHECK(http_request(stack.port(), "PUT", "/products/%34%32", {}, "{}").status == 200);
  CHECK(http_request(stack.port(), "GET", "//products/42").header("X-Cache") == "MISS");
}

TEST_CASE("poisoning: parameter cloaking, Range and a GET with a body cannot poison an entry") {
  Stack stack("", kRoutes);
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.body = "full:" + request.target;
    if (request.header("Range")) {
      reply.status = 206;
      reply.body = "part";
      reply.headers = {{"Content-Range", "bytes 0-3/20"}};
    }
    if (!request.body.empty()) {
      reply.body = "body-dependent:" + request.body;
    }
    return reply;
  });
  // ';' is part of the segment: a cloaked path is its own key, not product 42's.
  CHECK(http_request(stack.port(), "GET", "/products/42;.css").body == "full:/products/42;.css");
  // A Range request is passed through and its 206 never stored.
  auto partial = http_request(stack.port(), "GET", "/products/42", {{"Range", "bytes=0-3"}});
  CHECK(partial.status == 206);
  CHECK(partial.header("X-Cache") == "BYPASS");
  // A GET with a body may change the answer without changing the key: not cached.
  auto with_body = http_request(stack.port(), "GET", "/products/42", {}, "evil");
  CHECK(with_body.header("X-Cache") == "BYPASS");
  auto clean = http_request(stack.port(), "GET", "/products/42");
  CHECK(clean.header("X-Cache") == "MISS");
  CHECK(clean.body == "full:/products/42");
  CHECK(http_request(stack.port(), "GET", "/products/42").body == "full:/products/42");
}

TEST_CASE("poisoning: query parameters the key leaves out never reach the upstream") {
  Stack stack("", std::string(kRoutes) +
                      "  - path: /list\n"
                      "    key: list\n"
                      "    ttl: 60s\n"
                      "    query: [page]\n");
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.body = request.target;  // an upstream whose answer depends on every parameter
    return reply;
  });
  // An unkeyed parameter would otherwise be stored under the key without it.
  auto poisoned = http_request(stack.port(), "GET", "/products/42?lang=evil");
  CHECK(poisoned.header("X-Cache") == "MISS");
  CHECK(poisoned.body == "/products/42");
  CHECK(http_request(stack.port(), "GET", "/products/42").body == "/products/42");
  // A repeated keyed parameter, or one cloaked behind ';' in an unkeyed one: the key reads
  // "page=1", and so must the upstream, whichever occurrence or separator it prefers.
  for (const char* target : {"/list?page=1&page=evil", "/list?x=1;page=evil&page=1"}) {
    CAPTURE(target);
    auto response = http_request(stack.port(), "GET", target);
    CHECK(response.status == 200);
    CHECK(response.body == "/list?page=1");
  }
  CHECK(http_request(stack.port(), "GET", "/list?page=1").header("X-Cache") == "HIT");
  std::vector<std::string> seen;
  for (const ReceivedRequest& request : stack.upstream.requests()) {
    seen.push_back(request.target);
  }
  CHECK(seen == std::vector<std::string>{"/products/42", "/list?page=1"});
}

TEST_CASE("poisoning: a forged or repeated Host cannot reach a stored entry") {
  // The upstream builds links from the host it is told, as frameworks do.
  auto link_builder = [](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.body = "https://" + request.header("X-Forwarded-Host").value_or("?") + "/products/1";
    for (const char* name : {"Forwarded", "X-Original-Host"}) {
      if (auto value = request.header(name)) {
        reply.body += std::string(" ") + name + "=" + *value;
      }
    }
    return reply;
  };
  SUBCASE("two Host fields, or none in HTTP/1.1, are refused") {
    Stack stack("", kRoutes);
    stack.upstream.set_handler(link_builder);
    check_refused(stack, "GET /products/1 HTTP/1.1\r\nHost: shop\r\nHost: evil.example\r\n\r\n");
    check_refused(stack, "GET /products/1 HTTP/1.1\r\n\r\n");
    check_refused(stack, "GET /products/1 HTTP/1.1\r\nHost: evil.example@shop\r\n\r\n");
    check_refused(stack, "GET /products/1 HTTP/1.1\r\nHost: shop/evil\r\n\r\n");
  }
  SUBCASE("with hosts configured, any other host gets 421 and touches nothing") {
    Stack stack("hosts: [shop, \"*.shop.example\"]\n", kRoutes);
    stack.upstream.set_handler(link_builder);
    auto forged = http_request(stack.port(), "GET", "/products/1", {{"Host", "evil.example"}});
    CHECK(forged.status == 421);
    CHECK(forged.header("Content-Type") == "application/json");
    CHECK(stack.upstream.request_count() == 0);
    CHECK(stack.redis.command({"EXISTS", "product:1"}) == "0");
    // Fields that name another host are dropped; cachecar says which host it was asked for.
    auto served = http_request(
        stack.port(), "GET", "/products/1",
        {{"Host", "SHOP:8080"}, {"Forwarded", "host=evil.example"}, {"X-Original-Host", "evil"}});
    CHECK(served.status == 200);
    CHECK(served.body == "https://SHOP:8080/products/1");
    auto subdomain =
        http_request(stack.port(), "GET", "/products/1", {{"Host", "eu.shop.example"}});
    CHECK(subdomain.header("X-Cache") == "HIT");
    CHECK(http_request(stack.port(), "GET", "/products/1", {{"Host", "shop.example"}}).status ==
          421);
  }
}

TEST_CASE("faults: an upstream reset mid-body is never cached") {
  Stack stack("", kRoutes);
  std::atomic<int> calls{0};
  stack.upstream.set_handler([&calls](const ReceivedRequest&) {
    UpstreamReply reply;
    reply.body = std::string(100'000, 'b');
    if (calls++ == 0) {
      reply.fault = UpstreamReply::Fault::ResetMidBody;
    }
    return reply;
  });
  HttpConnection broken(stack.port());
  broken.send_raw("GET /products/9 HTTP/1.1\r\nHost: t\r\n\r\n");
  auto truncated = broken.read_response();
  REQUIRE(truncated);
  CHECK_FALSE(truncated->complete);
  std::this_thread::sleep_for(100ms);
  CHECK_FALSE(stack.redis.get("product:9").has_value());
  auto whole = http_request(stack.port(), "GET", "/products/9");
  CHECK(whole.header("X-Cache") == "MISS");
  CHECK(whole.body.size() == 100'000);
  stack.upstream.stop();
}

TEST_CASE("exhaustion: 1,000 slow-header connections do not slow normal requests") {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < 4096 && files.rlim_max >= 4096) {
    files.rlim_cur = 4096;  // the test process and cachecar (inherited) hold 1,000+ sockets
    setrlimit(RLIMIT_NOFILE, &files);
  }
  REQUIRE(files.rlim_cur >= 4096);
  Stack stack("limits:\n  header_timeout: 30s\n");
  HttpConnection warm(stack.port());
  CHECK(warm.request("GET", "/a").status == 200);
  const auto baseline_start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    warm.request("GET", "/a");
  }
  const auto baseline = (std::chrono::steady_clock::now() - baseline_start) / 20;

  std::vector<HttpConnection> slow;
  for (int i = 0; i < 1000; ++i) {
    slow.emplace_back(stack.port());
    slow.back().send_raw("GET /slow HTTP/1.1\r\nHost: t\r\nX-Drip: ");
  }
  for (int round = 0; round < 3; ++round) {
    for (auto& connection : slow) {
      connection.try_send_raw("a");
    }
  }
  HttpConnection fresh(stack.port());
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    CHECK(fresh.request("GET", "/a").status == 200);
  }
  const auto with_slowloris = (std::chrono::steady_clock::now() - start) / 20;
  CAPTURE(std::chrono::duration_cast<std::chrono::microseconds>(baseline).count());
  CAPTURE(std::chrono::duration_cast<std::chrono::microseconds>(with_slowloris).count());
  // Usual latency: the same order as without them, and far from waiting on any of them.
  CHECK(with_slowloris < baseline * 5 + 20ms);
  CHECK(stack.upstream.request_count() == 41);
}

}  // namespace
}  // namespace cachecar::test
