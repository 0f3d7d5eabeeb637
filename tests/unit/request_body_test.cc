// router/request_body.h: a request body held until an upstream takes it, and kept for a replay.

#include "router/request_body.h"

#include <doctest/doctest.h>

#include <string>

namespace cachecar {
namespace {

constexpr size_t kHold = RequestBodyBuffer::kHoldLimit;
constexpr size_t kReplay = RequestBodyBuffer::kReplayLimit;

TEST_CASE("RequestBodyBuffer::hold keeps bytes in order until take_held") {
  RequestBodyBuffer buffer;
  CHECK_FALSE(buffer.holding());
  CHECK(buffer.take_held().empty());
  CHECK_FALSE(buffer.hold("abc"));
  CHECK(buffer.holding());
  CHECK_FALSE(buffer.hold(""));
  CHECK_FALSE(buffer.hold("def"));
  CHECK(buffer.take_held() == "abcdef");
  CHECK_FALSE(buffer.holding());
  CHECK(buffer.take_held().empty());
  CHECK_FALSE(buffer.hold("g"));
  CHECK(buffer.take_held() == "g");
}

TEST_CASE("RequestBodyBuffer::hold says once when the held bytes pass kHoldLimit") {
  SUBCASE("in small pieces") {
    RequestBodyBuffer buffer;
    CHECK_FALSE(buffer.hold(std::string(kHold - 1, 'a')));
    CHECK_FALSE(buffer.hold("b"));  // exactly the limit: not past it
    CHECK(buffer.hold("c"));        // one past
    CHECK_FALSE(buffer.hold("d"));  // told already
    CHECK_FALSE(buffer.hold(std::string(kHold, 'e')));
    const std::string held = buffer.take_held();
    CHECK(held.size() == 2 * kHold + 2);
    CHECK(held.substr(kHold - 1, 4) == "bcde");
  }
  SUBCASE("at once") {
    RequestBodyBuffer buffer;
    CHECK(buffer.hold(std::string(kHold + 1, 'a')));
    CHECK_FALSE(buffer.hold("b"));
  }
  SUBCASE("take_held starts over") {
    RequestBodyBuffer buffer;
    CHECK(buffer.hold(std::string(kHold + 10, 'a')));
    CHECK(buffer.take_held().size() == kHold + 10);
    CHECK_FALSE(buffer.hold(std::string(kHold, 'b')));
    CHECK(buffer.hold("c"));
    CHECK(buffer.take_held() == std::string(kHold, 'b') + "c");
  }
}

TEST_CASE("RequestBodyBuffer::sent keeps a replay up to kReplayLimit") {
  RequestBodyBuffer buffer;
  CHECK(buffer.replayable());
  CHECK(buffer.replay().empty());
  buffer.sent("head");
  buffer.sent("");
  buffer.sent("body");
  CHECK(buffer.replayable());
  CHECK(buffer.replay() == "headbody");
  buffer.sent(std::string(kReplay - 8, 'x'));  // exactly the limit
  CHECK(buffer.replayable());
  CHECK(buffer.replay().size() == kReplay);
  CHECK(buffer.replay().substr(0, 9) == "headbodyx");
}

TEST_CASE("RequestBodyBuffer::sent beyond kReplayLimit gives the replay up") {
  SUBCASE("one byte over") {
    RequestBodyBuffer buffer;
    buffer.sent(std::string(kReplay, 'x'));
    REQUIRE(buffer.replayable());
    buffer.sent("y");
    CHECK_FALSE(buffer.replayable());
    CHECK(buffer.replay().empty());
    // Smaller sends after do not make it replayable again.
    buffer.sent("z");
    CHECK_FALSE(buffer.replayable());
    CHECK(buffer.replay().empty());
  }
  SUBCASE("at once") {
    RequestBodyBuffer buffer;
    buffer.sent(std::string(kReplay + 1, 'x'));
    CHECK_FALSE(buffer.replayable());
    CHECK(buffer.replay().empty());
  }
}

TEST_CASE("RequestBodyBuffer::stop_replay") {
  RequestBodyBuffer buffer;
  buffer.sent("GET / HTTP/1.1\r\n\r\n");
  buffer.stop_replay();
  CHECK_FALSE(buffer.replayable());
  CHECK(buffer.replay().empty());
  buffer.sent("more");
  CHECK_FALSE(buffer.replayable());
  CHECK(buffer.replay().empty());
  buffer.stop_replay();
  CHECK_FALSE(buffer.replayable());
}

TEST_CASE("RequestBodyBuffer: held bytes and the replay are apart") {
  RequestBodyBuffer buffer;
  CHECK_FALSE(buffer.hold("early"));
  buffer.sent("head");
  CHECK(buffer.replay() == "head");
  const std::string held = buffer.take_held();
  CHECK(held == "early");
  buffer.sent(held);
  CHECK(buffer.replay() == "headearly");
  buffer.stop_replay();
  CHECK_FALSE(buffer.hold("late"));
  CHECK(buffer.take_held() == "late");
}

}  // namespace
}  // namespace cachecar
