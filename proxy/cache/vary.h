#pragma once
// Vary (RFC 9111 §4.1) for the HTTP cache mode of issue 16: which request fields select a
// stored response's variant, and the normalized values that make a request's variant
// selector. Pure: header values in, names and one string out.
//
// Two requests select the same variant when every field the response names has the same
// normalized value in both: all field lines of a name joined with ", ", whitespace around
// commas dropped and runs of whitespace made one space (§4.1 allows such normalization), and
// a field that is absent told apart from one that is empty.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace cachecar {

struct VaryFields {
  bool any = false;                // "*": no request can be shown to match (§4.1)
  std::vector<std::string> names;  // lower case, sorted, each once
};

// Every Vary line of `response`, as one list.
VaryFields parse_vary(const Headers& response);

// Every name is a field name (a token): what a vary index can hold.
bool vary_names_valid(const VaryFields& vary);

// The selector of `request` for those fields: "name=value" lines in the order of `vary.names`,
// "name" alone when the request lacks the field. Empty when `vary.names` is.
// Requires: !vary.any (such a response is never served from the cache).
std::string variant_selector(const VaryFields& vary, const Headers& request);

// A short, fixed-length name for a selector, for the variant's key (cache/key.h): the first
// 128 bits of its SHA-256, in hex. Requests choose selectors, so the digest must not let them
// make two collide.
std::string selector_digest(std::string_view selector);

// The vary index stored under a response's primary key when the response varies: the names its
// variants are selected by, so that a lookup knows which variant key to read next. "CCV1"
// then the names joined by ",". nullopt for anything else.
inline constexpr std::string_view kVaryIndexMagic = "CCV1";
std::string encode_vary_index(const VaryFields& vary);
std::optional<VaryFields> decode_vary_index(std::string_view bytes);

}  // namespace cachecar
