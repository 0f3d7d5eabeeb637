#pragma once
// Who a client is, for rate limiting. Pure.
//
// The client is the socket peer, unless the peer is a trusted proxy: then X-Forwarded-For is
// walked from the right (the entry the trusted peer itself added) past every trusted address,
// and the first untrusted address is the client. Entries left of that are the client's own
// claims and are never believed, so a client cannot pick its own bucket by sending
// X-Forwarded-For. IPv6 clients are grouped by prefix (default /64): one host holds a whole
// /64, so counting single addresses would let it step around its limit.

#include <string>
#include <vector>

#include "http/message.h"
#include "net/ip.h"

namespace cachecar {

// The client address for a request from `peer`. An unparsable entry ends the walk at the
// trusted hop before it.
IpAddress resolve_client(const IpAddress& peer, const Headers& headers,
                         const std::vector<Cidr>& trusted_proxies);

// The bucket name: the IPv4 address, or the IPv6 network "2001:db8:1:2::/64".
std::string client_bucket(const IpAddress& client, int ipv6_prefix);

bool in_any(const std::vector<Cidr>& ranges, const IpAddress& address);

}  // namespace cachecar
