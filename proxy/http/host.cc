#include "http/host.h"

#include <algorithm>

#include "http/chars.h"

namespace cachecar {
namespace {

// IP literals are checked by their brackets' contents being hex digits, '.', ':' only.
bool is_ip_literal_char(char c) { return hex_value(c) >= 0 || c == ':' || c == '.'; }

bool valid_host_value(std::string_view value) {
  const std::string_view host = host_without_port(value);
  const std::string_view port = value.substr(host.size());
  if (!port.empty()) {
    // ":" then digits; an empty port is allowed by RFC 3986 ("host:").
    if (port.front() != ':' ||
        !std::all_of(port.begin() + 1, port.end(), [](char c) { return is_digit(c); }) ||
        port.size() > 6) {
      return false;
    }
  }
  if (host.empty()) {
    return false;
  }
  if (host.front() == '[') {
    return host.size() > 2 && host.back() == ']' &&
           std::all_of(host.begin() + 1, host.end() - 1, is_ip_literal_char);
  }
  // A lambda, not the function's address, so that the check is inlined.
  return std::all_of(host.begin(), host.end(), [](char c) { return is_reg_name_char(c); });
}

bool matches(std::string_view host, std::string_view pattern) {
  if (pattern.substr(0, 2) == "*.") {
    const std::string_view suffix = pattern.substr(1);  // ".example"
    return host.size() > suffix.size() && iequals(host.substr(host.size() - suffix.size()), suffix);
  }
  return iequals(host, pattern);
}

}  // namespace

std::string_view host_without_port(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  return host.substr(0, host.find(':'));
}

bool valid_host_pattern(std::string_view name) {
  const std::string_view host = name.substr(0, 2) == "*." ? name.substr(2) : name;
  // '*' is valid in a reg-name, but in a pattern it is taken for a wildcard misplaced.
  return !host.empty() && host_without_port(host) == host && valid_host_value(host) &&
         std::none_of(host.begin(), host.end(),
                      [](char c) { return (c >= 'A' && c <= 'Z') || c == '*'; });
}

HostCheck check_host(const RequestHead& head, const std::vector<std::string>& allowed) {
  // One pass over the fields, on every request: the count and the value together.
  size_t count = 0;
  std::string_view value;
  head.headers.for_each("Host", [&](std::string_view field) {
    value = field;
    ++count;
  });
  if (count > 1) {
    return {HostVerdict::Malformed, "more than one Host field"};
  }
  if (count == 0) {
    if (head.version.at_least_1_1()) {
      return {HostVerdict::Malformed, "an HTTP/1.1 request without Host"};
    }
    if (allowed.empty()) {
      return {};
    }
    return {HostVerdict::Misdirected, "a Host field is required here"};
  }
  if (!valid_host_value(value)) {
    return {HostVerdict::Malformed, "invalid Host field"};
  }
  if (allowed.empty()) {
    return {};
  }
  const std::string_view host = host_without_port(value);
  for (const std::string& pattern : allowed) {
    if (matches(host, pattern)) {
      return {};
    }
  }
  return {HostVerdict::Misdirected, "this host is not served here"};
}

}  // namespace cachecar
