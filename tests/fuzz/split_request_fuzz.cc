// Fuzz target: the request parser must not care where the network splits a byte stream. The
// input's first bytes choose split points and the listener's pauses; the rest is a request
// stream, parsed once whole and once in the pieces the split points make, both driven as
// ClientConnection drives the parser (after Paused: resume(), then the rest of that buffer is
// fed again). The messages (head fields, body bytes, completion) and the outcome (error status
// and reason, or mid-message or not) must be identical; any difference aborts.
//
// Input layout: byte 0 holds the pause policy (bits 0-1) and the number of split points (bits
// 2-5); then two bytes per split point (little-endian, taken modulo the stream size + 1);
// then the stream.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "http/parser.h"

namespace cachecar {
namespace {

// What the parser yielded, written as a string so two runs compare with ==. Strings carry
// their length, so no byte sequence in a field can imitate another event.
class Recorder final : public RequestParser::Listener {
 public:
  Recorder(bool pause_after_head, bool pause_after_body)
      : pause_after_head_(pause_after_head), pause_after_body_(pause_after_body) {}

  ParseStep on_request_head(RequestHead& head) override {
    if (in_body_) {
      std::abort();  // a head while the previous message's body is still open
    }
    log_ += "head ";
    field(head.method);
    field(head.target);
    log_ += std::to_string(head.version.major) + "." + std::to_string(head.version.minor);
    log_ += " framing " + std::to_string(static_cast<int>(head.framing)) + " length " +
            std::to_string(head.content_length) + " keep-alive " + std::to_string(head.keep_alive) +
            " expect " + std::to_string(head.expect_continue) + "\n";
    for (const Header& header : head.headers.list()) {
      log_ += "  ";
      field(header.name);
      field(header.value);
      log_ += "\n";
    }
    in_body_ = true;
    return pause_after_head_ ? ParseStep::Pause : ParseStep::Continue;
  }

  ParseStep on_request_body(std::string_view chunk) override {
    if (!in_body_) {
      std::abort();  // body bytes outside a message
    }
    body_.append(chunk);
    return pause_after_body_ ? ParseStep::Pause : ParseStep::Continue;
  }

  ParseStep on_request_complete() override {
    if (!in_body_) {
      std::abort();
    }
    log_ += "body ";
    field(body_);
    log_ += "\ncomplete\n";
    body_.clear();
    in_body_ = false;
    return ParseStep::Pause;  // as ClientConnection: one request at a time
  }

  // The log, with the body bytes of a message still open. After an error those are left out:
  // a chunk whose CRLF is wrong is refused as its data arrives when the CRLF comes in the same
  // buffer, and after its data was passed on when it comes in the next. Either way the stream
  // ends in the same 400 before the message completes.
  std::string finish(bool errored) const {
    std::string out = log_;
    if (in_body_ && !errored) {
      out += "open body " + std::to_string(body_.size()) + ":" + body_ + "\n";
    }
    return out;
  }

 private:
  void field(std::string_view text) {
    log_ += std::to_string(text.size());
    log_ += ':';
    log_.append(text);
    log_ += ' ';
  }

  bool pause_after_head_;
  bool pause_after_body_;
  bool in_body_ = false;
  std::string log_;
  std::string body_;
};

// Small limits, so that 413, 414 and 431 are reachable by short inputs.
constexpr RequestParser::Limits kLimits{1024, 16, 8192};

struct Run {
  std::string log;
  std::string outcome;
};

Run parse(std::string_view stream, const std::vector<size_t>& cuts, bool pause_after_head,
          bool pause_after_body) {
  Recorder recorder(pause_after_head, pause_after_body);
  RequestParser parser(recorder, kLimits);
  std::string outcome = "ok";
  bool errored = false;
  size_t start = 0;
  for (size_t i = 0; i <= cuts.size() && !errored; ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : stream.size();
    std::string_view piece = stream.substr(start, end - start);
    start = end;
    while (!piece.empty()) {
      const ParseResult result = parser.execute(piece);
      if (result.consumed > piece.size()) {
        std::abort();
      }
      if (result.kind == ParseResult::Kind::Error) {
        // The status, not the reason: where one malformed head has two faults (a bare LF
        // and a bad token), which is named first may depend on the split; the answer (this
        // status, and the close) may not.
        outcome = "error " + std::to_string(result.status);
        errored = true;
        break;
      }
      if (result.kind == ParseResult::Kind::Ok) {
        if (result.consumed != piece.size()) {
          std::abort();  // Ok promises every byte was used
        }
        break;
      }
      parser.resume();
      piece.remove_prefix(result.consumed);
    }
  }
  if (!errored && parser.in_message()) {
    outcome = "mid-message";
  }
  return {recorder.finish(errored), outcome};
}

void report(const char* what, const std::string& whole, const std::string& split) {
  std::fprintf(stderr, "split_request_fuzz: %s differ\n--- whole:\n%s\n--- split:\n%s\n", what,
               whole.c_str(), split.c_str());
}

}  // namespace
}  // namespace cachecar

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cachecar;
  if (size == 0) {
    return 0;
  }
  const bool pause_after_head = (data[0] & 1) != 0;
  const bool pause_after_body = (data[0] & 2) != 0;
  const size_t split_count = (data[0] >> 2) & 15;
  size_t at = 1;
  std::vector<uint16_t> raw_cuts;
  for (size_t i = 0; i < split_count && at + 2 <= size; ++i, at += 2) {
    raw_cuts.push_back(static_cast<uint16_t>(data[at] | (data[at + 1] << 8)));
  }
  const std::string_view stream(reinterpret_cast<const char*>(data) + at, size - at);
  std::vector<size_t> cuts;
  for (const uint16_t cut : raw_cuts) {
    cuts.push_back(cut % (stream.size() + 1));
  }
  std::sort(cuts.begin(), cuts.end());

  const Run whole = parse(stream, {}, pause_after_head, pause_after_body);
  const Run split = parse(stream, cuts, pause_after_head, pause_after_body);
  if (whole.log != split.log) {
    report("messages", whole.log, split.log);
    std::abort();
  }
  if (whole.outcome != split.outcome) {
    report("outcomes", whole.outcome, split.outcome);
    std::abort();
  }
  return 0;
}
