// cache/flight.h: one request's place in a coalescing flight, over a real Coalescer.

#include "cache/flight.h"

#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cachecar {
namespace {

// Records every callback it gets; `then` (optional) runs inside the callback, as a request
// that then joins again or fetches for itself would.
class Recorder final : public Flight::Listener {
 public:
  void on_flight_landed(const std::shared_ptr<const CachedResponse>& response) override {
    events.push_back("landed");
    responses.push_back(response);
    if (then) {
      then();
    }
  }
  void on_flight_abandoned() override {
    events.push_back("abandoned");
    if (then) {
      then();
    }
  }

  std::vector<std::string> events;
  std::vector<std::shared_ptr<const CachedResponse>> responses;
  std::function<void()> then;
};

using Events = std::vector<std::string>;
using Role = Flight::Role;

std::shared_ptr<const CachedResponse> response(std::string body) {
  return std::make_shared<const CachedResponse>(
      CachedResponse{200, "Content-Type: text/plain\r\n", std::move(body), 0});
}

TEST_CASE("Flight::join: the first leads, the next follow") {
  Coalescer coalescer;
  Recorder a_events;
  Recorder b_events;
  Recorder c_events;
  Recorder other_events;
  Flight a(coalescer, a_events);
  Flight b(coalescer, b_events);
  Flight c(coalescer, c_events);
  Flight other(coalescer, other_events);
  CHECK(a.role() == Role::None);
  CHECK_FALSE(a.leading());

  CHECK(a.join("k") == Role::Leader);
  CHECK(a.role() == Role::Leader);
  CHECK(a.leading());
  CHECK(b.join("k") == Role::Follower);
  CHECK(b.role() == Role::Follower);
  CHECK_FALSE(b.leading());
  CHECK(c.join("k") == Role::Follower);
  // Another key has a flight of its own.
  CHECK(other.join("k2") == Role::Leader);
  CHECK(coalescer.flights() == 2);
  // Nobody is called until a flight ends.
  for (const Recorder* events : {&a_events, &b_events, &c_events, &other_events}) {
    CHECK(events->events.empty());
  }
}

TEST_CASE("Flight::land answers the followers") {
  Coalescer coalescer;
  Recorder leader_events;
  Recorder b_events;
  Recorder c_events;
  Flight leader(coalescer, leader_events);
  Flight b(coalescer, b_events);
  Flight c(coalescer, c_events);
  REQUIRE(leader.join("k") == Role::Leader);
  REQUIRE(b.join("k") == Role::Follower);
  REQUIRE(c.join("k") == Role::Follower);

  // A follower cannot land the leader's flight.
  b.land(response("not mine"));
  CHECK(b.role() == Role::Follower);
  CHECK(b_events.events.empty());
  CHECK(coalescer.flights() == 1);

  const auto landed = response("hello");
  leader.land(landed);
  CHECK(leader.role() == Role::None);
  CHECK(b.role() == Role::None);
  CHECK(c.role() == Role::None);
  CHECK(leader_events.events.empty());  // the leader has its own response
  for (const Recorder* events : {&b_events, &c_events}) {
    CHECK(events->events == Events{"landed"});
    REQUIRE(events->responses.size() == 1);
    CHECK(events->responses[0] == landed);  // shared, not copied
  }
  CHECK(coalescer.flights() == 0);

  // Landing or abandoning again calls nobody.
  leader.land(response("again"));
  leader.abandon();
  CHECK(b_events.events == Events{"landed"});
  CHECK(c_events.events == Events{"landed"});
  CHECK(coalescer.flights() == 0);
}

TEST_CASE("Flight::abandon tells the followers to fetch alone") {
  Coalescer coalescer;
  Recorder leader_events;
  Recorder b_events;
  Flight leader(coalescer, leader_events);
  Flight b(coalescer, b_events);
  REQUIRE(leader.join("k") == Role::Leader);
  REQUIRE(b.join("k") == Role::Follower);

  b.abandon();  // a follower's abandon is a no-op
  CHECK(b.role() == Role::Follower);
  CHECK(coalescer.flights() == 1);

  leader.abandon();
  CHECK(leader.role() == Role::None);
  CHECK(b.role() == Role::None);
  CHECK(b_events.events == Events{"abandoned"});
  CHECK(b_events.responses.empty());
  CHECK(leader_events.events.empty());
  CHECK(coalescer.flights() == 0);
}

TEST_CASE("Flight: land and abandon with no part are no-ops") {
  Coalescer coalescer;
  Recorder events;
  Flight flight(coalescer, events);
  flight.land(response("x"));
  flight.abandon();
  CHECK(flight.role() == Role::None);
  CHECK(coalescer.flights() == 0);
  CHECK(events.events.empty());
}

TEST_CASE("Flight: a follower destroyed before landing is not called back") {
  Coalescer coalescer;
  Recorder leader_events;
  Recorder gone_events;
  Recorder stays_events;
  Flight leader(coalescer, leader_events);
  Flight stays(coalescer, stays_events);
  REQUIRE(leader.join("k") == Role::Leader);
  {
    Flight gone(coalescer, gone_events);
    REQUIRE(gone.join("k") == Role::Follower);
  }
  REQUIRE(stays.join("k") == Role::Follower);
  // The follower leaving does not end the leader's flight.
  CHECK(coalescer.flights() == 1);
  CHECK(leader.role() == Role::Leader);

  const auto landed = response("x");
  leader.land(landed);
  CHECK(gone_events.events.empty());
  CHECK(stays_events.events == Events{"landed"});
  CHECK(coalescer.flights() == 0);
}

TEST_CASE("Flight: a leader destroyed without landing abandons") {
  Coalescer coalescer;
  Recorder leader_events;
  Recorder b_events;
  Recorder c_events;
  Flight b(coalescer, b_events);
  Flight c(coalescer, c_events);
  {
    Flight leader(coalescer, leader_events);
    REQUIRE(leader.join("k") == Role::Leader);
    REQUIRE(b.join("k") == Role::Follower);
    REQUIRE(c.join("k") == Role::Follower);
  }
  CHECK(b_events.events == Events{"abandoned"});
  CHECK(c_events.events == Events{"abandoned"});
  CHECK(b.role() == Role::None);
  CHECK(c.role() == Role::None);
  CHECK(leader_events.events.empty());
  CHECK(coalescer.flights() == 0);
  // The key is free: the next request leads.
  Recorder next_events;
  Flight next(coalescer, next_events);
  CHECK(next.join("k") == Role::Leader);
}

TEST_CASE("Flight: destroyed after its flight ended, it does nothing more") {
  Coalescer coalescer;
  Recorder leader_events;
  Recorder follower_events;
  Recorder newcomer_events;
  auto leader = std::make_unique<Flight>(coalescer, leader_events);
  auto follower = std::make_unique<Flight>(coalescer, follower_events);
  REQUIRE(leader->join("k") == Role::Leader);
  REQUIRE(follower->join("k") == Role::Follower);
  leader->land(response("x"));
  REQUIRE(follower_events.events == Events{"landed"});

  // A new flight for the key, led by somebody else.
  Flight newcomer(coalescer, newcomer_events);
  REQUIRE(newcomer.join("k") == Role::Leader);
  leader.reset();
  follower.reset();
  // Neither the old leader nor the old follower touched the new flight.
  CHECK(coalescer.flights() == 1);
  CHECK(newcomer.role() == Role::Leader);
  CHECK(follower_events.events == Events{"landed"});
  CHECK(leader_events.events.empty());
}

TEST_CASE("Flight: a follower joins the same key again from inside its callback") {
  SUBCASE("after a landing") {
    Coalescer coalescer;
    Recorder leader_events;
    Recorder a_events;
    Recorder b_events;
    Flight leader(coalescer, leader_events);
    Flight a(coalescer, a_events);
    Flight b(coalescer, b_events);
    Role a_rejoined = Role::None;
    Role b_rejoined = Role::None;
    // Each joins once more (as a request for the same key arriving again would).
    a_events.then = [&] {
      if (a_events.events.size() == 1) {
        a_rejoined = a.join("k");
      }
    };
    b_events.then = [&] {
      if (b_events.events.size() == 1) {
        b_rejoined = b.join("k");
      }
    };
    REQUIRE(leader.join("k") == Role::Leader);
    REQUIRE(a.join("k") == Role::Follower);
    REQUIRE(b.join("k") == Role::Follower);
    leader.land(response("first"));

    // The first flight was gone when `a` was called: it leads a new one, which `b` follows.
    CHECK(a_rejoined == Role::Leader);
    CHECK(b_rejoined == Role::Follower);
    CHECK(a.role() == Role::Leader);
    CHECK(b.role() == Role::Follower);
    CHECK(coalescer.flights() == 1);

    const auto second = response("second");
    a.land(second);
    CHECK(a_events.events == Events{"landed"});
    CHECK(b_events.events == Events{"landed", "landed"});
    REQUIRE(b_events.responses.size() == 2);
    CHECK(b_events.responses[1] == second);
    CHECK(a.role() == Role::None);
    CHECK(b.role() == Role::None);
    CHECK(coalescer.flights() == 0);
  }
  SUBCASE("after an abandon") {
    Coalescer coalescer;
    Recorder leader_events;
    Recorder a_events;
    Recorder b_events;
    Flight a(coalescer, a_events);
    Flight b(coalescer, b_events);
    Role a_rejoined = Role::None;
    Role b_rejoined = Role::None;
    a_events.then = [&] {
      if (a_events.events.size() == 1) {
        a_rejoined = a.join("k");
      }
    };
    b_events.then = [&] {
      if (b_events.events.size() == 1) {
        b_rejoined = b.join("k");
      }
    };
    {
      Flight leader(coalescer, leader_events);
      REQUIRE(leader.join("k") == Role::Leader);
      REQUIRE(a.join("k") == Role::Follower);
      REQUIRE(b.join("k") == Role::Follower);
    }  // the leader goes away: its flight is abandoned
    CHECK(a_rejoined == Role::Leader);
    CHECK(b_rejoined == Role::Follower);
    CHECK(coalescer.flights() == 1);

    a.abandon();
    CHECK(a_events.events == Events{"abandoned"});
    CHECK(b_events.events == Events{"abandoned", "abandoned"});
    CHECK(b.role() == Role::None);
    CHECK(coalescer.flights() == 0);
  }
}

TEST_CASE("Flight: a rejoined follower destroyed before the new landing leaves it") {
  Coalescer coalescer;
  Recorder leader_events;
  Recorder a_events;
  Recorder b_events;
  Flight leader(coalescer, leader_events);
  Flight a(coalescer, a_events);
  auto b = std::make_unique<Flight>(coalescer, b_events);
  a_events.then = [&] {
    if (a_events.events.size() == 1) {
      a.join("k");
    }
  };
  b_events.then = [&] {
    if (b_events.events.size() == 1) {
      b->join("k");
    }
  };
  REQUIRE(leader.join("k") == Role::Leader);
  REQUIRE(a.join("k") == Role::Follower);
  REQUIRE(b->join("k") == Role::Follower);
  leader.land(response("first"));
  REQUIRE(a.role() == Role::Leader);
  REQUIRE(b->role() == Role::Follower);
  b.reset();
  a.land(response("second"));
  CHECK(b_events.events == Events{"landed"});
  CHECK(coalescer.flights() == 0);
}

}  // namespace
}  // namespace cachecar
