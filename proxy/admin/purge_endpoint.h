#pragma once
// POST /purge on the admin listener (issue 18): checks the caller, reads the JSON
// (cache/purge_order.h), runs the purge (cache/purger.h) and answers what it removed, in JSON:
//
//   200 {"purged":{"kind":"tags","named":3,"deleted":5,"marked":0},"soft":false,
//        "complete":true,"pending":null}           ("soft": true: "marked" counts instead)
//   202 the same, with "pending":"journal" or "epoch": Redis did not confirm; done on reconnect
//   400 a body that names nothing purgeable; 401 a missing or wrong token; 404 admin.purge off
//
// The token (ADMIN_TOKEN) is compared in constant time. Each purge is logged as an access
// line, with what it named and removed.

#include <string>
#include <string_view>

#include "admin/admin_server.h"
#include "admin/metrics.h"
#include "cache/purger.h"
#include "config/config.h"

namespace cachecar {

std::string purge_report_json(const PurgeReport& report);

// Requires: `purger` outlives every purge handed to it.
void handle_purge(Purger& purger, const Config& config, const RequestHead& head,
                  std::string_view body, const std::string& peer, AdminServer::Reply reply);

}  // namespace cachecar
