#pragma once
// Logging set-up on spdlog: the default logger for errors and events, and the access log (one
// line per request). Both write to standard output, as a container's logs should; with
// log.format json every line is one JSON object, including the message of error lines.

#include <cstdint>
#include <string>
#include <string_view>

#include "cache/cache_status.h"
#include "config/config.h"

namespace cachecar {

// Installs the loggers. Safe to call again (hot reload of level and format).
void setup_logging(const Config::Log& log);

struct AccessRecord {
  std::string_view client;
  std::string_view method;
  std::string_view target;
  int status = 0;           // 499 when the client went away before its response
  uint64_t bytes = 0;       // response body bytes sent
  double upstream_ms = -1;  // time to the upstream's response head; < 0 when not contacted
  double total_ms = 0;
  CacheStatus cache = CacheStatus::None;  // None: not written
  // The user of the request's valid session (issue 17); empty: none, not written. Never the
  // session id or the cookie: those would let whoever reads the logs act as the user.
  std::string_view user;
};

// Access lines wait in stdout's buffer until flush_access_log(), which each worker loop calls
// once per iteration: one write(2) for a loop's worth of requests instead of one per request,
// as nginx's access_log buffer= does. A crash loses at most that iteration's lines.
void log_access(const AccessRecord& record);
void flush_access_log();

// The text of one access line (tests and the JSON formatter use it).
std::string format_access(const AccessRecord& record, LogFormat format);

}  // namespace cachecar
