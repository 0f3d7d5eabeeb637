// http/chars.h: the character classes, against the grammars' own lists of characters.

#include "http/chars.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace cachecar {
namespace {

std::string every_char_where(bool (*in_class)(char)) {
  std::string out;
  for (int c = 0; c < 256; ++c) {
    if (in_class(static_cast<char>(c))) {
      out += static_cast<char>(c);
    }
  }
  return out;
}

constexpr std::string_view kAlnum =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

TEST_CASE("is_tchar is RFC 9110 tchar: alphanumerics and !#$%&'*+-.^_`|~, nothing else") {
  // In byte order, as every_char_where lists them.
  CHECK(every_char_where(is_tchar) ==
        "!#$%&'*+-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz|~");
  CHECK_FALSE(is_tchar(' '));
  CHECK_FALSE(is_tchar(':'));
  CHECK_FALSE(is_tchar('\0'));
  CHECK_FALSE(is_tchar(static_cast<char>(0xe9)));
}

TEST_CASE("is_reg_name_char is RFC 3986 reg-name: unreserved, '%' and the sub-delims") {
  std::string expected;
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    if (kAlnum.find(ch) != std::string_view::npos ||
        std::string_view("-._~%!$&'()*+,;=").find(ch) != std::string_view::npos) {
      expected += ch;
    }
  }
  CHECK(every_char_where(is_reg_name_char) == expected);
  CHECK_FALSE(is_reg_name_char(':'));
  CHECK_FALSE(is_reg_name_char('['));
  CHECK_FALSE(is_reg_name_char('/'));
  CHECK_FALSE(is_reg_name_char('@'));
  CHECK_FALSE(is_reg_name_char(static_cast<char>(0x80)));
}

}  // namespace
}  // namespace cachecar
