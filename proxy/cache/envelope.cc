#include "cache/envelope.h"

#include <cstring>

#include "http/chars.h"
#include "http/headers.h"
#include "http/wire_text.h"

namespace cachecar {
namespace {

constexpr std::string_view kMagic = "CCE1";
constexpr std::string_view kEpochMagic = "CCE2";  // CCE1 plus the cache epoch
// A soft purge's mark: the layout's third letter, and the purge's time after the body.
constexpr size_t kSoftLetter = 2;
constexpr char kSoftMark = 'S';
constexpr size_t kStaleSinceSize = 8;
constexpr size_t kFixedSize = 4 + 8 + 2 + 4 + 4;
constexpr size_t kEpochSize = 8;

void put_le(uint64_t value, size_t bytes, std::string& out) {
  for (size_t i = 0; i < bytes; ++i) {
    out += static_cast<char>((value >> (8 * i)) & 0xff);
  }
}

uint64_t get_le(std::string_view bytes, size_t offset, size_t width) {
  uint64_t value = 0;
  for (size_t i = 0; i < width; ++i) {
    value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return value;
}

bool is_field_value_char(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte == '\t' || (byte >= 0x20 && byte != 0x7f);
}

bool never_stored(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "Set-Cookie", "Age",        "Via", "X-Cache", "Content-Length", "Transfer-Encoding",
      "Connection", "Keep-Alive", "TE",  "Trailer", "Upgrade",
  };
  for (std::string_view never : kNames) {
    if (iequals(name, never)) {
      return true;
    }
  }
  // RateLimit fields (and the older X-RateLimit-*) describe one client's quota at one moment:
  // stored, they would be served to every client.
  return starts_with_ci(name, "Proxy-") || starts_with_ci(name, "RateLimit") ||
         starts_with_ci(name, "X-RateLimit");
}

// Every line "token: value\r\n", and no field cachecar frames or adds itself.
bool valid_head_lines(std::string_view lines, std::string& error) {
  while (!lines.empty()) {
    const size_t end = lines.find("\r\n");
    if (end == std::string_view::npos) {
      error = "header line without CRLF";
      return false;
    }
    const std::string_view line = lines.substr(0, end);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      error = "header line without a name";
      return false;
    }
    const std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!is_tchar(c)) {
        error = "invalid header name";
        return false;
      }
    }
    for (char c : line.substr(colon + 1)) {
      if (!is_field_value_char(c)) {
        error = "invalid byte in a header value";
        return false;
      }
    }
    if (never_stored(name)) {
      error = "stored header " + std::string(name) + " is not allowed";
      return false;
    }
    lines.remove_prefix(end + 2);
  }
  return true;
}

// The layout `bytes` start with, "CCE1"/"CCE2" or, when `soft_marked`, "CCS1"/"CCS2": its
// version digit, '1' or '2'; 0 for any other start.
char layout_version(std::string_view bytes, bool soft_marked) {
  if (bytes.size() < kMagic.size() ||
      bytes.substr(0, kSoftLetter) != kMagic.substr(0, kSoftLetter) ||
      bytes[kSoftLetter] != (soft_marked ? kSoftMark : kMagic[kSoftLetter])) {
    return 0;
  }
  return bytes[3] == kMagic[3] || bytes[3] == kEpochMagic[3] ? bytes[3] : 0;
}

}  // namespace

std::string stored_head_lines(const Headers& headers) {
  std::string lines;
  for (const Header& h : headers.list()) {
    if (never_stored(h.name)) {
      continue;
    }
    lines += h.name;
    lines += ": ";
    lines += h.value;
    lines += "\r\n";
  }
  return lines;
}

std::string encode_envelope(const CachedResponse& response, uint64_t epoch) {
  std::string out;
  out.reserve(kFixedSize + kEpochSize + response.head_lines.size() + response.body.size());
  // Epoch 0 (never bumped) keeps the older layout, which every cachecar version reads.
  out += epoch == 0 ? kMagic : kEpochMagic;
  put_le(static_cast<uint64_t>(response.stored_at_ms), 8, out);
  if (epoch != 0) {
    put_le(epoch, kEpochSize, out);
  }
  put_le(static_cast<uint64_t>(response.status), 2, out);
  put_le(response.head_lines.size(), 4, out);
  out += response.head_lines;
  put_le(response.body.size(), 4, out);
  out += response.body;
  return out;
}

std::optional<CachedResponse> decode_envelope(std::string_view bytes, std::string& error) {
  auto view = view_envelope(bytes, error);
  if (!view) {
    return std::nullopt;
  }
  return CachedResponse{view->status, std::string(view->head_lines), std::string(view->body),
                        view->stored_at_ms};
}

bool carries_soft_purge_mark(std::string_view bytes) {
  const char version = layout_version(bytes, true);
  if (version == 0 || bytes.size() < 4 + kStaleSinceSize) {
    return false;
  }
  bytes.remove_suffix(kStaleSinceSize);
  // Where the head length is: after the magic, the stored time, the epoch (CCE2) and the status.
  size_t at = 4 + 8 + (version == kEpochMagic[3] ? kEpochSize : 0) + 2;
  if (bytes.size() < at + 4) {
    return false;
  }
  at += 4 + get_le(bytes, at, 4);
  return bytes.size() >= at + 4 && at + 4 + get_le(bytes, at, 4) == bytes.size();
}

std::optional<CachedView> view_envelope(std::string_view bytes, std::string& error) {
  // A soft-purged entry reads as the layout it was marked in, its mark's time cut off.
  const bool soft_marked = bytes.size() >= 4 + kStaleSinceSize && bytes[kSoftLetter] == kSoftMark;
  int64_t stale_since_ms = 0;
  if (soft_marked) {
    stale_since_ms = static_cast<int64_t>(get_le(bytes, bytes.size() - kStaleSinceSize, 8));
    bytes.remove_suffix(kStaleSinceSize);
  }
  const char version = layout_version(bytes, soft_marked);
  const bool has_epoch = version == kEpochMagic[3];
  const size_t fixed_size = kFixedSize + (has_epoch ? kEpochSize : 0);
  if (version == 0 || bytes.size() < fixed_size) {
    error = "not a cachecar envelope";
    return std::nullopt;
  }
  if (soft_marked && stale_since_ms <= 0) {
    error = "soft purge mark without a time";
    return std::nullopt;
  }
  CachedView out;
  out.stale_since_ms = stale_since_ms;
  size_t offset = 4;
  out.stored_at_ms = static_cast<int64_t>(get_le(bytes, offset, 8));
  offset += 8;
  if (has_epoch) {
    out.epoch = get_le(bytes, offset, kEpochSize);
    offset += kEpochSize;
    if (out.epoch == 0) {
      // Never written (epoch 0 is CCE1): one layout per entry keeps decode and encode exact.
      error = "CCE2 with epoch 0";
      return std::nullopt;
    }
  }
  out.status = static_cast<int>(get_le(bytes, offset, 2));
  offset += 2;
  if (out.status < 200 || out.status > 599) {
    error = "invalid status";
    return std::nullopt;
  }
  const uint64_t head_length = get_le(bytes, offset, 4);
  offset += 4;
  if (head_length > bytes.size() - offset - 4) {
    error = "truncated header lines";
    return std::nullopt;
  }
  const std::string_view head = bytes.substr(offset, head_length);
  offset += head_length;
  const uint64_t body_length = get_le(bytes, offset, 4);
  offset += 4;
  if (body_length != bytes.size() - offset) {
    error = body_length > bytes.size() - offset ? "truncated body" : "trailing bytes";
    return std::nullopt;
  }
  if (!valid_head_lines(head, error)) {
    return std::nullopt;
  }
  out.head_lines = head;
  out.body = bytes.substr(offset);
  return out;
}

CachedResponse response_from_body(std::string_view body, std::string_view content_type) {
  CachedResponse out;
  out.status = 200;
  out.head_lines = "Content-Type: ";
  out.head_lines += content_type;
  out.head_lines += "\r\n";
  out.body.assign(body);
  return out;
}

void write_cached_response(const CachedView& response, const HitFraming& framing,
                           std::string& out) {
  static constexpr std::string_view kClose = "Connection: close\r\n";
  const std::string_view reason = reason_phrase(response.status);
  const std::string_view body = framing.head_only ? std::string_view() : response.body;
  // The fixed text below, three numbers, and the pieces of variable length.
  const size_t most = 96 + 3 * WireText::kMaxDecimal + reason.size() + response.head_lines.size() +
                      framing.x_cache.size() + kViaValue.size() + framing.extra_headers.size() +
                      kClose.size() + body.size();
  append_wire_text(out, most, [&](WireText& text) {
    text.put("HTTP/1.1 ");
    text.put_count(response.status);
    text.put(' ');
    text.put(reason);
    text.put("\r\n");
    text.put(response.head_lines);
    text.put("Age: ");
    text.put_count(framing.age_seconds);
    text.put("\r\nX-Cache: ");
    text.put(framing.x_cache);
    text.put("\r\nVia: ");
    text.put(kViaValue);
    text.put("\r\n");
    text.put(framing.extra_headers);
    if (response.status != 204) {  // RFC 9110 §8.6: a 204 carries no Content-Length
      text.put("Content-Length: ");
      text.put_decimal(response.body.size());
      text.put("\r\n");
    }
    if (!framing.keep_alive) {
      text.put(kClose);
    }
    text.put("\r\n");
    text.put(body);
  });
}

}  // namespace cachecar
