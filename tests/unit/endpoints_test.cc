// net/endpoints.h: listen addresses, the upstream URL and the Redis URL.

#include "net/endpoints.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace cachecar {
namespace {

TEST_CASE("parse_host_port accepts names, IPv4, bracketed IPv6 and an empty host") {
  struct Case {
    std::string_view text;
    std::string_view host;
    uint16_t port;
    std::string_view printed;  // to_string(): what an operator would write again
  };
  const Case cases[] = {
      {"127.0.0.1:8080", "127.0.0.1", 8080, "127.0.0.1:8080"},
      {"0.0.0.0:0", "0.0.0.0", 0, "0.0.0.0:0"},
      {"localhost:8080", "localhost", 8080, "localhost:8080"},
      {"my_host-1.example.com:65535", "my_host-1.example.com", 65535,
       "my_host-1.example.com:65535"},
      {":8080", "", 8080, ":8080"},
      {"[::1]:8080", "::1", 8080, "[::1]:8080"},
      {"[::]:80", "::", 80, "[::]:80"},
      {"[2001:db8::1]:443", "2001:db8::1", 443, "[2001:db8::1]:443"},
      {"host:00080", "host", 80, "host:80"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    const auto parsed = parse_host_port(c.text, reason);
    CAPTURE(reason);
    REQUIRE(parsed.has_value());
    CHECK(parsed->host == c.host);
    CHECK(parsed->port == c.port);
    CHECK(parsed->to_string() == c.printed);
  }
}

TEST_CASE("parse_host_port rejects a missing or bad port, bare IPv6 and bad hosts") {
  struct Case {
    std::string_view text;
    std::string_view reason;
  };
  const Case cases[] = {
      {"", "expected host:port"},
      {"localhost", "missing port"},
      {"[::1]", "missing port"},
      {"localhost:", "port must be a number from 0 to 65535"},
      {"localhost:65536", "port must be a number from 0 to 65535"},
      {"localhost:-1", "port must be a number from 0 to 65535"},
      {"localhost:80x", "port must be a number from 0 to 65535"},
      {"localhost: 80", "port must be a number from 0 to 65535"},
      {"[::1]:", "port must be a number from 0 to 65535"},
      {"::1:8080", "must be written in brackets"},
      {"::1", "must be written in brackets"},
      {"[::1", "unterminated '['"},
      {"[::1]8080", "expected ':' after ']'"},
      {"bad host:80", "invalid host 'bad host'"},
      {"host/x:80", "invalid host 'host/x'"},
      {"user@host:80", "invalid host 'user@host'"},
      {"[fe80::1%eth0]:80", "invalid host 'fe80::1%eth0'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    CHECK_FALSE(parse_host_port(c.text, reason).has_value());
    CAPTURE(reason);
    CHECK(reason.find(c.reason) != std::string::npos);
  }
}

TEST_CASE("parse_upstream_url reads host, port and a trimmed path prefix") {
  struct Case {
    std::string_view text;
    std::string_view host;
    uint16_t port;
    std::string_view prefix;
    std::string_view printed;
  };
  const Case cases[] = {
      {"http://127.0.0.1:3000", "127.0.0.1", 3000, "", "http://127.0.0.1:3000"},
      {"http://api", "api", 80, "", "http://api:80"},
      {"http://api/", "api", 80, "", "http://api:80"},
      {"http://api//", "api", 80, "", "http://api:80"},
      {"http://api:8080/v1", "api", 8080, "/v1", "http://api:8080/v1"},
      {"http://api:8080/v1/", "api", 8080, "/v1", "http://api:8080/v1"},
      {"http://api:8080/v1///", "api", 8080, "/v1", "http://api:8080/v1"},
      {"http://api/a/b", "api", 80, "/a/b", "http://api:80/a/b"},
      {"http://api/a//b/", "api", 80, "/a//b", "http://api:80/a//b"},
      {"http://[::1]:3000/x", "::1", 3000, "/x", "http://[::1]:3000/x"},
      {"http://[::1]", "::1", 80, "", "http://[::1]:80"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    const auto parsed = parse_upstream_url(c.text, reason);
    CAPTURE(reason);
    REQUIRE(parsed.has_value());
    CHECK(parsed->address.host == c.host);
    CHECK(parsed->address.port == c.port);
    CHECK(parsed->path_prefix == c.prefix);
    CHECK(parsed->to_string() == c.printed);
    // The printed form is accepted again and means the same.
    const auto again = parse_upstream_url(parsed->to_string(), reason);
    REQUIRE(again.has_value());
    CHECK(again->address.host == c.host);
    CHECK(again->address.port == c.port);
    CHECK(again->path_prefix == c.prefix);
  }
}

TEST_CASE("parse_upstream_url rejects https, a missing host, a query and credentials") {
  struct Case {
    std::string_view text;
    std::string_view reason;
  };
  const Case cases[] = {
      {"https://api", "https upstreams are not supported yet"},
      {"https://api:443/v1", "https upstreams are not supported yet"},
      {"", "expected http://host[:port][/path]"},
      {"api:3000", "expected http://host[:port][/path]"},
      {"ftp://api", "expected http://host[:port][/path]"},
      {"http:/api", "expected http://host[:port][/path]"},
      {"http://", "missing host"},
      {"http:///v1", "missing host"},
      {"http://:8080", "missing host"},
      {"http://:8080/v1", "missing host"},
      {"http://api/v1?x=1", "cannot carry a query or fragment"},
      {"http://api/?x", "cannot carry a query or fragment"},
      {"http://api/v1#top", "cannot carry a query or fragment"},
      {"http://user:pw@api", "credentials in the upstream URL are not supported"},
      {"http://api:99999", "port must be a number from 0 to 65535"},
      {"http://api:", "port must be a number from 0 to 65535"},
      {"http://::1:80", "must be written in brackets"},
      {"http://a b", "invalid host"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    CHECK_FALSE(parse_upstream_url(c.text, reason).has_value());
    CAPTURE(reason);
    CHECK(reason.find(c.reason) != std::string::npos);
  }
}

TEST_CASE("parse_redis_url reads credentials, escapes, database and default port") {
  struct Case {
    std::string_view text;
    std::string_view host;
    uint16_t port;
    std::string_view username;
    std::string password;  // std::string: may hold NUL
    int database;
  };
  const Case cases[] = {
      {"redis://127.0.0.1:6379", "127.0.0.1", 6379, "", "", 0},
      {"redis://localhost", "localhost", 6379, "", "", 0},
      {"redis://localhost/", "localhost", 6379, "", "", 0},
      {"redis://localhost:6380/3", "localhost", 6380, "", "", 3},
      {"redis://cache/15", "cache", 6379, "", "", 15},
      // user:password, then password alone in both spellings
      {"redis://app:s3cret@cache:7000/2", "cache", 7000, "app", "s3cret", 2},
      {"redis://:s3cret@cache", "cache", 6379, "", "s3cret", 0},
      {"redis://s3cret@cache", "cache", 6379, "", "s3cret", 0},
      {"redis://app:@cache", "cache", 6379, "app", "", 0},
      // percent-escapes decode to any byte; '@' may also appear raw in the password
      {"redis://us%40er:p%3Aa%2Fss%25@cache", "cache", 6379, "us@er", "p:a/ss%", 0},
      {"redis://app:p%41%42%43@cache", "cache", 6379, "app", "pABC", 0},
      {"redis://app:%00%ff@cache", "cache", 6379, "app", std::string("\0\xff", 2), 0},
      {"redis://app:p@ss@cache", "cache", 6379, "app", "p@ss", 0},
      {"redis://app:a:b@cache", "cache", 6379, "app", "a:b", 0},
      // IPv6 in brackets
      {"redis://[::1]", "::1", 6379, "", "", 0},
      {"redis://[::1]:6380/1", "::1", 6380, "", "", 1},
      {"redis://u:p@[::1]:6380/1", "::1", 6380, "u", "p", 1},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    const auto parsed = parse_redis_url(c.text, reason);
    CAPTURE(reason);
    REQUIRE(parsed.has_value());
    CHECK(parsed->address.host == c.host);
    CHECK(parsed->address.port == c.port);
    CHECK(parsed->username == c.username);
    CHECK(parsed->password == c.password);
    CHECK(parsed->database == c.database);
  }
}

TEST_CASE("parse_redis_url rejects other schemes, a missing host, bad escapes and databases") {
  struct Case {
    std::string_view text;
    std::string_view reason;
  };
  const Case cases[] = {
      {"http://cache", "expected redis://[user:password@]host[:port][/db]"},
      {"cache:6379", "expected redis://[user:password@]host[:port][/db]"},
      {"", "expected redis://"},
      {"redis://", "missing host"},
      {"redis://:6379", "missing host"},
      {"redis://u:p@", "missing host"},
      {"redis://cache/x", "database must be a non-negative number"},
      {"redis://cache/-1", "database must be a non-negative number"},
      {"redis://cache/1x", "database must be a non-negative number"},
      {"redis://cache/1/2", "database must be a non-negative number"},
      {"redis://cache/99999999999", "database must be a non-negative number"},
      {"redis://u:%zz@cache", "invalid percent-escape"},
      {"redis://u:%4@cache", "invalid percent-escape"},
      {"redis://u:%@cache", "invalid percent-escape"},
      {"redis://%g0:p@cache", "invalid percent-escape"},
      {"redis://cache:abc", "port must be a number from 0 to 65535"},
      {"redis://cache:70000", "port must be a number from 0 to 65535"},
      {"redis://::1", "must be written in brackets"},
      {"redis://[::1", "unterminated '['"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    CHECK_FALSE(parse_redis_url(c.text, reason).has_value());
    CAPTURE(reason);
    CHECK(reason.find(c.reason) != std::string::npos);
  }
}

TEST_CASE("parse_redis_url: rediss:// is TLS, with everything else read as for redis://") {
  std::string reason;
  const auto tls = parse_redis_url("rediss://app:s3cret@cache.example:6380/2", reason);
  REQUIRE(tls.has_value());
  CHECK(tls->tls);
  CHECK(tls->address.host == "cache.example");
  CHECK(tls->address.port == 6380);
  CHECK(tls->username == "app");
  CHECK(tls->password == "s3cret");
  CHECK(tls->database == 2);
  CHECK(tls->to_redacted_string() == "rediss://app:***@cache.example:6380/2");
  const auto plain = parse_redis_url("redis://cache", reason);
  REQUIRE(plain.has_value());
  CHECK_FALSE(plain->tls);
  CHECK_FALSE(parse_redis_url("redisss://cache", reason).has_value());
}

TEST_CASE("parse_redis_url: redis+sentinel:// names the sentinels, the master and the db") {
  std::string reason;
  const auto url =
      parse_redis_url("redis+sentinel://app:s3cret@s1,s2:26380,[::1]/mymaster/3", reason);
  REQUIRE(url.has_value());
  CHECK(url->uses_sentinel());
  REQUIRE(url->sentinels.size() == 3);
  CHECK(url->sentinels[0].to_string() == "s1:26379");
  CHECK(url->sentinels[1].to_string() == "s2:26380");
  CHECK(url->sentinels[2].to_string() == "[::1]:26379");
  CHECK(url->master_name == "mymaster");
  CHECK(url->database == 3);
  CHECK(url->password == "s3cret");
  CHECK_FALSE(url->tls);
  CHECK(url->to_redacted_string() ==
        "redis+sentinel://app:***@s1:26379,s2:26380,[::1]:26379/mymaster/3");

  const auto tls = parse_redis_url("rediss+sentinel://s1/cache", reason);
  REQUIRE(tls.has_value());
  CHECK(tls->tls);
  CHECK(tls->database == 0);
  CHECK(tls->to_redacted_string() == "rediss+sentinel://s1:26379/cache/0");
  CHECK_FALSE(parse_redis_url("redis://cache", reason)->uses_sentinel());

  const std::pair<std::string_view, std::string_view> refused[] = {
      {"redis+sentinel://s1", "missing the master's name"},
      {"redis+sentinel://s1/", "missing the master's name"},
      {"redis+sentinel://s1,,s2/m", "missing host"},
      {"redis+sentinel://s1/m/x", "database must be a non-negative number"},
      {"redis+clusters://s1", "expected redis://"},
  };
  for (const auto& [text, expected] : refused) {
    CAPTURE(text);
    CHECK_FALSE(parse_redis_url(text, reason).has_value());
    CHECK(reason.find(expected) != std::string::npos);
  }
}

TEST_CASE("parse_redis_url: redis+cluster:// names the seed nodes, database 0 only") {
  std::string reason;
  const auto url = parse_redis_url("redis+cluster://:s3cret@n1:7000,n2,[::1]:7002", reason);
  REQUIRE(url.has_value());
  CHECK(url->uses_cluster());
  CHECK_FALSE(url->uses_sentinel());
  REQUIRE(url->cluster_seeds.size() == 3);
  CHECK(url->cluster_seeds[0].to_string() == "n1:7000");
  CHECK(url->cluster_seeds[1].to_string() == "n2:6379");
  CHECK(url->cluster_seeds[2].to_string() == "[::1]:7002");
  CHECK(url->address.to_string() == "n1:7000");
  CHECK(url->password == "s3cret");
  CHECK(url->to_redacted_string() == "redis+cluster://:***@n1:7000,n2:6379,[::1]:7002");

  const auto tls = parse_redis_url("rediss+cluster://n1:7000/0", reason);
  REQUIRE(tls.has_value());
  CHECK(tls->tls);
  CHECK(tls->uses_cluster());
  CHECK(tls->to_redacted_string() == "rediss+cluster://n1:7000");
  CHECK_FALSE(parse_redis_url("redis://cache", reason)->uses_cluster());

  const std::pair<std::string_view, std::string_view> refused[] = {
      {"redis+cluster://n1/2", "database 0 only"},
      {"redis+cluster://n1,,n2", "missing host"},
      {"redis+cluster://", "missing host"},
  };
  for (const auto& [text, expected] : refused) {
    CAPTURE(text);
    CHECK_FALSE(parse_redis_url(text, reason).has_value());
    CHECK(reason.find(expected) != std::string::npos);
  }
}

TEST_CASE("RedisUrl::to_redacted_string masks the password") {
  struct Case {
    std::string_view text;
    std::string_view redacted;
  };
  const Case cases[] = {
      {"redis://cache", "redis://cache:6379/0"},
      {"redis://cache:7000/3", "redis://cache:7000/3"},
      {"redis://app:s3cret@cache:7000/2", "redis://app:***@cache:7000/2"},
      {"redis://:s3cret@cache", "redis://:***@cache:6379/0"},
      {"redis://s3cret@cache", "redis://:***@cache:6379/0"},
      {"redis://[::1]:7000", "redis://[::1]:7000/0"},
      {"redis://app:hunter2@[::1]", "redis://app:***@[::1]:6379/0"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    const auto parsed = parse_redis_url(c.text, reason);
    REQUIRE(parsed.has_value());
    CHECK(parsed->to_redacted_string() == c.redacted);
  }
}

TEST_CASE("RedisUrl::to_redacted_string never contains the password") {
  // Passwords chosen so that they cannot occur by accident in the rest of the URL.
  const std::string_view urls[] = {
      "redis://app:Pa55w0rd@cache:7000/2",
      "redis://:Pa55w0rd@cache",
      "redis://Pa55w0rd@cache",
      "redis://app:Pa%40ss%3Aw0rd@cache",
      "redis://app:Pa55w0rd@[::1]:6380/1",
      "redis://app:%2A%2A%2APa55@cache",
  };
  for (std::string_view url : urls) {
    CAPTURE(url);
    std::string reason;
    const auto parsed = parse_redis_url(url, reason);
    REQUIRE(parsed.has_value());
    REQUIRE(!parsed->password.empty());
    const std::string redacted = parsed->to_redacted_string();
    CAPTURE(redacted);
    CHECK(redacted.find(parsed->password) == std::string::npos);
    CHECK(redacted.find("Pa55") == std::string::npos);
    CHECK(redacted.find("Pa%40") == std::string::npos);
    CHECK(redacted.find("***@") != std::string::npos);
  }
}

TEST_CASE("RedisUrl::to_redacted_string parses back to the same address, user and database") {
  // render_config prints this form, and --check-config output must load again.
  const std::string_view urls[] = {
      "redis://cache",         "redis://cache:7000/3", "redis://app:s3cret@cache:7000/2",
      "redis://:s3cret@cache", "redis://[::1]:6380/1",
  };
  for (std::string_view url : urls) {
    CAPTURE(url);
    std::string reason;
    const auto original = parse_redis_url(url, reason);
    REQUIRE(original.has_value());
    const auto again = parse_redis_url(original->to_redacted_string(), reason);
    CAPTURE(reason);
    REQUIRE(again.has_value());
    CHECK(again->address.host == original->address.host);
    CHECK(again->address.port == original->address.port);
    CHECK(again->username == original->username);
    CHECK(again->database == original->database);
    CHECK(again->password == (original->password.empty() ? "" : "***"));
  }
}

TEST_CASE("RedisUrl::to_redacted_string keeps a user without a password a user") {
  // redis://app:@cache is a user with no password (no AUTH). Printed as redis://app@cache it
  // reads back as the password-only form: the user name becomes a password.
  std::string reason;
  const auto original = parse_redis_url("redis://app:@cache", reason);
  REQUIRE(original.has_value());
  REQUIRE(original->username == "app");
  REQUIRE(original->password.empty());
  const std::string redacted = original->to_redacted_string();
  CAPTURE(redacted);
  const auto again = parse_redis_url(redacted, reason);
  REQUIRE(again.has_value());
  CHECK(again->username == "app");
  CHECK(again->password.empty());
}

}  // namespace
}  // namespace cachecar
