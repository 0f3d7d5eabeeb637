#include "http/writer.h"

#include <charconv>

namespace cachecar {
namespace {

void append_number(uint64_t value, std::string& out) {
  char buffer[24];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, end);
}

void append_headers(const Headers& headers, std::string& out) {
  for (const Header& h : headers.list()) {
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
}

}  // namespace

void write_request_head(const RequestHead& head, std::string_view target, std::string& out) {
  out += head.method;
  out += ' ';
  out += target;
  out += " HTTP/1.1\r\n";
  append_headers(head.headers, out);
  switch (head.framing) {
    case BodyFraming::ContentLength:
      out += "Content-Length: ";
      append_number(head.content_length, out);
      out += "\r\n";
      break;
    case BodyFraming::Chunked:
      out += "Transfer-Encoding: chunked\r\n";
      break;
    case BodyFraming::None:
    case BodyFraming::UntilClose:
      break;
  }
  out += "\r\n";
}

void write_response_head(int status, std::string_view reason, const Headers& headers,
                         const ResponseFraming& framing, std::string& out) {
  out += "HTTP/1.1 ";
  append_number(static_cast<uint64_t>(status), out);
  out += ' ';
  out += reason.empty() ? reason_phrase(status) : reason;
  out += "\r\n";
  append_headers(headers, out);
  out += framing.extra_lines;
  if (framing.framing == BodyFraming::ContentLength || framing.announce_length) {
    out += "Content-Length: ";
    append_number(framing.content_length, out);
    out += "\r\n";
  } else if (framing.framing == BodyFraming::Chunked) {
    out += "Transfer-Encoding: chunked\r\n";
  }
  if (!framing.keep_alive) {
    out += "Connection: close\r\n";
  }
  out += "\r\n";
}

void write_chunk(std::string_view data, std::string& out) {
  if (data.empty()) {
    return;
  }
  char buffer[20];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), data.size(), 16);
  out.append(buffer, end);
  out += "\r\n";
  out += data;
  out += "\r\n";
}

void write_last_chunk(std::string& out) { out += "0\r\n\r\n"; }

}  // namespace cachecar
