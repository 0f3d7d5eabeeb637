// Interim 1xx responses from the upstream (RFC 9110 §15.2): 102 Processing and 103 Early Hints
// reach an HTTP/1.1 client before the final response, in order, however the upstream's bytes
// are cut; never an HTTP/1.0 client; never stored with the final response, nor served with a
// hit. 100 Continue is cachecar's own business with the client (it answers Expect itself).

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "harness.h"

namespace cachecar::test {
namespace {

constexpr std::string_view kEarlyHints =
    "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n"
    "X-Hint: only-early\r\nConnection: X-Hint-Hop\r\nX-Hint-Hop: dropped\r\n\r\n";
constexpr std::string_view kFinal =
    "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Type: text/plain\r\n"
    "Content-Length: 5\r\n\r\nfinal";

UpstreamReply raw_reply(std::string bytes) {
  UpstreamReply reply;
  reply.raw = std::move(bytes);
  return reply;
}

// Reads the interim responses and then the final one of the request just sent.
struct Answer {
  std::vector<HttpResponse> interim;
  HttpResponse final;
};
Answer read_answer(HttpConnection& client) {
  Answer answer;
  while (true) {
    auto response = client.read_response();
    REQUIRE(response);
    if (!response->is_interim()) {
      answer.final = std::move(*response);
      return answer;
    }
    answer.interim.push_back(std::move(*response));
  }
}

TEST_CASE(
    "interim responses: 103 Early Hints reaches the client first, however the bytes are cut") {
  Stack stack("cache:\n  mode: http\n");
  const std::string upstream_bytes = std::string(kEarlyHints) + std::string(kFinal);
  // Every cut of the upstream's stream, each piece read by cachecar before the next is sent.
  for (size_t cut = 1; cut < upstream_bytes.size(); cut += 7) {
    CAPTURE(cut);
    const std::string target = "/hints/" + std::to_string(cut);
    stack.upstream.set_handler([&](const ReceivedRequest&) {
      UpstreamReply reply = raw_reply(upstream_bytes);
      reply.split_at = std::vector<size_t>{cut};
      return reply;
    });
    HttpConnection client(stack.port());
    client.send_raw("GET " + target + " HTTP/1.1\r\nHost: test\r\n\r\n");
    const Answer first = read_answer(client);
    REQUIRE(first.interim.size() == 1);
    CHECK(first.interim[0].status == 103);
    CHECK(first.interim[0].header("Link") == "</style.css>; rel=preload; as=style");
    CHECK(first.interim[0].header("X-Hint") == "only-early");
    CHECK_FALSE(first.interim[0].header("X-Hint-Hop"));  // named by Connection: hop-by-hop
    CHECK(first.final.status == 200);
    CHECK(first.final.body == "final");
    CHECK(first.final.header("X-Cache") == "MISS");
    CHECK_FALSE(first.final.header("Link"));
    CHECK_FALSE(first.final.header("X-Hint"));
    REQUIRE(eventually([&] { return stack.redis.get("path:" + target).has_value(); }));

    // The hit is the final response alone: no interim response is stored, nor its fields.
    client.send_raw("GET " + target + " HTTP/1.1\r\nHost: test\r\n\r\n");
    const Answer hit = read_answer(client);
    CHECK(hit.interim.empty());
    CHECK(hit.final.header("X-Cache") == "HIT");
    CHECK(hit.final.body == "final");
    CHECK_FALSE(hit.final.header("X-Hint"));
    CHECK_FALSE(hit.final.header("Link"));
  }
}

TEST_CASE("interim responses: several in order; 100 Continue is not passed on") {
  Stack stack;
  stack.upstream.set_handler([](const ReceivedRequest&) {
    return raw_reply("HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n" +
                     std::string(kEarlyHints) + std::string(kFinal));
  });
  HttpConnection client(stack.port());
  client.send_raw("GET /slow HTTP/1.1\r\nHost: test\r\n\r\n");
  const Answer answer = read_answer(client);
  REQUIRE(answer.interim.size() == 2);
  CHECK(answer.interim[0].status == 102);
  CHECK(answer.interim[1].status == 103);
  CHECK(answer.final.status == 200);
  CHECK(answer.final.body == "final");
}

TEST_CASE("interim responses: an upstream that sends many has a few passed on, then the final") {
  Stack stack;
  stack.upstream.set_handler([](const ReceivedRequest&) {
    std::string bytes;
    for (int i = 0; i < 100; ++i) {
      bytes += "HTTP/1.1 102 Processing\r\n\r\n";
    }
    return raw_reply(bytes + std::string(kFinal));
  });
  HttpConnection client(stack.port());
  client.send_raw("GET /chatty HTTP/1.1\r\nHost: test\r\n\r\n");
  const Answer answer = read_answer(client);
  CHECK(answer.interim.size() == 8);
  CHECK(answer.final.status == 200);
  CHECK(answer.final.body == "final");
}

TEST_CASE("interim responses: an HTTP/1.0 client gets the final response only") {
  Stack stack;
  stack.upstream.set_handler([](const ReceivedRequest&) {
    return raw_reply(std::string(kEarlyHints) + std::string(kFinal));
  });
  HttpConnection client(stack.port());
  client.send_raw("GET /old HTTP/1.0\r\nHost: test\r\n\r\n");
  const auto response = client.read_response();
  REQUIRE(response);
  CHECK(response->status == 200);
  CHECK(response->body == "final");
}

TEST_CASE("interim responses: pipelined requests keep each answer's 1xx with its own final") {
  Stack stack;
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    return raw_reply(std::string(kEarlyHints) + "HTTP/1.1 200 OK\r\nContent-Length: " +
                     std::to_string(request.target.size()) + "\r\n\r\n" + request.target);
  });
  HttpConnection client(stack.port());
  // Both requests in one write.
  client.send_raw("GET /one HTTP/1.1\r\nHost: test\r\n\r\nGET /two HTTP/1.1\r\nHost: test\r\n\r\n");
  const Answer one = read_answer(client);
  const Answer two = read_answer(client);
  CHECK(one.interim.size() == 1);
  CHECK(one.final.body == "/one");
  CHECK(two.interim.size() == 1);
  CHECK(two.final.body == "/two");
}

}  // namespace
}  // namespace cachecar::test
