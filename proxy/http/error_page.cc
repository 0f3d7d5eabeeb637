#include "http/error_page.h"

#include "http/message.h"

namespace cachecar {

void append_json_escaped(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (byte < 0x20 || byte == 0x7f) {
          out += "\\u00";
          out += kHex[byte >> 4];
          out += kHex[byte & 0xf];
        } else {
          out += c;
        }
    }
  }
}

std::string json_error_body(std::string_view message) {
  std::string body = "{\"error\":\"";
  append_json_escaped(message, body);
  body += "\"}";
  return body;
}

size_t response_body_size(std::string_view response) {
  const size_t head_end = response.find("\r\n\r\n");
  return head_end == std::string_view::npos ? 0 : response.size() - head_end - 4;
}

std::string error_response(int status, std::string_view message, bool keep_alive,
                           std::string_view extra_headers, bool head_only) {
  const std::string body = json_error_body(message);
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out += reason_phrase(status);
  out += "\r\nContent-Type: application/json\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\n";
  out += extra_headers;
  if (!keep_alive) {
    out += "Connection: close\r\n";
  }
  out += "\r\n";
  if (!head_only) {
    out += body;
  }
  return out;
}

}  // namespace cachecar
