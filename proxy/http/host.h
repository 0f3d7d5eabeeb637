#pragma once
// The Host field of a client's request: whether it is well formed (RFC 9112 §3.2), and whether
// it names a site this cachecar serves (config `hosts`, like nginx's server_name). Pure.
//
// Host is not part of a cache key, yet upstream frameworks build links and redirects from it
// (and from the X-Forwarded-Host cachecar derives from it): an entry stored from a request
// with "Host: evil.example" would be served to everyone. Two Host fields are the same attack
// split across hops, one read by cachecar and another by the upstream.

#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace cachecar {

enum class HostVerdict {
  Accepted,
  Malformed,   // 400: absent in HTTP/1.1, repeated, or not a valid host[:port]
  Misdirected  // 421: well formed, but not in the configured list
};

struct HostCheck {
  HostVerdict verdict = HostVerdict::Accepted;
  std::string_view reason;  // for the client's error body; empty when accepted
};

// `allowed`: lowercase names, exact ("shop.example") or a leading wildcard ("*.example",
// which matches "a.example" and "a.b.example" but not "example"); empty accepts any host.
HostCheck check_host(const RequestHead& head, const std::vector<std::string>& allowed);

// The host part of a Host value, without its port, as written: "Shop.example" for
// "Shop.example:8080", "[::1]" for "[::1]:8080".
std::string_view host_without_port(std::string_view host);

// True when `name` is a valid `hosts` entry (what check_host can ever match).
bool valid_host_pattern(std::string_view name);

}  // namespace cachecar
