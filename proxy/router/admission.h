#pragma once
// The first stage: is this a request cachecar will serve at all? The target must be well
// formed (it is normalised in place, so every later stage and the upstream see one spelling)
// and the Host one of the configured sites. Pure; no Redis.

#include <optional>

#include "config/config.h"
#include "http/message.h"
#include "router/stage.h"

namespace cachecar {

std::optional<Refusal> admit_request(RequestHead& head, const Config& config);

}  // namespace cachecar
