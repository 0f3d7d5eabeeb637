#include "cache/vary.h"

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

// One field line's value appended to `out`: list members trimmed, inner whitespace runs made
// one space.
void append_normalized(std::string_view value, std::string& out) {
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
      out += c;
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

std::string variant_selector(const VaryFields& vary, const Headers& request) {
  std::string selector;
  for (const std::string& name : vary.names) {
    if (!selector.empty()) {
      selector += '\n';
    }
    selector += name;
    bool present = false;
    request.for_each(name, [&](std::string_view value) {
      selector += present ? ", " : "=";
      present = true;
      append_normalized(value, selector);
    });
  }
  return selector;
}

}  // namespace cachecar
