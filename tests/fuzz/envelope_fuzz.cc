// Fuzz target: values read from Redis as cache entries. Whatever decodes must encode back to
// the same bytes (marked again, when a soft purge marked it) and render to a response; nothing
// may crash or read out of bounds.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cache/envelope.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cachecar;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto view = view_envelope(input, error);
  auto decoded = decode_envelope(input, error);
  if (view.has_value() != decoded.has_value()) {
    std::abort();  // the two decoders must agree
  }
  if (!decoded) {
    return 0;
  }
  std::string encoded = encode_envelope(*decoded, view->epoch);
  if (view->stale_since_ms != 0) {
    // A soft purge's mark (cache/scripts.h: kInvalidateScript): the third letter, the time after.
    encoded[2] = 'S';
    for (int i = 0; i < 8; ++i) {
      encoded += static_cast<char>((static_cast<uint64_t>(view->stale_since_ms) >> (8 * i)) & 0xff);
    }
  }
  if (encoded != input) {
    std::abort();  // a decoded envelope must be exactly what encodes to it
  }
  std::string out;
  write_cached_response(decoded->view(), HitFraming{}, out);
  return 0;
}
