#pragma once
// A test origin for the HTTP-semantics tests: its answer per target is set by the test, and a
// request whose If-None-Match names that answer's ETag gets a 304 with the answer's fields
// (all but Content-Type) instead, as an origin that revalidates does.

#include <map>
#include <mutex>
#include <string>

#include "harness.h"

namespace cachecar::test {

struct Origin {
  std::mutex mutex;
  std::map<std::string, UpstreamReply> replies;
  std::map<std::string, int> served;     // answers other than a 304, per target
  std::map<std::string, int> confirmed;  // 304s per target

  void set(const std::string& target, UpstreamReply reply) {
    std::lock_guard<std::mutex> lock(mutex);
    replies[target] = std::move(reply);
  }
  int served_of(const std::string& target) {
    std::lock_guard<std::mutex> lock(mutex);
    return served[target];
  }
  int confirmed_of(const std::string& target) {
    std::lock_guard<std::mutex> lock(mutex);
    return confirmed[target];
  }

  UpstreamReply handle(const ReceivedRequest& request) {
    std::lock_guard<std::mutex> lock(mutex);
    auto found = replies.find(request.target);
    if (found == replies.end()) {
      return UpstreamReply{.status = 404, .body = "{}"};
    }
    UpstreamReply reply = found->second;
    const auto etag = find_header(reply.headers, "ETag");
    const auto asked = request.header("If-None-Match");
    if (etag && asked && *asked == *etag && reply.status == 200) {
      ++confirmed[request.target];
      UpstreamReply not_modified;
      not_modified.status = 304;
      for (const auto& [name, value] : reply.headers) {
        if (name != "Content-Type") {
          not_modified.headers.emplace_back(name, value);
        }
      }
      return not_modified;
    }
    ++served[request.target];
    return reply;
  }
};

}  // namespace cachecar::test
