#include "http/byte_range.h"

#include <charconv>

#include "http/chars.h"

namespace cachecar {
namespace {

std::optional<uint64_t> decimal(std::string_view text) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// The value of the first "Name: value\r\n" line called `name`.
std::optional<std::string_view> stored_field(std::string_view lines, std::string_view name) {
  while (!lines.empty()) {
    const size_t end = lines.find("\r\n");
    const std::string_view line = lines.substr(0, end);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos && iequals(line.substr(0, colon), name)) {
      return trim_ows(line.substr(colon + 1));
    }
    if (end == std::string_view::npos) {
      break;
    }
    lines.remove_prefix(end + 2);
  }
  return std::nullopt;
}

// §13.1.5: If-Range is honoured only with a strong match of the entity tag; a date, a weak
// tag or another tag means "send it all".
bool if_range_allows(std::string_view head_lines, const RequestHead& request) {
  const auto condition = request.headers.get("If-Range");
  if (!condition) {
    return true;
  }
  const auto etag = stored_field(head_lines, "ETag");
  const std::string_view asked = trim_ows(*condition);
  return etag && !asked.starts_with("W/") && asked.starts_with("\"") &&
         !trim_ows(*etag).starts_with("W/") && asked == trim_ows(*etag);
}

}  // namespace

std::optional<ByteRangeSpec> parse_single_byte_range(std::string_view value) {
  value = trim_ows(value);
  constexpr std::string_view kUnit = "bytes=";
  if (value.size() <= kUnit.size() || !iequals(value.substr(0, kUnit.size()), kUnit)) {
    return std::nullopt;
  }
  const std::string_view spec = trim_ows(value.substr(kUnit.size()));
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos || spec.find(',') != std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view first = spec.substr(0, dash);
  const std::string_view last = spec.substr(dash + 1);
  ByteRangeSpec range;
  if (first.empty()) {
    const auto suffix = decimal(last);
    if (!suffix || *suffix == 0) {
      return std::nullopt;  // "-0" is unsatisfiable by any body: left to the origin
    }
    range.suffix_length = *suffix;
    return range;
  }
  range.first = decimal(first);
  if (!range.first) {
    return std::nullopt;
  }
  if (!last.empty()) {
    range.last = decimal(last);
    if (!range.last || *range.last < *range.first) {
      return std::nullopt;
    }
  }
  return range;
}

std::optional<ByteRangeSpec> servable_range(const RequestHead& request) {
  if (request.method != "GET" || request.headers.count("Range") != 1) {
    return std::nullopt;
  }
  return parse_single_byte_range(*request.headers.get("Range"));
}

RangedView cut_to_range(int status, std::string_view head_lines, std::string_view body,
                        const RequestHead& request, std::string& lines_out) {
  RangedView whole{status, head_lines, body};
  const auto range = servable_range(request);
  if (status != 200 || !range || !if_range_allows(head_lines, request)) {
    return whole;
  }
  const uint64_t length = body.size();
  uint64_t first = 0;
  uint64_t last = 0;
  bool satisfiable = length > 0;
  if (!range->first) {
    first = range->suffix_length >= length ? 0 : length - range->suffix_length;
    last = length - 1;
  } else {
    first = *range->first;
    satisfiable = satisfiable && first < length;
    last = range->last && *range->last < length ? *range->last : length - 1;
  }
  if (!satisfiable) {
    lines_out = "Content-Range: bytes */" + std::to_string(length) + "\r\n";
    return RangedView{416, lines_out, {}};
  }
  lines_out.assign(head_lines);
  lines_out += "Content-Range: bytes ";
  lines_out += std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(length);
  lines_out += "\r\n";
  return RangedView{206, lines_out, body.substr(first, last - first + 1)};
}

}  // namespace cachecar
