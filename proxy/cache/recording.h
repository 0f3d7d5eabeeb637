#pragma once
// A response being kept while it streams to the client, so that it can be stored and shared
// with the requests that coalesced onto it. Bounded: past max_object_size it gives up and lets
// the memory go. Pure.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cache/envelope.h"
#include "config/duration.h"

namespace cachecar {

class ResponseRecording {
 public:
  // Starts keeping a response whose head is `status` and `head_lines` (see stored_head_lines).
  // `age_ms`: how old the response already was on arrival; its stored time is backdated by
  // it (cache/http_semantics.h).
  void begin(int status, std::string head_lines, Duration ttl, size_t max_bytes,
             int64_t age_ms = 0);
  // See CachedResponse::variant_selector.
  void set_variant_selector(std::string selector) {
    response_.variant_selector = std::move(selector);
  }
  void set_tags(std::vector<std::string> tags) { response_.tags = std::move(tags); }
  // False once the body outgrew max_bytes: nothing is kept from then on.
  bool add_body(std::string_view chunk);
  // Stops keeping (the response turned out unshareable, or failed).
  void cancel();
  bool recording() const { return recording_; }
  Duration ttl() const { return ttl_; }
  // The kept response, stamped `stored_at_ms` (Unix time) less the age begin() was given;
  // nullptr when not recording.
  std::shared_ptr<const CachedResponse> finish(int64_t stored_at_ms);

 private:
  CachedResponse response_;
  Duration ttl_{0};
  int64_t age_ms_ = 0;
  size_t max_bytes_ = 0;
  bool recording_ = false;
};

}  // namespace cachecar
