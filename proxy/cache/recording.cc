#include "cache/recording.h"

#include <utility>

namespace cachecar {

void ResponseRecording::begin(int status, std::string head_lines, Duration ttl, size_t max_bytes,
                              int64_t age_ms) {
  response_ = CachedResponse{};
  age_ms_ = age_ms;
  response_.status = status;
  response_.head_lines = std::move(head_lines);
  ttl_ = ttl;
  max_bytes_ = max_bytes;
  recording_ = true;
}

bool ResponseRecording::add_body(std::string_view chunk) {
  if (!recording_) {
    return false;
  }
  if (response_.body.size() + chunk.size() > max_bytes_) {
    cancel();
    return false;
  }
  response_.body.append(chunk);
  return true;
}

void ResponseRecording::cancel() {
  recording_ = false;
  response_ = CachedResponse{};
}

std::shared_ptr<const CachedResponse> ResponseRecording::finish(int64_t stored_at_ms) {
  if (!recording_) {
    return nullptr;
  }
  recording_ = false;
  response_.stored_at_ms = stored_at_ms - age_ms_;
  return std::make_shared<const CachedResponse>(std::exchange(response_, CachedResponse{}));
}

}  // namespace cachecar
