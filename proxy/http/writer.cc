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

ClientFraming frame_for_client(const ResponseHead& upstream, HttpVersion client_version,
                               bool client_wants_body, bool keep_alive) {
  ClientFraming out;
  ResponseFraming& framing = out.framing;
  if (!client_wants_body || upstream.framing == BodyFraming::None) {
    framing.framing = BodyFraming::None;
    framing.announce_length = upstream.length_announced && upstream.status != 204;
    framing.content_length = upstream.content_length;
  } else if (upstream.framing == BodyFraming::ContentLength) {
    framing.framing = BodyFraming::ContentLength;
    framing.content_length = upstream.content_length;
  } else if (client_version.at_least_1_1()) {
    framing.framing = BodyFraming::Chunked;
    out.chunked = true;
  } else {
    framing.framing = BodyFraming::UntilClose;
    keep_alive = false;
  }
  framing.keep_alive = keep_alive;
  out.announce_keep_alive = keep_alive && !client_version.at_least_1_1();
  return out;
}

}  // namespace cachecar
