#pragma once
// Path patterns ("/products/{id}") and the key templates filled from their captures
// ("product:{id}"). Compiled once when the configuration loads; matching allocates only the
// captures it returns.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cachecar {

// Captured variables in pattern order: {name, raw path text}. Views into the pattern and the
// path: use them before either changes.
using Captures = std::vector<std::pair<std::string_view, std::string_view>>;

class RoutePattern {
 public:
  RoutePattern() = default;  // matches nothing until assigned a compiled pattern
  // Segments are literal text or a whole-segment variable "{name}"; a last segment "{name*}"
  // captures the rest of the path, slashes included. Returns nullopt with `reason` set when
  // the pattern is malformed (no leading '/', empty or repeated variable names, braces inside
  // a segment).
  static std::optional<RoutePattern> compile(std::string_view pattern, std::string& reason);

  // Matches a path (no query string). Variables match non-empty text only, so
  // "/products/" does not match "/products/{id}". The views in the result point into `path`.
  bool match(std::string_view path, Captures& captures) const;

  const std::string& text() const { return text_; }
  bool has_variable(std::string_view name) const;

 private:
  struct Segment {
    std::string text;  // literal text, or the variable's name
    bool variable = false;
    bool rest = false;  // "{name*}": the remainder of the path
  };
  std::string text_;
  std::vector<Segment> segments_;
};

class KeyTemplate {
 public:
  KeyTemplate() = default;
  // "product:{id}". Every variable must be one that `pattern` captures.
  static std::optional<KeyTemplate> compile(std::string_view text, const RoutePattern& pattern,
                                            std::string& reason);

  // Appends the key for these captures to `out`.
  void render(const Captures& captures, std::string& out) const;

  const std::string& text() const { return text_; }

 private:
  struct Part {
    std::string text;
    bool variable = false;
  };
  std::string text_;
  std::vector<Part> parts_;
};

}  // namespace cachecar
