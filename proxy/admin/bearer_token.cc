#include "admin/bearer_token.h"

#include <openssl/crypto.h>

#include <cctype>

namespace cachecar {

bool bearer_token_matches(const Headers& request, std::string_view token) {
  const auto field = request.get("Authorization");
  constexpr std::string_view kScheme = "Bearer ";
  if (token.empty() || !field || field->size() != kScheme.size() + token.size()) {
    return false;
  }
  // The scheme is case-insensitive (RFC 9110 §11.1); the token is compared whole, in time that
  // does not depend on where it differs.
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>((*field)[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return false;
    }
  }
  return CRYPTO_memcmp(field->data() + kScheme.size(), token.data(), token.size()) == 0;
}

}  // namespace cachecar
