// Fuzz target: bytes from a Redis server (or something pretending to be one). Replies are read
// as the client reads them, then handed to the limiter's decision and the reply helpers.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ratelimit/limiter.h"
#include "redis/reply.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cachecar;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  RespReader reader;
  // Fed in two pieces, as a socket may deliver them.
  const size_t half = size / 2;
  if (!reader.feed(input.substr(0, half)) || !reader.feed(input.substr(half))) {
    return 0;
  }
  LimitPlan fixed;
  fixed.limit = 10;
  fixed.window = Duration(60'000);
  LimitPlan sliding = fixed;
  sliding.algorithm = RateLimitAlgorithm::SlidingWindow;
  sliding.elapsed_ms = 1234;
  for (int i = 0; i < 64; ++i) {
    auto reply = reader.next();
    if (!reply || *reply == nullptr) {
      break;
    }
    const redisReply* r = reply->get();
    (void)decide(fixed, r);
    (void)decide(sliding, r);
    (void)reply_text(r);
    (void)reply_integer(r);
    (void)error_is(r, "NOSCRIPT");
  }
  return 0;
}
