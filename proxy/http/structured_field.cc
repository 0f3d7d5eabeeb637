#include "http/structured_field.h"

#include "http/chars.h"

namespace cachecar {
namespace {

bool is_lcalpha(char c) { return c >= 'a' && c <= 'z'; }
bool is_alpha(char c) { return is_lcalpha(c) || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The parsing algorithms of RFC 8941 §4.2, over one field value: each step either consumes
// what it reads or returns false, and a false anywhere makes the whole Dictionary invalid.
class SfReader {
 public:
  // RFC 8941 §3.2 asks for at least 1024 members; more is no cache-control field, and keys
  // are matched by a scan (a key seen twice keeps its first place), so the bound also keeps
  // a hostile field from costing a square of its length.
  static constexpr size_t kMaxMembers = 1024;

  explicit SfReader(std::string_view input) : rest_(input) {}

  bool dictionary(std::vector<SfMember>& out) {
    skip_sp();
    while (!rest_.empty()) {
      SfMember member;
      if (!key(member.key)) {
        return false;
      }
      if (consume('=')) {
        if (peek() == '(') {
          if (!inner_list()) {
            return false;
          }
          member.type = SfType::InnerList;
        } else if (!bare_item(member) || !parameters()) {
          return false;
        }
      } else if (!parameters()) {
        return false;
      }
      add(out, std::move(member));
      if (out.size() > kMaxMembers) {
        return false;
      }
      skip_ows();
      if (rest_.empty()) {
        return true;
      }
      if (!consume(',')) {
        return false;
      }
      skip_ows();
      if (rest_.empty()) {
        return false;  // a trailing comma
      }
    }
    return true;  // an empty value: a valid, empty Dictionary
  }

 private:
  char peek() const { return rest_.empty() ? '\0' : rest_.front(); }
  bool consume(char c) {
    if (rest_.empty() || rest_.front() != c) {
      return false;
    }
    rest_.remove_prefix(1);
    return true;
  }
  void skip_sp() {
    while (peek() == ' ') {
      rest_.remove_prefix(1);
    }
  }
  void skip_ows() {
    while (peek() == ' ' || peek() == '\t') {
      rest_.remove_prefix(1);
    }
  }

  static void add(std::vector<SfMember>& out, SfMember member) {
    for (SfMember& existing : out) {
      if (existing.key == member.key) {
        existing = std::move(member);
        return;
      }
    }
    out.push_back(std::move(member));
  }

  // §4.2.3.3
  bool key(std::string& out) {
    const char first = peek();
    if (!is_lcalpha(first) && first != '*') {
      return false;
    }
    size_t length = 1;
    while (length < rest_.size()) {
      const char c = rest_[length];
      if (!is_lcalpha(c) && !is_digit(c) && c != '_' && c != '-' && c != '.' && c != '*') {
        break;
      }
      ++length;
    }
    out.assign(rest_.substr(0, length));
    rest_.remove_prefix(length);
    return true;
  }

  // §4.2.3.2: parameters are checked for form and dropped.
  bool parameters() {
    while (consume(';')) {
      skip_sp();
      std::string name;
      if (!key(name)) {
        return false;
      }
      SfMember value;
      if (consume('=') && !bare_item(value)) {
        return false;
      }
    }
    return true;
  }

  // §4.2.1.2
  bool inner_list() {
    consume('(');
    while (!rest_.empty()) {
      skip_sp();
      if (consume(')')) {
        return parameters();
      }
      SfMember item;
      if (!bare_item(item) || !parameters()) {
        return false;
      }
      if (peek() != ' ' && peek() != ')') {
        return false;
      }
    }
    return false;  // no closing parenthesis
  }

  // §4.2.3.1
  bool bare_item(SfMember& out) {
    const char c = peek();
    if (c == '-' || is_digit(c)) {
      return number(out);
    }
    if (c == '"') {
      return string(out);
    }
    if (is_alpha(c) || c == '*') {
      return token(out);
    }
    if (c == ':') {
      return byte_sequence(out);
    }
    if (c == '?') {
      return boolean(out);
    }
    return false;
  }

  // §4.2.4
  bool number(SfMember& out) {
    const bool negative = consume('-');
    if (!is_digit(peek())) {
      return false;
    }
    size_t length = 0;
    size_t dot = std::string_view::npos;
    while (length < rest_.size()) {
      const char c = rest_[length];
      if (c == '.' && dot == std::string_view::npos) {
        if (length > 12) {
          return false;
        }
        dot = length;
      } else if (!is_digit(c)) {
        break;
      }
      ++length;
    }
    const std::string_view number = rest_.substr(0, length);
    rest_.remove_prefix(length);
    if (dot == std::string_view::npos) {
      if (length > 15) {
        return false;
      }
      int64_t integer = 0;
      for (const char c : number) {
        integer = integer * 10 + (c - '0');
      }
      out.type = SfType::Integer;
      out.integer = negative ? -integer : integer;
      return true;
    }
    const size_t fraction = length - dot - 1;
    out.type = SfType::Decimal;
    return length <= 16 && fraction >= 1 && fraction <= 3;
  }

  // §4.2.5
  bool string(SfMember& out) {
    consume('"');
    out.type = SfType::String;
    while (!rest_.empty()) {
      const char c = rest_.front();
      rest_.remove_prefix(1);
      if (c == '"') {
        return true;
      }
      if (c == '\\') {
        const char escaped = peek();
        if (escaped != '"' && escaped != '\\') {
          return false;
        }
        rest_.remove_prefix(1);
        out.text += escaped;
        continue;
      }
      if (c < 0x20 || c > 0x7e) {
        return false;
      }
      out.text += c;
    }
    return false;  // no closing quote
  }

  // §4.2.6
  bool token(SfMember& out) {
    size_t length = 1;
    while (length < rest_.size() &&
           (is_tchar(rest_[length]) || rest_[length] == ':' || rest_[length] == '/')) {
      ++length;
    }
    out.type = SfType::Token;
    out.text.assign(rest_.substr(0, length));
    rest_.remove_prefix(length);
    return true;
  }

  // §4.2.7
  bool byte_sequence(SfMember& out) {
    consume(':');
    const size_t end = rest_.find(':');
    if (end == std::string_view::npos) {
      return false;
    }
    for (const char c : rest_.substr(0, end)) {
      if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '/' && c != '=') {
        return false;
      }
    }
    out.type = SfType::ByteSequence;
    rest_.remove_prefix(end + 1);
    return true;
  }

  // §4.2.8
  bool boolean(SfMember& out) {
    consume('?');
    const char c = peek();
    if (c != '0' && c != '1') {
      return false;
    }
    rest_.remove_prefix(1);
    out.type = SfType::Boolean;
    out.boolean = c == '1';
    return true;
  }

  std::string_view rest_;
};

}  // namespace

std::optional<std::vector<SfMember>> parse_sf_dictionary(std::string_view value) {
  std::vector<SfMember> members;
  SfReader reader(value);
  if (!reader.dictionary(members)) {
    return std::nullopt;
  }
  return members;
}

}  // namespace cachecar
