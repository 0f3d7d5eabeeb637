// Sessions (issue 17): cachecar in front of a real Express app that keeps its sessions with
// express-session and connect-redis (tests/support/express_app, its packages from npm), on a
// real Redis. cachecar must accept exactly the sessions the app does, tell the app the user,
// and keep anonymous requests from the routes that need a login.

#include <doctest/doctest.h>

#include <regex>
#include <string>

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

struct SessionStack {
  SessionStack()
      : app(redis),
        cachecar("upstream:\n  url: http://127.0.0.1:" + std::to_string(app.port) +
                     "\nredis:\n  url: " + redis.url() +
                     "\nroutes:\n"
                     "  - path: /me\n    key: me\n    ttl: 60s\n    session: required\n"
                     "  - path: /feed\n    key: feed\n    ttl: 60s\n    session: optional\n",
                 {{"SESSION_SECRET", kSecrets}}) {
    REQUIRE(cachecar.process().wait_for_output(": connected", 5s));
  }

  // Logs `user` in through cachecar; returns the session cookie as the app set it.
  std::string log_in(const std::string& user) {
    const auto answer = http_request(cachecar.port(), "POST", "/login?user=" + user, {}, "x");
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

}  // namespace
}  // namespace cachecar::test
