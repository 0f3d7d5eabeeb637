// http/host.h: which Host fields are refused (400), misdirected (421) or accepted.

#include "http/host.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cachecar {
namespace {

RequestHead head_with(std::vector<std::string_view> hosts, int minor = 1) {
  RequestHead head;
  head.method = "GET";
  head.target = "/";
  head.version.minor = minor;
  for (std::string_view host : hosts) {
    head.headers.add("Host", std::string(host));
  }
  return head;
}

std::string_view verdict_name(HostVerdict verdict) {
  switch (verdict) {
    case HostVerdict::Accepted:
      return "Accepted";
    case HostVerdict::Malformed:
      return "Malformed";
    case HostVerdict::Misdirected:
      return "Misdirected";
  }
  return "?";
}

struct Case {
  std::vector<std::string_view> hosts;  // the request's Host fields
  std::vector<std::string> allowed;     // config `hosts`
  HostVerdict expected;
  int minor = 1;
};

TEST_CASE("check_host: well-formed hosts are accepted when no list is configured") {
  const Case cases[] = {
      {{"shop.example"}, {}, HostVerdict::Accepted},
      {{"shop.example:8080"}, {}, HostVerdict::Accepted},
      {{"127.0.0.1:8080"}, {}, HostVerdict::Accepted},
      {{"[::1]:8080"}, {}, HostVerdict::Accepted},
      {{"[2001:db8::1]"}, {}, HostVerdict::Accepted},
      {{"xn--bcher-kva.example"}, {}, HostVerdict::Accepted},
      // HTTP/1.0 may leave Host out.
      {{}, {}, HostVerdict::Accepted, 0},
  };
  for (const Case& c : cases) {
    CAPTURE(c.hosts.empty() ? std::string_view("(none)") : c.hosts.front());
    CHECK(verdict_name(check_host(head_with(c.hosts, c.minor), c.allowed).verdict) ==
          verdict_name(c.expected));
  }
}

TEST_CASE("check_host: absent, repeated or malformed Host fields are refused") {
  const Case cases[] = {
      // RFC 9112 §3.2: HTTP/1.1 requires exactly one Host.
      {{}, {}, HostVerdict::Malformed},
      {{"shop.example", "evil.example"}, {}, HostVerdict::Malformed},
      {{"shop.example", "shop.example"}, {}, HostVerdict::Malformed},
      // Not a host[:port]: userinfo, paths, spaces, broken ports and brackets.
      {{""}, {}, HostVerdict::Malformed},
      {{"evil.example@shop.example"}, {}, HostVerdict::Malformed},
      {{"shop.example/admin"}, {}, HostVerdict::Malformed},
      {{"shop.example evil"}, {}, HostVerdict::Malformed},
      {{"shop.example:80x"}, {}, HostVerdict::Malformed},
      {{"shop.example:1234567"}, {}, HostVerdict::Malformed},
      {{"shop.example:80:81"}, {}, HostVerdict::Malformed},
      {{":8080"}, {}, HostVerdict::Malformed},
      {{"[::1"}, {}, HostVerdict::Malformed},
      {{"[]"}, {}, HostVerdict::Malformed},
      {{"[::1]x"}, {}, HostVerdict::Malformed},
      {{"[evil.example]"}, {}, HostVerdict::Malformed},
  };
  for (const Case& c : cases) {
    CAPTURE(c.hosts.size());
    CAPTURE(c.hosts.empty() ? std::string_view("(none)") : c.hosts.front());
    const HostCheck result = check_host(head_with(c.hosts, c.minor), c.allowed);
    CHECK(verdict_name(result.verdict) == verdict_name(c.expected));
    CHECK(!result.reason.empty());
  }
}

TEST_CASE("check_host: a configured list admits its names only, ports and case aside") {
  const std::vector<std::string> allowed{"shop.example", "*.cdn.example", "[::1]", "127.0.0.1"};
  const Case cases[] = {
      {{"shop.example"}, allowed, HostVerdict::Accepted},
      {{"SHOP.Example:8080"}, allowed, HostVerdict::Accepted},
      {{"a.cdn.example"}, allowed, HostVerdict::Accepted},
      {{"a.b.cdn.example"}, allowed, HostVerdict::Accepted},
      {{"[::1]:8080"}, allowed, HostVerdict::Accepted},
      {{"127.0.0.1:8080"}, allowed, HostVerdict::Accepted},
      {{"evil.example"}, allowed, HostVerdict::Misdirected},
      // The wildcard needs a label before its dot, and a suffix is not a subdomain.
      {{"cdn.example"}, allowed, HostVerdict::Misdirected},
      {{"evilcdn.example"}, allowed, HostVerdict::Misdirected},
      {{"shop.example.evil"}, allowed, HostVerdict::Misdirected},
      {{"127.0.0.2"}, allowed, HostVerdict::Misdirected},
      // With a list, an HTTP/1.0 request must say which site it wants.
      {{}, allowed, HostVerdict::Misdirected, 0},
      // Malformed stays malformed, listed or not.
      {{"shop.example", "shop.example"}, allowed, HostVerdict::Malformed},
  };
  for (const Case& c : cases) {
    CAPTURE(c.hosts.empty() ? std::string_view("(none)") : c.hosts.front());
    CHECK(verdict_name(check_host(head_with(c.hosts, c.minor), c.allowed).verdict) ==
          verdict_name(c.expected));
  }
}

TEST_CASE("host_without_port and valid_host_pattern") {
  CHECK(host_without_port("Shop.example:8080") == "Shop.example");
  CHECK(host_without_port("shop.example") == "shop.example");
  CHECK(host_without_port("[::1]:8080") == "[::1]");
  CHECK(host_without_port("[::1]") == "[::1]");
  CHECK(valid_host_pattern("shop.example"));
  CHECK(valid_host_pattern("*.shop.example"));
  CHECK(valid_host_pattern("[::1]"));
  CHECK_FALSE(valid_host_pattern(""));
  CHECK_FALSE(valid_host_pattern("*."));
  CHECK_FALSE(valid_host_pattern("shop.example:8080"));
  CHECK_FALSE(valid_host_pattern("Shop.example"));  // the config lowercases before checking
  CHECK_FALSE(valid_host_pattern("shop*.example"));
  CHECK_FALSE(valid_host_pattern("a b"));
}

}  // namespace
}  // namespace cachecar
