// Upstream failures: refused → 502, too slow → 504, reset or garbage → 502, reset mid-body →
// a broken response, and the one safe retry of a pooled connection the upstream had closed.

#include <doctest/doctest.h>

#include "harness.h"
#include "support/free_port.h"

namespace cachecar::test {
namespace {

void check_json_error(const HttpResponse& response, int status) {
  CHECK(response.status == status);
  CHECK(response.header("Content-Type") == "application/json");
  CHECK(response.body.find(R"({"error":")") == 0);
}

TEST_CASE("upstream: nothing listening gives 502") {
  RedisServer redis;
  const std::string upstream = "127.0.0.1:" + std::to_string(free_tcp_port());
  Cachecar cachecar("upstream:\n  url: http://" + upstream + "\nredis:\n  url: " + redis.url() +
                    "\n");
  HttpConnection client(cachecar.port());
  check_json_error(client.request("GET", "/products/1"), 502);
  // The client connection is still usable after a 502 for a complete request.
  check_json_error(client.request("GET", "/products/2"), 502);
  // The error line says which upstream failed.
  CHECK(cachecar.process().wait_for_output("upstream " + upstream + ": connect failed", 2s));
}

TEST_CASE("upstream: no response head within upstream.timeout gives 504") {
  RedisServer redis;
  TestUpstream upstream;
  upstream.set_handler([](const ReceivedRequest&) {
    UpstreamReply reply;
    reply.delay = std::chrono::milliseconds(1500);
    return reply;
  });
  Cachecar cachecar("upstream:\n  url: " + upstream.url() +
                    "\n  timeout: 300ms\nredis:\n  url: " + redis.url() + "\n");
  const auto started = std::chrono::steady_clock::now();
  check_json_error(http_request(cachecar.port(), "GET", "/slow"), 504);
  CHECK(std::chrono::steady_clock::now() - started < 1200ms);
}

TEST_CASE("upstream: a head sent slowly but steadily is not a timeout, a stalled one is") {
  RedisServer redis;
  TestUpstream upstream;
  upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.fault = UpstreamReply::Fault::SlowHeaders;
    reply.headers = {{"X-1", "a"}, {"X-2", "b"}, {"X-3", "c"}, {"X-4", "d"}};
    reply.header_interval = request.target == "/steady" ? 100ms : 900ms;
    reply.body = "done";
    return reply;
  });
  Cachecar cachecar("upstream:\n  url: " + upstream.url() +
                    "\n  timeout: 500ms\nredis:\n  url: " + redis.url() + "\n");
  auto steady = http_request(cachecar.port(), "GET", "/steady");
  CHECK(steady.status == 200);
  CHECK(steady.body == "done");
  check_json_error(http_request(cachecar.port(), "GET", "/stalled"), 504);
}

TEST_CASE("upstream: reset, close or garbage before a response gives 502") {
  Stack stack;
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    if (request.target == "/reset") {
      reply.fault = UpstreamReply::Fault::ResetBeforeResponse;
    } else if (request.target == "/close") {
      reply.fault = UpstreamReply::Fault::CloseBeforeResponse;
    } else {
      reply.fault = UpstreamReply::Fault::Garbage;
    }
    return reply;
  });
  for (const char* target : {"/reset", "/close", "/garbage"}) {
    CAPTURE(target);
    check_json_error(http_request(stack.port(), "GET", target), 502);
  }
}

TEST_CASE("upstream: a reset mid-body breaks the client's response instead of truncating it") {
  Stack stack;
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.fault = UpstreamReply::Fault::ResetMidBody;
    reply.body = std::string(200'000, 'z');
    reply.chunked = request.target == "/chunked";
    return reply;
  });
  for (const char* target : {"/length", "/chunked"}) {
    CAPTURE(target);
    HttpConnection client(stack.port());
    client.send_raw(std::string("GET ") + target + " HTTP/1.1\r\nHost: t\r\n\r\n");
    auto response = client.read_response();
    REQUIRE(response);
    CHECK(response->status == 200);
    CHECK_FALSE(response->complete);
    CHECK(response->body.size() < 200'000);
    CHECK(client.closed_by_peer(1s));
  }
}

TEST_CASE("upstream: a pooled connection closed by the upstream is retried once for GET only") {
  int first_connection = -1;  // before the stack: the upstream's threads read it until stop()
  Stack stack;
  stack.upstream.set_handler([&first_connection](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.body = "fresh";
    if (first_connection < 0) {
      first_connection = request.connection_id;
      return reply;
    }
    // The second request on the first connection: close it without answering, as an upstream
    // whose keep-alive timeout just ran out does.
    if (request.connection_id == first_connection) {
      reply.fault = UpstreamReply::Fault::CloseBeforeResponse;
    }
    return reply;
  });
  HttpConnection client(stack.port());
  CHECK(client.request("GET", "/a").status == 200);
  auto retried = client.request("GET", "/b");
  CHECK(retried.status == 200);
  CHECK(retried.body == "fresh");
  CHECK(stack.upstream.connection_count() == 2);

  // A POST is not idempotent: it is never sent twice.
  stack.upstream.reset_counters();
  first_connection = -1;
  HttpConnection client2(stack.port());
  CHECK(client2.request("GET", "/c").status == 200);
  auto post = client2.request("POST", "/d", {}, "once");
  CHECK(post.status == 502);
  size_t posts = 0;
  for (const auto& request : stack.upstream.requests()) {
    posts += request.method == "POST" ? 1 : 0;
  }
  CHECK(posts == 1);
}

}  // namespace
}  // namespace cachecar::test
