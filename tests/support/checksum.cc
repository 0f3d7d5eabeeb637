#include "support/checksum.h"

namespace cachecar::test {

uint64_t fnv1a(std::string_view data, uint64_t seed) {
  uint64_t hash = seed;
  for (const char c : data) {
    hash ^= static_cast<unsigned char>(c);
    hash *= kFnv1aPrime;
  }
  return hash;
}

}  // namespace cachecar::test
