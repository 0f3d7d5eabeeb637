// Bodies stream both ways in bounded memory: 100 MB up and 100 MB down pass through without
// cachecar's resident memory growing by anything like 100 MB.

#include <doctest/doctest.h>

#include "harness.h"

namespace cachecar::test {
namespace {

constexpr size_t kHundredMegabytes = 100 * 1024 * 1024;
// Generous next to the 256 KiB watermarks, tiny next to the body: a proxy that buffered the
// body would blow through it.
constexpr long kMaxGrowthKb = 8 * 1024;

// Memory is proven by the optimised build: ASan's quarantine keeps freed buffers resident on
// purpose, so under sanitizers only the bytes are checked.
void check_growth(long growth_kb) {
  CAPTURE(growth_kb);
#ifndef CACHECAR_SANITIZED
  CHECK(growth_kb < kMaxGrowthKb);
#endif
}

TEST_CASE("streaming: a 100 MB upload passes through in bounded memory") {
  Stack stack("limits:\n  max_body_bytes: 200MiB\n");
  stack.upstream.set_discard_bodies(true);
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.body = std::to_string(request.body_size);
    return reply;
  });
  const long rss_before = stack.cachecar->rss_kb();

  HttpConnection client(stack.port());
  client.send_raw("PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                  std::to_string(kHundredMegabytes) + "\r\n\r\n");
  uint64_t checksum = kFnv1aOffsetBasis;
  const size_t piece = 1 << 20;
  for (size_t offset = 0; offset < kHundredMegabytes; offset += piece) {
    const std::string bytes = pattern_chunk(offset, piece);
    checksum = fnv1a(bytes, checksum);
    client.send_raw(bytes);
  }
  auto response = client.read_response();
  REQUIRE(response);
  CHECK(response->status == 200);
  CHECK(response->body == std::to_string(kHundredMegabytes));
  auto seen = stack.upstream.last_request();
  REQUIRE(seen);
  CHECK(seen->body_size == kHundredMegabytes);
  CHECK(seen->body_checksum == checksum);

  check_growth(stack.cachecar->peak_rss_kb() - rss_before);
}

TEST_CASE("streaming: a 100 MB download passes through in bounded memory") {
  Stack stack;
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.generated_body_bytes = kHundredMegabytes;
    reply.chunked = request.target == "/chunked";
    return reply;
  });
  const long rss_before = stack.cachecar->rss_kb();
  for (const char* target : {"/length", "/chunked"}) {
    CAPTURE(target);
    HttpConnection client(stack.port());
    client.set_store_body(false);
    client.send_raw(std::string("GET ") + target + " HTTP/1.1\r\nHost: t\r\n\r\n");
    auto response = client.read_response();
    REQUIRE(response);
    CHECK(response->status == 200);
    CHECK(response->complete);
    CHECK(response->body_size == kHundredMegabytes);
    CHECK(response->body_checksum == pattern_checksum(kHundredMegabytes));
  }
  check_growth(stack.cachecar->peak_rss_kb() - rss_before);
}

}  // namespace
}  // namespace cachecar::test
