#include "upstream/upstream_error.h"

namespace cachecar {

int status_for(UpstreamError error) { return error == UpstreamError::Timeout ? 504 : 502; }

std::string_view describe(UpstreamError error) {
  switch (error) {
    case UpstreamError::Refused:
      return "upstream unavailable";
    case UpstreamError::Reset:
      return "upstream closed the connection";
    case UpstreamError::Timeout:
      return "upstream timed out";
    case UpstreamError::Invalid:
      return "invalid response from upstream";
  }
  return "upstream error";
}

std::string_view label(UpstreamError error) {
  switch (error) {
    case UpstreamError::Refused:
      return "refused";
    case UpstreamError::Reset:
      return "reset";
    case UpstreamError::Timeout:
      return "timeout";
    case UpstreamError::Invalid:
      return "invalid";
  }
  return "unknown";
}

}  // namespace cachecar
