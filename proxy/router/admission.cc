#include "router/admission.h"

#include <string>
#include <utility>

#include "http/host.h"
#include "http/target.h"

namespace cachecar {

std::optional<Refusal> admit_request(RequestHead& head, const Config& config) {
  if (!is_canonical_target(head.target)) {
    std::string reason;
    auto target = normalize_target(head.target, reason);
    if (!target) {
      return Refusal{400, std::move(reason), true};
    }
    head.target = std::move(*target);
  }
  const HostCheck host = check_host(head, config.hosts);
  switch (host.verdict) {
    case HostVerdict::Accepted:
      return std::nullopt;
    case HostVerdict::Malformed:
      return Refusal{400, std::string(host.reason), true};
    case HostVerdict::Misdirected:
      break;
  }
  return Refusal{421, std::string(host.reason), false};
}

}  // namespace cachecar
