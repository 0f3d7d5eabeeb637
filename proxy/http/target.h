#pragma once
// One canonical spelling of a request target, used both for the cache key and for the request
// sent upstream, so that no two spellings of one resource can be keyed apart while the
// upstream reads them alike (cache poisoning and deception). Pure.
//
// The path is normalised: percent-escapes of unreserved characters are decoded and every other
// escape is written in upper case (RFC 3986 §6.2.2), dot segments are removed (§5.2.4) and
// repeated slashes merged, as nginx's merge_slashes does. The query is kept as sent; a
// fragment, which origin-form does not have, is dropped.
// Refused (400): targets that are not origin-form ("/path?query"), broken escapes, NUL bytes,
// and dot segments that would climb above the root.

#include <optional>
#include <string>
#include <string_view>

namespace cachecar {

std::optional<std::string> normalize_target(std::string_view target, std::string& reason);

// True when normalize_target would return `target` unchanged: origin-form, and a path with no
// escape, NUL, empty or dot segment. Nearly every target is; it then needs no copy.
bool is_canonical_target(std::string_view target);

}  // namespace cachecar
