// Proxying: methods and bodies reach the upstream intact, header rules of an intermediary,
// keep-alive toward the upstream, pipelining, HEAD, 100-continue and re-framing.

#include <doctest/doctest.h>

#include <memory>
#include <thread>
#include <vector>

#include "harness.h"

namespace cachecar::test {
namespace {

UpstreamReply echo(const ReceivedRequest& request) {
  UpstreamReply reply;
  reply.headers = {{"Content-Type", "application/json"}};
  reply.body = R"({"method":")" + request.method + R"(","target":")" + request.target +
               R"(","body_size":)" + std::to_string(request.body_size) + "}";
  return reply;
}

TEST_CASE("proxy: GET, PUT and DELETE reach the upstream with bodies intact") {
  Stack stack;
  stack.upstream.set_handler(echo);
  HttpConnection client(stack.port());

  auto get = client.request("GET", "/products/42?color=red");
  CHECK(get.status == 200);
  CHECK(get.body == R"({"method":"GET","target":"/products/42?color=red","body_size":0})");
  CHECK(get.header("Content-Type") == "application/json");

  const std::string product = R"({"id":42,"name":"Mechanical Keyboard","price":129.99})";
  auto put = client.request("PUT", "/products/42", {{"Content-Type", "application/json"}}, product);
  CHECK(put.status == 200);
  auto seen_put = stack.upstream.last_request();
  REQUIRE(seen_put);
  CHECK(seen_put->method == "PUT");
  CHECK(seen_put->body == product);
  CHECK(seen_put->header("Content-Type") == "application/json");
  CHECK(seen_put->header("Content-Length") == std::to_string(product.size()));

  auto del = client.request("DELETE", "/products/42", {}, "reason=test");
  CHECK(del.status == 200);
  auto seen_delete = stack.upstream.last_request();
  REQUIRE(seen_delete);
  CHECK(seen_delete->method == "DELETE");
  CHECK(seen_delete->body == "reason=test");

  auto patch = client.request("PATCH", "/products/42", {}, R"({"price":99})");
  CHECK(patch.status == 200);
  CHECK(stack.upstream.last_request()->body == R"({"price":99})");
  CHECK(stack.cachecar->output().find(R"("PUT /products/42" 200)") != std::string::npos);
}

TEST_CASE("proxy: forwarding headers are added and Host passes through") {
  Stack stack;
  stack.upstream.set_handler(echo);
  auto response = http_request(stack.port(), "GET", "/x",
                               {{"Host", "shop.example"},
                                {"X-Forwarded-For", "203.0.113.9"},
                                {"X-Forwarded-Host", "evil.example"},
                                {"Via", "1.0 edge"}});
  CHECK(response.status == 200);
  CHECK(response.header("Via") == "1.1 cachecar");
  auto seen = stack.upstream.last_request();
  REQUIRE(seen);
  CHECK(seen->header("Host") == "shop.example");
  CHECK(seen->header("X-Forwarded-For") == "203.0.113.9, 127.0.0.1");
  CHECK(seen->header("X-Forwarded-Proto") == "http");
  // What this hop saw, not what the client claimed.
  CHECK(seen->header("X-Forwarded-Host") == "shop.example");
  CHECK(seen->header("Via") == "1.0 edge, 1.1 cachecar");
}

TEST_CASE("proxy: hop-by-hop headers are removed in both directions") {
  Stack stack;
  stack.upstream.set_handler([](const ReceivedRequest&) {
    UpstreamReply reply;
    reply.headers = {{"Connection", "X-Internal"}, {"X-Internal", "secret"},
                     {"Keep-Alive", "timeout=5"},  {"Proxy-Authenticate", "Basic"},
                     {"Upgrade", "h2c"},           {"X-End-To-End", "kept"}};
    reply.body = "ok";
    return reply;
  });
  HttpConnection client(stack.port());
  auto response = client.request("GET", "/hop",
                                 {{"Connection", "keep-alive, X-Client-Secret"},
                                  {"X-Client-Secret", "1"},
                                  {"Keep-Alive", "timeout=9"},
                                  {"TE", "trailers"},
                                  {"Upgrade", "websocket"},
                                  {"Proxy-Authorization", "Basic Zm9vOmJhcg=="},
                                  {"X-Kept", "yes"}});
  CHECK(response.status == 200);
  CHECK_FALSE(response.header("X-Internal"));
  CHECK_FALSE(response.header("Keep-Alive"));
  CHECK_FALSE(response.header("Proxy-Authenticate"));
  CHECK_FALSE(response.header("Upgrade"));
  CHECK(response.header("X-End-To-End") == "kept");
  auto seen = stack.upstream.last_request();
  REQUIRE(seen);
  for (const char* name :
       {"X-Client-Secret", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization"}) {
    CAPTURE(name);
    CHECK_FALSE(seen->header(name));
  }
  CHECK(seen->header("X-Kept") == "yes");
}

TEST_CASE("proxy: a chunked request body is re-framed, not copied") {
  Stack stack;
  stack.upstream.set_handler(echo);
  HttpConnection client(stack.port());
  client.send_raw(
      "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
  auto response = client.read_response();
  REQUIRE(response);
  CHECK(response->status == 200);
  auto seen = stack.upstream.last_request();
  REQUIRE(seen);
  CHECK(seen->body == "hello world");
  CHECK(seen->chunked);
  CHECK_FALSE(seen->header("Content-Length"));
}

TEST_CASE("proxy: Expect: 100-continue gets 100 Continue before the body is sent") {
  Stack stack;
  stack.upstream.set_handler(echo);
  HttpConnection client(stack.port());
  client.send_raw(
      "PUT /products/7 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  auto interim = client.read_response();
  REQUIRE(interim);
  CHECK(interim->status == 100);
  client.send_raw("data");
  auto final_response = client.read_response();
  REQUIRE(final_response);
  CHECK(final_response->status == 200);
  auto seen = stack.upstream.last_request();
  REQUIRE(seen);
  CHECK(seen->body == "data");
  CHECK_FALSE(seen->header("Expect"));
}

TEST_CASE("proxy: HEAD keeps Content-Length and sends no body") {
  Stack stack;
  stack.upstream.set_handler([](const ReceivedRequest&) {
    UpstreamReply reply;
    reply.body = std::string(1234, 'x');
    return reply;
  });
  HttpConnection client(stack.port());
  client.send_raw("HEAD /big HTTP/1.1\r\nHost: t\r\n\r\n");
  auto head = client.read_response(/*head_request=*/true);
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->header("Content-Length") == "1234");
  CHECK(head->body.empty());
  // The connection stays usable: no stray body bytes were sent.
  auto next = client.request("GET", "/big");
  CHECK(next.body.size() == 1234);
  CHECK(stack.upstream.requests().front().method == "HEAD");
}

TEST_CASE("proxy: 1,000 sequential keep-alive requests use a handful of upstream connections") {
  Stack stack;
  stack.upstream.set_handler(echo);
  HttpConnection client(stack.port());
  for (int i = 0; i < 1000; ++i) {
    auto response = client.request("GET", "/products/" + std::to_string(i % 10));
    REQUIRE(response.status == 200);
  }
  CHECK(stack.upstream.request_count() == 1000);
  CAPTURE(stack.upstream.connection_count());
  CHECK(stack.upstream.connection_count() <= 3);
}

TEST_CASE(
    "proxy: a burst's upstream connections serve the next burst, and past max_idle close once "
    "idle") {
  RedisServer redis;
  TestUpstream upstream;
  upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply = echo(request);
    reply.delay = 100ms;  // every request of a burst is in flight at once: one connection each
    return reply;
  });
  Cachecar cachecar("upstream:\n  url: " + upstream.url() +
                    "\n  max_idle_connections: 2\nredis:\n  url: " + redis.url() + "\n");
  REQUIRE(cachecar.process().wait_for_output(": connected", 5s));

  constexpr size_t kBurst = 8;
  const auto burst = [&cachecar] {
    std::vector<std::unique_ptr<HttpConnection>> clients;
    for (size_t i = 0; i < kBurst; ++i) {
      clients.push_back(std::make_unique<HttpConnection>(cachecar.port()));
      clients.back()->send_raw("GET /burst/" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    for (auto& client : clients) {
      auto response = client->read_response();
      REQUIRE(response);
      CHECK(response->status == 200);
    }
  };
  burst();
  REQUIRE(upstream.connection_count() == kBurst);
  // All eight responses went idle in the same moment, six past max_idle: they must still be
  // there for the next burst, not closed and reopened.
  burst();
  CHECK(upstream.connection_count() == kBurst);
  // Idle past the surplus linger (1s) and within upstream idle_timeout (4s): only max_idle
  // connections are left, so the next burst opens the other six again.
  std::this_thread::sleep_for(2s);
  burst();
  CHECK(upstream.connection_count() == kBurst + (kBurst - 2));
}

TEST_CASE("proxy: pipelined requests are answered in order") {
  Stack stack;
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply = echo(request);
    // The first request is the slowest: a proxy that answered as responses arrive would
    // reorder them.
    if (request.target == "/1") {
      reply.delay = std::chrono::milliseconds(300);
    }
    return reply;
  });
  HttpConnection client(stack.port());
  client.send_raw(
      "GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
      "PUT /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
      "GET /3 HTTP/1.1\r\nHost: t\r\n\r\n");
  for (const char* target : {"/1", "/2", "/3"}) {
    auto response = client.read_response();
    REQUIRE(response);
    CHECK(response->status == 200);
    CHECK(response->body.find(std::string("\"target\":\"") + target + "\"") != std::string::npos);
  }
}

TEST_CASE("proxy: an EOF-delimited upstream body is re-chunked for HTTP/1.1 and closed for 1.0") {
  Stack stack;
  stack.upstream.set_handler([](const ReceivedRequest&) {
    UpstreamReply reply;
    reply.body = "streamed until close";
    reply.omit_content_length = true;
    return reply;
  });
  HttpConnection client(stack.port());
  auto modern = client.request("GET", "/eof");
  CHECK(modern.status == 200);
  CHECK(modern.chunked);
  CHECK(modern.complete);
  CHECK(modern.body == "streamed until close");
  // The client connection survives the upstream's close.
  CHECK(client.request("GET", "/eof").body == "streamed until close");

  HttpConnection old_client(stack.port());
  old_client.send_raw("GET /eof HTTP/1.0\r\nHost: t\r\n\r\n");
  auto old = old_client.read_response();
  REQUIRE(old);
  CHECK(old->body == "streamed until close");
  CHECK_FALSE(old->chunked);
  CHECK(old_client.closed_by_peer(1s));
}

TEST_CASE("proxy: HTTP/1.0 keep-alive is honoured") {
  Stack stack;
  stack.upstream.set_handler(echo);
  HttpConnection client(stack.port());
  for (int i = 0; i < 3; ++i) {
    client.send_raw("GET /ten HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n");
    auto response = client.read_response();
    REQUIRE(response);
    CHECK(response->status == 200);
    CHECK(response->header("Connection") == "keep-alive");
  }
}

TEST_CASE("proxy: several workers share the port") {
  TestUpstream upstream;
  RedisServer redis;
  upstream.set_handler(echo);
  Cachecar cachecar(stack_yaml(upstream, redis) + "workers: 2\n");
  CHECK(cachecar.output().find("with 2 worker(s)") != std::string::npos);
  for (int i = 0; i < 20; ++i) {
    CHECK(http_request(cachecar.port(), "GET", "/w").status == 200);
  }
  CHECK(cachecar.stop() == 0);
}

TEST_CASE("proxy: the access log can be JSON, one object per line") {
  TestUpstream upstream;
  RedisServer redis;
  upstream.set_handler(echo);
  Cachecar cachecar(stack_yaml(upstream, redis) + "log:\n  format: json\n");
  CHECK(http_request(cachecar.port(), "GET", "/json-log?q=\"x\"").status == 200);
  CHECK(cachecar.process().wait_for_output(R"("type":"access")", 2s));
  const std::string output = cachecar.output();
  CHECK(output.find(R"("method":"GET","target":"/json-log?q=\"x\"","status":200)") !=
        std::string::npos);
  CHECK(output.find(R"({"time":")") != std::string::npos);
}

}  // namespace
}  // namespace cachecar::test
