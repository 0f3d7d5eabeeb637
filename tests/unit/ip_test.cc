// net/ip.h: IP addresses and CIDR ranges as values.

#include "net/ip.h"

#include <doctest/doctest.h>

#include <bitset>
#include <optional>
#include <string>
#include <string_view>

namespace cachecar {
namespace {

using namespace std::string_view_literals;

IpAddress ip(std::string_view text) {
  auto address = parse_ip(text);
  REQUIRE_MESSAGE(address.has_value(), "not an address: ", std::string(text));
  return *address;
}

// How many bits of the address are set.
size_t set_bits(const IpAddress& address) {
  size_t count = 0;
  for (size_t i = 0; i < address.size(); ++i) {
    count += std::bitset<8>(address.bytes[i]).count();
  }
  return count;
}

TEST_CASE("parse_ip reads IPv4 and IPv6 text") {
  struct Case {
    std::string_view text;
    bool v6;
    std::string_view expected;  // to_string of the result
  };
  const Case cases[] = {
      {"192.0.2.1", false, "192.0.2.1"},
      {"0.0.0.0", false, "0.0.0.0"},
      {"255.255.255.255", false, "255.255.255.255"},
      {"10.0.0.1", false, "10.0.0.1"},
      // Surrounding spaces and tabs are ignored.
      {" 192.0.2.1", false, "192.0.2.1"},
      {"192.0.2.1 ", false, "192.0.2.1"},
      {"  \t192.0.2.1\t  ", false, "192.0.2.1"},
      {" 2001:db8::1 ", true, "2001:db8::1"},
      // IPv6, full and compressed.
      {"2001:db8::1", true, "2001:db8::1"},
      {"2001:0db8:0000:0000:0000:0000:0000:0001", true, "2001:db8::1"},
      {"2001:db8:0:0:1:0:0:1", true, "2001:db8::1:0:0:1"},
      {"2001:DB8::ABCD", true, "2001:db8::abcd"},
      {"::", true, "::"},
      {"::1", true, "::1"},
      {"1::", true, "1::"},
      {"fe80::1:2:3:4", true, "fe80::1:2:3:4"},
      {"2001:db8:1:2:3:4:5:6", true, "2001:db8:1:2:3:4:5:6"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
      // The longest textual form there is (45 characters).
      {"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", true,
       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
      {"64:ff9b::c000:201", true, "64:ff9b::c000:201"},
      // IPv4-mapped IPv6 is the IPv4 address it carries, in any spelling.
      {"::ffff:192.0.2.1", false, "192.0.2.1"},
      {"::FFFF:192.0.2.1", false, "192.0.2.1"},
      {"::ffff:c000:201", false, "192.0.2.1"},
      {"0:0:0:0:0:ffff:c000:0201", false, "192.0.2.1"},
      {"0000:0000:0000:0000:0000:ffff:10.0.0.1", false, "10.0.0.1"},
      {"::ffff:0.0.0.0", false, "0.0.0.0"},
      {" ::ffff:10.1.2.3 ", false, "10.1.2.3"},
      // Only exactly ::ffff:0:0/96 is mapped.
      {"::fffe:c000:201", true, "::fffe:c000:201"},
      {"1::ffff:c000:201", true, "1::ffff:c000:201"},
      {"::ffff:0:c000:201", true, "::ffff:0:c000:201"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    const auto address = parse_ip(c.text);
    REQUIRE(address.has_value());
    CHECK(address->v6 == c.v6);
    CHECK(address->size() == (c.v6 ? 16u : 4u));
    CHECK(address->to_string() == c.expected);
    // What to_string prints reads back as the same address.
    CHECK(parse_ip(address->to_string()) == address);
  }
}

TEST_CASE("parse_ip fills the bytes in network order") {
  const IpAddress v4 = ip("192.0.2.1");
  CHECK_FALSE(v4.v6);
  CHECK(v4.bytes == std::array<uint8_t, 16>{192, 0, 2, 1});
  const IpAddress v6 = ip("2001:db8::102:304");
  CHECK(v6.v6);
  CHECK(v6.bytes ==
        std::array<uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4});
  // The mapped form leaves nothing behind in the unused bytes, so it equals the plain form.
  const IpAddress mapped = ip("::ffff:192.0.2.1");
  CHECK(mapped.bytes == std::array<uint8_t, 16>{192, 0, 2, 1});
  CHECK(mapped == v4);
}

TEST_CASE("parse_ip rejects what is not a bare address") {
  const std::string too_long(1000, '1');
  const std::string_view cases[] = {
      "",
      " ",
      "\t \t",
      // ports and brackets
      "192.0.2.1:80",
      "192.0.2.1:",
      "[2001:db8::1]",
      "[2001:db8::1]:443",
      "[::1]",
      "[192.0.2.1]",
      // zones, prefixes, names
      "fe80::1%eth0",
      "192.0.2.1/32",
      "2001:db8::/32",
      "localhost",
      "example.com",
      "unknown",
      "_hidden",
      // malformed IPv4
      "192.0.2",
      "192.0.2.",
      ".192.0.2.1",
      "192.0.2.1.",
      "192.0.2.1.5",
      "192.0.2.256",
      "256.0.0.0",
      "-1.0.0.0",
      "192..2.1",
      "192.0.2.1a",
      "0x7f.0.0.1",
      // malformed IPv6
      ":",
      ":::",
      "2001:db8::1::2",
      "2001:db8:::1",
      "12345::",
      "2001:db8::g",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "::ffff:192.0.2.256",
      "::ffff:192.0.2",
      // spaces inside, other whitespace, several addresses
      "192.0.2.1 x",
      "192. 0.2.1",
      "2001:db8:: 1",
      "192.0.2.1, 192.0.2.2",
      "\n192.0.2.1",
      too_long,
  };
  for (std::string_view text : cases) {
    CAPTURE(text);
    CHECK_FALSE(parse_ip(text).has_value());
  }
}

TEST_CASE("parse_ip reads the whole text: a NUL byte does not end it") {
  // The text is a string_view, so bytes after a NUL are part of it: "192.0.2.1\0garbage" is
  // garbage. (A YAML "\0" escape in rate_limit.allow or trusted_proxies reaches parse_cidr.)
  struct Case {
    std::string_view text;
    std::string_view shown;
  };
  const Case cases[] = {
      {"192.0.2.1\0"sv, "192.0.2.1\\0"},
      {"192.0.2.1\0garbage"sv, "192.0.2.1\\0garbage"},
      {"::1\0:2"sv, "::1\\0:2"},
      {"\0"sv, "\\0"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.shown);
    CHECK_FALSE(parse_ip(c.text).has_value());
    std::string reason;
    CHECK_FALSE(parse_cidr(c.text, reason).has_value());
  }
}

TEST_CASE("to_string of constructed addresses") {
  struct Case {
    IpAddress address;
    std::string_view expected;
  };
  const Case cases[] = {
      {IpAddress{}, "0.0.0.0"},
      {IpAddress{false, {127, 0, 0, 1}}, "127.0.0.1"},
      {IpAddress{false, {255, 255, 255, 255}}, "255.255.255.255"},
      {IpAddress{true, {}}, "::"},
      {IpAddress{true, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}, "::1"},
      {IpAddress{true, {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2}}, "2001:db8:1:2::"},
      {IpAddress{true, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1}},
       "2001:db8::1:0:0:1"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.expected);
    CHECK(c.address.to_string() == c.expected);
  }
}

TEST_CASE("mask clears every bit after the prefix, at every boundary") {
  struct Case {
    std::string_view address;
    int prefix;
    std::string_view expected;
  };
  const Case cases[] = {
      {"255.255.255.255", 0, "0.0.0.0"},
      {"255.255.255.255", 1, "128.0.0.0"},
      {"255.255.255.255", 7, "254.0.0.0"},
      {"255.255.255.255", 8, "255.0.0.0"},
      {"255.255.255.255", 9, "255.128.0.0"},
      {"255.255.255.255", 15, "255.254.0.0"},
      {"255.255.255.255", 16, "255.255.0.0"},
      {"255.255.255.255", 17, "255.255.128.0"},
      {"255.255.255.255", 23, "255.255.254.0"},
      {"255.255.255.255", 24, "255.255.255.0"},
      {"255.255.255.255", 25, "255.255.255.128"},
      {"255.255.255.255", 31, "255.255.255.254"},
      {"255.255.255.255", 32, "255.255.255.255"},
      {"192.0.2.77", 24, "192.0.2.0"},
      {"192.0.2.77", 26, "192.0.2.64"},
      {"192.0.2.77", 30, "192.0.2.76"},
      {"172.31.255.255", 12, "172.16.0.0"},
      {"10.20.30.40", 0, "0.0.0.0"},
      {"10.20.30.40", 32, "10.20.30.40"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0, "::"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1, "8000::"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 15, "fffe::"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 16, "ffff::"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 17, "ffff:8000::"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 32, "ffff:ffff::"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 33, "ffff:ffff:8000::"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 48, "ffff:ffff:ffff::"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 56, "ffff:ffff:ffff:ff00::"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 63, "ffff:ffff:ffff:fffe::"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 64, "ffff:ffff:ffff:ffff::"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65, "ffff:ffff:ffff:ffff:8000::"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 96, "ffff:ffff:ffff:ffff:ffff:ffff::"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 127, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
      {"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::"},
      {"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::"},
      {"2001:db8:1:2:3:4:5:6", 32, "2001:db8::"},
      {"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6"},
      // Out of range: below 0 clears everything, beyond the width clears nothing.
      {"10.20.30.40", -1, "0.0.0.0"},
      {"10.20.30.40", 33, "10.20.30.40"},
      {"10.20.30.40", 128, "10.20.30.40"},
      {"2001:db8::1", -5, "::"},
      {"2001:db8::1", 129, "2001:db8::1"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.address);
    CAPTURE(c.prefix);
    const IpAddress address = ip(c.address);
    const IpAddress masked = mask(address, c.prefix);
    CHECK(masked.v6 == address.v6);
    CHECK(masked.to_string() == c.expected);
    CHECK(mask(masked, c.prefix) == masked);  // idempotent
  }
}

TEST_CASE("mask of an all-ones address keeps exactly prefix bits, for every prefix") {
  struct Case {
    std::string_view address;
    int width;
  };
  const Case cases[] = {
      {"255.255.255.255", 32},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128},
  };
  for (const Case& c : cases) {
    const IpAddress ones = ip(c.address);
    for (int prefix = 0; prefix <= c.width; ++prefix) {
      CAPTURE(c.address);
      CAPTURE(prefix);
      const IpAddress masked = mask(ones, prefix);
      CHECK(set_bits(masked) == static_cast<size_t>(prefix));
      // The kept bits are the leading ones.
      for (int bit = 0; bit < c.width; ++bit) {
        const bool set = (masked.bytes[static_cast<size_t>(bit / 8)] & (0x80 >> (bit % 8))) != 0;
        CHECK(set == (bit < prefix));
      }
      // Bytes beyond an IPv4 address stay untouched (zero).
      for (size_t i = masked.size(); i < masked.bytes.size(); ++i) {
        CHECK(masked.bytes[i] == 0);
      }
    }
  }
}

TEST_CASE("parse_cidr reads ranges and bare addresses, clearing host bits") {
  struct Case {
    std::string_view text;
    std::string_view expected;  // Cidr::to_string
    bool v6;
    int prefix;
  };
  const Case cases[] = {
      {"10.0.0.0/8", "10.0.0.0/8", false, 8},
      {"10.1.2.3/8", "10.0.0.0/8", false, 8},
      {"172.16.5.4/12", "172.16.0.0/12", false, 12},
      {"192.168.1.77/24", "192.168.1.0/24", false, 24},
      {"192.0.2.77/31", "192.0.2.76/31", false, 31},
      {"192.0.2.1/32", "192.0.2.1/32", false, 32},
      {"0.0.0.0/0", "0.0.0.0/0", false, 0},
      {"203.0.113.77/0", "0.0.0.0/0", false, 0},
      // A bare address is a single host.
      {"192.0.2.1", "192.0.2.1/32", false, 32},
      {"0.0.0.0", "0.0.0.0/32", false, 32},
      {" 10.0.0.0/8 ", "10.0.0.0/8", false, 8},
      {"\t192.0.2.1\t", "192.0.2.1/32", false, 32},
      {"2001:db8::/32", "2001:db8::/32", true, 32},
      {"2001:db8:abcd:12::1/48", "2001:db8:abcd::/48", true, 48},
      {"2001:db8:1:2:3:4:5:6/64", "2001:db8:1:2::/64", true, 64},
      {"2001:db8:1:2:3:4:5:6/127", "2001:db8:1:2:3:4:5:6/127", true, 127},
      {"2001:db8:1:2:3:4:5:7/127", "2001:db8:1:2:3:4:5:6/127", true, 127},
      {"fe80::1/10", "fe80::/10", true, 10},
      {"ffff::/1", "8000::/1", true, 1},
      {"::/0", "::/0", true, 0},
      {"2001:db8::1/0", "::/0", true, 0},
      {"::1", "::1/128", true, 128},
      {"2001:db8::1", "2001:db8::1/128", true, 128},
      {"2001:db8::1/128", "2001:db8::1/128", true, 128},
      {" 2001:db8::/32 ", "2001:db8::/32", true, 32},
      // IPv4-mapped is IPv4.
      {"::ffff:10.0.0.1", "10.0.0.1/32", false, 32},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    const auto cidr = parse_cidr(c.text, reason);
    REQUIRE_MESSAGE(cidr.has_value(), reason);
    CHECK(cidr->to_string() == c.expected);
    CHECK(cidr->network.v6 == c.v6);
    CHECK(cidr->prefix == c.prefix);
    CHECK(mask(cidr->network, cidr->prefix) == cidr->network);
    // The rendered form reads back as the same range.
    std::string again_reason;
    const auto again = parse_cidr(cidr->to_string(), again_reason);
    REQUIRE_MESSAGE(again.has_value(), again_reason);
    CHECK(again->network == cidr->network);
    CHECK(again->prefix == cidr->prefix);
  }
}

TEST_CASE("parse_cidr says why it rejects") {
  struct Case {
    std::string_view text;
    std::string_view reason;  // a substring of the expected reason
  };
  const Case cases[] = {
      {"10.0.0.0/33", "prefix length must be 0 to 32"},
      {"10.0.0.0/-1", "prefix length must be 0 to 32"},
      {"10.0.0.0/", "prefix length must be 0 to 32"},
      {"10.0.0.0/x", "prefix length must be 0 to 32"},
      {"10.0.0.0/8x", "prefix length must be 0 to 32"},
      {"10.0.0.0/8/8", "prefix length must be 0 to 32"},
      {"10.0.0.0/ 8", "prefix length must be 0 to 32"},
      {"10.0.0.0/+8", "prefix length must be 0 to 32"},
      {"10.0.0.0/8.5", "prefix length must be 0 to 32"},
      {"10.0.0.0/99999999999999999999", "prefix length must be 0 to 32"},
      {"10.0.0.0/128", "prefix length must be 0 to 32"},
      {"2001:db8::/129", "prefix length must be 0 to 128"},
      {"2001:db8::/-1", "prefix length must be 0 to 128"},
      {"2001:db8::/", "prefix length must be 0 to 128"},
      {"2001:db8::/1000", "prefix length must be 0 to 128"},
      {"", "'' is not an IP address or CIDR range"},
      {"   ", "is not an IP address or CIDR range"},
      {"/8", "'/8' is not an IP address or CIDR range"},
      {"10.0.0/8", "'10.0.0/8' is not an IP address or CIDR range"},
      {"10.0.0.256/8", "is not an IP address or CIDR range"},
      {"example.com/8", "'example.com/8' is not an IP address or CIDR range"},
      {"10.0.0.0:80/8", "is not an IP address or CIDR range"},
      {"[2001:db8::]/32", "is not an IP address or CIDR range"},
      {"10.0.0.0-10.0.0.255", "is not an IP address or CIDR range"},
      {"10.0.0.0 8", "is not an IP address or CIDR range"},
      {"10.0.0.0\\8", "is not an IP address or CIDR range"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    const auto cidr = parse_cidr(c.text, reason);
    CHECK_FALSE(cidr.has_value());
    CAPTURE(reason);
    CHECK(reason.find(c.reason) != std::string::npos);
  }
}

TEST_CASE("Cidr::contains holds the edges of a range and never mixes families") {
  struct Case {
    std::string_view range;
    std::string_view address;
    bool expected;
  };
  const Case cases[] = {
      {"10.0.0.0/8", "10.0.0.0", true},
      {"10.0.0.0/8", "10.255.255.255", true},
      {"10.0.0.0/8", "10.1.2.3", true},
      {"10.0.0.0/8", "9.255.255.255", false},
      {"10.0.0.0/8", "11.0.0.0", false},
      {"192.0.2.0/24", "192.0.2.0", true},
      {"192.0.2.0/24", "192.0.2.255", true},
      {"192.0.2.0/24", "192.0.1.255", false},
      {"192.0.2.0/24", "192.0.3.0", false},
      {"192.0.2.64/26", "192.0.2.63", false},
      {"192.0.2.64/26", "192.0.2.64", true},
      {"192.0.2.64/26", "192.0.2.127", true},
      {"192.0.2.64/26", "192.0.2.128", false},
      {"128.0.0.0/1", "128.0.0.0", true},
      {"128.0.0.0/1", "255.255.255.255", true},
      {"128.0.0.0/1", "127.255.255.255", false},
      {"192.0.2.1/32", "192.0.2.1", true},
      {"192.0.2.1/32", "192.0.2.0", false},
      {"192.0.2.1/32", "192.0.2.2", false},
      {"192.0.2.1", "192.0.2.1", true},
      {"0.0.0.0/0", "0.0.0.0", true},
      {"0.0.0.0/0", "255.255.255.255", true},
      {"2001:db8::/32", "2001:db8::", true},
      {"2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true},
      {"2001:db8::/32", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false},
      {"2001:db8::/32", "2001:db9::", false},
      {"2001:db8:1:2::/64", "2001:db8:1:2::", true},
      {"2001:db8:1:2::/64", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
      {"2001:db8:1:2::/64", "2001:db8:1:1:ffff:ffff:ffff:ffff", false},
      {"2001:db8:1:2::/64", "2001:db8:1:3::", false},
      {"::1/128", "::1", true},
      {"::1", "::1", true},
      {"::1/128", "::", false},
      {"::1/128", "::2", false},
      {"::/0", "::", true},
      {"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
      // IPv4 ranges never hold IPv6 addresses and the other way round, even where the bytes
      // agree.
      {"0.0.0.0/0", "::", false},
      {"0.0.0.0/0", "::1", false},
      {"0.0.0.0/0", "2001:db8::1", false},
      {"::/0", "0.0.0.0", false},
      {"::/0", "192.0.2.1", false},
      {"10.0.0.0/8", "a00::", false},
      {"10.0.0.0/8", "a00:1::", false},
      {"::1/128", "0.0.0.1", false},
      {"a00::/8", "10.0.0.1", false},
      // IPv4-mapped addresses are IPv4.
      {"10.0.0.0/8", "::ffff:10.0.0.1", true},
      {"10.0.0.0/8", "::ffff:11.0.0.1", false},
      {"::/0", "::ffff:10.0.0.1", false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.range);
    CAPTURE(c.address);
    std::string reason;
    const auto range = parse_cidr(c.range, reason);
    REQUIRE_MESSAGE(range.has_value(), reason);
    CHECK(range->contains(ip(c.address)) == c.expected);
  }
}

}  // namespace
}  // namespace cachecar
