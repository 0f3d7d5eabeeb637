// Shutdown: SIGTERM stops accepting, lets in-flight requests finish within drain_timeout and
// exits 0.

#include <doctest/doctest.h>

#include <future>
#include <thread>

#include "harness.h"

namespace cachecar::test {
namespace {

UpstreamReply slow_reply(std::chrono::milliseconds delay) {
  UpstreamReply reply;
  reply.delay = delay;
  reply.body = "finished";
  return reply;
}

TEST_CASE("lifecycle: SIGTERM drains an in-flight request, refuses new ones and exits 0") {
  Stack stack;
  stack.upstream.set_handler([](const ReceivedRequest&) { return slow_reply(800ms); });
  const int port = stack.port();
  HttpConnection idle(port);  // an idle keep-alive connection is closed at once

  auto in_flight = std::async(std::launch::async, [port] {
    HttpConnection client(port);
    return client.request("GET", "/in-flight");
  });
  REQUIRE(stack.upstream.wait_for_requests(1, 2s));
  stack.cachecar->process().signal(SIGTERM);

  CHECK(idle.closed_by_peer(1s));
  std::this_thread::sleep_for(100ms);
  CHECK_FALSE(HttpConnection::try_connect(port, 500ms).has_value());

  auto response = in_flight.get();
  CHECK(response.status == 200);
  CHECK(response.body == "finished");
  CHECK(response.header("Connection") == "close");
  CHECK(stack.cachecar->process().wait_exit(5s) == 0);
  CHECK(stack.cachecar->output().find("cachecar stopped") != std::string::npos);
}

TEST_CASE("lifecycle: drain_timeout bounds the wait for a request that does not finish") {
  Stack stack("drain_timeout: 300ms\n");
  stack.upstream.set_handler([](const ReceivedRequest&) { return slow_reply(3000ms); });
  const int port = stack.port();
  HttpConnection client(port);
  client.send_raw("GET /forever HTTP/1.1\r\nHost: t\r\n\r\n");
  REQUIRE(stack.upstream.wait_for_requests(1, 2s));
  const auto started = std::chrono::steady_clock::now();
  stack.cachecar->process().signal(SIGTERM);
  CHECK(stack.cachecar->process().wait_exit(5s) == 0);
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  CHECK(client.closed_by_peer(1s));
}

TEST_CASE("lifecycle: SIGINT drains too, and an idle process exits at once") {
  Stack stack;
  CHECK(http_request(stack.port(), "GET", "/").status == 200);
  stack.cachecar->process().signal(SIGINT);
  CHECK(stack.cachecar->process().wait_exit(2s) == 0);
}

}  // namespace
}  // namespace cachecar::test
