#include "http/parser.h"

#include <algorithm>
#include <cstring>

#include "http/chars.h"
#include "http/headers.h"

namespace cachecar {
namespace {

template <typename T>
struct MemberOf;
template <typename C>
struct MemberOf<int (C::*)(std::string_view)> {
  using type = C;
};
template <typename C>
struct MemberOf<int (C::*)()> {
  using type = C;
};

// llhttp calls C function pointers; these forward to the parser object in `data`
// (node's Proxy<...>::Raw, in C++20).
template <auto Method>
int data_trampoline(llhttp_t* parser, const char* at, size_t length) {
  using Parser = typename MemberOf<decltype(Method)>::type;
  return (static_cast<Parser*>(parser->data)->*Method)(std::string_view(at, length));
}

template <auto Method>
int event_trampoline(llhttp_t* parser) {
  using Parser = typename MemberOf<decltype(Method)>::type;
  return (static_cast<Parser*>(parser->data)->*Method)();
}

// RFC 9110 §5.6.2 tchar.
bool is_token(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) { return is_tchar(c); });
}

// RFC 9112 §5: the field value excludes trailing whitespace.
void trim_trailing_whitespace(std::string& value) {
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.pop_back();
  }
}

ParseResult error_result(size_t consumed, int status, std::string_view reason) {
  return ParseResult{ParseResult::Kind::Error, consumed, status, reason};
}

size_t consumed_until_error(const llhttp_t& parser, const char* data, size_t size) {
  const char* pos = llhttp_get_error_pos(&parser);
  if (pos == nullptr || pos < data || pos > data + size) {
    return size;
  }
  return static_cast<size_t>(pos - data);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// LineEndings

void LineEndings::begin(Region region, uint64_t at, bool at_line_start) {
  region_ = region;
  at_ = at;
  state_ = at_line_start ? State::LineStart : State::InLine;
}

const char* LineEndings::check(std::string_view input, uint64_t input_at, uint64_t until) {
  if (state_ == State::Off) {
    return nullptr;
  }
  if (at_ < input_at) {
    // The parser fed a later buffer without this one's end: never guess about bytes not seen.
    return "line endings not checked";
  }
  const uint64_t end = std::min(until, input_at + input.size());
  for (; at_ < end && state_ != State::Off; ++at_) {
    const char c = input[static_cast<size_t>(at_ - input_at)];
    switch (state_) {
      case State::LineStart:
        if (c == '\r') {
          state_ = State::EmptyLineCr;
          break;
        }
        [[fallthrough]];
      case State::InLine: {
        // RFC 9112 §2.2 lets a recipient take a lone LF as a line end. llhttp 8.1 does after
        // the request line and for the empty line but not after a field value, so a lone LF
        // could end a line here and sit inside one at the next hop; llhttp 9 refuses it unless
        // made lenient. One rule everywhere: CRLF only.
        // Inside a line only CR and LF matter: skip to the first of them at memchr's speed
        // (byte by byte, this check cost more than llhttp's own parse of a head).
        const char* from = input.data() + (at_ - input_at);
        const size_t left = static_cast<size_t>(end - at_);
        const void* cr = std::memchr(from, '\r', left);
        const size_t span =
            cr == nullptr ? left : static_cast<size_t>(static_cast<const char*>(cr) - from);
        if (const void* lf = std::memchr(from, '\n', span)) {
          at_ += static_cast<uint64_t>(static_cast<const char*>(lf) - from);
          return "LF not preceded by CR";
        }
        at_ += span;
        if (cr == nullptr) {
          state_ = State::InLine;
          return nullptr;  // the buffer, or the part to check, ends inside the line
        }
        state_ = State::AfterCr;
        break;
      }
      case State::AfterCr:
      case State::EmptyLineCr:
        // RFC 9112 §2.2: a bare CR is invalid, and a recipient must treat it as such or
        // replace it with SP before processing or forwarding. llhttp 8.1 instead takes the
        // byte after it as the LF (see the class comment).
        if (c != '\n') {
          return "CR not followed by LF";
        }
        if (state_ == State::EmptyLineCr || region_ == Region::Line) {
          state_ = State::Off;
        } else {
          state_ = State::LineStart;
        }
        break;
      case State::Off:
        break;
    }
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// RequestParser

const llhttp_settings_t RequestParser::kSettings = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_message_begin = event_trampoline<&RequestParser::on_message_begin>;
  s.on_method = data_trampoline<&RequestParser::on_method>;
  s.on_method_complete = event_trampoline<&RequestParser::on_token_complete>;
  s.on_url = data_trampoline<&RequestParser::on_url>;
  s.on_url_complete = event_trampoline<&RequestParser::on_url_complete>;
  s.on_version = data_trampoline<&RequestParser::on_version>;
  s.on_version_complete = event_trampoline<&RequestParser::on_token_complete>;
  s.on_header_field = data_trampoline<&RequestParser::on_header_field>;
  s.on_header_field_complete = event_trampoline<&RequestParser::on_header_field_complete>;
  s.on_header_value = data_trampoline<&RequestParser::on_header_value>;
  s.on_header_value_complete = event_trampoline<&RequestParser::on_header_value_complete>;
  s.on_headers_complete = event_trampoline<&RequestParser::on_headers_complete>;
  s.on_body = data_trampoline<&RequestParser::on_body>;
  s.on_chunk_header = event_trampoline<&RequestParser::on_chunk_header>;
  s.on_chunk_extension_name = data_trampoline<&RequestParser::on_chunk_extension>;
  s.on_chunk_extension_value = data_trampoline<&RequestParser::on_chunk_extension>;
  s.on_message_complete = event_trampoline<&RequestParser::on_message_complete>;
  return s;
}();

RequestParser::RequestParser(Listener& listener, const Limits& limits)
    : listener_(listener), limits_(limits) {
  llhttp_init(&parser_, HTTP_REQUEST, &kSettings);
  parser_.data = this;
}

ParseResult RequestParser::execute(std::string_view data) {
  input_ = data;
  if (line_error_ != nullptr) {
    return error_result(0, 400, line_error_);
  }
  // The CRLF after a chunk's data, when that data ended the previous buffer (see on_body).
  if (!check_chunk_crlf()) {
    return error_result(0, 400, "chunk data not followed by CRLF");
  }
  const llhttp_errno_t err = llhttp_execute(&parser_, data.data(), data.size());
  // llhttp's error position is stale after a clean run: everything was consumed then.
  const size_t consumed =
      err == HPE_OK ? data.size() : consumed_until_error(parser_, data.data(), data.size());
  if (err == HPE_OK || err == HPE_PAUSED) {
    // The bytes of a line region that no callback has checked yet (this buffer ended inside
    // it); they are gone once this returns.
    line_error_ = lines_.check(data, stream_offset_, stream_offset_ + consumed);
    if (line_error_ != nullptr) {
      return error_result(static_cast<size_t>(lines_.position() - stream_offset_), 400,
                          line_error_);
    }
  }
  for (size_t i = consumed; i > 0; --i) {
    if (data[i - 1] != ' ' && data[i - 1] != '\t') {
      last_significant_byte_ = data[i - 1];
      break;
    }
  }
  stream_offset_ += consumed;
  switch (err) {
    case HPE_OK:
      return ParseResult{ParseResult::Kind::Ok, data.size(), 0, {}};
    case HPE_PAUSED:
      return ParseResult{ParseResult::Kind::Paused, consumed, 0, {}};
    default:
      break;
  }
  if (error_status_ != 0) {
    return error_result(consumed, error_status_, error_reason_);
  }
  const char* reason = llhttp_get_error_reason(&parser_);
  return error_result(consumed, 400, reason != nullptr ? reason : "malformed request");
}

void RequestParser::resume() { llhttp_resume(&parser_); }

int RequestParser::reject(int status, const char* reason) {
  error_status_ = status;
  error_reason_ = reason;
  llhttp_set_error_reason(&parser_, reason);
  return HPE_USER;
}

int RequestParser::step(ParseStep step) {
  switch (step) {
    case ParseStep::Continue:
      return 0;
    case ParseStep::Pause:
      return HPE_PAUSED;
    case ParseStep::Fail:
      break;
  }
  return error_status_ != 0 ? HPE_USER : reject(400, "request rejected");
}

// Pieces of a token are counted as they come, but the verdict waits for the token's end
// (check_head_size): llhttp hands a token over in one piece when it ends inside a buffer and
// in several when buffers end inside it, and finds a token malformed only at its bad byte. A
// 431 given on a piece would answer a split stream differently from the same bytes whole
// (400 for the syntax). Memory stays bounded: an over-long token is no longer kept.
void RequestParser::add_head_bytes(size_t n) { head_bytes_ += n; }

bool RequestParser::head_too_large() const { return head_bytes_ > limits_.max_header_bytes; }

int RequestParser::check_head_size() {
  return head_too_large() ? reject(431, "request header section too large") : 0;
}

int RequestParser::on_token_complete() { return check_head_size(); }

// Requires: `p` points into (or just past) input_.
uint64_t RequestParser::position_of(const char* p) const {
  return stream_offset_ + static_cast<uint64_t>(p - input_.data());
}

int RequestParser::check_lines(const char* until) {
  if (const char* error = lines_.check(input_, stream_offset_, position_of(until))) {
    return reject(400, error);
  }
  return 0;
}

// llhttp has just ended a line region, with its last byte in input_: the region's own line
// endings must end it there too.
int RequestParser::finish_lines(const char* what) {
  if (const int result = check_lines(input_.data() + input_.size()); result != 0) {
    return result;
  }
  return lines_.active() ? reject(400, what) : 0;
}

int RequestParser::on_message_begin() {
  head_ = RequestHead{};
  // One allocation for the fields of a typical request, not one per doubling with every
  // Header moved each time.
  head_.headers.list().reserve(kTypicalHeaderCount);
  field_.clear();
  value_.clear();
  head_bytes_ = 0;
  target_bytes_ = 0;
  body_bytes_ = 0;
  in_message_ = true;
  return 0;
}

int RequestParser::on_method(std::string_view piece) {
  if (head_.method.empty() && !piece.empty()) {
    // The head starts here: llhttp has skipped any empty lines before the request line.
    lines_.begin(LineEndings::Region::Section, position_of(piece.data()), false);
  }
  add_head_bytes(piece.size());
  if (!head_too_large()) {
    head_.method.append(piece);
  }
  return 0;
}

int RequestParser::on_url(std::string_view piece) {
  // RFC 9112 §3.2: the request-target is made of URI characters, all US-ASCII (RFC 3986 §2).
  // llhttp 8.1 passes raw bytes >= 0x80 in the path, query and fragment; hops that decode
  // them (as UTF-8, Latin-1, or by dropping them) would each name a different resource than
  // the key cachecar computed, and RFC 9112 §3 warns against autocorrecting such a line,
  // which "might be deliberately crafted to bypass security filters".
  // Checked when the target is complete, like its length: see add_head_bytes.
  target_bytes_ += piece.size();
  if (target_bytes_ <= limits_.max_header_bytes) {
    head_.target.append(piece);
  }
  return 0;
}

int RequestParser::on_url_complete() {
  // The target alone decides 414; it joins the header-section count only once complete.
  if (target_bytes_ > limits_.max_header_bytes) {
    return reject(414, "request target too long");
  }
  if (!std::all_of(head_.target.begin(), head_.target.end(), [](char c) { return is_ascii(c); })) {
    return reject(400, "unencoded non-ASCII byte in the request target");
  }
  add_head_bytes(head_.target.size());
  return check_head_size();
}

int RequestParser::on_version(std::string_view piece) {
  add_head_bytes(piece.size());
  return 0;
}

int RequestParser::on_header_field(std::string_view piece) {
  // The line endings before this field (of the head, or of the trailer section), before its
  // bytes count against a limit: the answer is then the same wherever the bytes were split.
  if (const int result = check_lines(piece.data() + piece.size()); result != 0) {
    return result;
  }
  add_head_bytes(piece.size());
  if (!head_too_large()) {
    field_.append(piece);
  }
  return 0;
}

int RequestParser::on_header_field_complete() {
  if (const int result = check_head_size(); result != 0) {
    return result;
  }
  // llhttp 8.1 checks the names it interprets itself; every other name is checked here, so
  // "Host : x" or "Bad Name: x" cannot reach the upstream as a field another hop would read
  // differently (RFC 9112 §5.1).
  if (!is_token(field_)) {
    return reject(400, "invalid header field name");
  }
  if (static_cast<int>(head_.headers.size()) >= limits_.max_headers) {
    return reject(431, "too many request header fields");
  }
  return 0;
}

int RequestParser::on_header_value(std::string_view piece) {
  // llhttp 8.1 accepts obs-fold (a value continued on a line starting with whitespace) and
  // hands the continuation over as another piece, which starts right after the line break.
  // RFC 9112 §5.2 lets a server reject it, and a proxy should: hops disagree on its meaning.
  // What precedes the piece, past any whitespace llhttp skipped, tells: a line break.
  const char* cursor = piece.data();
  char before = 0;
  while (true) {
    if (cursor == input_.data()) {
      before = last_significant_byte_;  // the whitespace began in an earlier buffer
      break;
    }
    before = *--cursor;
    if (before != ' ' && before != '\t') {
      break;
    }
  }
  if (!piece.empty() && before == '\n') {
    return reject(400, "obsolete line folding in a header value");
  }
  if (const int result = check_lines(piece.data() + piece.size()); result != 0) {
    return result;
  }
  add_head_bytes(piece.size());
  if (!head_too_large()) {
    value_.append(piece);
  }
  return 0;
}

int RequestParser::on_header_value_complete() {
  if (const int result = check_head_size(); result != 0) {
    return result;
  }
  trim_trailing_whitespace(value_);
  // llhttp 8.1 reads an empty Transfer-Encoding as none and frames the body by Content-Length
  // (or as absent), while a hop that goes by the field's presence lets it override the length
  // (RFC 9112 §6.3 rule 3). Both fields together "ought to be handled as an error" (rule 3; a
  // sender MUST NOT send both, §6.1), and a request whose Transfer-Encoding does not end in
  // chunked MUST get 400 and a close (rule 4): an empty list ends in nothing.
  if (value_.empty() && iequals(field_, "Transfer-Encoding")) {
    return reject(400, "empty Transfer-Encoding");
  }
  head_.headers.add(std::move(field_), std::move(value_));
  field_.clear();
  value_.clear();
  add_head_bytes(4);  // ": " and CRLF
  return check_head_size();
}

int RequestParser::on_headers_complete() {
  if (const int result = finish_lines("header section not ended by CRLF CRLF"); result != 0) {
    return result;
  }
  head_.version = HttpVersion{parser_.http_major, parser_.http_minor};
  if (parser_.method == HTTP_CONNECT) {
    return reject(405, "CONNECT is not supported");
  }
  if (parser_.http_major != 1) {
    return reject(505, "only HTTP/1.x is supported");
  }
  // cachecar never switches protocols; Upgrade is stripped as hop-by-hop and the request is
  // handled as plain HTTP, so llhttp must keep parsing this connection as HTTP.
  parser_.upgrade = 0;
  if (parser_.flags & F_CHUNKED) {
    head_.framing = BodyFraming::Chunked;
    lines_.begin(LineEndings::Region::Line, lines_.position(), false);  // the first chunk size
  } else if (parser_.flags & F_CONTENT_LENGTH) {
    head_.framing = BodyFraming::ContentLength;
    head_.content_length = parser_.content_length;
    if (head_.content_length > limits_.max_body_bytes) {
      return reject(413, "request body too large");
    }
  }
  head_.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
  if (auto expect = head_.headers.get("Expect")) {
    if (!iequals(*expect, "100-continue")) {
      return reject(417, "unsupported expectation");
    }
    head_.expect_continue = head_.has_body();
  }
  if (has_token(head_.headers, "Connection", "close")) {
    head_.keep_alive = false;
  }
  return step(listener_.on_request_head(head_));
}

int RequestParser::on_body(std::string_view piece) {
  body_bytes_ += piece.size();
  if (body_bytes_ > limits_.max_body_bytes) {
    return reject(413, "request body too large");
  }
  if (head_.framing == BodyFraming::Chunked && !piece.empty() && piece.size() <= chunk_left_) {
    chunk_left_ -= piece.size();
    if (chunk_left_ == 0) {
      // llhttp 8.1 takes any two bytes after a chunk's data as its CRLF, so "5\r\nhelloXX"
      // would pass: a smuggling gap between hops that check and hops that do not.
      const uint64_t data_end = position_of(piece.data() + piece.size());
      chunk_crlf_at_ = static_cast<int64_t>(data_end);
      if (!check_chunk_crlf()) {
        return reject(400, "chunk data not followed by CRLF");
      }
      // The next chunk-size line starts after that CRLF.
      lines_.begin(LineEndings::Region::Line, data_end + 2, false);
    }
  }
  return step(listener_.on_request_body(piece));
}

// Checks whichever bytes of the expected chunk CRLF lie in the current buffer. Positions are
// absolute in the stream, so a byte seen twice (the same buffer re-fed after a pause) is
// simply checked twice.
bool RequestParser::check_chunk_crlf() {
  if (chunk_crlf_at_ < 0) {
    return true;
  }
  const auto begin = static_cast<int64_t>(stream_offset_);
  const int64_t end = begin + static_cast<int64_t>(input_.size());
  for (int64_t i = 0; i < 2; ++i) {
    const int64_t position = chunk_crlf_at_ + i;
    if (position < begin || position >= end) {
      continue;
    }
    if (input_[static_cast<size_t>(position - begin)] != (i == 0 ? '\r' : '\n')) {
      return false;
    }
  }
  if (chunk_crlf_at_ + 1 < end) {
    chunk_crlf_at_ = -1;  // both bytes seen
  }
  return true;
}

int RequestParser::on_chunk_header() {
  if (const int result = finish_lines("chunk size not followed by CRLF"); result != 0) {
    return result;
  }
  chunk_extension_bytes_ = 0;  // the count is per chunk; this callback ends a chunk's header
  chunk_left_ = parser_.content_length;  // llhttp's documented place for the chunk size
  if (chunk_left_ == 0) {
    // The last chunk: the trailer section follows, ended by an empty line (RFC 9112 §7.1).
    lines_.begin(LineEndings::Region::Section, lines_.position(), true);
  }
  return 0;
}

int RequestParser::on_chunk_extension(std::string_view piece) {
  if (const int result = check_lines(piece.data() + piece.size()); result != 0) {
    return result;
  }
  chunk_extension_bytes_ += piece.size();
  if (chunk_extension_bytes_ > kMaxChunkExtensionBytes) {
    return reject(400, "chunk extensions too long");
  }
  return 0;
}

int RequestParser::on_message_complete() {
  if (lines_.active()) {  // a chunked message's trailer section
    if (const int result = finish_lines("trailer section not ended by CRLF"); result != 0) {
      return result;
    }
  }
  in_message_ = false;
  return step(listener_.on_request_complete());
}

// ---------------------------------------------------------------------------------------------
// ResponseParser

const llhttp_settings_t ResponseParser::kSettings = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_message_begin = event_trampoline<&ResponseParser::on_message_begin>;
  s.on_version = data_trampoline<&ResponseParser::on_version>;
  s.on_status = data_trampoline<&ResponseParser::on_status>;
  s.on_header_field = data_trampoline<&ResponseParser::on_header_field>;
  s.on_header_field_complete = event_trampoline<&ResponseParser::on_header_field_complete>;
  s.on_header_value = data_trampoline<&ResponseParser::on_header_value>;
  s.on_header_value_complete = event_trampoline<&ResponseParser::on_header_value_complete>;
  s.on_headers_complete = event_trampoline<&ResponseParser::on_headers_complete>;
  s.on_body = data_trampoline<&ResponseParser::on_body>;
  s.on_message_complete = event_trampoline<&ResponseParser::on_message_complete>;
  return s;
}();

ResponseParser::ResponseParser(Listener& listener) : listener_(listener) {
  llhttp_init(&parser_, HTTP_RESPONSE, &kSettings);
  parser_.data = this;
}

void ResponseParser::expect_response(bool to_head_request) { to_head_request_ = to_head_request; }

ParseResult ResponseParser::result_from(llhttp_errno_t err, const char* data, size_t size) {
  const size_t consumed = consumed_until_error(parser_, data, size);
  switch (err) {
    case HPE_OK:
      return ParseResult{ParseResult::Kind::Ok, size, 0, {}};
    case HPE_PAUSED:
      return ParseResult{ParseResult::Kind::Paused, consumed, 0, {}};
    default:
      break;
  }
  const char* reason = llhttp_get_error_reason(&parser_);
  return error_result(consumed, 502, reason != nullptr ? reason : "invalid upstream response");
}

ParseResult ResponseParser::execute(std::string_view data) {
  input_ = data;
  if (line_error_ != nullptr) {
    return error_result(0, 502, line_error_);
  }
  ParseResult result =
      result_from(llhttp_execute(&parser_, data.data(), data.size()), data.data(), data.size());
  if (result.kind != ParseResult::Kind::Error) {
    // As in RequestParser::execute: the head's bytes no callback has checked yet.
    line_error_ = lines_.check(data, stream_offset_, stream_offset_ + result.consumed);
    if (line_error_ != nullptr) {
      result =
          error_result(static_cast<size_t>(lines_.position() - stream_offset_), 502, line_error_);
    }
  }
  stream_offset_ += result.consumed;
  return result;
}

ParseResult ResponseParser::finish() {
  const llhttp_errno_t err = llhttp_finish(&parser_);
  if (err == HPE_OK) {
    return ParseResult{ParseResult::Kind::Ok, 0, 0, {}};
  }
  if (err == HPE_PAUSED) {
    return ParseResult{ParseResult::Kind::Paused, 0, 0, {}};
  }
  return error_result(0, 502, "upstream closed the connection mid-response");
}

void ResponseParser::resume() { llhttp_resume(&parser_); }

int ResponseParser::add_head_bytes(size_t n) {
  head_bytes_ += n;
  if (head_bytes_ > kMaxHeaderBytes) {
    llhttp_set_error_reason(&parser_, "upstream response header section too large");
    return HPE_USER;
  }
  return 0;
}

int ResponseParser::fail(const char* reason) {
  llhttp_set_error_reason(&parser_, reason);
  return HPE_USER;
}

// Requires: `p` points into (or just past) input_.
uint64_t ResponseParser::position_of(const char* p) const {
  return stream_offset_ + static_cast<uint64_t>(p - input_.data());
}

int ResponseParser::check_lines(const char* until) {
  const char* error = lines_.check(input_, stream_offset_, position_of(until));
  return error != nullptr ? fail(error) : 0;
}

int ResponseParser::step(ParseStep step) {
  switch (step) {
    case ParseStep::Continue:
      return 0;
    case ParseStep::Pause:
      return HPE_PAUSED;
    case ParseStep::Fail:
      break;
  }
  llhttp_set_error_reason(&parser_, "response rejected");
  return HPE_USER;
}

int ResponseParser::on_message_begin() {
  head_ = ResponseHead{};
  field_.clear();
  value_.clear();
  head_bytes_ = 0;
  header_count_ = 0;
  interim_ = false;
  in_message_ = true;
  return 0;
}

int ResponseParser::on_version(std::string_view piece) {
  if (!lines_.active() && !piece.empty()) {
    // The first byte checked is the version's, past the "HTTP/" that llhttp matched itself.
    lines_.begin(LineEndings::Region::Section, position_of(piece.data()), false);
  }
  return add_head_bytes(piece.size());
}

int ResponseParser::on_status(std::string_view piece) {
  head_.reason.append(piece);
  return add_head_bytes(piece.size());
}

int ResponseParser::on_header_field(std::string_view piece) {
  if (const int result = check_lines(piece.data() + piece.size()); result != 0) {
    return result;
  }
  field_.append(piece);
  return add_head_bytes(piece.size());
}

int ResponseParser::on_header_field_complete() {
  if (!is_token(field_)) {
    llhttp_set_error_reason(&parser_, "invalid header field name in upstream response");
    return HPE_USER;
  }
  if (++header_count_ > kMaxHeaders) {
    llhttp_set_error_reason(&parser_, "too many upstream response header fields");
    return HPE_USER;
  }
  return 0;
}

int ResponseParser::on_header_value(std::string_view piece) {
  if (const int result = check_lines(piece.data() + piece.size()); result != 0) {
    return result;
  }
  value_.append(piece);
  return add_head_bytes(piece.size());
}

int ResponseParser::on_header_value_complete() {
  trim_trailing_whitespace(value_);
  head_.headers.add(std::move(field_), std::move(value_));
  field_.clear();
  value_.clear();
  return add_head_bytes(4);
}

int ResponseParser::on_headers_complete() {
  // RFC 9112 §2.2, as for requests (LineEndings): llhttp 8.1 takes any byte after the CR of
  // the status line, of an empty field value or of the empty line for its LF.
  if (const int result = check_lines(input_.data() + input_.size()); result != 0) {
    return result;
  }
  if (lines_.active()) {
    return fail("upstream response header section not ended by CRLF CRLF");
  }
  head_.status = parser_.status_code;
  head_.version = HttpVersion{parser_.http_major, parser_.http_minor};
  if (head_.status == 101) {
    // cachecar strips Upgrade from requests, so a switch of protocols was never asked for.
    llhttp_set_error_reason(&parser_, "unexpected 101 Switching Protocols");
    return HPE_USER;
  }
  if (head_.status >= 100 && head_.status < 200) {
    interim_ = true;
    listener_.on_interim_response(head_);
    return 0;
  }
  parser_.upgrade = 0;
  const bool no_body = to_head_request_ || head_.status == 204 || head_.status == 304;
  if (no_body) {
    // llhttp sets this itself only after this callback returns; keep-alive must know now
    // that no body (and so no read-until-close) follows.
    parser_.flags |= F_SKIPBODY;
    head_.framing = BodyFraming::None;
    // Keep the length the upstream announced: for HEAD it describes the GET body.
    if (parser_.flags & F_CONTENT_LENGTH) {
      head_.content_length = parser_.content_length;
      head_.length_announced = true;
    }
  } else if (parser_.flags & F_CHUNKED) {
    head_.framing = BodyFraming::Chunked;
  } else if ((parser_.flags & F_CONTENT_LENGTH) && !(parser_.flags & F_TRANSFER_ENCODING)) {
    head_.framing = BodyFraming::ContentLength;
    head_.content_length = parser_.content_length;
    head_.length_announced = true;
  } else {
    head_.framing = BodyFraming::UntilClose;
  }
  head_.keep_alive =
      llhttp_should_keep_alive(&parser_) != 0 && head_.framing != BodyFraming::UntilClose;
  const int result = step(listener_.on_response_head(head_));
  if (no_body && (result == 0 || result == HPE_PAUSED)) {
    // Only 1 tells llhttp that no body follows; a pause cannot be combined with it, and a
    // listener that pauses on a head is going away anyway.
    return 1;
  }
  return result;
}

int ResponseParser::on_body(std::string_view piece) {
  if (interim_) {
    return 0;
  }
  return step(listener_.on_response_body(piece));
}

int ResponseParser::on_message_complete() {
  if (interim_) {
    interim_ = false;
    in_message_ = false;
    return 0;
  }
  in_message_ = false;
  return step(listener_.on_response_complete());
}

}  // namespace cachecar
