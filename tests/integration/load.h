#pragma once
// Background traffic for the tests of Redis faults (Sentinel, Cluster): clients on keep-alive
// connections of their own, until finish(), counting what went wrong. Each runs on its own
// thread; read the counts after finish().

#include <atomic>
#include <future>
#include <string>

#include "support/http_client.h"

namespace cachecar::test {

// GETs on one keep-alive connection until stopped; counts the answers that are not 200.
struct Load {
  Load(int port, int keys)
      : done(std::async(std::launch::async, [this, port, keys] {
          HttpConnection client(port);
          for (int i = 0; !stop; ++i) {
            const auto response = client.request("GET", "/products/" + std::to_string(i % keys));
            ++sent;
            failed += response.status == 200 ? 0 : 1;
          }
        })) {}
  ~Load() { finish(); }
  void finish() {
    stop = true;
    if (done.valid()) {
      done.get();
    }
  }

  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::atomic<int> failed{0};
  std::future<void> done;
};

// Writes a new value to each key in turn and reads it right back, as the test's second client:
// a read that does not show the value just written is stale.
struct WriteThenRead {
  WriteThenRead(int port, int keys)
      : done(std::async(std::launch::async, [this, port, keys] {
          HttpConnection client(port);
          for (int round = 0; !stop; ++round) {
            const std::string path = "/products/" + std::to_string(round % keys);
            const std::string value = "w" + std::to_string(round);
            if (client.request("PUT", path, {}, value).status != 200) {
              ++failed;
              continue;
            }
            ++writes;
            const auto read = client.request("GET", path);
            if (read.status != 200) {
              ++failed;
            } else if (read.body != value) {
              ++stale;
            }
          }
        })) {}
  ~WriteThenRead() { finish(); }
  void finish() {
    stop = true;
    if (done.valid()) {
      done.get();
    }
  }

  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::atomic<int> failed{0};
  std::atomic<int> stale{0};
  std::future<void> done;
};

}  // namespace cachecar::test
