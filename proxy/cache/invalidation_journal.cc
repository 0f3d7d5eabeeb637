#include "cache/invalidation_journal.h"

#include <algorithm>

namespace cachecar {

bool InvalidationJournal::record(const RequestPlan& plan, std::string_view fence_token) {
  const size_t count = plan.invalidate_keys.size();
  stats_.recorded += count;
  for (size_t i = 0; i < count; ++i) {
    const std::string& guard = plan.invalidate_guards[i];
    auto found = owed_.find(guard);
    if (found != owed_.end()) {
      found->second.record = ++last_record_;
      if (!fence_token.empty()) {
        std::string& lifting = found->second.keys.lifting;
        lifting += lifting.empty() ? "" : ",";
        lifting += fence_token;
      }
      continue;
    }
    if (owed_.size() >= max_keys_) {
      // The epoch makes every entry stored before its bump a miss: these keys and all the
      // others owed are covered by it, so their memory is given back.
      ++stats_.overflows;
      owed_.clear();
      record_epoch_bump(plan.epoch_key);
      return false;
    }
    owed_.emplace(guard, Entry{{plan.invalidate_keys[i], guard, plan.invalidate_variants[i],
                                plan.invalidate_fences[i], std::string(fence_token)},
                               ++last_record_});
  }
  return true;
}

void InvalidationJournal::record_epoch_bump(const std::string& epoch_key) {
  epoch_record_ = ++last_record_;
  if (std::find(epoch_keys_.begin(), epoch_keys_.end(), epoch_key) == epoch_keys_.end()) {
    epoch_keys_.push_back(epoch_key);
  }
}

InvalidationJournal::Batch InvalidationJournal::next_batch(size_t max_keys) const {
  Batch batch;
  batch.epoch_record = epoch_record_;
  if (epoch_record_ != 0) {
    batch.epoch_keys = epoch_keys_;
  }
  for (const auto& [guard, entry] : owed_) {
    if (batch.keys.size() >= max_keys) {
      break;
    }
    batch.keys.push_back(entry.keys);
    batch.records.push_back(entry.record);
  }
  return batch;
}

void InvalidationJournal::confirm(const Batch& batch) {
  if (batch.epoch_record != 0) {
    ++stats_.epoch_bumps;
    if (batch.epoch_record == epoch_record_) {
      epoch_record_ = 0;
      epoch_keys_.clear();
    }
    // The bump left Redis after these were recorded: it covers them too.
    std::erase_if(owed_, [&](const auto& item) { return item.second.record < batch.epoch_record; });
  }
  for (size_t i = 0; i < batch.keys.size(); ++i) {
    auto found = owed_.find(batch.keys[i].guard);
    if (found != owed_.end() && found->second.record == batch.records[i]) {
      owed_.erase(found);
      ++stats_.replayed;
    }
  }
}

std::string named_keys(const std::vector<std::string>& keys, size_t limit) {
  std::string out;
  for (size_t i = 0; i < keys.size() && i < limit; ++i) {
    out += i == 0 ? "" : ", ";
    out += keys[i];
  }
  if (keys.size() > limit) {
    out += " and " + std::to_string(keys.size() - limit) + " more";
  }
  return out;
}

std::vector<std::string> InvalidationJournal::keys() const {
  std::vector<std::string> out;
  out.reserve(owed_.size());
  for (const auto& [guard, entry] : owed_) {
    out.push_back(entry.keys.key);
  }
  return out;
}

}  // namespace cachecar
