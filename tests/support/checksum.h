#pragma once

// FNV-1a (64-bit) over byte strings. Tests use it to compare large bodies (uploads, generated
// downloads) without keeping them in memory: the hash is incremental, so feeding a body in any
// split gives the same result as hashing it whole.

#include <cstdint>
#include <string_view>

namespace cachecar::test {

inline constexpr uint64_t kFnv1aOffsetBasis = 0xcbf29ce484222325ULL;
inline constexpr uint64_t kFnv1aPrime = 0x100000001b3ULL;

// Continues an FNV-1a hash: fnv1a(b, fnv1a(a)) == fnv1a(a + b).
uint64_t fnv1a(std::string_view data, uint64_t seed = kFnv1aOffsetBasis);

}  // namespace cachecar::test
