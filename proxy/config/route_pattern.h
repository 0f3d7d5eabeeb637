#pragma once
// Path patterns ("/products/{id}") and the key templates filled from their captures
// ("product:{id}"). Compiled once when the configuration loads; matching allocates only the
// captures it returns.

#include <array>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cachecar {

// Captured variables in pattern order: {name, raw path text}. Views into the pattern and the
// path: use them before either changes. Every request that matches a route fills one, so the
// first kInline live inside it, with no allocation.
class Captures {
 public:
  using value_type = std::pair<std::string_view, std::string_view>;
  static constexpr size_t kInline = 8;

  Captures() = default;
  Captures(std::initializer_list<value_type> items) {
    for (const value_type& item : items) {
      emplace_back(item.first, item.second);
    }
  }
  Captures(const Captures&) = delete;
  Captures& operator=(const Captures&) = delete;

  void emplace_back(std::string_view name, std::string_view value) {
    if (spilled_.empty() && size_ < kInline) {
      inline_[size_] = {name, value};
    } else {
      if (spilled_.empty()) {
        spilled_.assign(inline_.begin(), inline_.end());  // a pattern with many variables
      }
      spilled_.emplace_back(name, value);
    }
    ++size_;
  }
  void clear() {
    size_ = 0;
    spilled_.clear();
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const value_type* begin() const { return spilled_.empty() ? inline_.data() : spilled_.data(); }
  const value_type* end() const { return begin() + size_; }

 private:
  std::array<value_type, kInline> inline_{};
  std::vector<value_type> spilled_;  // every capture, once there are more than kInline
  size_t size_ = 0;
};

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
