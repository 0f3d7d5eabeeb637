#pragma once
// The admin API's credential (issue 18): "Authorization: Bearer <ADMIN_TOKEN>". Pure.

#include <string_view>

#include "http/message.h"

namespace cachecar {

// `request` carries exactly `token` in a Bearer Authorization field (scheme in any case),
// compared in constant time. False for an empty `token`.
bool bearer_token_matches(const Headers& request, std::string_view token);

}  // namespace cachecar
