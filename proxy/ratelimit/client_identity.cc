#include "ratelimit/client_identity.h"

#include <algorithm>

namespace cachecar {
namespace {

// Every X-Forwarded-For entry, left to right, across repeated header lines.
std::vector<std::string_view> forwarded_for(const Headers& headers) {
  std::vector<std::string_view> entries;
  headers.for_each("X-Forwarded-For", [&](std::string_view value) {
    while (true) {
      const size_t comma = value.find(',');
      entries.push_back(value.substr(0, comma));
      if (comma == std::string_view::npos) {
        break;
      }
      value.remove_prefix(comma + 1);
    }
  });
  return entries;
}

}  // namespace

bool in_any(const std::vector<Cidr>& ranges, const IpAddress& address) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const Cidr& range) { return range.contains(address); });
}

IpAddress resolve_client(const IpAddress& peer, const Headers& headers,
                         const std::vector<Cidr>& trusted_proxies) {
  IpAddress client = peer;
  if (!in_any(trusted_proxies, client)) {
    return client;
  }
  const std::vector<std::string_view> entries = forwarded_for(headers);
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    auto address = parse_ip(*it);
    if (!address) {
      break;  // garbage: keep the last hop we could trust to have written what follows it
    }
    client = *address;
    if (!in_any(trusted_proxies, client)) {
      break;
    }
  }
  return client;
}

std::string client_bucket(const IpAddress& client, int ipv6_prefix) {
  if (!client.v6) {
    return client.to_string();
  }
  return mask(client, ipv6_prefix).to_string() + "/" + std::to_string(ipv6_prefix);
}

}  // namespace cachecar
