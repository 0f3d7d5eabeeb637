#pragma once
// Why a request to the upstream failed, and what the client is told (pure).

#include <string_view>

namespace cachecar {

enum class UpstreamError {
  Refused,  // connect failed (refused, unreachable, address not resolved)
  Reset,    // the connection was reset or closed before the response was complete
  Timeout,  // no connection within connect_timeout, or no data within upstream.timeout
  Invalid,  // the upstream's bytes are not a valid HTTP/1.1 response
};

// 504 for timeouts, 502 for everything else (RFC 9110 §15.6.3, §15.6.5).
int status_for(UpstreamError error);

// Short text for the JSON error body and the logs.
std::string_view describe(UpstreamError error);

// Lower-case label for metrics and logs ("refused", "reset", "timeout", "invalid").
std::string_view label(UpstreamError error);

}  // namespace cachecar
