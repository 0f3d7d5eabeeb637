#include "session/session_record.h"

#include <nlohmann/json.hpp>

namespace cachecar {
namespace {

// A user header value must be one line of visible text (RFC 9110 §5.5), without the leading
// or trailing whitespace a recipient would strip (" admin" must not become "admin").
bool header_safe(std::string_view text) {
  if (text.empty() || text.front() == ' ' || text.front() == '\t' || text.back() == ' ' ||
      text.back() == '\t') {
    return false;
  }
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<SessionRecord> read_session_record(std::string_view json,
                                                 std::string_view user_field) {
  const nlohmann::json document =
      nlohmann::json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (!document.is_object()) {
    return std::nullopt;
  }
  SessionRecord record;
  const nlohmann::json* node = &document;
  while (node != nullptr && !user_field.empty()) {
    const size_t dot = user_field.find('.');
    const std::string name(user_field.substr(0, dot));
    user_field = dot == std::string_view::npos ? std::string_view() : user_field.substr(dot + 1);
    const auto child = node->is_object() ? node->find(name) : node->end();
    node = node->is_object() && child != node->end() ? &*child : nullptr;
  }
  if (node != nullptr) {
    std::string user;
    if (node->is_string()) {
      user = node->get<std::string>();
    } else if (node->is_number_integer()) {
      user = node->dump();
    }
    if (header_safe(user)) {
      record.user = std::move(user);
    }
  }
  const auto cookie = document.find("cookie");
  if (cookie != document.end() && cookie->is_object()) {
    const auto max_age = cookie->find("originalMaxAge");
    if (max_age != cookie->end() && max_age->is_number() && max_age->get<double>() > 0 &&
        max_age->get<double>() < 1e15) {
      record.original_max_age_ms = static_cast<int64_t>(max_age->get<double>());
    }
  }
  return record;
}

}  // namespace cachecar
