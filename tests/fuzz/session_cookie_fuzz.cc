// Fuzz target: the session cookie and record of issue 17. The input is a Cookie field value
// and also a stored session's JSON. Whatever the bytes, reading them never crashes; a value
// verifies only when it is what signing its session id gives; a user read from a record is
// one line of text.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "session/session_cookie.h"
#include "session/session_record.h"

namespace cachecar {
namespace {

void run(std::string_view input) {
  Headers request;
  request.add("Cookie", std::string(input));
  const std::vector<std::string> secrets{"keyboard cat", "older secret"};
  if (const auto value = find_cookie(request, "connect.sid")) {
    if (const auto sid = unsign_session_cookie(*value, secrets)) {
      if (sign_session_cookie(*sid, "keyboard cat") != *value &&
          sign_session_cookie(*sid, "older secret") != *value) {
        std::abort();  // verified without being signed
      }
    }
  }
  // Signing any id round-trips: the last dot is the signature's (base64 has none).
  if (unsign_session_cookie(sign_session_cookie(input, "older secret"), secrets) != input) {
    std::abort();
  }
  if (const auto record = read_session_record(input, "passport.user")) {
    if (record->user) {
      for (const char c : *record->user) {
        if (c == '\r' || c == '\n') {
          std::abort();
        }
      }
    }
  }
}

}  // namespace
}  // namespace cachecar

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cachecar::run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
