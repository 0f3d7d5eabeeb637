#include "cache/cache_status_field.h"

namespace cachecar {
namespace {

// An sf-string (RFC 8941 §3.3.3): quoted, with " and \ escaped. A key holds only what a
// request target may, so nothing else needs escaping; any other byte is dropped.
void append_sf_string(std::string_view text, std::string& out) {
  out += '"';
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte > 0x7e) {
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  out += '"';
}

}  // namespace

std::string cache_status_value(const CacheStatusReport& report) {
  std::string out = "cachecar";
  if (report.hit) {
    out += "; hit";
  }
  if (!report.fwd.empty()) {
    out += "; fwd=";
    out += report.fwd;
  }
  if (report.fwd_status != 0) {
    out += "; fwd-status=";
    out += std::to_string(report.fwd_status);
  }
  if (report.ttl) {
    out += "; ttl=";
    out += std::to_string(*report.ttl);
  }
  if (report.stored) {
    out += "; stored";
  }
  if (report.collapsed) {
    out += "; collapsed";
  }
  if (!report.key.empty()) {
    out += "; key=";
    append_sf_string(report.key, out);
  }
  if (!report.detail.empty()) {
    out += "; detail=";
    append_sf_string(report.detail, out);
  }
  return out;
}

}  // namespace cachecar
