#include "support/http_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <stdexcept>

namespace cachecar::test {

namespace {

constexpr size_t kMaxResponseHead = 1024 * 1024;

// Printable form of protocol bytes for exception messages.
std::string visible(std::string_view bytes, size_t max = 200) {
  std::string out;
  for (const char c : bytes.substr(0, max)) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  if (bytes.size() > max) {
    out += "...";
  }
  return out;
}

// "HTTP/1.1 200 OK" → version, status, reason. The reason may be empty (RFC 9112 §4).
bool parse_status_line(std::string_view line, HttpResponse& response) {
  const size_t first_space = line.find(' ');
  if (first_space == std::string_view::npos || line.substr(0, 5) != "HTTP/") {
    return false;
  }
  response.version = line.substr(0, first_space);
  const std::string_view rest = line.substr(first_space + 1);
  const std::string_view code = rest.substr(0, 3);
  if (code.size() != 3 || (rest.size() > 3 && rest[3] != ' ')) {
    return false;
  }
  const auto [end, error] =
      std::from_chars(code.data(), code.data() + code.size(), response.status);
  if (error != std::errc() || end != code.data() + code.size() || response.status < 100) {
    return false;
  }
  response.reason = rest.size() > 4 ? rest.substr(4) : std::string_view();
  return true;
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  return find_header(headers, name);
}

size_t HttpResponse::header_count(std::string_view name) const {
  return count_header(headers, name);
}

std::vector<std::string> HttpResponse::header_values(std::string_view name) const {
  return cachecar::test::header_values(headers, name);
}

HttpConnection::HttpConnection(int port, std::chrono::milliseconds timeout)
    : port_(port), fd_(connect_loopback(port, timeout)), reader_(fd_.get()) {
  set_io_timeout(fd_.get(), timeout);
}

std::optional<HttpConnection> HttpConnection::try_connect(int port,
                                                          std::chrono::milliseconds timeout) {
  ConnectResult result = try_connect_loopback(port, timeout);
  if (!result.fd.valid()) {
    return std::nullopt;
  }
  HttpConnection connection;
  connection.port_ = port;
  connection.fd_ = std::move(result.fd);
  connection.reader_.set_fd(connection.fd_.get());
  set_io_timeout(connection.fd_.get(), timeout);
  return connection;
}

HttpConnection::HttpConnection(HttpConnection&& other) noexcept = default;
HttpConnection& HttpConnection::operator=(HttpConnection&& other) noexcept = default;

void HttpConnection::set_timeout(std::chrono::milliseconds timeout) {
  set_io_timeout(fd_.get(), timeout);
}

void HttpConnection::send_raw(std::string_view bytes) {
  const IoStatus status = send_all(fd_.get(), bytes);
  if (status != IoStatus::Ok) {
    throw std::runtime_error("send to 127.0.0.1:" + std::to_string(port_) + ": " +
                             std::string(to_string(status)));
  }
}

bool HttpConnection::try_send_raw(std::string_view bytes) {
  return send_all(fd_.get(), bytes) == IoStatus::Ok;
}

void HttpConnection::shutdown_write() { ::shutdown(fd_.get(), SHUT_WR); }

void HttpConnection::close() {
  fd_.reset();
  reader_.set_fd(-1);
}

std::optional<HttpResponse> HttpConnection::read_response(bool head_request) {
  last_error_.clear();
  const ReadResult head = reader_.read_until("\r\n\r\n", kMaxResponseHead);
  if (head.status == IoStatus::TooLarge) {
    throw std::runtime_error("response head from 127.0.0.1:" + std::to_string(port_) +
                             " exceeds 1 MiB");
  }
  if (head.status != IoStatus::Ok) {
    last_error_ = std::string(to_string(head.status));
    if (!head.text.empty()) {
      last_error_ += " after a partial head: " + visible(head.text);
    }
    return std::nullopt;
  }
  HttpResponse response;
  const std::optional<ParsedHead> parsed = parse_head(head.text);
  if (!parsed || !parse_status_line(parsed->start_line, response)) {
    throw std::runtime_error("malformed response head from 127.0.0.1:" + std::to_string(port_) +
                             ": " + visible(head.text));
  }
  response.headers = parsed->headers;

  // RFC 9112 §6.3: these responses end at the empty line whatever their headers say.
  if (head_request || response.is_interim() || response.status == 204 || response.status == 304) {
    response.complete = true;
    return response;
  }
  const ByteSink sink = [this, &response](std::string_view piece) {
    response.body_size += piece.size();
    response.body_checksum = fnv1a(piece, response.body_checksum);
    if (store_body_) {
      response.body.append(piece);
    }
  };
  IoStatus status = IoStatus::Ok;
  bool until_eof = false;
  if (is_chunked(response.headers)) {
    response.chunked = true;
    status = read_chunked_body(reader_, sink, response.trailers);
  } else if (find_header(response.headers, "Transfer-Encoding")) {
    until_eof = true;  // a coding other than chunked last: the body runs to the close
  } else {
    const ContentLengthField length = content_length(response.headers);
    if (length.state == ContentLength::Invalid) {
      throw std::runtime_error("invalid Content-Length in response from 127.0.0.1:" +
                               std::to_string(port_) + ": " + visible(head.text));
    }
    if (length.state == ContentLength::Valid) {
      status = reader_.read_exact(length.value, sink);
    } else {
      until_eof = true;
    }
  }
  if (until_eof) {
    status = reader_.read_to_eof(sink);
    // Only an orderly close ends such a body; a reset or timeout truncated it.
    status = status == IoStatus::Eof ? IoStatus::Ok : status;
  }
  response.complete = status == IoStatus::Ok;
  if (!response.complete) {
    last_error_ = "body incomplete after " + std::to_string(response.body_size) +
                  " bytes: " + std::string(to_string(status));
  }
  return response;
}

HttpResponse HttpConnection::request(std::string_view method, std::string_view target,
                                     const HeaderList& headers, std::string_view body) {
  send_raw(build_request(method, target, headers, body));
  std::vector<int> interim;
  while (true) {
    std::optional<HttpResponse> response = read_response(method == "HEAD");
    if (!response) {
      throw std::runtime_error("no response to " + std::string(method) + " " + std::string(target) +
                               " from 127.0.0.1:" + std::to_string(port_) + ": " + last_error_);
    }
    // 101 ends HTTP on this connection, so it is the final answer here.
    if (response->is_interim() && response->status != 101) {
      interim.push_back(response->status);
      continue;
    }
    response->interim_statuses = std::move(interim);
    return std::move(*response);
  }
}

bool HttpConnection::closed_by_peer(std::chrono::milliseconds within) {
  if (!fd_.valid()) {
    return true;
  }
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (true) {
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{fd_.get(), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::max<long long>(remaining.count(), 0)));
    if (ready == 0) {
      return false;
    }
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    const IoStatus status = reader_.fill();  // readable, so this does not block
    if (status == IoStatus::Eof || status == IoStatus::Reset || status == IoStatus::Error) {
      return true;
    }
  }
}

std::string build_request(std::string_view method, std::string_view target,
                          const HeaderList& headers, std::string_view body) {
  std::string out;
  out.reserve(256 + body.size());
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  if (!find_header(headers, "Host")) {
    out += "Host: test\r\n";
  }
  for (const auto& [name, value] : headers) {
    out.append(name).append(": ").append(value).append("\r\n");
  }
  if (!body.empty() && !find_header(headers, "Content-Length") &&
      !find_header(headers, "Transfer-Encoding")) {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += "\r\n";
  out.append(body);
  return out;
}

HttpResponse http_request(int port, std::string_view method, std::string_view target,
                          const HeaderList& headers, std::string_view body) {
  HeaderList all = headers;
  if (!find_header(all, "Connection")) {
    all.emplace_back("Connection", "close");
  }
  HttpConnection connection(port);
  return connection.request(method, target, all, body);
}

}  // namespace cachecar::test
