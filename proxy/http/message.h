#pragma once
// Plain value types for HTTP/1.1 messages. No parsing, no I/O: the parsers fill these, the
// writers serialise them, and everything in between reads them as data.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cachecar {

// ASCII case-insensitive comparison, as RFC 9110 §5.1 requires for field names.
bool iequals(std::string_view a, std::string_view b);
bool starts_with_ci(std::string_view s, std::string_view prefix);

struct Header {
  std::string name;
  std::string value;
};

class Headers {
 public:
  void add(std::string name, std::string value) {
    list_.push_back({std::move(name), std::move(value)});
  }
  // First value of `name`, or nullopt. For fields that may repeat, use for_each.
  std::optional<std::string_view> get(std::string_view name) const;
  bool contains(std::string_view name) const { return get(name).has_value(); }
  size_t count(std::string_view name) const;
  // Removes every field named `name`; returns how many were removed.
  size_t remove(std::string_view name);
  // Replaces every field named `name` with one field.
  void set(std::string_view name, std::string value);

  template <typename Fn>
  void for_each(std::string_view name, Fn&& fn) const {
    for (const Header& h : list_) {
      if (iequals(h.name, name)) {
        fn(std::string_view(h.value));
      }
    }
  }

  const std::vector<Header>& list() const { return list_; }
  std::vector<Header>& list() { return list_; }
  size_t size() const { return list_.size(); }
  bool empty() const { return list_.empty(); }

 private:
  std::vector<Header> list_;
};

struct HttpVersion {
  int major = 1;
  int minor = 1;
  bool at_least_1_1() const { return major > 1 || (major == 1 && minor >= 1); }
};

// How a message's body is delimited on the wire (RFC 9112 §6).
enum class BodyFraming {
  None,           // no body (GET without length, HEAD responses, 204, 304)
  ContentLength,  // exactly content_length bytes
  Chunked,        // Transfer-Encoding: chunked
  UntilClose,     // responses only: read to EOF
};

struct RequestHead {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // request-target as sent, e.g. "/products/42?x=1"
  HttpVersion version;
  Headers headers;
  BodyFraming framing = BodyFraming::None;
  uint64_t content_length = 0;  // valid when framing == ContentLength
  bool keep_alive = true;       // the client's wish, from version and Connection
  bool expect_continue = false;

  std::string_view path() const;   // target up to '?'
  std::string_view query() const;  // after '?', without it; "" when absent
  bool has_body() const { return framing != BodyFraming::None; }
};

struct ResponseHead {
  int status = 200;
  std::string reason;
  HttpVersion version;
  Headers headers;
  BodyFraming framing = BodyFraming::None;
  uint64_t content_length = 0;
  // Content-Length was sent. With framing None (HEAD, 304) it describes the body a GET would
  // have had, and is passed on.
  bool length_announced = false;
  bool keep_alive = true;  // the upstream's wish; false also when the body ends at EOF
};

// RFC 9110 §9.2.2: methods whose repetition has the same effect, which makes retrying them on
// a fresh connection safe.
bool is_idempotent_method(std::string_view method);
// RFC 9110 §9.2.1: methods that are read-only by definition. Every other method, known or
// not, may change the resource.
bool is_safe_method(std::string_view method);

// The standard reason phrase for a status, or "Unknown".
std::string_view reason_phrase(int status);

}  // namespace cachecar
