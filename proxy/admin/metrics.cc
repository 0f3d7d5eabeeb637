#include "admin/metrics.h"

#include <cstdio>

namespace cachecar {
namespace {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, std::string_view name, std::string_view labels, uint64_t value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

std::string format_double(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.9g", value);
  return buffer;
}

template <typename Get>
uint64_t sum(const std::vector<const WorkerMetrics*>& workers, Get get) {
  uint64_t total = 0;
  for (const WorkerMetrics* w : workers) {
    total += get(*w);
  }
  return total;
}

void histogram(std::string& out, const std::vector<const WorkerMetrics*>& workers,
               std::string_view name, std::string_view help,
               const Histogram WorkerMetrics::*member) {
  family(out, name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= Histogram::kBounds.size(); ++i) {
    cumulative +=
        sum(workers, [&](const WorkerMetrics& w) { return (w.*member).buckets[i].get(); });
    const std::string le =
        i < Histogram::kBounds.size() ? format_double(Histogram::kBounds[i]) : "+Inf";
    sample(out, bucket, "le=\"" + le + "\"", cumulative);
  }
  const uint64_t nanoseconds =
      sum(workers, [&](const WorkerMetrics& w) { return (w.*member).sum_nanoseconds.get(); });
  out += name;
  out += "_sum ";
  out += format_double(static_cast<double>(nanoseconds) / 1e9);
  out += '\n';
  sample(out, std::string(name) + "_count", {},
         sum(workers, [&](const WorkerMetrics& w) { return (w.*member).count.get(); }));
}

void counter(std::string& out, const std::vector<const WorkerMetrics*>& workers,
             std::string_view name, std::string_view type, std::string_view help,
             const Counter WorkerMetrics::*member) {
  family(out, name, type, help);
  sample(out, name, {}, sum(workers, [&](const WorkerMetrics& w) { return (w.*member).get(); }));
}

}  // namespace

std::string render_purge_metrics(const PurgeStats& stats) {
  std::string out;
  family(out, "cachecar_purges_total", "counter",
         "Purges through the admin API, by what they named (one purge may name several).");
  sample(out, "cachecar_purges_total", "kind=\"keys\"", stats.by_keys);
  sample(out, "cachecar_purges_total", "kind=\"prefix\"", stats.by_prefix);
  sample(out, "cachecar_purges_total", "kind=\"tags\"", stats.by_tags);
  family(out, "cachecar_purged_keys_total", "counter",
         "Keys purges deleted from Redis, variants included.");
  sample(out, "cachecar_purged_keys_total", {}, stats.keys_removed);
  family(out, "cachecar_soft_purges_total", "counter",
         "Purges that marked entries stale instead of deleting them (\"soft\": true).");
  sample(out, "cachecar_soft_purges_total", {}, stats.soft);
  family(out, "cachecar_purge_marked_keys_total", "counter",
         "Keys soft purges marked stale, variants included.");
  sample(out, "cachecar_purge_marked_keys_total", {}, stats.keys_marked);
  family(out, "cachecar_purges_owed_total", "counter",
         "Purges Redis did not confirm, left to the journal or a cache epoch bump.");
  sample(out, "cachecar_purges_owed_total", {}, stats.owed);
  return out;
}

void Histogram::observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) {
    ++i;
  }
  buckets[i].add();
  count.add();
  sum_nanoseconds.add(static_cast<uint64_t>(seconds > 0 ? seconds * 1e9 : 0));
}

size_t method_index(std::string_view method) {
  for (size_t i = 0; i + 1 < kMethodNames.size(); ++i) {
    if (kMethodNames[i] == method) {
      return i;
    }
  }
  return kMethodNames.size() - 1;
}

size_t status_class_index(int status) {
  if (status < 100 || status > 599) {
    return kStatusClasses - 1;
  }
  return static_cast<size_t>(status / 100 - 1);
}

void WorkerMetrics::record_request(std::string_view method, int status, CacheStatus cache,
                                   double seconds) {
  requests[method_index(method)][status_class_index(status)][static_cast<size_t>(cache)].add();
  request_duration.observe(seconds);
}

std::string render_metrics(const std::vector<const WorkerMetrics*>& workers,
                           std::string_view version) {
  std::string out;
  out.reserve(8192);
  family(out, "cachecar_build_info", "gauge", "Build information; the value is always 1.");
  sample(out, "cachecar_build_info", "version=\"" + std::string(version) + "\"", 1);

  family(out, "cachecar_requests_total", "counter",
         "Requests answered, by method, status class and cache result.");
  for (size_t m = 0; m < kMethodNames.size(); ++m) {
    for (size_t s = 0; s < kStatusClasses; ++s) {
      for (size_t c = 0; c < kCacheStatuses; ++c) {
        const uint64_t value =
            sum(workers, [&](const WorkerMetrics& w) { return w.requests[m][s][c].get(); });
        if (value == 0) {
          continue;  // the series appears with its first request
        }
        std::string labels = "method=\"" + std::string(kMethodNames[m]) + "\",status_class=\"" +
                             std::to_string(s + 1) + "xx\",cache=\"" +
                             std::string(cache_status_name(static_cast<CacheStatus>(c))) + "\"";
        sample(out, "cachecar_requests_total", labels, value);
      }
    }
  }
  histogram(out, workers, "cachecar_request_duration_seconds",
            "Time from a request's head to the end of its response.",
            &WorkerMetrics::request_duration);
  histogram(out, workers, "cachecar_upstream_duration_seconds",
            "Time from sending a request upstream to its response head.",
            &WorkerMetrics::upstream_duration);

  family(out, "cachecar_upstream_errors_total", "counter", "Failed upstream exchanges, by kind.");
  for (size_t k = 0; k < kUpstreamErrorKinds.size(); ++k) {
    sample(out, "cachecar_upstream_errors_total",
           "kind=\"" + std::string(kUpstreamErrorKinds[k]) + "\"",
           sum(workers, [&](const WorkerMetrics& w) { return w.upstream_errors[k].get(); }));
  }
  counter(out, workers, "cachecar_rate_limited_total", "counter",
          "Requests answered 429 by the rate limiter.", &WorkerMetrics::rate_limited);
  family(out, "cachecar_rate_limit_local_decisions_total", "counter",
         "Requests rate_limit.sync: batched decided from the worker's own counts, no Redis "
         "command, by decision.");
  sample(out, "cachecar_rate_limit_local_decisions_total", "decision=\"allowed\"",
         sum(workers, [](const WorkerMetrics& w) { return w.rate_limit_local_allowed.get(); }));
  sample(out, "cachecar_rate_limit_local_decisions_total", "decision=\"denied\"",
         sum(workers, [](const WorkerMetrics& w) { return w.rate_limit_local_denied.get(); }));
  counter(out, workers, "cachecar_rate_limit_settles_total", "counter",
          "Clients' coalesced counts sent to Redis (rate_limit.sync: batched), one INCRBY each.",
          &WorkerMetrics::rate_limit_settles);
  counter(out, workers, "cachecar_rate_limit_settle_failures_total", "counter",
          "Settlements Redis did not answer or refused; their counts are sent again.",
          &WorkerMetrics::rate_limit_settle_failures);
  counter(out, workers, "cachecar_rate_limit_counts_settled_total", "counter",
          "Locally admitted requests whose count Redis confirmed.",
          &WorkerMetrics::rate_limit_counts_confirmed);
  counter(out, workers, "cachecar_rate_limit_counts_dropped_total", "counter",
          "Locally admitted requests whose count was dropped because its window ended first.",
          &WorkerMetrics::rate_limit_counts_dropped);
  counter(out, workers, "cachecar_rate_limit_tracked_clients", "gauge",
          "Clients whose counts the workers track locally (rate_limit.sync: batched).",
          &WorkerMetrics::rate_limit_tracked_clients);
  family(out, "cachecar_session_requests_total", "counter",
         "Requests whose Express session cachecar read, by what it found: a user, no user "
         "(logged out, expired, never logged in), or unavailable (Redis could not say).");
  sample(out, "cachecar_session_requests_total", "session=\"user\"",
         sum(workers, [](const WorkerMetrics& w) { return w.session_user.get(); }));
  sample(out, "cachecar_session_requests_total", "session=\"no_user\"",
         sum(workers, [](const WorkerMetrics& w) { return w.session_no_user.get(); }));
  sample(out, "cachecar_session_requests_total", "session=\"unavailable\"",
         sum(workers, [](const WorkerMetrics& w) { return w.session_unavailable.get(); }));
  counter(out, workers, "cachecar_session_touches_total", "counter",
          "Sessions renewed (EXPIRE) for requests cachecar answered itself, as the app would have.",
          &WorkerMetrics::session_touches);
  counter(out, workers, "cachecar_session_touch_failures_total", "counter",
          "Session renewals Redis did not take (down, slow, refused).",
          &WorkerMetrics::session_touch_failures);
  counter(out, workers, "cachecar_client_connections", "gauge", "Open client connections.",
          &WorkerMetrics::client_connections);

  family(out, "cachecar_upstream_connections", "gauge",
         "Connections to the upstream, idle in the pool or busy with a request.");
  sample(out, "cachecar_upstream_connections", "state=\"idle\"",
         sum(workers, [](const WorkerMetrics& w) { return w.upstream_idle.get(); }));
  sample(out, "cachecar_upstream_connections", "state=\"busy\"",
         sum(workers, [](const WorkerMetrics& w) { return w.upstream_busy.get(); }));

  family(out, "cachecar_redis_connected", "gauge",
         "1 while the worker's Redis connection is ready, else 0.");
  for (size_t i = 0; i < workers.size(); ++i) {
    sample(out, "cachecar_redis_connected", "worker=\"" + std::to_string(i) + "\"",
           workers[i]->redis_connected.get());
  }
  family(out, "cachecar_redis_servers", "gauge",
         "Redis servers the worker sends commands to: 1, or the primaries of a cluster's map.");
  for (size_t i = 0; i < workers.size(); ++i) {
    sample(out, "cachecar_redis_servers", "worker=\"" + std::to_string(i) + "\"",
           workers[i]->redis_servers.get());
  }
  family(out, "cachecar_redis_servers_connected", "gauge",
         "Of cachecar_redis_servers, those whose connection is ready; keys of the others go "
         "without Redis.");
  for (size_t i = 0; i < workers.size(); ++i) {
    sample(out, "cachecar_redis_servers_connected", "worker=\"" + std::to_string(i) + "\"",
           workers[i]->redis_servers_connected.get());
  }
  counter(out, workers, "cachecar_redis_commands_total", "counter", "Commands sent to Redis.",
          &WorkerMetrics::redis_commands);
  counter(out, workers, "cachecar_redis_writes_total", "counter",
          "Socket writes to Redis; commands per write is the pipelining factor.",
          &WorkerMetrics::redis_writes);
  counter(out, workers, "cachecar_redis_errors_total", "counter", "Error replies from Redis.",
          &WorkerMetrics::redis_errors);
  counter(out, workers, "cachecar_redis_timeouts_total", "counter",
          "Redis commands that outlived redis.command_timeout.", &WorkerMetrics::redis_timeouts);
  counter(out, workers, "cachecar_redis_disconnects_total", "counter",
          "Redis connections lost after being ready.", &WorkerMetrics::redis_disconnects);
  counter(out, workers, "cachecar_redis_redirections_total", "counter",
          "MOVED and ASK answers followed (Redis Cluster): slots moving or failing over.",
          &WorkerMetrics::redis_redirections);
  counter(out, workers, "cachecar_cache_fills_total", "counter", "Responses stored in the cache.",
          &WorkerMetrics::cache_fills);
  counter(out, workers, "cachecar_cache_fills_refused_total", "counter",
          "Fills refused because an invalidation moved the key's guard meanwhile.",
          &WorkerMetrics::cache_fills_refused);
  counter(out, workers, "cachecar_cache_fill_errors_total", "counter",
          "Fills Redis refused or did not answer.", &WorkerMetrics::cache_fill_errors);
  counter(out, workers, "cachecar_cache_invalidations_total", "counter",
          "Invalidations sent for writes (reject mode: fences not included).",
          &WorkerMetrics::cache_invalidations);
  counter(out, workers, "cachecar_cache_epoch_bump_owed", "gauge",
          "Workers owing a cache epoch bump; each serves nothing from Redis until it lands.",
          &WorkerMetrics::epoch_bump_owed);
  counter(out, workers, "cachecar_invalidation_journal_keys", "gauge",
          "Keys whose invalidation Redis has not confirmed yet; not served from Redis meanwhile.",
          &WorkerMetrics::journal_keys);
  counter(out, workers, "cachecar_invalidation_journal_recorded_total", "counter",
          "Keys journaled because Redis did not confirm their invalidation.",
          &WorkerMetrics::journal_recorded);
  counter(out, workers, "cachecar_invalidation_journal_replayed_total", "counter",
          "Journaled keys whose replayed invalidation Redis confirmed.",
          &WorkerMetrics::journal_replayed);
  counter(out, workers, "cachecar_invalidation_journal_overflows_total", "counter",
          "Times the journal reached cache.invalidation_journal.max_keys and an epoch bump "
          "took its place.",
          &WorkerMetrics::journal_overflows);
  counter(out, workers, "cachecar_invalidation_journal_abandoned_total", "counter",
          "Journaled keys still unconfirmed when their worker stopped (drain_timeout).",
          &WorkerMetrics::journal_abandoned);
  counter(out, workers, "cachecar_near_cache_hits_total", "counter",
          "Hits served from a worker's near cache, without Redis.", &WorkerMetrics::near_hits);
  counter(out, workers, "cachecar_near_cache_stores_total", "counter",
          "Hits read from Redis and kept in the near cache.", &WorkerMetrics::near_stores);
  counter(out, workers, "cachecar_near_cache_invalidations_total", "counter",
          "Near-cache entries dropped because their key changed.",
          &WorkerMetrics::near_invalidations);
  counter(out, workers, "cachecar_near_cache_evictions_total", "counter",
          "Near-cache entries dropped for room or because they expired.",
          &WorkerMetrics::near_evictions);
  counter(out, workers, "cachecar_near_cache_flushes_total", "counter",
          "Times a near cache was emptied (a Redis connection lost, FLUSHALL, an epoch bump).",
          &WorkerMetrics::near_flushes);
  counter(out, workers, "cachecar_near_cache_entries", "gauge", "Entries in the near caches.",
          &WorkerMetrics::near_entries);
  counter(out, workers, "cachecar_near_cache_bytes", "gauge",
          "Bytes the near caches hold, overhead included (bounded by cache.near.max_bytes).",
          &WorkerMetrics::near_bytes);
  counter(out, workers, "cachecar_near_cache_usable", "gauge",
          "Workers whose near cache may serve now (tracking confirmed, or tracking: off).",
          &WorkerMetrics::near_usable);
  counter(out, workers, "cachecar_cache_epoch_bumps_total", "counter",
          "Cache epoch bumps Redis confirmed; each makes every older entry a miss.",
          &WorkerMetrics::epoch_bumps);
  counter(out, workers, "cachecar_writes_rejected_total", "counter",
          "Writes answered 503 unforwarded because their keys could not be fenced in Redis "
          "(cache.on_invalidation_failure: reject).",
          &WorkerMetrics::writes_rejected);
  return out;
}

}  // namespace cachecar
