#include "cache/vary.h"

#include <openssl/evp.h>

#include <algorithm>

#include "http/chars.h"

namespace cachecar {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), to_lower_ascii);
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

// Fields whose values are lists of case-insensitive tokens: language ranges (RFC 4647 §2),
// content-codings and charsets (RFC 9110 §8.4.1, §12.5.2). `en-US` and `en-us` ask for the
// same answer, so they select the same variant.
bool value_case_insensitive(std::string_view name) {
  return name == "accept-language" || name == "accept-encoding" || name == "accept-charset";
}

// One field line's value appended to `out`: list members trimmed, inner whitespace runs made
// one space, and lower case where the field's values are case-insensitive.
void append_normalized(std::string_view value, bool fold_case, std::string& out) {
  bool first_member = true;
  while (true) {
    const size_t comma = value.find(',');
    const std::string_view member = trim_ows(value.substr(0, comma));
    if (!first_member) {
      out += ", ";
    }
    first_member = false;
    bool in_space = false;
    for (const char c : member) {
      if (is_space(c)) {
        in_space = true;
        continue;
      }
      if (in_space) {
        out += ' ';
        in_space = false;
      }
      out += fold_case ? to_lower_ascii(c) : c;
    }
    if (comma == std::string_view::npos) {
      return;
    }
    value.remove_prefix(comma + 1);
  }
}

}  // namespace

VaryFields parse_vary(const Headers& response) {
  VaryFields vary;
  response.for_each("Vary", [&vary](std::string_view value) {
    while (true) {
      const size_t comma = value.find(',');
      const std::string_view name = trim_ows(value.substr(0, comma));
      if (name == "*") {
        vary.any = true;
      } else if (!name.empty()) {
        vary.names.push_back(lower(name));
      }
      if (comma == std::string_view::npos) {
        return;
      }
      value.remove_prefix(comma + 1);
    }
  });
  std::sort(vary.names.begin(), vary.names.end());
  vary.names.erase(std::unique(vary.names.begin(), vary.names.end()), vary.names.end());
  return vary;
}

bool vary_names_valid(const VaryFields& vary) {
  return std::all_of(vary.names.begin(), vary.names.end(), [](const std::string& name) {
    return std::all_of(name.begin(), name.end(), is_tchar);
  });
}

std::string variant_selector(const VaryFields& vary, const Headers& request) {
  std::string selector;
  for (const std::string& name : vary.names) {
    if (!selector.empty()) {
      selector += '\n';
    }
    selector += name;
    bool present = false;
    const bool fold_case = value_case_insensitive(name);
    request.for_each(name, [&](std::string_view value) {
      selector += present ? ", " : "=";
      present = true;
      append_normalized(value, fold_case, selector);
    });
  }
  return selector;
}

std::string selector_digest(std::string_view selector) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(selector.data(), selector.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < 16 && i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

std::string encode_vary_index(const VaryFields& vary) {
  std::string out(kVaryIndexMagic);
  for (size_t i = 0; i < vary.names.size(); ++i) {
    out += i == 0 ? "" : ",";
    out += vary.names[i];
  }
  return out;
}

std::optional<VaryFields> decode_vary_index(std::string_view bytes) {
  if (!bytes.starts_with(kVaryIndexMagic)) {
    return std::nullopt;
  }
  bytes.remove_prefix(kVaryIndexMagic.size());
  VaryFields vary;
  while (!bytes.empty()) {
    const size_t comma = bytes.find(',');
    const std::string_view name = bytes.substr(0, comma);
    // What encode_vary_index writes: parse_vary's names, lower case and sorted.
    const bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return is_tchar(c) && !(c >= 'A' && c <= 'Z');
    });
    if (!valid || (!vary.names.empty() && vary.names.back() >= name)) {
      return std::nullopt;
    }
    vary.names.emplace_back(name);
    if (comma == std::string_view::npos) {
      break;
    }
    bytes.remove_prefix(comma + 1);
    if (bytes.empty()) {
      return std::nullopt;  // a trailing comma
    }
  }
  if (vary.names.empty()) {
    return std::nullopt;
  }
  return vary;
}

}  // namespace cachecar
