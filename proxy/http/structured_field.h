#pragma once
// Structured Field Values (RFC 8941), as far as cachecar reads them: the Dictionary, which is
// what RFC 9213's targeted cache-control fields (CDN-Cache-Control) are. Pure: a field's value
// in, its members out, or nothing when the value is not a valid Dictionary (RFC 9213 §2.1:
// such a field is ignored whole, as if it were absent).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cachecar {

// A member's value type (RFC 8941 §3.3); parameters are checked, not kept.
enum class SfType { Boolean, Integer, Decimal, String, Token, ByteSequence, InnerList };

struct SfMember {
  std::string key;  // lower case, as the grammar requires
  SfType type = SfType::Boolean;
  bool boolean = true;  // a bare key is true (§3.2)
  int64_t integer = 0;
  std::string text;  // a String's unescaped content, or a Token
};

// §4.2.2. Field lines are joined with ", " before they come here. A key seen twice keeps its
// first position and its last value (§4.2.2 step 2.3).
std::optional<std::vector<SfMember>> parse_sf_dictionary(std::string_view value);

}  // namespace cachecar
