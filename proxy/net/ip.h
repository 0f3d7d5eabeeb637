#pragma once
// IP addresses and CIDR ranges as values, for deciding who a client is. Pure: parsing and
// comparison only. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a dual-stack listener
// reports for IPv4 peers) are treated as the IPv4 address they carry, so one client is one
// bucket however it connected.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cachecar {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4 uses the first 4

  size_t size() const { return v6 ? 16 : 4; }
  std::string to_string() const;
  bool operator==(const IpAddress& other) const = default;
};

// "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1" (→ IPv4). Surrounding spaces are ignored;
// ports and brackets are not accepted.
std::optional<IpAddress> parse_ip(std::string_view text);

struct Cidr {
  IpAddress network;  // host bits cleared
  int prefix = 0;

  bool contains(const IpAddress& address) const;
  std::string to_string() const;
};

// "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128). On failure `reason` says why.
std::optional<Cidr> parse_cidr(std::string_view text, std::string& reason);

// `address` with every bit after the first `prefix` bits cleared.
IpAddress mask(const IpAddress& address, int prefix);

}  // namespace cachecar
