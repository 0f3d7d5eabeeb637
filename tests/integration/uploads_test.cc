// Uploads as a user makes them: curl PUTs a file, head and body in the same writes, through a
// cachecar with rate limiting on (so every request waits on Redis before it is forwarded).
// A body that arrived before the upstream connection was attached used to be dropped past
// 64 KiB: the upstream got the head alone and the client a 504 (issue 12).

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>

#include "harness.h"

namespace cachecar::test {
namespace {

constexpr const char* kLimitsYaml =
    "rate_limit:\n"
    "  limit: 100000\n"
    "  window: 60s\n"
    "limits:\n"
    "  max_body_bytes: 200MiB\n";
constexpr const char* kRoutes =
    "  - path: /products/{id}\n"
    "    key: product:{id}\n"
    "    ttl: 60s\n";

// A file of `size` bytes of pattern_chunk(), written in pieces; returns its path.
std::string write_pattern_file(const TempDir& dir, size_t size) {
  const std::string path = dir.path() + "/body-" + std::to_string(size);
  std::ofstream out(path, std::ios::binary);
  const size_t piece = 1 << 20;
  for (size_t offset = 0; offset < size; offset += piece) {
    const std::string bytes = pattern_chunk(offset, std::min(piece, size - offset));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  REQUIRE(out.good());
  return path;
}

TEST_CASE("uploads: curl PUTs of 70 KB, 1 MiB and 100 MiB pass through byte-identical") {
  Stack stack(kLimitsYaml, kRoutes);
  stack.upstream.set_discard_bodies(true);
  stack.upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    reply.body = std::to_string(request.body_size) + " " + std::to_string(request.body_checksum);
    return reply;
  });
  TempDir dir;
  const std::string base = "http://127.0.0.1:" + std::to_string(stack.port());
  // A routed path (its 2xx answer waits for the invalidation) and an unrouted one; curl's own
  // Expect: 100-continue (sent above 1 MiB) and none at all.
  for (const size_t size : {size_t{70'000}, size_t{1} << 20, size_t{100} << 20}) {
    const std::string file = write_pattern_file(dir, size);
    const std::string expected = std::to_string(size) + " " + std::to_string(pattern_checksum(size));
    for (const char* path : {"/products/7", "/upload"}) {
      for (const bool expect_header : {true, false}) {
        CAPTURE(size);
        CAPTURE(path);
        CAPTURE(expect_header);
        std::vector<std::string> args = {"-sS", "-m", "60", "-X", "PUT", "--data-binary",
                                          "@" + file, "-w", "\n%{http_code}"};
        if (!expect_header) {
          args.insert(args.end(), {"-H", "Expect:"});
        }
        args.push_back(base + path);
        ChildProcess curl("curl", args);
        const std::optional<int> code = curl.wait_exit(90s);
        REQUIRE(code.has_value());
        CHECK(*code == 0);
        CHECK(curl.output() == expected + "\n200");
        const auto seen = stack.upstream.last_request();
        REQUIRE(seen);
        CHECK(seen->body_size == size);
      }
    }
  }
}

}  // namespace
}  // namespace cachecar::test
