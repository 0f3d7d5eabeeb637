// Fuzz target: upstream responses. Parsed as a GET's and as a HEAD's response, with the
// header rules and the cacheability decision applied to each head, as the exchange does.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cache/cacheability.h"
#include "cache/envelope.h"
#include "config/config.h"
#include "http/headers.h"
#include "http/parser.h"

namespace cachecar {
namespace {

class Recorder final : public ResponseParser::Listener {
 public:
  ParseStep on_response_head(ResponseHead& head) override {
    prepare_client_response_headers(head.headers);
    Config::Cache cache;
    cache.respect_cache_control = true;
    (void)decide_storage(head, nullptr, Duration(60'000), cache);
    (void)stored_head_lines(head.headers);
    return ParseStep::Continue;
  }
  ParseStep on_response_body(std::string_view) override { return ParseStep::Continue; }
  ParseStep on_response_complete() override { return ParseStep::Pause; }
};

void run(std::string_view input, bool head_request) {
  Recorder recorder;
  ResponseParser parser(recorder);
  parser.expect_response(head_request);
  while (!input.empty()) {
    const ParseResult result = parser.execute(input);
    if (result.kind != ParseResult::Kind::Paused) {
      break;
    }
    parser.resume();
    parser.expect_response(head_request);
    input.remove_prefix(result.consumed);
  }
  parser.finish();
}

}  // namespace
}  // namespace cachecar

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  cachecar::run(input, false);
  cachecar::run(input, true);
  return 0;
}
