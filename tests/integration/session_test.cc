// Sessions (issue 17): cachecar in front of a real Express app that keeps its sessions with
// express-session and connect-redis (tests/support/express_app, its packages from npm), on a
// real Redis. cachecar must accept exactly the sessions the app does, tell the app the user,
// and keep anonymous requests from the routes that need a login.

#include <doctest/doctest.h>

#include <regex>
#include <string>
#include <thread>

#include "harness.h"
#include "session/session_cookie.h"

namespace cachecar::test {
namespace {

constexpr const char* kSecrets = "current secret,previous secret";

const std::string kAppDir = std::string(CACHECAR_SOURCE_DIR) + "/tests/support/express_app";

// The Express app, on a free port, sharing `redis` with cachecar.
struct ExpressApp {
  explicit ExpressApp(const RedisServer& redis) {
    ChildProcessOptions options;
    options.env = {{"REDIS_URL", redis.url()}, {"SESSION_SECRET", kSecrets}};
    options.working_dir = kAppDir;
    process = std::make_unique<ChildProcess>("node", std::vector<std::string>{"server.js"},
                                             options);
    const auto found = process->wait_for_regex(R"(listening on (\d+))", 10s);
    if (!found) {
      throw std::runtime_error(
          "the Express app did not start (are its packages installed? scripts/test.sh runs npm "
          "ci in tests/support/express_app):\n" +
          process->output());
    }
    port = std::stoi(*found);
  }
  // Requests that reached the app.
  int reached() const {
    const std::string body = http_request(port, "GET", "/stats").body;
    std::smatch match;
    REQUIRE(std::regex_search(body, match, std::regex(R"("reached":(\d+))")));
    return std::stoi(match[1]);
  }

  std::unique_ptr<ChildProcess> process;
  int port = 0;
};

const std::string kDefaultRoutes =
    "  - path: /me\n    key: me\n    ttl: 60s\n    session: required\n"
    "  - path: /feed\n    key: feed\n    ttl: 60s\n    session: optional\n";

struct SessionStack {
  // `routes` is the routes: list's items; `extra` more top-level YAML (a rate_limit block
  // turns limiting on).
  explicit SessionStack(const std::string& routes = kDefaultRoutes, const std::string& extra = "")
      : app(redis),
        cachecar("upstream:\n  url: http://127.0.0.1:" + std::to_string(app.port) +
                     "\nredis:\n  url: " + redis.url() + "\nroutes:\n" + routes + extra,
                 {{"SESSION_SECRET", kSecrets}}) {
    REQUIRE(cachecar.process().wait_for_output(": connected", 5s));
  }

  // Logs `user` in through cachecar; returns the session cookie as the app set it.
  std::string log_in(const std::string& user, const HeaderList& headers = {}) {
    const auto answer = http_request(cachecar.port(), "POST", "/login?user=" + user, headers, "x");
    REQUIRE(answer.status == 200);
    const auto set_cookie = answer.header("Set-Cookie");
    REQUIRE(set_cookie);
    return set_cookie->substr(0, set_cookie->find(';'));  // "connect.sid=s%3A..."
  }

  RedisServer redis;
  ExpressApp app;
  Cachecar cachecar;
};

// The sid inside a cookie "connect.sid=s%3A<sid>.<signature>".
std::string sid_of(const std::string& cookie) {
  const std::string value = cookie.substr(cookie.find("s%3A") + 4);
  return value.substr(0, value.rfind('.'));
}

TEST_CASE("sessions: a logged-in user reaches required routes, named to the app") {
  SessionStack stack;
  const std::string cookie = stack.log_in("alice");
  const auto me = http_request(stack.cachecar.port(), "GET", "/me", {{"Cookie", cookie}});
  CHECK(me.status == 200);
  CHECK(me.body == R"({"header":"alice","user":"alice"})");
  CHECK(me.header("X-Cache") == "BYPASS");  // a signed-in answer is not shared
  // Among other cookies, and on a route where the session is optional.
  const auto feed = http_request(stack.cachecar.port(), "GET", "/feed",
                                 {{"Cookie", "theme=dark; " + cookie + "; lang=en"}});
  CHECK(feed.body == R"({"header":"alice","user":"alice"})");
  // A client's own user header never reaches the app, with or without a session.
  const auto spoofed = http_request(stack.cachecar.port(), "GET", "/feed",
                                    {{"X-Session-User", "mallory"}});
  CHECK(spoofed.body == R"({"header":null,"user":null})");
  const auto spoofed_with_session = http_request(
      stack.cachecar.port(), "GET", "/me", {{"Cookie", cookie}, {"X-Session-User", "mallory"}});
  CHECK(spoofed_with_session.body == R"({"header":"alice","user":"alice"})");
}

TEST_CASE("sessions: no session, a forged or tampered cookie, or a removed secret: 401") {
  SessionStack stack;
  const std::string cookie = stack.log_in("bob");
  const std::string sid = sid_of(cookie);
  const int before = stack.app.reached();
  struct Case {
    std::string name;
    HeaderList headers;
  };
  const std::vector<Case> cases = {
      {"no cookie", {}},
      {"a forged signature", {{"Cookie", cookie.substr(0, cookie.size() - 2) + "xx"}}},
      {"a tampered sid",
       {{"Cookie", "connect.sid=s%3A" + sid + "x" + cookie.substr(cookie.rfind('.'))}}},
      {"signed with a secret no longer listed",
       {{"Cookie", "connect.sid=" + sign_session_cookie(sid, "retired secret")}}},
      {"unsigned", {{"Cookie", "connect.sid=" + sid}}},
      {"a session id nobody issued",
       {{"Cookie", "connect.sid=" + sign_session_cookie("no-such-session", "current secret")}}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const auto answer = http_request(stack.cachecar.port(), "GET", "/me", c.headers);
    CHECK(answer.status == 401);
    CHECK(answer.body == R"({"error":"authentication required"})");
  }
  CHECK(stack.app.reached() == before);  // none of them reached the app
  // A cookie signed with the previous secret, still listed, is accepted (rotation).
  const auto rotated = http_request(
      stack.cachecar.port(), "GET", "/me",
      {{"Cookie", "connect.sid=" + sign_session_cookie(sid, "previous secret")}});
  CHECK(rotated.status == 200);
  CHECK(rotated.body == R"({"header":"bob","user":"bob"})");
  // The optional route lets the anonymous through, unnamed.
  CHECK(http_request(stack.cachecar.port(), "GET", "/feed").body ==
        R"({"header":null,"user":null})");
}

TEST_CASE("sessions: logging out or an expired session ends access at once") {
  SessionStack stack;
  const std::string carol = stack.log_in("carol");
  const std::string dave = stack.log_in("dave");
  CHECK(http_request(stack.cachecar.port(), "GET", "/me", {{"Cookie", carol}}).status == 200);
  CHECK(http_request(stack.cachecar.port(), "POST", "/logout", {{"Cookie", carol}}, "x").status ==
        200);
  CHECK(http_request(stack.cachecar.port(), "GET", "/me", {{"Cookie", carol}}).status == 401);
  // The key's existence is the truth: expired in Redis, gone for cachecar too.
  CHECK(stack.redis.command({"DEL", "sess:" + sid_of(dave)}) == "1");
  CHECK(http_request(stack.cachecar.port(), "GET", "/me", {{"Cookie", dave}}).status == 401);
}

TEST_CASE("sessions: a required route answers 503 while Redis cannot say, never lets through") {
  SessionStack stack;
  const std::string cookie = stack.log_in("erin");
  stack.redis.stop();
  const auto answer = http_request(stack.cachecar.port(), "GET", "/me", {{"Cookie", cookie}});
  CHECK(answer.status == 503);
  CHECK(answer.body == R"({"error":"session store unavailable"})");
}

HttpResponse get(SessionStack& stack, const std::string& target, const std::string& cookie,
                 const std::string& client = "") {
  HeaderList headers;
  if (!cookie.empty()) {
    headers.emplace_back("Cookie", cookie);
  }
  if (!client.empty()) {
    headers.emplace_back("X-Forwarded-For", client);
  }
  return http_request(stack.cachecar.port(), "GET", target, headers);
}

const std::string kPerUserLimit =
    "rate_limit:\n  limit: 3\n  window: 60s\n  key: session_user_or_ip\n"
    "  trusted_proxies: [127.0.0.1/32]\n";

TEST_CASE("sessions: a signed-in user is limited as one client from any address") {
  SessionStack stack(kDefaultRoutes, kPerUserLimit);
  const std::string alice = stack.log_in("alice", {{"X-Forwarded-For", "203.0.113.1"}});
  const std::string bob = stack.log_in("bob", {{"X-Forwarded-For", "203.0.113.2"}});
  // Alice from three addresses: one counter.
  const std::vector<std::string> addresses = {"198.51.100.1", "198.51.100.2", "198.51.100.1"};
  for (size_t i = 0; i < addresses.size(); ++i) {
    CAPTURE(i);
    const auto answer = get(stack, "/feed", alice, addresses[i]);
    CHECK(answer.status == 200);
    CHECK(answer.body == R"({"header":"alice","user":"alice"})");
    CHECK(answer.header("RateLimit-Remaining") == std::to_string(2 - i));
  }
  const auto over = get(stack, "/feed", alice, "198.51.100.3");
  CHECK(over.status == 429);
  CHECK(over.header("Retry-After"));
  // Bob, from an address Alice used, has his own.
  const auto bobs = get(stack, "/me", bob, "198.51.100.1");
  CHECK(bobs.status == 200);
  CHECK(bobs.header("RateLimit-Remaining") == "2");
  // The anonymous are counted by address, apart from the users who came from it.
  for (int i = 0; i < 3; ++i) {
    CHECK(get(stack, "/feed", "", "198.51.100.1").status == 200);
  }
  CHECK(get(stack, "/feed", "", "198.51.100.1").status == 429);
  // A cookie whose session was destroyed is a stranger again: counted by address.
  CHECK(http_request(stack.cachecar.port(), "POST", "/logout",
                     {{"Cookie", bob}, {"X-Forwarded-For", "203.0.113.5"}}, "x")
            .status == 200);
  const auto after_logout = get(stack, "/feed", bob, "203.0.113.6");
  CHECK(after_logout.status == 200);
  CHECK(after_logout.body == R"({"header":null,"user":null})");
  CHECK(after_logout.header("RateLimit-Remaining") == "2");
  // The counters as Redis has them: by user, never by session id.
  CHECK(stack.redis.command({"GET", "rl:global:user:alice"}) == "4");
  CHECK(stack.redis.command({"GET", "rl:global:user:bob"}) == "2");  // /me and /logout
  CHECK(stack.redis.command({"GET", "rl:global:198.51.100.1"}) == "4");
}

TEST_CASE("sessions: rate_limit.key session_user counts signed-in requests only") {
  SessionStack stack(kDefaultRoutes,
                     "rate_limit:\n  limit: 1\n  window: 60s\n  key: session_user\n");
  for (int i = 0; i < 4; ++i) {
    const auto anonymous = get(stack, "/feed", "");
    CHECK(anonymous.status == 200);
    CHECK_FALSE(anonymous.header("RateLimit-Limit"));
  }
  const std::string carol = stack.log_in("carol");
  CHECK(get(stack, "/feed", carol).status == 200);
  CHECK(get(stack, "/feed", carol).status == 429);
}

TEST_CASE("sessions: a limit by user fails closed when Redis cannot name the user") {
  SessionStack stack(kDefaultRoutes,
                     "rate_limit:\n  limit: 100\n  window: 60s\n  key: session_user\n"
                     "  on_redis_error: deny\n");
  const std::string erin = stack.log_in("erin");
  CHECK(get(stack, "/feed", erin).status == 200);
  stack.redis.stop();
  const auto answer = get(stack, "/feed", erin);
  CHECK(answer.status == 503);
  CHECK(answer.body == R"({"error":"rate limiter unavailable"})");
}

TEST_CASE("sessions: shared routes serve signed-in requests from the cache; others bypass it") {
  SessionStack stack(
      "  - path: /catalog\n    key: catalog\n    ttl: 60s\n    shared: true\n"
      "  - path: /visit\n    key: visit\n    ttl: 60s\n    shared: true\n"
      "  - path: /feed\n    key: feed\n    ttl: 60s\n    session: optional\n");
  const std::string alice = stack.log_in("alice");
  const auto first = get(stack, "/catalog", "");
  CHECK(first.header("X-Cache") == "MISS");
  const auto shared = get(stack, "/catalog", alice);
  CHECK(shared.header("X-Cache") == "HIT");
  CHECK(shared.body == first.body);
  // Not shared: the anonymous answer is stored, and never served to a signed-in user.
  CHECK(get(stack, "/feed", "").header("X-Cache") == "MISS");
  CHECK(get(stack, "/feed", "").header("X-Cache") == "HIT");
  const auto own = get(stack, "/feed", alice);
  CHECK(own.header("X-Cache") == "BYPASS");
  CHECK(own.body == R"({"header":"alice","user":"alice"})");
  // An answer that sets the session cookie is never stored, nor given to anyone else.
  const auto visit = get(stack, "/visit", "");
  const auto next_visit = get(stack, "/visit", "");
  REQUIRE(visit.header("Set-Cookie"));
  REQUIRE(next_visit.header("Set-Cookie"));
  CHECK(*visit.header("Set-Cookie") != *next_visit.header("Set-Cookie"));
  CHECK(next_visit.header("X-Cache") == "BYPASS");  // looked up, missed, not stored
  CHECK(get(stack, "/visit", alice).header("X-Cache") == "BYPASS");
  CHECK(stack.redis.command({"EXISTS", "visit"}) == "0");
}

TEST_CASE("sessions: per_user routes keep each user's answer apart; a write clears them all") {
  SessionStack stack(
      "  - path: /mine\n    key: mine\n    ttl: 60s\n    per_user: true\n"
      "    session: optional\n");
  const std::string alice = stack.log_in("alice");
  const std::string bob = stack.log_in("bob");
  const auto alices = get(stack, "/mine", alice);
  CHECK(alices.header("X-Cache") == "MISS");
  CHECK(alices.body.find(R"("user":"alice")") != std::string::npos);
  const auto bobs = get(stack, "/mine", bob);
  CHECK(bobs.header("X-Cache") == "MISS");
  CHECK(bobs.body.find(R"("user":"bob")") != std::string::npos);
  const auto anonymous = get(stack, "/mine", "");
  CHECK(anonymous.header("X-Cache") == "MISS");
  CHECK(anonymous.body.find(R"("user":null)") != std::string::npos);
  for (int i = 0; i < 2; ++i) {
    const auto again_alice = get(stack, "/mine", alice);
    CHECK(again_alice.header("X-Cache") == "HIT");
    CHECK(again_alice.body == alices.body);
    const auto again_bob = get(stack, "/mine", bob);
    CHECK(again_bob.header("X-Cache") == "HIT");
    CHECK(again_bob.body == bobs.body);
    CHECK(get(stack, "/mine", "").body == anonymous.body);
  }
  // Each user's entry is keyed by a digest of the user: no user's name is in a key.
  const std::string keys = stack.redis.command({"KEYS", "*mine*"});
  CHECK(keys.find("alice") == std::string::npos);
  CHECK(keys.find("bob") == std::string::npos);
  CHECK(stack.redis.command(
            {"EVAL", "return #redis.call('KEYS', ARGV[1])", "0", "{mine}#user=*"}) == "2");

  // A write to the route clears every user's entry.
  CHECK(http_request(stack.cachecar.port(), "PUT", "/mine", {{"Cookie", alice}}, "{}").status ==
        200);
  CHECK(get(stack, "/mine", bob).header("X-Cache") == "MISS");
  CHECK(get(stack, "/mine", alice).header("X-Cache") == "MISS");
  CHECK(get(stack, "/mine", "").header("X-Cache") == "MISS");

  // Logged out: the cookie names nobody now, and gets neither Alice's entry nor the
  // anonymous one.
  CHECK(http_request(stack.cachecar.port(), "POST", "/logout", {{"Cookie", alice}}, "x").status ==
        200);
  const auto gone = get(stack, "/mine", alice);
  CHECK(gone.header("X-Cache") == "BYPASS");
  CHECK(gone.body.find(R"("user":null)") != std::string::npos);
}

TEST_CASE("sessions: a user's entry is refreshed in the background as that user") {
  SessionStack stack(
      "  - path: /mine-fresh\n    key: mine-fresh\n    per_user: true\n"
      "    session: optional\n",
      "cache:\n  mode: http\n");
  const std::string frank = stack.log_in("frank");
  const auto first = get(stack, "/mine-fresh", frank);
  CHECK(first.header("X-Cache") == "MISS");
  CHECK(first.body.find(R"("header":"frank")") != std::string::npos);
  std::this_thread::sleep_for(1500ms);  // past max-age=1: stale, and served while revalidating
  CHECK(get(stack, "/mine-fresh", frank).body == first.body);
  std::string refreshed;
  for (int i = 0; i < 100 && refreshed.empty(); ++i) {
    const auto answer = get(stack, "/mine-fresh", frank);
    if (answer.body != first.body) {
      refreshed = answer.body;
    } else {
      std::this_thread::sleep_for(20ms);
    }
  }
  CAPTURE(refreshed);
  CHECK(refreshed.find(R"("header":"frank")") != std::string::npos);
}

TEST_CASE("sessions: a hit renews the session as the app would; logs and metrics name the user") {
  SessionStack stack(
      "  - path: /mine\n    key: mine\n    ttl: 60s\n    per_user: true\n"
      "    session: optional\n");
  const std::string dave = stack.log_in("dave");
  const std::string key = "sess:" + sid_of(dave);
  CHECK(get(stack, "/mine", dave).header("X-Cache") == "MISS");
  // As if the session were near its end: a hit, which the app never sees, renews it by its
  // cookie.originalMaxAge (an hour), as express-session's touch would.
  CHECK(stack.redis.command({"EXPIRE", key, "100"}) == "1");
  CHECK(get(stack, "/mine", dave).header("X-Cache") == "HIT");
  bool renewed = false;
  for (int i = 0; i < 100 && !renewed; ++i) {
    renewed = std::stol(stack.redis.command({"TTL", key})) > 3000;
    if (!renewed) {
      std::this_thread::sleep_for(20ms);
    }
  }
  CHECK(renewed);
  // The access log names the user, never the session id or the cookie.
  const std::string output = stack.cachecar.output();
  CHECK(output.find("\"GET /mine\" 200") != std::string::npos);
  CHECK(output.find("user=dave") != std::string::npos);
  CHECK(output.find(sid_of(dave)) == std::string::npos);
  bool counted = false;
  for (int i = 0; i < 100 && !counted; ++i) {
    const std::string metrics = http_request(stack.cachecar.admin_port(), "GET", "/metrics").body;
    counted =
        metrics.find("cachecar_session_requests_total{session=\"user\"} 2") != std::string::npos &&
        metrics.find("cachecar_session_touches_total 1") != std::string::npos;
    if (!counted) {
      std::this_thread::sleep_for(50ms);
    }
  }
  CHECK(counted);
}

}  // namespace
}  // namespace cachecar::test
