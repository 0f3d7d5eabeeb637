#include "cache/near_cache.h"

#include <algorithm>
#include <utility>

namespace cachecar {
namespace {

// What an entry costs beyond its bytes: the list node, the index and guard-index nodes, the
// shared response's control block. Counted so that max_bytes bounds memory, not just payload.
constexpr size_t kEntryOverhead = 256;

}  // namespace

NearCache::NearCache(size_t max_bytes, Duration max_ttl)
    : max_bytes_(max_bytes),
      max_ttl_ms_(static_cast<uint64_t>(std::max<int64_t>(0, max_ttl.count()))) {}

void NearCache::set_limits(size_t max_bytes, Duration max_ttl) {
  max_bytes_ = max_bytes;
  max_ttl_ms_ = static_cast<uint64_t>(std::max<int64_t>(0, max_ttl.count()));
  evict_to(max_bytes_);
}

NearCache::Response NearCache::find(std::string_view key, uint64_t now_ms) {
  const auto found = index_.find(key);
  if (found == index_.end()) {
    return nullptr;
  }
  const Lru::iterator entry = found->second;
  if (entry->expires_ms <= now_ms) {
    ++stats_.evictions;
    erase(entry);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, entry);
  ++stats_.hits;
  return entry->response;
}

NearCache::Mark NearCache::mark(std::string_view key) {
  auto found = marks_.find(key);
  if (found == marks_.end()) {
    found = marks_.emplace(std::string(key), MarkState{}).first;
    found->second.mark = next_mark_++;
  }
  ++found->second.readers;
  return found->second.mark;
}

bool NearCache::release(std::string_view key, Mark mark) {
  const auto found = marks_.find(key);
  // Gone, or made anew after an invalidation by a later lookup: this read came before it.
  if (found == marks_.end() || found->second.mark != mark) {
    return false;
  }
  if (--found->second.readers == 0) {
    marks_.erase(found);
  }
  return true;
}

void NearCache::store(std::string_view key, std::string_view guard_key, Response response,
                      uint64_t now_ms, int64_t redis_ttl_ms) {
  const uint64_t lifetime =
      std::min<uint64_t>(max_ttl_ms_, static_cast<uint64_t>(std::max<int64_t>(0, redis_ttl_ms)));
  const size_t bytes = key.size() + guard_key.size() + response->head_lines.size() +
                       response->body.size() + kEntryOverhead;
  if (lifetime == 0 || bytes > max_bytes_) {
    return;
  }
  if (const auto found = index_.find(key); found != index_.end()) {
    erase(found->second);
  }
  evict_to(max_bytes_ - bytes);
  lru_.push_front(Entry{std::string(key), std::string(guard_key), std::move(response),
                        now_ms + lifetime, bytes});
  index_.emplace(lru_.front().key, lru_.begin());
  by_guard_.emplace(lru_.front().guard_key, lru_.front().key);
  bytes_ += bytes;
  ++stats_.stores;
}

void NearCache::invalidate(std::string_view key) {
  drop_mark(key);
  if (const auto found = index_.find(key); found != index_.end()) {
    ++stats_.invalidations;
    erase(found->second);
  }
}

void NearCache::invalidate_guard(std::string_view guard_key) {
  auto [first, last] = by_guard_.equal_range(guard_key);
  std::vector<std::string> keys;
  for (auto it = first; it != last; ++it) {
    keys.push_back(it->second);
  }
  for (const std::string& key : keys) {
    invalidate(key);
  }
}

void NearCache::clear() {
  if (!lru_.empty() || !marks_.empty()) {
    ++stats_.flushes;
  }
  lru_.clear();
  index_.clear();
  by_guard_.clear();
  marks_.clear();
  bytes_ = 0;
}

void NearCache::erase(Lru::iterator entry) {
  auto [first, last] = by_guard_.equal_range(std::string_view(entry->guard_key));
  for (auto it = first; it != last; ++it) {
    if (it->second == entry->key) {
      by_guard_.erase(it);
      break;
    }
  }
  index_.erase(index_.find(std::string_view(entry->key)));
  bytes_ -= entry->bytes;
  lru_.erase(entry);
}

void NearCache::evict_to(size_t max_bytes) {
  while (bytes_ > max_bytes && !lru_.empty()) {
    ++stats_.evictions;
    erase(std::prev(lru_.end()));
  }
}

void NearCache::drop_mark(std::string_view key) {
  if (const auto found = marks_.find(key); found != marks_.end()) {
    marks_.erase(found);
  }
}

}  // namespace cachecar
