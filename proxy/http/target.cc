#include "http/target.h"

#include <vector>

#include "http/chars.h"

namespace cachecar {
namespace {

// Decodes escapes of unreserved characters, upper-cases the others.
bool normalize_escapes(std::string_view path, std::string& out, std::string& reason) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '\0') {
      reason = "NUL byte in the request target";
      return false;
    }
    if (c != '%') {
      out += c;
      continue;
    }
    if (i + 2 >= path.size()) {
      reason = "truncated percent-escape in the path";
      return false;
    }
    const int hi = hex_value(path[i + 1]);
    const int lo = hex_value(path[i + 2]);
    if (hi < 0 || lo < 0) {
      reason = "invalid percent-escape in the path";
      return false;
    }
    const char decoded = static_cast<char>(hi * 16 + lo);
    if (decoded == '\0') {
      reason = "NUL byte in the request target";
      return false;
    }
    if (is_unreserved(decoded)) {
      out += decoded;
    } else {
      out += '%';
      out += kHex[hi];
      out += kHex[lo];
    }
    i += 2;
  }
  return true;
}

}  // namespace

bool is_canonical_target(std::string_view target) {
  if (target.empty() || target.front() != '/' || target.find('#') != std::string_view::npos) {
    return false;
  }
  // One pass over the path, on every request.
  for (size_t i = 0; i < target.size(); ++i) {
    const char c = target[i];
    if (c == '?') {
      return true;
    }
    if (c == '%' || c == '\0') {
      return false;
    }
    if (c == '/' && i + 1 < target.size() && (target[i + 1] == '/' || target[i + 1] == '.')) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> normalize_target(std::string_view target, std::string& reason) {
  if (target.empty() || target.front() != '/') {
    reason = "the request target must be a path (origin-form)";
    return std::nullopt;
  }
  // Origin-form has no fragment (RFC 9112 §3.2); a client that sends one anyway loses it, as
  // nginx drops it. Kept, it would reach keys, where "#" marks a Vary or a user's entry:
  // "/mine?q=a#user=<digest>" must not name some user's "/mine?q=a".
  target = target.substr(0, target.find('#'));
  if (is_canonical_target(target)) {
    return std::string(target);
  }
  const size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  std::string escaped;
  if (!normalize_escapes(path, escaped, reason)) {
    return std::nullopt;
  }
  // Segments between slashes; empty ones (from "//") are merged away, except a trailing one,
  // which keeps "/dir/" distinct from "/dir".
  std::vector<std::string_view> segments;
  std::string_view rest = std::string_view(escaped).substr(1);
  bool trailing_slash = false;
  while (true) {
    const size_t slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    const bool last = slash == std::string_view::npos;
    if (segment == "..") {
      if (segments.empty()) {
        reason = "the path climbs above the root";
        return std::nullopt;
      }
      segments.pop_back();
      trailing_slash = true;
    } else if (segment == ".") {
      trailing_slash = true;
    } else if (!segment.empty()) {
      segments.push_back(segment);
      trailing_slash = false;
    } else {
      trailing_slash = !segments.empty() || last;
    }
    if (last) {
      break;
    }
    rest.remove_prefix(slash + 1);
  }
  std::string out;
  out.reserve(target.size());
  for (std::string_view segment : segments) {
    out += '/';
    out += segment;
  }
  if (out.empty() || trailing_slash) {
    out += '/';
  }
  if (question != std::string_view::npos) {
    out += target.substr(question);
  }
  return out;
}

}  // namespace cachecar
