#pragma once

// HTTP/1.1 pieces shared by the test client (http_client.h) and the test server
// (test_upstream.h): header lists with case-insensitive lookup, head parsing, chunked body
// decoding, reason phrases and JSON string escaping.
//
// The parsing here is deliberately strict about framing (CRLF line ends, valid chunk sizes,
// consistent Content-Length) because its job is to catch a proxy that emits bad framing, and
// deliberately simple about everything else.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/socket_util.h"

namespace cachecar::test {

// Header fields in the order received; names keep their original case.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

bool iequals(std::string_view a, std::string_view b);

// Value of the first field called `name` (case-insensitive), if any.
std::optional<std::string> find_header(const HeaderList& headers, std::string_view name);
size_t count_header(const HeaderList& headers, std::string_view name);
std::vector<std::string> header_values(const HeaderList& headers, std::string_view name);
// True if any `name` field holds `token` in its comma-separated list (case-insensitive), as
// for "Connection: keep-alive, close" or "Transfer-Encoding: gzip, chunked".
bool header_has_token(const HeaderList& headers, std::string_view name, std::string_view token);

struct ParsedHead {
  std::string start_line;
  HeaderList headers;
};

// Parses a message head without its final empty line (lines separated by CRLF). Returns
// nullopt for a header line without a colon, an empty name, whitespace before the colon
// (RFC 9112 §5.1) or obsolete line folding.
std::optional<ParsedHead> parse_head(std::string_view head);

enum class ContentLength { Absent, Valid, Invalid };
struct ContentLengthField {
  ContentLength state = ContentLength::Absent;
  size_t value = 0;
};
// Reads Content-Length; repeated fields or list values must agree (RFC 9110 §8.6).
ContentLengthField content_length(const HeaderList& headers);

// True if the last transfer coding is "chunked" (RFC 9112 §6.3).
bool is_chunked(const HeaderList& headers);

// Decodes a chunked body from `reader`, passing data to `sink` and trailer fields to
// `trailers`. Returns Ok after the last chunk and the trailer section were read.
IoStatus read_chunked_body(SocketReader& reader, const ByteSink& sink, HeaderList& trailers);

// Standard reason phrase, or "Unknown".
std::string_view reason_phrase(int status);

// Escapes `text` for use inside a JSON string literal (without the quotes).
std::string json_escape(std::string_view text);

}  // namespace cachecar::test
