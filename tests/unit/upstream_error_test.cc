// upstream/upstream_error.h: the one mapping from an upstream failure to what the client and
// the logs see.

#include "upstream/upstream_error.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace cachecar {
namespace {

TEST_CASE("UpstreamError maps to a status, a description and a label") {
  struct Case {
    UpstreamError error;
    int status;
    std::string_view description;
    std::string_view label;
  };
  const Case cases[] = {
      {UpstreamError::Refused, 502, "upstream unavailable", "refused"},
      {UpstreamError::Reset, 502, "upstream closed the connection", "reset"},
      {UpstreamError::Timeout, 504, "upstream timed out", "timeout"},
      {UpstreamError::Invalid, 502, "invalid response from upstream", "invalid"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.label);
    CHECK(status_for(c.error) == c.status);
    CHECK(describe(c.error) == c.description);
    CHECK(label(c.error) == c.label);
  }
}

TEST_CASE("UpstreamError labels are distinct lower-case metric labels") {
  const UpstreamError all[] = {UpstreamError::Refused, UpstreamError::Reset, UpstreamError::Timeout,
                               UpstreamError::Invalid};
  for (UpstreamError a : all) {
    const std::string text(label(a));
    CAPTURE(text);
    CHECK(!text.empty());
    for (char c : text) {
      CHECK(((c >= 'a' && c <= 'z') || c == '_'));
    }
    for (UpstreamError b : all) {
      if (a != b) {
        CHECK(label(a) != label(b));
        CHECK(describe(a) != describe(b));
      }
    }
  }
}

}  // namespace
}  // namespace cachecar
