// Client-side limits: malformed requests, header and body sizes, timeouts and the connection
// cap. Each answer is a JSON error with the right status, and the connection closes where the
// issue says so.

#include <doctest/doctest.h>

#include <algorithm>
#include <thread>

#include "harness.h"

namespace cachecar::test {
namespace {

constexpr const char* kLimits =
    "limits:\n"
    "  max_header_bytes: 4KiB\n"
    "  max_headers: 20\n"
    "  max_body_bytes: 1KiB\n"
    "  header_timeout: 400ms\n"
    "  idle_timeout: 400ms\n";

void check_json_error(const HttpResponse& response, int status) {
  CHECK(response.status == status);
  CHECK(response.header("Content-Type") == "application/json");
  CHECK(response.body.find(R"({"error":")") == 0);
}

TEST_CASE("limits: a malformed request gets 400 and the connection closes") {
  Stack stack(kLimits);
  const char* cases[] = {
      "GARBAGE\r\n\r\n",
      "GET /x HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
      "GET /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: "
      "chunked\r\n\r\n0\r\n\r\n",
      "POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (const std::string bytes : cases) {
    CAPTURE(bytes);
    HttpConnection client(stack.port());
    client.send_raw(bytes);
    auto response = client.read_response();
    REQUIRE(response);
    check_json_error(*response, 400);
    CHECK(response->header("Connection") == "close");
    CHECK(client.closed_by_peer(1s));
  }
  CHECK(stack.upstream.request_count() == 0);
}

TEST_CASE("limits: an oversized header section gets 431") {
  Stack stack(kLimits);
  HttpConnection client(stack.port());
  auto big = client.request("GET", "/x", {{"X-Big", std::string(5000, 'a')}});
  check_json_error(big, 431);
  CHECK(client.closed_by_peer(1s));

  HeaderList many;
  for (int i = 0; i < 30; ++i) {
    many.emplace_back("X-H" + std::to_string(i), "v");
  }
  HttpConnection client2(stack.port());
  check_json_error(client2.request("GET", "/x", many), 431);
  CHECK(stack.upstream.request_count() == 0);
}

TEST_CASE("limits: a body over max_body_bytes gets 413, by length or by chunks") {
  Stack stack(kLimits);
  HttpConnection client(stack.port());
  check_json_error(client.request("PUT", "/x", {}, std::string(2000, 'b')), 413);

  HttpConnection chunked(stack.port());
  std::string request = "PUT /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) {
    request += "200\r\n" + std::string(512, 'c') + "\r\n";
  }
  request += "0\r\n\r\n";
  chunked.send_raw(request);
  auto response = chunked.read_response();
  REQUIRE(response);
  // The head may already have been forwarded; the response is still a 413 and not a 200.
  CHECK(response->status == 413);

  // With Expect: 100-continue the 413 comes instead of 100 Continue.
  HttpConnection expecting(stack.port());
  expecting.send_raw(
      "PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
  auto refused = expecting.read_response();
  REQUIRE(refused);
  CHECK(refused->status == 413);
}

TEST_CASE("limits: a head not complete within header_timeout gets 408 and a close") {
  Stack stack(kLimits);
  HttpConnection client(stack.port());
  client.send_raw("GET /slow HTTP/1.1\r\nHost: t\r\n");
  // Trickling more bytes must not extend the deadline (slowloris).
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(100ms);
    client.try_send_raw("X-A: b\r\n");
  }
  auto response = client.read_response();
  REQUIRE(response);
  check_json_error(*response, 408);
  CHECK(client.closed_by_peer(1s));

  // A connection that sends nothing at all is closed too.
  HttpConnection silent(stack.port());
  CHECK(silent.closed_by_peer(2s));
}

TEST_CASE("limits: on a kept-alive connection, the next head too must end within header_timeout") {
  // idle_timeout far beyond header_timeout: a 408 within a second can only be the header
  // deadline, which starts with the next request's first byte.
  Stack stack(
      "limits:\n"
      "  header_timeout: 400ms\n"
      "  idle_timeout: 10s\n");
  SUBCASE("the next head sent after the response, then trickled") {
    HttpConnection client(stack.port());
    CHECK(client.request("GET", "/a").status == 200);
    // Idle for longer than header_timeout first: the connection's timer has then fired and
    // been set for idle_timeout, and only the new head can bring its deadline forward.
    std::this_thread::sleep_for(600ms);
    const auto started = std::chrono::steady_clock::now();
    client.send_raw("GET /slow HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(100ms);
      client.try_send_raw("X-A: b\r\n");
    }
    auto response = client.read_response();
    REQUIRE(response);
    check_json_error(*response, 408);
    CHECK(std::chrono::steady_clock::now() - started < 2s);
    CHECK(client.closed_by_peer(1s));
  }
  SUBCASE("the next head's start pipelined behind a whole request") {
    HttpConnection client(stack.port());
    const auto started = std::chrono::steady_clock::now();
    client.send_raw(build_request("GET", "/a", {}, {}) + "GET /slow HTTP/1.1\r\nHost: t\r\n");
    auto first = client.read_response();
    REQUIRE(first);
    CHECK(first->status == 200);
    auto second = client.read_response();
    REQUIRE(second);
    check_json_error(*second, 408);
    CHECK(std::chrono::steady_clock::now() - started < 2s);
  }
}

TEST_CASE("limits: every refused request has its access line, with the status it got") {
  Stack stack(std::string(kLimits) + "log:\n  format: json\n");
  auto send = [&](const std::string& bytes) {
    HttpConnection client(stack.port());
    client.try_send_raw(bytes);
    auto response = client.read_response();
    REQUIRE(response);
    return response->status;
  };
  CHECK(send("GARBAGE\r\n\r\n") == 400);
  CHECK(send("GET /big HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(5000, 'a') + "\r\n\r\n") ==
        431);
  // Refused mid-body, after the exchange began: its line says 413, not 499 (client gone).
  CHECK(send("PUT /chunks HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
             std::string("800\r\n") + std::string(2048, 'c') + "\r\n") == 413);
  {
    HttpConnection slow(stack.port());
    slow.send_raw("GET /slow HTTP/1.1\r\n");
    auto response = slow.read_response();
    REQUIRE(response);
    CHECK(response->status == 408);
  }
  REQUIRE(stack.cachecar->process().wait_for_output(R"("status":408)", 2s));
  const std::string output = stack.cachecar->output();
  CAPTURE(output);
  CHECK(output.find(R"("method":"-","target":"-","status":400)") != std::string::npos);
  CHECK(output.find(R"("method":"-","target":"-","status":431)") != std::string::npos);
  CHECK(output.find(R"("method":"PUT","target":"/chunks","status":413)") != std::string::npos);
  CHECK(output.find(R"("status":499)") == std::string::npos);
  // A connection that never sends a byte is closed without a line, as nginx does.
  const size_t lines = std::count(output.begin(), output.end(), '\n');
  HttpConnection silent(stack.port());
  CHECK(silent.closed_by_peer(2s));
  std::this_thread::sleep_for(100ms);
  const std::string after = stack.cachecar->output();
  CHECK(static_cast<size_t>(std::count(after.begin(), after.end(), '\n')) == lines);
}

TEST_CASE("limits: an idle keep-alive connection is closed after idle_timeout") {
  Stack stack(kLimits);
  HttpConnection client(stack.port());
  CHECK(client.request("GET", "/a").status == 200);
  CHECK_FALSE(client.closed_by_peer(150ms));
  CHECK(client.closed_by_peer(2s));
}

TEST_CASE("limits: beyond max_connections new connections are closed at once") {
  Stack stack("limits:\n  max_connections: 2\n");
  HttpConnection first(stack.port());
  HttpConnection second(stack.port());
  CHECK(first.request("GET", "/1").status == 200);
  CHECK(second.request("GET", "/2").status == 200);
  HttpConnection third(stack.port());
  CHECK(third.closed_by_peer(1s));
  // The admitted ones still work, and a slot frees up when one closes.
  CHECK(first.request("GET", "/1").status == 200);
  second.close();
  std::this_thread::sleep_for(200ms);
  HttpConnection fourth(stack.port());
  CHECK(fourth.request("GET", "/4").status == 200);
}

}  // namespace
}  // namespace cachecar::test
