#pragma once
// HTTP/1.1 request and response parsers over llhttp. Pure: bytes in, callbacks with
// RequestHead/ResponseHead and body pieces out; no socket, no loop.
//
// Each parser owns its llhttp_t, whose `data` points back at the parser, so parsers are
// neither copyable nor movable. Every llhttp leniency stays off (RFC 9112 strict framing):
// ambiguous messages are errors, never guesses.

#include <llhttp.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "http/message.h"

namespace cachecar {

// What a listener tells the parser after each callback (Envoy's CallbackResult).
enum class ParseStep {
  Continue,
  Pause,  // stop right after this callback; resume() then execute() the unconsumed bytes
  Fail,   // the listener rejected the message; the parser reports status 400 unless set
};

struct ParseResult {
  enum class Kind {
    Ok,      // every byte consumed; more may follow
    Paused,  // a callback asked to pause; `consumed` bytes were used
    Error,   // the stream is unusable: answer `status` and close
  };
  Kind kind = Kind::Ok;
  size_t consumed = 0;
  int status = 0;  // with Error: 400, 413, 414, 417, 431, 405 or 501 (requests); 502 (responses)
  std::string_view reason;  // with Error: static text for logs and error bodies
};

// The line structure of the parts of a message made of lines (the head; in chunked requests
// also each chunk-size line and the trailer section), checked byte by byte beside llhttp.
// llhttp 8.1 takes any byte after a CR in several places for the LF it expects (after an empty
// field value, at the end of the header section, after a chunk size, after the status line)
// and a lone LF in others, so its lines could end where another hop's do not. Positions are
// absolute in the stream, so the answer does not depend on where the network split the bytes.
class LineEndings {
 public:
  enum class Region {
    Section,  // lines up to and including an empty line (a head, a trailer section)
    Line,     // one line (a chunk-size line)
  };

  // Starts a region at stream position `at`, at the start of a line or inside one.
  void begin(Region region, uint64_t at, bool at_line_start);
  bool active() const { return state_ != State::Off; }
  uint64_t position() const { return at_; }

  // Checks the bytes of `input` (its first byte at stream position `input_at`) from the next
  // unchecked one up to stream position `until`, or up to where the region ends. Returns
  // nullptr, or static text saying what is wrong (the region then stays unfinished).
  const char* check(std::string_view input, uint64_t input_at, uint64_t until);

 private:
  enum class State { Off, LineStart, InLine, AfterCr, EmptyLineCr };

  Region region_ = Region::Section;
  State state_ = State::Off;
  uint64_t at_ = 0;  // stream position of the next byte to check
};

class RequestParser {
 public:
  class Listener {
   public:
    // The head is complete. The listener may move from `head`.
    virtual ParseStep on_request_head(RequestHead& head) = 0;
    // A piece of the decoded body (chunk framing removed). `chunk` is valid during the call.
    virtual ParseStep on_request_body(std::string_view chunk) = 0;
    virtual ParseStep on_request_complete() = 0;

   protected:
    ~Listener() = default;
  };

  // Extensions are legal on every chunk but nobody needs many bytes of them; without a bound a
  // client could stream megabytes that are neither body nor header.
  static constexpr size_t kMaxChunkExtensionBytes = 1024;

  struct Limits {
    uint64_t max_header_bytes = 16 * 1024;  // request line plus header section
    int max_headers = 100;
    uint64_t max_body_bytes = 10 * 1024 * 1024;
  };

  // Requires: `listener` outlives the parser.
  RequestParser(Listener& listener, const Limits& limits);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  ParseResult execute(std::string_view data);
  // Requires: the last execute() returned Paused.
  void resume();
  // True between the first byte of a message and its end: an idle keep-alive connection is
  // not mid-message, one that sent half a request line is.
  bool in_message() const { return in_message_; }

  void set_limits(const Limits& limits) { limits_ = limits; }

 private:
  static const llhttp_settings_t kSettings;
  // 8 Headers are 512 bytes. 16 would be 1 KiB, which glibc serves from its large bins
  // (after consolidating the small ones): measured, that cost more than the doublings saved.
  static constexpr size_t kTypicalHeaderCount = 8;

  int on_message_begin();
  int on_method(std::string_view piece);
  int on_url(std::string_view piece);
  int on_url_complete();
  int on_version(std::string_view piece);
  int on_header_field(std::string_view piece);
  int on_header_field_complete();
  int on_header_value(std::string_view piece);
  int on_header_value_complete();
  int on_headers_complete();
  int on_body(std::string_view piece);
  int on_chunk_header();
  int on_chunk_extension(std::string_view piece);
  int on_message_complete();

  void add_head_bytes(size_t n);
  bool head_too_large() const;
  int check_head_size();
  int on_token_complete();
  int reject(int status, const char* reason);
  int step(ParseStep step);
  bool check_chunk_crlf();
  uint64_t position_of(const char* p) const;
  int check_lines(const char* until);
  int finish_lines(const char* what);

  Listener& listener_;
  Limits limits_;
  llhttp_t parser_{};
  RequestHead head_;
  std::string field_;
  std::string value_;
  uint64_t head_bytes_ = 0;
  uint64_t target_bytes_ = 0;  // of the target being read, kept or not
  uint64_t body_bytes_ = 0;
  size_t chunk_extension_bytes_ = 0;  // of the chunk header being read
  uint64_t chunk_left_ = 0;           // data bytes of the current chunk not yet seen
  int64_t chunk_crlf_at_ = -1;        // stream position where a chunk's CRLF must be, or -1
  uint64_t stream_offset_ = 0;        // stream position of input_'s first byte
  std::string_view input_;            // the buffer execute() is parsing
  char last_significant_byte_ = 0;    // the last byte consumed that is not SP or HTAB
  LineEndings lines_;
  const char* line_error_ = nullptr;  // found after llhttp returned: the stream stays unusable
  bool in_message_ = false;
  int error_status_ = 0;  // set by reject(); 0 means llhttp found the error (400)
  const char* error_reason_ = nullptr;
};

class ResponseParser {
 public:
  class Listener {
   public:
    // The final (non-1xx) head is complete.
    virtual ParseStep on_response_head(ResponseHead& head) = 0;
    // An interim 1xx head is complete (102 Processing, 103 Early Hints, ...; never 101, which
    // fails the response). Its bytes are consumed either way: the final head follows.
    virtual void on_interim_response(const ResponseHead& /*head*/) {}
    virtual ParseStep on_response_body(std::string_view chunk) = 0;
    virtual ParseStep on_response_complete() = 0;

   protected:
    ~Listener() = default;
  };

  static constexpr uint64_t kMaxHeaderBytes = 64 * 1024;
  static constexpr int kMaxHeaders = 200;

  explicit ResponseParser(Listener& listener);
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Call before each response: whether the request was HEAD (the response then has no body
  // whatever its Content-Length says, RFC 9110 §9.3.2).
  void expect_response(bool to_head_request);
  ParseResult execute(std::string_view data);
  // The peer closed: completes an EOF-delimited body, or reports a truncated message.
  ParseResult finish();
  void resume();
  bool in_message() const { return in_message_; }

 private:
  static const llhttp_settings_t kSettings;

  int on_message_begin();
  int on_version(std::string_view piece);
  int on_status(std::string_view piece);
  int on_header_field(std::string_view piece);
  int on_header_field_complete();
  int on_header_value(std::string_view piece);
  int on_header_value_complete();
  int on_headers_complete();
  int on_body(std::string_view piece);
  int on_message_complete();

  int add_head_bytes(size_t n);
  int fail(const char* reason);
  int step(ParseStep step);
  ParseResult result_from(llhttp_errno_t err, const char* data, size_t size);
  uint64_t position_of(const char* p) const;
  int check_lines(const char* until);

  Listener& listener_;
  llhttp_t parser_{};
  ResponseHead head_;
  std::string field_;
  std::string value_;
  uint64_t stream_offset_ = 0;  // stream position of input_'s first byte
  std::string_view input_;      // the buffer execute() is parsing
  // The head's line endings only. A chunked response's own lines never reach the client
  // (cachecar re-frames the body), so llhttp misreading one affects only this upstream
  // connection, not what any other hop reads.
  LineEndings lines_;
  const char* line_error_ = nullptr;
  uint64_t head_bytes_ = 0;
  int header_count_ = 0;
  bool to_head_request_ = false;
  bool interim_ = false;  // the message being parsed is a 1xx
  bool in_message_ = false;
};

}  // namespace cachecar
