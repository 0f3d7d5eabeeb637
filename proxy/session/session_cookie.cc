#include "session/session_cookie.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>

#include "http/chars.h"

namespace cachecar {
namespace {

bool is_cookie_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_cookie_space(std::string_view text) {
  while (!text.empty() && is_cookie_space(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_cookie_space(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

// Well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF), as decodeURIComponent
// requires of the bytes it decodes.
bool valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    size_t extra = 0;
    uint32_t code = 0;
    if (byte < 0x80) {
      ++i;
      continue;
    }
    if ((byte & 0xe0) == 0xc0) {
      extra = 1;
      code = byte & 0x1f;
    } else if ((byte & 0xf0) == 0xe0) {
      extra = 2;
      code = byte & 0x0f;
    } else if ((byte & 0xf8) == 0xf0) {
      extra = 3;
      code = byte & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) {
      return false;  // cut short
    }
    for (size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) {
        return false;
      }
      code = (code << 6) | (next & 0x3f);
    }
    static constexpr uint32_t kMinimum[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMinimum[extra] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

// decodeURIComponent, or nullopt where it would throw.
std::optional<std::string> uri_decode(std::string_view text) {
  std::optional<std::string> decoded = percent_decode(text);
  if (!decoded || !valid_utf8(*decoded)) {
    return std::nullopt;
  }
  return decoded;
}

// cookie-signature's sign(): HMAC-SHA256 in base64, '=' padding stripped.
std::string signature_of(std::string_view value, std::string_view secret) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(value.data()), value.size(), mac, &mac_length);
  std::string encoded(4 * ((mac_length + 2) / 3) + 1, '\0');
  const int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()), mac, static_cast<int>(mac_length));
  encoded.resize(static_cast<size_t>(written));
  while (!encoded.empty() && encoded.back() == '=') {
    encoded.pop_back();
  }
  return encoded;
}

}  // namespace

std::optional<std::string> find_cookie(const Headers& request, std::string_view name) {
  std::optional<std::string> found;
  // Node joins repeated Cookie lines with "; " before the cookie package reads them.
  request.for_each("Cookie", [&](std::string_view line) {
    while (!found && !line.empty()) {
      const size_t end = line.find(';');
      const std::string_view pair = line.substr(0, end);
      const size_t equals = pair.find('=');
      if (equals != std::string_view::npos && trim_cookie_space(pair.substr(0, equals)) == name) {
        std::string_view value = trim_cookie_space(pair.substr(equals + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
          value = value.substr(1, value.size() - 2);
        }
        std::optional<std::string> decoded;
        if (value.find('%') != std::string_view::npos) {
          decoded = uri_decode(value);
        }
        found = decoded ? std::move(*decoded) : std::string(value);
      }
      if (end == std::string_view::npos) {
        break;
      }
      line.remove_prefix(end + 1);
    }
  });
  return found;
}

std::optional<std::string> unsign_session_cookie(std::string_view value,
                                                 const std::vector<std::string>& secrets) {
  if (!value.starts_with("s:")) {
    return std::nullopt;  // express-session ignores an unsigned value
  }
  value.remove_prefix(2);
  const size_t dot = value.rfind('.');
  if (dot == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view sid = value.substr(0, dot);
  const std::string_view signature = value.substr(dot + 1);
  bool valid = false;
  for (const std::string& secret : secrets) {
    const std::string expected = signature_of(sid, secret);
    // Every secret is tried, so the time taken does not tell which one matched.
    valid |= expected.size() == signature.size() &&
             CRYPTO_memcmp(expected.data(), signature.data(), expected.size()) == 0;
  }
  if (!valid) {
    return std::nullopt;
  }
  return std::string(sid);
}

std::string sign_session_cookie(std::string_view sid, std::string_view secret) {
  std::string out = "s:";
  out += sid;
  out += '.';
  out += signature_of(sid, secret);
  return out;
}

}  // namespace cachecar
