#pragma once
// "cachecar purge ...": the admin API's POST /purge (issue 18) from the command line, for
// operators and scripts on the host or in the pod, without curl.
//
//   cachecar purge [--config FILE] [--key KEY]... [--prefix PREFIX] [--tag TAG]...
//
// The admin address comes from the configuration (admin.listen, ADMIN_LISTEN), the token from
// ADMIN_TOKEN. Prints the answer's JSON; exits 0 when purged, 3 when Redis still owes it
// (202), 1 when refused or unreachable, 2 for a usage or configuration error.

#include <string>
#include <vector>

namespace cachecar {

int run_purge_command(const std::vector<std::string>& args);

}  // namespace cachecar
