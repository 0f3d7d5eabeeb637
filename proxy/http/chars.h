#pragma once
// ASCII character classes of the URI and HTTP grammars (RFC 3986, RFC 9110), independent of
// the C locale that <cctype> consults.

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace cachecar {

constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }

constexpr bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

inline char to_lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// 0-15 for a hex digit, -1 otherwise.
inline int hex_value(char c) {
  if (is_digit(c)) {
    return c - '0';
  }
  const char lower = to_lower_ascii(c);
  return lower >= 'a' && lower <= 'f' ? lower - 'a' + 10 : -1;
}

// The %XX escapes of `text` decoded (RFC 3986 §2.1); nullopt for a '%' without two hex digits.
inline std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) {
      return std::nullopt;
    }
    const int high = hex_value(text[i + 1]);
    const int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) {
      return std::nullopt;
    }
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

// US-ASCII: every character of a URI (RFC 3986 §2); 0x80-0xFF are obs-text, legal only in
// field values and reason phrases.
inline bool is_ascii(char c) { return static_cast<unsigned char>(c) < 0x80; }

// RFC 3986 §2.3.
inline bool is_unreserved(char c) {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// RFC 9110 §5.6.3: optional whitespace (spaces and tabs) removed from both ends.
inline std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

namespace detail {

inline constexpr unsigned char kTchar = 1;    // RFC 9110 §5.6.2 tchar
inline constexpr unsigned char kRegName = 2;  // RFC 3986 §3.2.2 reg-name

// Looked up on every byte of every field name and Host value: a table, not a search.
constexpr std::array<unsigned char, 256> make_char_classes() {
  std::array<unsigned char, 256> classes{};
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    if (is_alpha(ch) || is_digit(ch)) {
      classes[c] = kTchar | kRegName;
    }
  }
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) {
    classes[static_cast<unsigned char>(c)] |= kTchar;
  }
  // unreserved's punctuation, then '%' (of pct-encoded) and the sub-delims.
  for (char c : std::string_view("-._~%!$&'()*+,;=")) {
    classes[static_cast<unsigned char>(c)] |= kRegName;
  }
  return classes;
}

inline constexpr std::array<unsigned char, 256> kCharClasses = make_char_classes();

}  // namespace detail

// RFC 9110 §5.6.2 tchar: the characters of a token (field names, methods).
inline bool is_tchar(char c) {
  return (detail::kCharClasses[static_cast<unsigned char>(c)] & detail::kTchar) != 0;
}

// RFC 3986 reg-name characters: unreserved, '%' of pct-encoded, sub-delims.
inline bool is_reg_name_char(char c) {
  return (detail::kCharClasses[static_cast<unsigned char>(c)] & detail::kRegName) != 0;
}

}  // namespace cachecar
