#include "cache/surrogate_keys.h"

#include <algorithm>

namespace cachecar {
namespace {

bool separator(char c) { return c == ' ' || c == '\t' || c == ','; }

bool usable_tag(std::string_view tag) {
  if (tag.size() > kMaxTagBytes) {
    return false;
  }
  return std::none_of(tag.begin(), tag.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
}

}  // namespace

std::vector<std::string> read_tags(const Headers& headers, const std::vector<std::string>& fields) {
  std::vector<std::string> tags;
  for (const std::string& field : fields) {
    headers.for_each(field, [&](std::string_view value) {
      size_t at = 0;
      while (at < value.size() && tags.size() < kMaxTagsPerResponse) {
        while (at < value.size() && separator(value[at])) {
          ++at;
        }
        size_t end = at;
        while (end < value.size() && !separator(value[end])) {
          ++end;
        }
        const std::string_view tag = value.substr(at, end - at);
        if (!tag.empty() && usable_tag(tag) &&
            std::find(tags.begin(), tags.end(), tag) == tags.end()) {
          tags.emplace_back(tag);
        }
        at = end;
      }
    });
  }
  return tags;
}

void remove_tag_fields(Headers& headers, const std::vector<std::string>& fields) {
  for (const std::string& field : fields) {
    headers.remove(field);
  }
}

std::vector<std::string> take_tags(Headers& response, const Config::Cache::Tags& config) {
  std::vector<std::string> tags = read_tags(response, config.fields);
  if (config.strip) {
    remove_tag_fields(response, config.fields);
  }
  return tags;
}

}  // namespace cachecar
