// Fuzz target: what a purge reads (issue 18). The input is a POST /purge body, a key found in
// Redis, a tag set member and a Surrogate-Key field value. Whatever the bytes, nothing crashes;
// a parsed order names something; tags are non-empty, separator-free and bounded; a key's
// route key is never longer than the key; glob escaping is undone by reading it back.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "cache/purge_order.h"
#include "cache/surrogate_keys.h"

namespace cachecar {
namespace {

void run(std::string_view input) {
  std::string error;
  if (const auto order = parse_purge_order(input, error)) {
    if (order->kind().empty() || order->keys.size() + order->tags.size() > kMaxPurgeItems) {
      std::abort();
    }
  } else if (error.empty()) {
    std::abort();  // refused without a reason
  }
  if (base_key_of(input).size() > input.size()) {
    std::abort();
  }
  (void)is_companion_key(input, "cc:");
  (void)invalidation_of_member("", input);
  Headers response;
  response.add("Surrogate-Key", std::string(input));
  const std::vector<std::string> tags = read_tags(response, {"Surrogate-Key"});
  if (tags.size() > kMaxTagsPerResponse) {
    std::abort();
  }
  for (const std::string& tag : tags) {
    if (tag.empty() || tag.size() > kMaxTagBytes ||
        tag.find_first_of(" \t,\r\n") != std::string::npos) {
      std::abort();
    }
  }
  std::string unescaped;
  const std::string escaped = glob_escaped(input);
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] == '\\') {
      ++i;
      if (i == escaped.size()) {
        std::abort();  // a dangling escape
      }
    }
    unescaped += escaped[i];
  }
  if (unescaped != input) {
    std::abort();
  }
}

}  // namespace
}  // namespace cachecar

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cachecar::run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
