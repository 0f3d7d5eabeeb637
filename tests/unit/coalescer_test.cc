// cache/coalescer.h: one upstream request for concurrent misses of one key.

#include "cache/coalescer.h"

#include <doctest/doctest.h>

#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

namespace cachecar {
namespace {

// Records every callback it gets; `on_abandoned` (optional) runs inside on_flight_abandoned,
// as an exchange that then fetches for itself would.
class Recorder final : public CoalescingFollower {
 public:
  void on_flight_landed(const std::shared_ptr<const CachedResponse>& response) override {
    events.push_back("landed");
    responses.push_back(response);
  }
  void on_flight_abandoned() override {
    events.push_back("abandoned");
    if (on_abandoned) {
      on_abandoned();
    }
  }

  std::vector<std::string> events;
  std::vector<std::shared_ptr<const CachedResponse>> responses;
  std::function<void()> on_abandoned;
};

using Events = std::vector<std::string>;

std::shared_ptr<const CachedResponse> response(std::string body) {
  return std::make_shared<const CachedResponse>(
      CachedResponse{200, "Content-Type: text/plain\r\n", std::move(body), 0});
}

TEST_CASE("Coalescer::follow needs a flight in the air") {
  Coalescer coalescer;
  Recorder follower;
  CHECK_FALSE(coalescer.follow("k", follower));
  CHECK(coalescer.flights() == 0);

  coalescer.lead("k");
  CHECK(coalescer.flights() == 1);
  CHECK(coalescer.follow("k", follower));
  // Another key has no flight.
  Recorder other;
  CHECK_FALSE(coalescer.follow("k2", other));
  CHECK_FALSE(coalescer.follow("", other));
  CHECK_FALSE(coalescer.follow("K", other));
  CHECK(coalescer.flights() == 1);
  // Nobody is called until the flight ends.
  CHECK(follower.events.empty());
  CHECK(other.events.empty());
}

TEST_CASE("Coalescer::land answers every follower with the same response") {
  Coalescer coalescer;
  Recorder a;
  Recorder b;
  Recorder c;
  Recorder elsewhere;
  coalescer.lead("k");
  coalescer.lead("other");
  REQUIRE(coalescer.follow("k", a));
  REQUIRE(coalescer.follow("k", b));
  REQUIRE(coalescer.follow("k", c));
  REQUIRE(coalescer.follow("other", elsewhere));

  const auto landed = response("hello");
  coalescer.land("k", landed);

  for (Recorder* follower : {&a, &b, &c}) {
    CHECK(follower->events == Events{"landed"});
    REQUIRE(follower->responses.size() == 1);
    CHECK(follower->responses[0] == landed);  // shared, not copied
  }
  CHECK(landed->body == "hello");
  // The flight is gone; the other key's is untouched.
  CHECK(coalescer.flights() == 1);
  Recorder late;
  CHECK_FALSE(coalescer.follow("k", late));
  CHECK(elsewhere.events.empty());

  // Landing again, or landing a key with no flight, calls nobody.
  coalescer.land("k", response("again"));
  coalescer.land("never", response("x"));
  CHECK(a.events == Events{"landed"});
  CHECK(late.events.empty());
  CHECK(coalescer.flights() == 1);
}

TEST_CASE("Coalescer::land with no followers ends the flight") {
  Coalescer coalescer;
  coalescer.lead("k");
  coalescer.land("k", response("x"));
  CHECK(coalescer.flights() == 0);
  coalescer.lead("k");
  coalescer.abandon("k");
  CHECK(coalescer.flights() == 0);
}

TEST_CASE("Coalescer::abandon tells every follower to fetch for itself") {
  Coalescer coalescer;
  Recorder a;
  Recorder b;
  coalescer.lead("k");
  REQUIRE(coalescer.follow("k", a));
  REQUIRE(coalescer.follow("k", b));
  coalescer.abandon("k");
  CHECK(a.events == Events{"abandoned"});
  CHECK(b.events == Events{"abandoned"});
  CHECK(a.responses.empty());
  CHECK(coalescer.flights() == 0);
  Recorder late;
  CHECK_FALSE(coalescer.follow("k", late));

  coalescer.abandon("k");
  coalescer.abandon("never");
  CHECK(a.events == Events{"abandoned"});
}

TEST_CASE("Coalescer::leave removes one follower") {
  Coalescer coalescer;
  Recorder a;
  Recorder b;
  Recorder c;
  coalescer.lead("k");
  REQUIRE(coalescer.follow("k", a));
  REQUIRE(coalescer.follow("k", b));
  REQUIRE(coalescer.follow("k", c));
  coalescer.leave("k", b);
  // The flight stays in the air for the others.
  CHECK(coalescer.flights() == 1);
  // Leaving twice, leaving a flight one never followed, or a key with no flight, is harmless.
  coalescer.leave("k", b);
  coalescer.leave("other", a);
  Recorder stranger;
  coalescer.leave("k", stranger);

  const auto landed = response("x");
  coalescer.land("k", landed);
  CHECK(a.events == Events{"landed"});
  CHECK(b.events.empty());
  CHECK(c.events == Events{"landed"});
  CHECK(stranger.events.empty());
  CHECK(coalescer.flights() == 0);
}

TEST_CASE("Coalescer::leave by every follower keeps the leader's flight") {
  Coalescer coalescer;
  Recorder a;
  coalescer.lead("k");
  REQUIRE(coalescer.follow("k", a));
  coalescer.leave("k", a);
  CHECK(coalescer.flights() == 1);
  Recorder b;
  CHECK(coalescer.follow("k", b));
  coalescer.abandon("k");
  CHECK(a.events.empty());
  CHECK(b.events == Events{"abandoned"});
}

TEST_CASE("Coalescer: a follower may start a new flight from on_flight_abandoned") {
  Coalescer coalescer;
  Recorder first;
  Recorder second;
  Recorder third;
  // The first abandoned follower leads a new flight for the key, as an exchange that fetches
  // for itself does; the followers called after it join that new flight.
  first.on_abandoned = [&] { coalescer.lead("k"); };
  bool second_followed = false;
  second.on_abandoned = [&] { second_followed = coalescer.follow("k", second); };
  bool third_followed = false;
  third.on_abandoned = [&] { third_followed = coalescer.follow("k", third); };

  coalescer.lead("k");
  REQUIRE(coalescer.follow("k", first));
  REQUIRE(coalescer.follow("k", second));
  REQUIRE(coalescer.follow("k", third));
  coalescer.abandon("k");

  CHECK(first.events == Events{"abandoned"});
  CHECK(second.events == Events{"abandoned"});
  CHECK(third.events == Events{"abandoned"});
  CHECK(second_followed);
  CHECK(third_followed);
  // The new flight is in the air with the two new followers.
  REQUIRE(coalescer.flights() == 1);

  const auto landed = response("new");
  coalescer.land("k", landed);
  CHECK(first.events == Events{"abandoned"});
  CHECK(second.events == Events{"abandoned", "landed"});
  CHECK(third.events == Events{"abandoned", "landed"});
  REQUIRE(second.responses.size() == 1);
  CHECK(second.responses[0] == landed);
  CHECK(coalescer.flights() == 0);
}

TEST_CASE("Coalescer: a new flight may be abandoned from inside a callback") {
  Coalescer coalescer;
  Recorder a;
  Recorder b;
  Recorder c;
  // `a` leads a new flight that `c` follows, and gives it up at once, while the first abandon
  // still has `b` to call back.
  bool c_followed = false;
  a.on_abandoned = [&] {
    coalescer.lead("k");
    c_followed = coalescer.follow("k", c);
    coalescer.abandon("k");
  };
  coalescer.lead("k");
  REQUIRE(coalescer.follow("k", a));
  REQUIRE(coalescer.follow("k", b));
  coalescer.abandon("k");
  CHECK(c_followed);
  CHECK(a.events == Events{"abandoned"});
  CHECK(b.events == Events{"abandoned"});
  CHECK(c.events == Events{"abandoned"});
  CHECK(coalescer.flights() == 0);
}

TEST_CASE("Coalescer: landing from inside a callback") {
  Coalescer coalescer;
  Recorder a;
  Recorder b;
  // `a` refetches at once and its response lands while the first abandon is still calling
  // followers back.
  const auto landed = response("quick");
  a.on_abandoned = [&] {
    coalescer.lead("k");
    coalescer.land("k", landed);
  };
  coalescer.lead("k");
  REQUIRE(coalescer.follow("k", a));
  REQUIRE(coalescer.follow("k", b));
  coalescer.abandon("k");
  CHECK(a.events == Events{"abandoned"});
  CHECK(b.events == Events{"abandoned"});
  CHECK(coalescer.flights() == 0);
}

TEST_CASE("Coalescer keeps flights of different keys apart") {
  struct Case {
    const char* key;
    bool lands;
  };
  const Case cases[] = {{"a", true}, {"b", false}, {"c", true}, {"a:b", false}, {"", true}};
  Coalescer coalescer;
  std::vector<std::unique_ptr<Recorder>> followers;
  for (const Case& c : cases) {
    coalescer.lead(c.key);
    for (int i = 0; i < 3; ++i) {
      followers.push_back(std::make_unique<Recorder>());
      REQUIRE(coalescer.follow(c.key, *followers.back()));
    }
  }
  CHECK(coalescer.flights() == std::size(cases));
  const auto landed = response("x");
  for (const Case& c : cases) {
    if (c.lands) {
      coalescer.land(c.key, landed);
    } else {
      coalescer.abandon(c.key);
    }
  }
  CHECK(coalescer.flights() == 0);
  for (size_t i = 0; i < followers.size(); ++i) {
    const Case& c = cases[i / 3];
    CAPTURE(c.key);
    CAPTURE(i);
    CHECK(followers[i]->events == Events{c.lands ? "landed" : "abandoned"});
  }
}

}  // namespace
}  // namespace cachecar
