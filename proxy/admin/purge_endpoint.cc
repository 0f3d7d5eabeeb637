#include "admin/purge_endpoint.h"

#include <spdlog/spdlog.h>
#include <uv.h>

#include <nlohmann/json.hpp>

#include "admin/bearer_token.h"
#include "log/logging.h"

namespace cachecar {
namespace {

std::string error_json(std::string_view message) {
  return nlohmann::json{{"error", message}}.dump();
}

}  // namespace

std::string purge_report_json(const PurgeReport& report) {
  nlohmann::json out;
  if (!report.error.empty()) {
    out["error"] = report.error;
    return out.dump();
  }
  out["purged"] = {{"kind", report.kind},
                   {"named", report.named},
                   {"deleted", report.deleted},
                   {"marked", report.marked}};
  out["soft"] = report.soft;
  out["complete"] = report.complete;
  out["pending"] = report.pending.empty() ? nlohmann::json() : nlohmann::json(report.pending);
  return out.dump();
}

void handle_purge(Purger& purger, const Config& config, const RequestHead& head,
                  std::string_view body, const std::string& peer, AdminServer::Reply reply) {
  const uint64_t started_ns = uv_hrtime();
  auto log_line = [peer, target = head.target, started_ns](int status) {
    AccessRecord record;
    record.client = peer;
    record.method = "POST";
    record.target = target;
    record.status = status;
    record.total_ms = static_cast<double>(uv_hrtime() - started_ns) / 1e6;
    log_access(record);
  };
  if (!config.admin.purge_enabled()) {
    log_line(404);
    reply(404,
          error_json("purge is off: admin.purge is false, or auto on a non-loopback address "
                     "without ADMIN_TOKEN"),
          "");
    return;
  }
  if (!config.admin.token.empty() && !bearer_token_matches(head.headers, config.admin.token)) {
    log_line(401);
    spdlog::warn("purge from {} refused: no valid bearer token", peer);
    reply(401, error_json("purge needs Authorization: Bearer <ADMIN_TOKEN>"),
          "WWW-Authenticate: Bearer\r\n");
    return;
  }
  std::string error;
  auto order = parse_purge_order(body, error);
  if (!order) {
    log_line(400);
    reply(400, error_json(error), "");
    return;
  }
  purger.purge(std::move(*order),
               [reply = std::move(reply), log_line, peer](const PurgeReport& report) {
                 log_line(report.status);
                 spdlog::info("{}purge from {}: {} named {}, {} deleted, {} marked stale{}{}",
                              report.soft ? "soft " : "", peer, report.kind, report.named,
                              report.deleted, report.marked, report.complete ? "" : ", more remain",
                              report.pending.empty() ? "" : ", owed: " + report.pending);
                 reply(report.status, purge_report_json(report), "");
               });
}

}  // namespace cachecar
