// ratelimit/client_identity.h: who a client is, from the socket peer and X-Forwarded-For.

#include "ratelimit/client_identity.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

namespace cachecar {
namespace {

IpAddress ip(std::string_view text) {
  auto address = parse_ip(text);
  REQUIRE_MESSAGE(address.has_value(), "not an address: ", std::string(text));
  return *address;
}

std::vector<Cidr> ranges(const std::vector<std::string_view>& texts) {
  std::vector<Cidr> out;
  for (std::string_view text : texts) {
    std::string reason;
    auto cidr = parse_cidr(text, reason);
    REQUIRE_MESSAGE(cidr.has_value(), reason);
    out.push_back(*cidr);
  }
  return out;
}

// One X-Forwarded-For field per line, among unrelated fields.
Headers forwarded(const std::vector<std::string_view>& lines) {
  Headers headers;
  headers.add("Host", "shop.example");
  for (std::string_view line : lines) {
    headers.add("X-Forwarded-For", std::string(line));
  }
  headers.add("Accept", "*/*");
  return headers;
}

// The load balancers in front of cachecar: an IPv4 network and an IPv6 one.
const std::vector<std::string_view> kTrusted = {"10.0.0.0/8", "2001:db8:ffff::/48"};

struct ResolveCase {
  std::string_view name;
  std::string_view peer;
  std::vector<std::string_view> trusted;
  std::vector<std::string_view> xff;  // X-Forwarded-For lines, in order
  std::string_view expected;
};

void check_resolve(const ResolveCase& c) {
  CAPTURE(c.name);
  CAPTURE(c.peer);
  const IpAddress client = resolve_client(ip(c.peer), forwarded(c.xff), ranges(c.trusted));
  CHECK(client.to_string() == ip(c.expected).to_string());
  CHECK(client == ip(c.expected));
}

TEST_CASE("resolve_client believes X-Forwarded-For only from trusted peers") {
  const ResolveCase cases[] = {
      {"no trusted proxies: the peer", "203.0.113.7", {}, {"198.51.100.1"}, "203.0.113.7"},
      {"no trusted proxies, trusted-looking entry", "203.0.113.7", {}, {"10.0.0.2"}, "203.0.113.7"},
      {"untrusted peer spoofing a client",
       "203.0.113.7",
       kTrusted,
       {"198.51.100.1"},
       "203.0.113.7"},
      {"untrusted peer spoofing a trusted hop",
       "203.0.113.7",
       kTrusted,
       {"198.51.100.1, 10.0.0.2"},
       "203.0.113.7"},
      {"untrusted peer with several lines",
       "203.0.113.7",
       kTrusted,
       {"198.51.100.1", "10.0.0.2"},
       "203.0.113.7"},
      {"untrusted peer with garbage", "203.0.113.7", kTrusted, {"junk"}, "203.0.113.7"},
      {"untrusted peer just outside the range", "11.0.0.1", kTrusted, {"198.51.100.1"}, "11.0.0.1"},
      {"untrusted IPv6 peer just outside the range",
       "2001:db8:fffe:ffff::1",
       kTrusted,
       {"198.51.100.1"},
       "2001:db8:fffe:ffff::1"},
      // An IPv4 range does not trust an IPv6 peer whose first byte is 10.
      {"IPv6 peer with IPv4-range bytes", "a00::1", kTrusted, {"198.51.100.1"}, "a00::1"},
      {"trusted peer without X-Forwarded-For", "10.0.0.1", kTrusted, {}, "10.0.0.1"},
  };
  for (const ResolveCase& c : cases) {
    check_resolve(c);
  }
}

TEST_CASE("resolve_client walks X-Forwarded-For from the right past trusted hops") {
  const ResolveCase cases[] = {
      {"one entry", "10.0.0.1", kTrusted, {"198.51.100.1"}, "198.51.100.1"},
      {"the rightmost untrusted entry",
       "10.0.0.1",
       kTrusted,
       {"203.0.113.9, 198.51.100.1"},
       "198.51.100.1"},
      {"a client-supplied trusted address on the left never wins",
       "10.0.0.1",
       kTrusted,
       {"10.9.9.9, 198.51.100.1"},
       "198.51.100.1"},
      {"a client-supplied chain on the left never wins",
       "10.0.0.1",
       kTrusted,
       {"1.1.1.1, 2.2.2.2, 10.3.3.3, 198.51.100.1, 10.0.0.2"},
       "198.51.100.1"},
      {"one trusted hop skipped", "10.0.0.1", kTrusted, {"198.51.100.1, 10.0.0.2"}, "198.51.100.1"},
      {"several trusted hops skipped",
       "10.0.0.1",
       kTrusted,
       {"198.51.100.1, 10.0.0.4, 10.0.0.3, 10.0.0.2"},
       "198.51.100.1"},
      {"all trusted: the leftmost",
       "10.0.0.1",
       kTrusted,
       {"10.0.0.4, 10.0.0.3, 10.0.0.2"},
       "10.0.0.4"},
      {"a single trusted entry", "10.0.0.1", kTrusted, {"10.0.0.2"}, "10.0.0.2"},
      {"several lines are one list",
       "10.0.0.1",
       kTrusted,
       {"1.1.1.1, 198.51.100.1", "10.0.0.3", "10.0.0.2"},
       "198.51.100.1"},
      {"several lines, client alone on the first",
       "10.0.0.1",
       kTrusted,
       {"198.51.100.1", "10.0.0.2"},
       "198.51.100.1"},
      {"several lines, the last one decides",
       "10.0.0.1",
       kTrusted,
       {"10.0.0.3", "198.51.100.1"},
       "198.51.100.1"},
      {"several lines, all trusted",
       "10.0.0.1",
       kTrusted,
       {"10.0.0.4, 10.0.0.3", "10.0.0.2"},
       "10.0.0.4"},
      {"no spaces", "10.0.0.1", kTrusted, {"1.1.1.1,198.51.100.1,10.0.0.2"}, "198.51.100.1"},
      {"spaces and tabs around entries",
       "10.0.0.1",
       kTrusted,
       {"  1.1.1.1 ,\t198.51.100.1\t,   10.0.0.2  "},
       "198.51.100.1"},
      {"a bare address as trusted range",
       "192.0.2.10",
       {"192.0.2.10"},
       {"198.51.100.1"},
       "198.51.100.1"},
      {"the neighbour of a trusted address is a client",
       "192.0.2.10",
       {"192.0.2.10"},
       {"198.51.100.1, 192.0.2.11"},
       "192.0.2.11"},
      {"several trusted ranges",
       "192.168.0.1",
       {"10.0.0.0/8", "192.168.0.0/16"},
       {"198.51.100.1, 10.0.0.2, 192.168.7.7"},
       "198.51.100.1"},
  };
  for (const ResolveCase& c : cases) {
    check_resolve(c);
  }
}

TEST_CASE("resolve_client stops at an entry it cannot parse") {
  const ResolveCase cases[] = {
      {"garbage rightmost: the peer", "10.0.0.1", kTrusted, {"198.51.100.1, unknown"}, "10.0.0.1"},
      {"garbage only: the peer", "10.0.0.1", kTrusted, {"junk"}, "10.0.0.1"},
      {"garbage after a trusted hop: that hop",
       "10.0.0.1",
       kTrusted,
       {"198.51.100.1, junk, 10.0.0.2"},
       "10.0.0.2"},
      {"garbage after two trusted hops: the leftmost of them",
       "10.0.0.1",
       kTrusted,
       {"198.51.100.1, junk, 10.0.0.3, 10.0.0.2"},
       "10.0.0.3"},
      {"garbage on its own line",
       "10.0.0.1",
       kTrusted,
       {"198.51.100.1", "junk", "10.0.0.2"},
       "10.0.0.2"},
      {"garbage left of the client is never reached",
       "10.0.0.1",
       kTrusted,
       {"junk, 198.51.100.1, 10.0.0.2"},
       "198.51.100.1"},
      {"an entry with a port", "10.0.0.1", kTrusted, {"198.51.100.1:4711"}, "10.0.0.1"},
      {"an entry in brackets", "10.0.0.1", kTrusted, {"[2001:db8:1:2::5]"}, "10.0.0.1"},
      {"an entry in brackets with a port",
       "10.0.0.1",
       kTrusted,
       {"[2001:db8:1:2::5]:4711"},
       "10.0.0.1"},
      {"an obfuscated identifier", "10.0.0.1", kTrusted, {"_hidden, 10.0.0.2"}, "10.0.0.2"},
      {"two addresses without a comma",
       "10.0.0.1",
       kTrusted,
       {"198.51.100.1 198.51.100.2"},
       "10.0.0.1"},
      // Empty entries are unparsable entries too.
      {"an empty field value", "10.0.0.1", kTrusted, {""}, "10.0.0.1"},
      {"a blank field value", "10.0.0.1", kTrusted, {"   "}, "10.0.0.1"},
      {"an empty last line", "10.0.0.1", kTrusted, {"198.51.100.1", ""}, "10.0.0.1"},
      {"an empty entry between trusted hops",
       "10.0.0.1",
       kTrusted,
       {"198.51.100.1, , 10.0.0.2"},
       "10.0.0.2"},
      {"an empty entry left of the client changes nothing",
       "10.0.0.1",
       kTrusted,
       {", 198.51.100.1"},
       "198.51.100.1"},
      {"an empty first line changes nothing",
       "10.0.0.1",
       kTrusted,
       {"", "198.51.100.1"},
       "198.51.100.1"},
  };
  for (const ResolveCase& c : cases) {
    check_resolve(c);
  }
}

TEST_CASE("resolve_client with IPv6 and IPv4-mapped peers and entries") {
  const ResolveCase cases[] = {
      {"IPv6 peer, IPv6 client",
       "2001:db8:ffff::1",
       kTrusted,
       {"2001:db8:1:2::5"},
       "2001:db8:1:2::5"},
      {"IPv6 peer, IPv4 client", "2001:db8:ffff::1", kTrusted, {"198.51.100.1"}, "198.51.100.1"},
      {"IPv4 peer, IPv6 client", "10.0.0.1", kTrusted, {"2001:db8:1:2::5"}, "2001:db8:1:2::5"},
      {"IPv6 trusted hops skipped",
       "2001:db8:ffff::1",
       kTrusted,
       {"2001:db8:1:2::5, 2001:db8:ffff:1::2, 2001:db8:ffff::3"},
       "2001:db8:1:2::5"},
      {"mixed trusted hops skipped",
       "10.0.0.1",
       kTrusted,
       {"2001:db8:1:2::5, 2001:db8:ffff::2, 10.0.0.2"},
       "2001:db8:1:2::5"},
      {"IPv6 entries with spaces and compressed forms",
       "10.0.0.1",
       kTrusted,
       {" 2001:0db8:0001:0002:0000:0000:0000:0005 , 2001:DB8:FFFF::2 "},
       "2001:db8:1:2::5"},
      {"IPv6 entry just outside the trusted range",
       "10.0.0.1",
       kTrusted,
       {"2001:db8:1:2::5, 2001:db8:fffe::2"},
       "2001:db8:fffe::2"},
      {"untrusted IPv6 peer", "2001:db8:1:2::9", kTrusted, {"198.51.100.1"}, "2001:db8:1:2::9"},
      {"IPv4-mapped trusted peer", "::ffff:10.0.0.1", kTrusted, {"198.51.100.1"}, "198.51.100.1"},
      {"IPv4-mapped untrusted peer",
       "::ffff:203.0.113.7",
       kTrusted,
       {"198.51.100.1"},
       "203.0.113.7"},
      {"IPv4-mapped client entry", "10.0.0.1", kTrusted, {"::ffff:198.51.100.1"}, "198.51.100.1"},
      {"IPv4-mapped trusted hop",
       "10.0.0.1",
       kTrusted,
       {"198.51.100.1, ::ffff:10.0.0.3"},
       "198.51.100.1"},
      {"IPv4-mapped trusted peer, trusted hops only",
       "::ffff:10.0.0.1",
       kTrusted,
       {"::ffff:10.0.0.3, 10.0.0.2"},
       "10.0.0.3"},
      {"IPv4-mapped entry, IPv6 range does not trust it",
       "10.0.0.1",
       {"10.0.0.0/8", "::/0"},
       {"2001:db8:1:2::5, ::ffff:198.51.100.1"},
       "198.51.100.1"},
  };
  for (const ResolveCase& c : cases) {
    check_resolve(c);
  }
}

TEST_CASE("resolve_client reads only X-Forwarded-For, in any letter case") {
  struct Case {
    std::string_view name;
    Headers headers;
    std::string_view expected;
  };
  Headers lower;
  lower.add("x-forwarded-for", "198.51.100.1");
  Headers upper;
  upper.add("X-FORWARDED-FOR", "198.51.100.1, 10.0.0.2");
  Headers mixed_lines;
  mixed_lines.add("X-Forwarded-For", "198.51.100.1");
  mixed_lines.add("x-forwarded-for", "10.0.0.2");
  Headers other;
  other.add("Forwarded", "for=198.51.100.1");
  other.add("X-Real-IP", "198.51.100.1");
  other.add("X-Forwarded-Host", "198.51.100.1");
  other.add("X-Client-IP", "198.51.100.1");
  Headers interleaved;
  interleaved.add("X-Forwarded-For", "198.51.100.1");
  interleaved.add("Via", "1.1 lb");
  interleaved.add("X-Forwarded-For", "10.0.0.2");
  const Case cases[] = {
      {"lower case", lower, "198.51.100.1"},
      {"upper case", upper, "198.51.100.1"},
      {"lines in different cases", mixed_lines, "198.51.100.1"},
      {"other forwarding fields are ignored", other, "10.0.0.1"},
      {"lines separated by other fields", interleaved, "198.51.100.1"},
      {"no fields at all", Headers{}, "10.0.0.1"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK(resolve_client(ip("10.0.0.1"), c.headers, ranges(kTrusted)) == ip(c.expected));
  }
}

TEST_CASE("client_bucket: IPv4 exactly, IPv6 by network") {
  struct Case {
    std::string_view client;
    int ipv6_prefix;
    std::string_view expected;
  };
  const Case cases[] = {
      {"192.0.2.1", 64, "192.0.2.1"},
      {"192.0.2.1", 1, "192.0.2.1"},
      {"192.0.2.1", 128, "192.0.2.1"},
      {"0.0.0.0", 64, "0.0.0.0"},
      {"::ffff:192.0.2.1", 64, "192.0.2.1"},
      {"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
      {"2001:db8:1:2::", 64, "2001:db8:1:2::/64"},
      {"2001:db8:1:2::1", 64, "2001:db8:1:2::/64"},
      {"2001:db8:1:2:ffff:ffff:ffff:ffff", 64, "2001:db8:1:2::/64"},
      {"2001:db8:1:3::1", 64, "2001:db8:1:3::/64"},
      {"2001:db8:1:3::1", 63, "2001:db8:1:2::/63"},
      {"2001:db8:1:2ff::1", 56, "2001:db8:1:200::/56"},
      {"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"},
      {"2001:db8:1:2:3:4:5:6", 32, "2001:db8::/32"},
      {"2001:db8:1:2:3:4:5:6", 65, "2001:db8:1:2::/65"},
      {"2001:db8:1:2:8000::1", 65, "2001:db8:1:2:8000::/65"},
      {"2001:db8:1:2:3:4:5:6", 127, "2001:db8:1:2:3:4:5:6/127"},
      {"2001:db8:1:2:3:4:5:7", 127, "2001:db8:1:2:3:4:5:6/127"},
      {"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6/128"},
      {"2001:db8:1:2:3:4:5:6", 1, "::/1"},
      {"8000::1", 1, "8000::/1"},
      {"::1", 64, "::/64"},
      {"::1", 128, "::1/128"},
      {"fe80::1", 64, "fe80::/64"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.client);
    CAPTURE(c.ipv6_prefix);
    CHECK(client_bucket(ip(c.client), c.ipv6_prefix) == c.expected);
  }
}

TEST_CASE("client_bucket: one IPv6 host cannot step around its bucket") {
  struct Case {
    std::string_view a;
    std::string_view b;
    int ipv6_prefix;
    bool same;
  };
  const Case cases[] = {
      {"2001:db8:1:2::1", "2001:db8:1:2::2", 64, true},
      {"2001:db8:1:2::1", "2001:db8:1:2:dead:beef:0:1", 64, true},
      {"2001:db8:1:2::1", "2001:db8:1:3::1", 64, false},
      {"2001:db8:1:2::1", "2001:db8:1:3::1", 48, true},
      {"2001:db8:1:2::1", "2001:db8:2:2::1", 48, false},
      {"2001:db8:1:2::1", "2001:db8:1:2::2", 128, false},
      {"192.0.2.1", "192.0.2.2", 64, false},
      {"192.0.2.1", "::ffff:192.0.2.1", 64, true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.a);
    CAPTURE(c.b);
    CAPTURE(c.ipv6_prefix);
    CHECK((client_bucket(ip(c.a), c.ipv6_prefix) == client_bucket(ip(c.b), c.ipv6_prefix)) ==
          c.same);
  }
}

TEST_CASE("in_any: any of the ranges holds the address") {
  struct Case {
    std::vector<std::string_view> ranges;
    std::string_view address;
    bool expected;
  };
  const Case cases[] = {
      {{}, "10.0.0.1", false},
      {{}, "::1", false},
      {{"10.0.0.0/8"}, "10.0.0.1", true},
      {{"10.0.0.0/8"}, "11.0.0.1", false},
      {{"10.0.0.0/8", "192.168.0.0/16"}, "192.168.1.1", true},
      {{"10.0.0.0/8", "192.168.0.0/16"}, "172.16.0.1", false},
      {{"10.0.0.0/8", "2001:db8::/32"}, "2001:db8::1", true},
      {{"10.0.0.0/8", "2001:db8::/32"}, "2001:db9::1", false},
      {{"0.0.0.0/0"}, "2001:db8::1", false},
      {{"::/0"}, "192.0.2.1", false},
      {{"0.0.0.0/0", "::/0"}, "192.0.2.1", true},
      {{"0.0.0.0/0", "::/0"}, "2001:db8::1", true},
      {{"127.0.0.1", "::1"}, "::ffff:127.0.0.1", true},
      {{"127.0.0.1", "::1"}, "127.0.0.2", false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.address);
    CHECK(in_any(ranges(c.ranges), ip(c.address)) == c.expected);
  }
}

}  // namespace
}  // namespace cachecar
