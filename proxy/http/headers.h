#pragma once
// Header rules of an intermediary (RFC 9110 §7.6): which fields are hop-by-hop and never cross
// cachecar, and which forwarding fields cachecar adds. Pure functions over Headers.

#include <string>
#include <string_view>

#include "http/message.h"

namespace cachecar {

// Removes Connection and every field it names, Keep-Alive, TE, Trailer, Transfer-Encoding,
// Upgrade, Proxy-* and Content-Length. The framing fields go too because cachecar re-frames
// every message it forwards: copying them would let one hop frame a message differently
// from the next (request smuggling).
void remove_hop_by_hop(Headers& headers);

// True when a comma-separated field (e.g. Connection) lists `token`, case-insensitively.
bool has_token(const Headers& headers, std::string_view name, std::string_view token);

struct ForwardingInfo {
  std::string_view client_address;  // the socket peer, without port
  std::string_view protocol;        // "http"
};

// Prepares a client's request head for the upstream: hop-by-hop fields removed, Expect
// removed (cachecar answers 100-continue itself), kOverrideFields removed, X-Forwarded-For
// appended to, X-Forwarded-Proto and X-Forwarded-Host set from what this hop saw, Via added.
// Host is passed through.
void prepare_upstream_request_headers(Headers& headers, const ForwardingInfo& info);

// Prepares an upstream's response head for the client: hop-by-hop fields removed, Via added.
void prepare_client_response_headers(Headers& headers);

// Removes the RateLimit fields (RateLimit, RateLimit-*): cachecar's own replace the upstream's
// when cachecar limits the request, so a client never reads two quotas.
void remove_rate_limit_fields(Headers& headers);

// Request fields that rewrite the target, the method or the site in common frameworks (IIS,
// Symfony, Express method-override, RFC 7239 Forwarded...). Removed before forwarding: a
// cached answer keyed on the request line must not depend on them (cache poisoning).
// cachecar sets the X-Forwarded-For, -Proto and -Host the upstream should believe.
inline constexpr std::string_view kOverrideFields[] = {
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
    "X-Original-Method",
    "X-Forwarded-Prefix",
    "X-Forwarded-Path",
    "X-Forwarded-Uri",
    "X-Forwarded-Server",
    "X-Host",
    "X-Forwarded-Port",
    "X-Forwarded-Scheme",
    "X-Original-Host",
    "Forwarded",
};

// The Via entry cachecar adds (RFC 9110 §7.6.3).
inline constexpr std::string_view kViaValue = "1.1 cachecar";

}  // namespace cachecar
