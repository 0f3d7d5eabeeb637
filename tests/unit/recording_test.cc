// cache/recording.h: a response kept while it streams, bounded by max_object_size.

#include "cache/recording.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cachecar {
namespace {

constexpr std::string_view kHead = "Content-Type: text/plain\r\nETag: \"1\"\r\n";

TEST_CASE("ResponseRecording: begin, add_body, finish") {
  ResponseRecording recording;
  CHECK_FALSE(recording.recording());
  recording.begin(203, std::string(kHead), Duration(60'000), 100);
  CHECK(recording.recording());
  CHECK(recording.ttl() == Duration(60'000));
  CHECK(recording.add_body("hello, "));
  CHECK(recording.add_body(""));
  CHECK(recording.add_body("world"));
  const auto response = recording.finish(1'700'000'000'123);
  REQUIRE(response != nullptr);
  CHECK(response->status == 203);
  CHECK(response->head_lines == kHead);
  CHECK(response->body == "hello, world");
  CHECK(response->stored_at_ms == 1'700'000'000'123);
  CHECK_FALSE(recording.recording());
  // The TTL the response was begun with is kept for the store.
  CHECK(recording.ttl() == Duration(60'000));
}

TEST_CASE("ResponseRecording: an empty body") {
  ResponseRecording recording;
  recording.begin(204, "", Duration(1'000), 0);
  CHECK(recording.add_body(""));
  const auto response = recording.finish(5);
  REQUIRE(response != nullptr);
  CHECK(response->status == 204);
  CHECK(response->head_lines.empty());
  CHECK(response->body.empty());
  CHECK(response->stored_at_ms == 5);
}

TEST_CASE("ResponseRecording: a body over max_bytes is given up") {
  struct Case {
    size_t max_bytes;
    std::vector<std::string> chunks;
    bool kept;
  };
  const Case cases[] = {
      {10, {"0123456789"}, true},          // exactly max_bytes
      {10, {"01234", "56789"}, true},      // in pieces
      {10, {"0123456789", "x"}, false},    // one byte over, in a later chunk
      {10, {"0123456789x"}, false},        // one byte over at once
      {10, {"01234", "567890", "1"}, false},
      {0, {"x"}, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.max_bytes);
    CAPTURE(c.chunks.size());
    ResponseRecording recording;
    recording.begin(200, std::string(kHead), Duration(60'000), c.max_bytes);
    bool all_added = true;
    std::string body;
    for (const std::string& chunk : c.chunks) {
      if (!recording.add_body(chunk)) {
        all_added = false;
        // Nothing is kept from then on: a small chunk after does not revive it.
        CHECK_FALSE(recording.recording());
        CHECK_FALSE(recording.add_body(""));
        CHECK_FALSE(recording.add_body("y"));
        break;
      }
      body += chunk;
    }
    CHECK(all_added == c.kept);
    CHECK(recording.recording() == c.kept);
    const auto response = recording.finish(1);
    if (c.kept) {
      REQUIRE(response != nullptr);
      CHECK(response->body == body);
    } else {
      CHECK(response == nullptr);
    }
  }
}

TEST_CASE("ResponseRecording: cancel") {
  ResponseRecording recording;
  recording.begin(200, std::string(kHead), Duration(60'000), 100);
  CHECK(recording.add_body("abc"));
  recording.cancel();
  CHECK_FALSE(recording.recording());
  CHECK_FALSE(recording.add_body("def"));
  CHECK(recording.finish(1) == nullptr);
  // Cancelling again is harmless.
  recording.cancel();
  CHECK_FALSE(recording.recording());
}

TEST_CASE("ResponseRecording: finish twice, and nothing without begin") {
  ResponseRecording never;
  CHECK_FALSE(never.add_body("x"));
  CHECK(never.finish(1) == nullptr);

  ResponseRecording recording;
  recording.begin(200, std::string(kHead), Duration(60'000), 100);
  CHECK(recording.add_body("abc"));
  const auto first = recording.finish(1);
  REQUIRE(first != nullptr);
  CHECK(recording.finish(2) == nullptr);
  CHECK_FALSE(recording.add_body("more"));
  // The first response is untouched by what came after.
  CHECK(first->body == "abc");
  CHECK(first->stored_at_ms == 1);
}

TEST_CASE("ResponseRecording: begin again starts a fresh response") {
  ResponseRecording recording;
  recording.begin(200, "A: 1\r\n", Duration(1'000), 4);
  CHECK(recording.add_body("abc"));
  recording.begin(404, "B: 2\r\n", Duration(2'000), 10);
  CHECK(recording.ttl() == Duration(2'000));
  CHECK(recording.add_body("xyz"));
  const auto response = recording.finish(9);
  REQUIRE(response != nullptr);
  CHECK(response->status == 404);
  CHECK(response->head_lines == "B: 2\r\n");
  CHECK(response->body == "xyz");

  // After a give-up, begin records again.
  recording.begin(200, "", Duration(1'000), 1);
  CHECK_FALSE(recording.add_body("too long"));
  recording.begin(200, "", Duration(1'000), 10);
  CHECK(recording.add_body("ok"));
  const auto again = recording.finish(10);
  REQUIRE(again != nullptr);
  CHECK(again->body == "ok");
}

}  // namespace
}  // namespace cachecar
