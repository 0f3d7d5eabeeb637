#pragma once
// The session cookie of an Express app (express-session with cookie-signature), read as that
// app reads it, so that cachecar accepts exactly the sessions the app does. Pure.
//
//   Cookie: connect.sid=s%3A<sid>.<signature>
//   the value URL-decoded only when it contains '%' (the cookie package's rule; a malformed
//   escape leaves it as it is), the first cookie of the name winning; "s:" then the session id,
//   a '.', and HMAC-SHA256(secret, sid) in standard base64 without its '=' padding.
// The signature is checked against every configured secret (the first signs; the others are
// older ones still accepted while a rotation runs), in constant time.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace cachecar {

// The value of the first cookie called `name` over every Cookie line, decoded as the cookie
// package decodes it. nullopt when there is none.
std::optional<std::string> find_cookie(const Headers& request, std::string_view name);

// The session id of a signed value ("s:<sid>.<signature>"), when one of `secrets` signed it.
std::optional<std::string> unsign_session_cookie(std::string_view value,
                                                 const std::vector<std::string>& secrets);

// The value express-session would set for `sid` with `secret` (tests and tools).
std::string sign_session_cookie(std::string_view sid, std::string_view secret);

}  // namespace cachecar
