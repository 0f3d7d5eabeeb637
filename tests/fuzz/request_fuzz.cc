// Fuzz target: request parsing and routing. Bytes arrive split where the input's first byte
// says, as the network splits them; every head is normalised, host-checked and planned against
// a configuration with routes, a cache default and rate limits, as a worker would. One property
// is checked as well: the target sent upstream for a lookup plans to the same cache key (what
// the upstream answers is what the key names).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cache/plan.h"
#include "config/config.h"
#include "http/headers.h"
#include "http/host.h"
#include "http/parser.h"
#include "http/target.h"
#include "ratelimit/client_identity.h"
#include "ratelimit/limiter.h"

namespace cachecar {
namespace {

const Config& fuzz_config() {
  static const Config config = [] {
    auto parsed = parse_config(R"(
hosts: [shop.example, "*.cdn.example"]
cache:
  default:
    ttl: 30s
rate_limit:
  trusted_proxies: [127.0.0.0/8, "::1"]
  algorithm: sliding_window
routes:
  - path: /products/{id}
    key: product:{id}
    invalidate: [products:list]
  - path: /search
    key: search
    query: [q, page]
  - path: /files/{path*}
    key: file:{path}
    format: body
    rate_limit: {limit: 5}
)",
                               [](std::string_view) { return std::optional<std::string>(); });
    return std::get<Config>(parsed);
  }();
  return config;
}

class Planner final : public RequestParser::Listener {
 public:
  ParseStep on_request_head(RequestHead& head) override {
    std::string reason;
    auto target = normalize_target(head.target, reason);
    if (!target) {
      return ParseStep::Continue;  // answered 400
    }
    head.target = std::move(*target);
    (void)check_host(head, fuzz_config().hosts);
    const RequestPlan plan = plan_request(head, fuzz_config());
    if (!plan.upstream_target.empty()) {
      RequestHead upstream_head = head;
      upstream_head.target = plan.upstream_target;
      if (plan.action != CacheAction::Lookup ||
          plan_request(upstream_head, fuzz_config()).key != plan.key) {
        std::abort();
      }
    }
    const IpAddress peer = *parse_ip("127.0.0.1");
    const IpAddress client =
        resolve_client(peer, head.headers, fuzz_config().rate_limit.trusted_proxies);
    (void)plan_rate_limit(fuzz_config(), plan.route, client, 1'700'000'000'000);
    prepare_upstream_request_headers(head.headers, ForwardingInfo{"127.0.0.1", "http"});
    return ParseStep::Continue;
  }
  ParseStep on_request_body(std::string_view) override { return ParseStep::Continue; }
  ParseStep on_request_complete() override { return ParseStep::Pause; }
};

}  // namespace
}  // namespace cachecar

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cachecar;
  if (size == 0) {
    return 0;
  }
  const size_t split = data[0] % size;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  Planner planner;
  RequestParser parser(planner, RequestParser::Limits{4096, 50, 1 << 20});
  std::string_view pieces[2] = {input.substr(0, split),
                                input.substr(std::min(split, input.size()))};
  for (std::string_view piece : pieces) {
    while (!piece.empty()) {
      const ParseResult result = parser.execute(piece);
      if (result.kind == ParseResult::Kind::Error) {
        return 0;
      }
      if (result.kind == ParseResult::Kind::Ok) {
        break;
      }
      parser.resume();
      piece.remove_prefix(result.consumed);
    }
  }
  return 0;
}
