#pragma once
// Serialises message heads and body framing. Pure: appends bytes to a std::string that the
// I/O layer writes. Framing is always decided here, never copied from the peer.

#include <cstdint>
#include <string>
#include <string_view>

#include "http/message.h"

namespace cachecar {

// "METHOD target HTTP/1.1", the given headers, then the framing cachecar chose:
// Content-Length for ContentLength, Transfer-Encoding: chunked for Chunked, nothing for None.
// Requires: hop-by-hop fields were already removed from `head.headers`.
void write_request_head(const RequestHead& head, std::string_view target, std::string& out);

struct ResponseFraming {
  BodyFraming framing = BodyFraming::None;
  uint64_t content_length = 0;   // with ContentLength, or announced for HEAD/304
  bool announce_length = false;  // write Content-Length even though no body follows (HEAD)
  bool keep_alive = true;        // false: "Connection: close"
  std::string_view extra_lines;  // "Name: value\r\n" lines added as they are
};

// How an upstream response is framed toward the client, decided from its head, the client's
// HTTP version, whether the client wants a body (not HEAD) and whether the connection may be
// kept. A body without a length goes chunked to HTTP/1.1 clients; an HTTP/1.0 client cannot
// read chunks, so for it the body ends with the connection (RFC 9112 §6.3, §7).
struct ClientFraming {
  ResponseFraming framing;  // extra_lines left empty
  bool chunked = false;     // the body must be re-framed as chunks
  // An HTTP/1.0 client keeps the connection only when told "Connection: keep-alive".
  bool announce_keep_alive = false;
};
ClientFraming frame_for_client(const ResponseHead& upstream, HttpVersion client_version,
                               bool client_wants_body, bool keep_alive);

// "HTTP/1.1 status reason", the given headers, Content-Length or Transfer-Encoding, and
// Connection: close when the connection ends after this response.
void write_response_head(int status, std::string_view reason, const Headers& headers,
                         const ResponseFraming& framing, std::string& out);

// One chunk of a chunked body ("1a\r\n" data "\r\n"); an empty `data` writes nothing, since a
// zero-length chunk would end the body.
void write_chunk(std::string_view data, std::string& out);
// The last chunk and the empty trailer section.
void write_last_chunk(std::string& out);

}  // namespace cachecar
