#include "support/http_common.h"

#include <charconv>
#include <cstdio>

namespace cachecar::test {

namespace {

constexpr size_t kMaxChunkLine = 4096;
constexpr size_t kMaxTrailerBytes = 64 * 1024;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Splits a comma-separated field value into trimmed, non-empty elements.
std::vector<std::string_view> split_list(std::string_view value) {
  std::vector<std::string_view> items;
  while (true) {
    const size_t comma = value.find(',');
    const std::string_view item = trim(value.substr(0, comma));
    if (!item.empty()) {
      items.push_back(item);
    }
    if (comma == std::string_view::npos) {
      return items;
    }
    value.remove_prefix(comma + 1);
  }
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> find_header(const HeaderList& headers, std::string_view name) {
  for (const auto& [field, value] : headers) {
    if (iequals(field, name)) {
      return value;
    }
  }
  return std::nullopt;
}

size_t count_header(const HeaderList& headers, std::string_view name) {
  size_t count = 0;
  for (const auto& header : headers) {
    if (iequals(header.first, name)) {
      ++count;
    }
  }
  return count;
}

std::vector<std::string> header_values(const HeaderList& headers, std::string_view name) {
  std::vector<std::string> values;
  for (const auto& [field, value] : headers) {
    if (iequals(field, name)) {
      values.push_back(value);
    }
  }
  return values;
}

bool header_has_token(const HeaderList& headers, std::string_view name, std::string_view token) {
  for (const auto& [field, value] : headers) {
    if (!iequals(field, name)) {
      continue;
    }
    for (const std::string_view item : split_list(value)) {
      if (iequals(item, token)) {
        return true;
      }
    }
  }
  return false;
}

std::optional<ParsedHead> parse_head(std::string_view head) {
  ParsedHead parsed;
  size_t line_end = head.find("\r\n");
  parsed.start_line = std::string(head.substr(0, line_end));
  if (parsed.start_line.empty()) {
    return std::nullopt;
  }
  while (line_end != std::string_view::npos) {
    head.remove_prefix(line_end + 2);
    line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    if (line.empty() || line.front() == ' ' || line.front() == '\t') {
      return std::nullopt;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return std::nullopt;
    }
    const std::string_view name = line.substr(0, colon);
    if (name.back() == ' ' || name.back() == '\t') {
      return std::nullopt;
    }
    parsed.headers.emplace_back(std::string(name), std::string(trim(line.substr(colon + 1))));
  }
  return parsed;
}

ContentLengthField content_length(const HeaderList& headers) {
  ContentLengthField field;
  for (const auto& [name, value] : headers) {
    if (!iequals(name, "Content-Length")) {
      continue;
    }
    for (const std::string_view item : split_list(value)) {
      size_t parsed = 0;
      const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), parsed);
      if (error != std::errc() || end != item.data() + item.size()) {
        return {ContentLength::Invalid, 0};
      }
      if (field.state == ContentLength::Valid && field.value != parsed) {
        return {ContentLength::Invalid, 0};
      }
      field = {ContentLength::Valid, parsed};
    }
    if (field.state == ContentLength::Absent) {
      return {ContentLength::Invalid, 0};  // "Content-Length:" with an empty value
    }
  }
  return field;
}

bool is_chunked(const HeaderList& headers) {
  std::string_view last;
  for (const auto& [name, value] : headers) {
    if (iequals(name, "Transfer-Encoding")) {
      const auto items = split_list(value);
      if (!items.empty()) {
        last = items.back();
      }
    }
  }
  return iequals(last, "chunked");
}

IoStatus read_chunked_body(SocketReader& reader, const ByteSink& sink, HeaderList& trailers) {
  while (true) {
    const ReadResult line = reader.read_until("\r\n", kMaxChunkLine);
    if (line.status != IoStatus::Ok) {
      return line.status;
    }
    // Chunk extensions (";name=value") carry nothing a test needs.
    const std::string_view size_text =
        trim(std::string_view(line.text).substr(0, line.text.find(';')));
    size_t size = 0;
    const auto [end, error] =
        std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (size_text.empty() || error != std::errc() || end != size_text.data() + size_text.size()) {
      return IoStatus::Malformed;
    }
    if (size == 0) {
      break;
    }
    const IoStatus status = reader.read_exact(size, sink);
    if (status != IoStatus::Ok) {
      return status;
    }
    const ReadResult crlf = reader.read_until("\r\n", 2);
    if (crlf.status != IoStatus::Ok) {
      return crlf.status == IoStatus::TooLarge ? IoStatus::Malformed : crlf.status;
    }
    if (!crlf.text.empty()) {
      return IoStatus::Malformed;
    }
  }
  // Trailer section: field lines up to an empty line.
  size_t trailer_bytes = 0;
  while (true) {
    const ReadResult line = reader.read_until("\r\n", kMaxChunkLine);
    if (line.status != IoStatus::Ok) {
      return line.status;
    }
    if (line.text.empty()) {
      return IoStatus::Ok;
    }
    trailer_bytes += line.text.size();
    if (trailer_bytes > kMaxTrailerBytes) {
      return IoStatus::TooLarge;
    }
    const size_t colon = line.text.find(':');
    if (colon == std::string::npos || colon == 0) {
      return IoStatus::Malformed;
    }
    trailers.emplace_back(line.text.substr(0, colon),
                          std::string(trim(std::string_view(line.text).substr(colon + 1))));
  }
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
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
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace cachecar::test
