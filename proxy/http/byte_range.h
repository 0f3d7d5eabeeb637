#pragma once
// Range requests (RFC 9110 §14) as a cache answers them from a stored complete response: one
// byte range, served as 206 with Content-Range, or 416 when the stored body has none of it.
// Several ranges, other units or a malformed field are left to the origin. Pure.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/message.h"

namespace cachecar {

// One byte-range-spec: "first-last", "first-" or "-suffix".
struct ByteRangeSpec {
  std::optional<uint64_t> first;  // nullopt: a suffix range
  std::optional<uint64_t> last;   // nullopt: to the end
  uint64_t suffix_length = 0;     // a suffix range: the last this many bytes
};

// The single byte range of a Range field value ("bytes=0-99"); nullopt for anything else.
std::optional<ByteRangeSpec> parse_single_byte_range(std::string_view value);

// The request's one Range, when a cache may serve it: a GET with exactly one Range field
// holding a single byte range.
std::optional<ByteRangeSpec> servable_range(const RequestHead& request);

// A stored 200 with `body`, cut to what `request` asks: its status becomes 206 (or 416 when
// the range lies beyond the body), its body the range, and `lines_out` the stored header lines
// plus Content-Range (a 416: Content-Range alone), which `head_lines` then views. Unchanged when the request has no
// servable range, or an If-Range that does not strongly match the stored ETag (§13.1.5: the
// whole response then). Requires: `lines_out` outlives the use of the view.
struct RangedView {
  int status = 200;
  std::string_view head_lines;
  std::string_view body;
};
RangedView cut_to_range(int status, std::string_view head_lines, std::string_view body,
                        const RequestHead& request, std::string& lines_out);

}  // namespace cachecar
