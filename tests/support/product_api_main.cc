// product_api: the demo product API that cachecar fronts in the README demo (the "slow
// backend" of the Express tutorial cachecar grew from).
//
//   product_api [--port 3000] [--host 127.0.0.1] [--delay-ms 0]
//
//   GET    /products        all products, as a JSON array
//   GET    /products/{id}   one product, or 404 {"error":"product not found"}
//   PUT    /products/{id}   store the JSON body as the product (created if new); 200 + stored JSON
//   DELETE /products/{id}   204, or 404 if unknown
//   GET    /healthz         {"status":"ok"}, for probes
//
// Products 1..100 are seeded at start and live in memory only. --delay-ms makes every answer
// slow, so the demo shows what a cache hit saves. The HTTP server is TestUpstream, so this
// binary and the integration tests share one HTTP implementation. One log line per request
// goes to stdout; SIGINT or SIGTERM stop it with exit status 0.

#include <pthread.h>

#include <array>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "support/test_upstream.h"

namespace {

using cachecar::test::json_escape;
using cachecar::test::ReceivedRequest;
using cachecar::test::TestUpstream;
using cachecar::test::UpstreamReply;

struct Options {
  int port = 3000;
  std::string host = "127.0.0.1";
  int delay_ms = 0;
};

constexpr std::string_view kUsage = "usage: product_api [--port N] [--host IPV4] [--delay-ms N]\n";
constexpr int kSeededProducts = 100;

std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

std::optional<Options> parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) {
      return std::nullopt;
    }
    const std::string_view value = argv[++i];
    if (flag == "--port") {
      const auto port = parse_int(value);
      if (!port || *port < 0 || *port > 65535) {
        return std::nullopt;
      }
      options.port = *port;
    } else if (flag == "--delay-ms") {
      const auto delay = parse_int(value);
      if (!delay || *delay < 0) {
        return std::nullopt;
      }
      options.delay_ms = *delay;
    } else if (flag == "--host") {
      options.host = value;
    } else {
      return std::nullopt;
    }
  }
  return options;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string product_json(int id, std::string_view name, double price) {
  char price_text[32];
  std::snprintf(price_text, sizeof price_text, "%.2f", price);
  return "{\"id\":" + std::to_string(id) + ",\"name\":\"" + json_escape(name) +
         "\",\"price\":" + price_text + "}";
}

// Thread-safe: TestUpstream calls the handler from one thread per connection.
class ProductStore {
 public:
  ProductStore() {
    static constexpr std::array<std::string_view, 10> kAdjectives = {
        "Wireless", "Compact", "Ergonomic", "Premium", "Portable",
        "Classic",  "Smart",   "Rugged",    "Silent",  "Deluxe"};
    struct Kind {
      std::string_view noun;
      double base_price;
    };
    static constexpr std::array<Kind, 12> kKinds = {{{"Mouse", 24.0},
                                                     {"Keyboard", 59.0},
                                                     {"Monitor", 189.0},
                                                     {"Headphones", 79.0},
                                                     {"Webcam", 49.0},
                                                     {"USB-C Hub", 34.0},
                                                     {"Laptop Stand", 39.0},
                                                     {"Desk Lamp", 29.0},
                                                     {"Microphone", 99.0},
                                                     {"Speaker", 69.0},
                                                     {"Docking Station", 149.0},
                                                     {"Mouse Pad", 12.0}}};
    for (int id = 1; id <= kSeededProducts; ++id) {
      const Kind& kind = kKinds[static_cast<size_t>(id) % kKinds.size()];
      const std::string name =
          std::string(kAdjectives[static_cast<size_t>(id * 7) % kAdjectives.size()]) + " " +
          std::string(kind.noun);
      // Deterministic spread around the base price, always ending in .99 like a shop.
      const double price = kind.base_price + static_cast<double>((id * 37) % 60) + 0.99;
      products_[id] = product_json(id, name, price);
    }
    products_[42] = product_json(42, "Mechanical Keyboard", 129.99);
  }

  std::optional<std::string> get(int id) const {
    std::lock_guard lock(mutex_);
    const auto it = products_.find(id);
    if (it == products_.end()) {
      return std::nullopt;
    }
    return it->second;
  }

  // Stores the body as sent. A JSON object without an "id" member gets one, so the listing
  // still says which product is which; anything else is stored verbatim.
  std::string put(int id, std::string_view body) {
    std::string stored(body);
    const std::string_view object = trim(body);
    if (object.size() >= 2 && object.front() == '{' && object.back() == '}' &&
        object.find("\"id\"") == std::string_view::npos) {
      const std::string_view members = trim(object.substr(1, object.size() - 2));
      stored = "{\"id\":" + std::to_string(id) + (members.empty() ? "" : ",") +
               std::string(members) + "}";
    }
    std::lock_guard lock(mutex_);
    products_[id] = stored;
    return stored;
  }

  bool erase(int id) {
    std::lock_guard lock(mutex_);
    return products_.erase(id) > 0;
  }

  std::string list() const {
    std::lock_guard lock(mutex_);
    std::string out = "[";
    for (const auto& [id, json] : products_) {
      if (out.size() > 1) {
        out += ',';
      }
      out += json;
    }
    out += ']';
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::map<int, std::string> products_;  // guarded by mutex_; id → JSON text
};

UpstreamReply json_reply(int status, std::string body) {
  UpstreamReply reply;
  reply.status = status;
  reply.headers = {{"Content-Type", "application/json"}};
  reply.body = std::move(body);
  return reply;
}

UpstreamReply method_not_allowed(std::string allow) {
  UpstreamReply reply = json_reply(405, "{\"error\":\"method not allowed\"}");
  reply.headers.emplace_back("Allow", std::move(allow));
  return reply;
}

UpstreamReply route(ProductStore& store, const ReceivedRequest& request) {
  const std::string_view target = request.target;
  const std::string_view path = target.substr(0, target.find('?'));
  const bool read = request.method == "GET" || request.method == "HEAD";
  constexpr std::string_view kCollection = "/products";

  if (path == "/healthz") {
    return read ? json_reply(200, "{\"status\":\"ok\"}") : method_not_allowed("GET, HEAD");
  }
  if (path == kCollection || path == "/products/") {
    return read ? json_reply(200, store.list()) : method_not_allowed("GET, HEAD");
  }
  if (path.substr(0, kCollection.size() + 1) != "/products/") {
    return json_reply(404, "{\"error\":\"not found\"}");
  }
  const std::optional<int> id = parse_int(path.substr(kCollection.size() + 1));
  if (!id || *id <= 0) {
    return json_reply(404, "{\"error\":\"product not found\"}");
  }
  if (read) {
    std::optional<std::string> product = store.get(*id);
    return product ? json_reply(200, std::move(*product))
                   : json_reply(404, "{\"error\":\"product not found\"}");
  }
  if (request.method == "PUT") {
    return json_reply(200, store.put(*id, request.body));
  }
  if (request.method == "DELETE") {
    return store.erase(*id) ? json_reply(204, "")
                            : json_reply(404, "{\"error\":\"product not found\"}");
  }
  return method_not_allowed("GET, HEAD, PUT, DELETE");
}

std::mutex log_mutex;

void log_line(const std::string& line) {
  std::lock_guard lock(log_mutex);
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  // stdout is a pipe under a test or a container runtime, where it would be block-buffered.
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const std::optional<Options> options = parse_options(argc, argv);
  if (!options) {
    std::fputs(kUsage.data(), stderr);
    return 2;
  }
  // Block the stop signals before any thread exists, so every thread inherits the mask and
  // only sigwait() below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  ProductStore store;
  const std::chrono::milliseconds delay(options->delay_ms);
  std::optional<TestUpstream> server;
  try {
    server.emplace(options->port, options->host);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "product_api: %s\n", error.what());
    return 1;
  }
  server->set_handler([&store, delay](const ReceivedRequest& request) {
    UpstreamReply reply = route(store, request);
    reply.delay = delay;
    log_line(request.method + " " + request.target + " " + std::to_string(reply.status) + " " +
             std::to_string(reply.body.size()) + "B");
    return reply;
  });
  log_line("product_api listening on http://" + options->host + ":" +
           std::to_string(server->port()) + " (" + std::to_string(kSeededProducts) +
           " products, delay " + std::to_string(options->delay_ms) + " ms)");

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  log_line(std::string("product_api: ") + (signal_number == SIGINT ? "SIGINT" : "SIGTERM") +
           ", shutting down");
  server->stop();
  return 0;
}
