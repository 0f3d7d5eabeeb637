#pragma once
// The JSON error responses cachecar produces itself ({"error": "..."}), so that every error a
// client sees has the same shape whether it came from a limit, a timeout or the upstream.

#include <string>
#include <string_view>

namespace cachecar {

// Escapes `text` for use inside a JSON string literal (quotes not included).
void append_json_escaped(std::string_view text, std::string& out);

// {"error":"<message>"}
std::string json_error_body(std::string_view message);

// A complete response: status line, Content-Type, Content-Length, the body, and
// Connection: close when `keep_alive` is false. `extra_headers` is inserted verbatim (each
// line ending in CRLF) for callers that add Retry-After and the like. For a HEAD request
// (`head_only`) the body is left out and Content-Length still describes it (RFC 9110 §9.3.2).
std::string error_response(int status, std::string_view message, bool keep_alive,
                           std::string_view extra_headers = {}, bool head_only = false);

// The body bytes of a complete response such as error_response() returns (0 for head_only),
// for the access log.
size_t response_body_size(std::string_view response);

}  // namespace cachecar
