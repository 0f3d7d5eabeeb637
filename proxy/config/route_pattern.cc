#include "config/route_pattern.h"

#include <algorithm>

#include "http/chars.h"

namespace cachecar {
namespace {

bool valid_variable_name(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_alpha(c) || is_digit(c) || c == '_'; });
}

}  // namespace

std::optional<RoutePattern> RoutePattern::compile(std::string_view pattern, std::string& reason) {
  if (pattern.empty() || pattern.front() != '/') {
    reason = "a path pattern must start with '/'";
    return std::nullopt;
  }
  RoutePattern out;
  out.text_ = std::string(pattern);
  std::string_view rest = pattern.substr(1);
  while (true) {
    const size_t slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    Segment compiled;
    if (!segment.empty() && segment.front() == '{') {
      if (segment.back() != '}') {
        reason = "a variable must fill its whole segment, as in /products/{id}";
        return std::nullopt;
      }
      std::string_view name = segment.substr(1, segment.size() - 2);
      if (!name.empty() && name.back() == '*') {
        if (slash != std::string_view::npos) {
          reason = "{" + std::string(name) + "} may only be the last segment";
          return std::nullopt;
        }
        compiled.rest = true;
        name.remove_suffix(1);
      }
      if (!valid_variable_name(name)) {
        reason = "invalid variable name '" + std::string(name) + "' (letters, digits, _)";
        return std::nullopt;
      }
      if (out.has_variable(name)) {
        reason = "variable {" + std::string(name) + "} appears twice";
        return std::nullopt;
      }
      compiled.text = std::string(name);
      compiled.variable = true;
    } else {
      if (segment.find_first_of("{}") != std::string_view::npos) {
        reason = "a variable must fill its whole segment, as in /products/{id}";
        return std::nullopt;
      }
      compiled.text = std::string(segment);
    }
    out.segments_.push_back(std::move(compiled));
    if (slash == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(slash + 1);
  }
  return out;
}

bool RoutePattern::has_variable(std::string_view name) const {
  return std::any_of(segments_.begin(), segments_.end(),
                     [&](const Segment& s) { return s.variable && s.text == name; });
}

bool RoutePattern::match(std::string_view path, Captures& captures) const {
  captures.clear();
  if (path.empty() || path.front() != '/') {
    return false;
  }
  std::string_view rest = path.substr(1);
  for (size_t i = 0; i < segments_.size(); ++i) {
    const Segment& segment = segments_[i];
    const bool last = i + 1 == segments_.size();
    if (segment.rest) {
      if (rest.empty()) {
        return false;
      }
      captures.emplace_back(segment.text, rest);
      return true;
    }
    const size_t slash = rest.find('/');
    const std::string_view piece = rest.substr(0, slash);
    if (segment.variable) {
      if (piece.empty()) {
        return false;
      }
      captures.emplace_back(segment.text, piece);
    } else if (piece != segment.text) {
      return false;
    }
    if (last) {
      return slash == std::string_view::npos;
    }
    if (slash == std::string_view::npos) {
      return false;
    }
    rest.remove_prefix(slash + 1);
  }
  return false;
}

std::optional<KeyTemplate> KeyTemplate::compile(std::string_view text, const RoutePattern& pattern,
                                                std::string& reason) {
  KeyTemplate out;
  out.text_ = std::string(text);
  if (text.empty()) {
    reason = "a key template cannot be empty";
    return std::nullopt;
  }
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find('{', pos);
    const size_t stray_close = text.find('}', pos);
    if (stray_close < open) {
      reason = "unmatched '}' in key template";
      return std::nullopt;
    }
    if (open == std::string_view::npos) {
      out.parts_.push_back({std::string(text.substr(pos)), false});
      break;
    }
    if (open > pos) {
      out.parts_.push_back({std::string(text.substr(pos, open - pos)), false});
    }
    const size_t close = text.find('}', open);
    if (close == std::string_view::npos) {
      reason = "unterminated '{' in key template";
      return std::nullopt;
    }
    const std::string_view name = text.substr(open + 1, close - open - 1);
    if (!pattern.has_variable(name)) {
      reason = "{" + std::string(name) + "} is not a variable of path " + pattern.text();
      return std::nullopt;
    }
    out.parts_.push_back({std::string(name), true});
    pos = close + 1;
  }
  return out;
}

void KeyTemplate::render(const Captures& captures, std::string& out) const {
  for (const Part& part : parts_) {
    if (!part.variable) {
      out += part.text;
      continue;
    }
    for (const auto& [name, value] : captures) {
      if (name == part.text) {
        out += value;
        break;
      }
    }
  }
}

}  // namespace cachecar
