#pragma once
// The validated configuration: YAML text plus environment overrides in, a Config or the first
// error out. Pure: the caller reads the file and the environment, so tests need neither.
//
// Every key is checked: an unknown key is an error, because a typo ("ttl" spelt "tll") must
// not silently disable a feature. Errors name the key path, the line and the reason.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/duration.h"
#include "config/route_pattern.h"
#include "net/endpoints.h"
#include "net/ip.h"
#include "net/tls_settings.h"

namespace cachecar {

class TlsContext;  // net/tls.h

// How a cached response is kept in Redis.
enum class StoredFormat {
  Envelope,  // status, headers, body and storage time (cachecar's own, versioned)
  Body,      // the body bytes alone, so keys can be shared with an application that already
             // writes e.g. product:42 as plain JSON
};

// Longer windows are refused: a day is already beyond what a rate limit is for, and the
// bound keeps the limiter's arithmetic exact.
inline constexpr Duration kMaxRateLimitWindow{24 * 3600 * 1000};

enum class RateLimitAlgorithm {
  FixedWindow,    // a counter per client that starts with the first hit of its window
  SlidingWindow,  // weighted two-window estimate: no burst of 2x the limit at a window edge
};

// How each request's count reaches Redis (issue 14).
enum class RateLimitSync {
  Exact,    // every request runs the limiter script, in the request's one Redis batch
  Batched,  // workers count locally and settle with Redis every sync_interval per client
};

// Whose requests one counter counts (issue 17).
enum class RateLimitKey {
  Ip,               // the client address (IPv6 by network)
  SessionUser,      // the user of a valid session; requests without one are not counted
  SessionUserOrIp,  // the user of a valid session, else the client address
};

// Longer settle intervals are refused: the local view a worker decides from is at most about
// this old, and a second is already long next to a one-second window (the shortest allowed).
inline constexpr Duration kMaxRateLimitSyncInterval{1'000};

// A route's own limit. Fields left unset take the global rate_limit's value.
struct RouteRateLimit {
  bool enabled = true;  // false: "rate_limit: off" for this route
  std::optional<int64_t> limit;
  std::optional<Duration> window;
  std::optional<RateLimitAlgorithm> algorithm;
  std::optional<RateLimitKey> key;
  int key_line = 0;   // where it was read, for errors found after the environment
  std::string scope;  // the <scope> of rl:<scope>:<client>; defaults to the path pattern
};

// Whether a route needs the session of the Express app cachecar fronts (issue 17).
enum class SessionUse {
  Off,       // the session is not read
  Optional,  // a valid session names the user to the upstream; none is fine
  Required,  // no valid session: 401 without contacting the upstream
};

struct RouteConfig {
  RoutePattern path;
  KeyTemplate key;
  Duration ttl{60'000};
  // Query parameters that are part of the key, in this order. Empty: the query is ignored.
  std::vector<std::string> query_params;
  // Further keys deleted when a write to this route succeeds (e.g. "products:list").
  std::vector<KeyTemplate> invalidate;
  // Methods whose 2xx answer invalidates the route's keys.
  std::vector<std::string> invalidate_on{"PUT", "PATCH", "DELETE"};
  StoredFormat format = StoredFormat::Envelope;
  // With format: body, the Content-Type of a hit.
  std::string content_type = "application/json";
  // Requests carrying Authorization bypass the cache unless this is set.
  bool allow_authorization = false;
  // Unset: the global rate_limit applies.
  std::optional<RouteRateLimit> rate_limit;
  SessionUse session = SessionUse::Off;
  int session_line = 0;  // where routes[].session was read, for errors found after the environment
  // A request with a session is looked up and stored only on a route that says how: its
  // answers are the same for everyone (shared), or kept per user (per_user, keyed by the
  // session's user). Elsewhere a signed session cookie bypasses the cache.
  bool shared = false;
  bool per_user = false;
  int per_user_line = 0;
};

enum class LogFormat { Text, Json };

// What a write on an invalidating route does about Redis being unreachable (README: "When an
// invalidation cannot reach Redis").
enum class InvalidationFailure {
  // Forward the write; keys whose invalidation Redis did not confirm wait in this worker's
  // journal, are never served from Redis by it meanwhile, and are replayed on reconnect.
  // Another replica that still reaches Redis may serve the old entry until the replay.
  Journal,
  // Fence the keys in Redis before forwarding (every replica then bypasses them) and answer
  // 503 without forwarding when that cannot be done: no replica serves stale, at the price of
  // one more Redis round trip per write and writes refused while Redis is unreachable.
  Reject,
};

// What decides whether and how long a response is cached (issue 16).
enum class CacheMode {
  Routes,  // the routes' keys and TTLs (and cache.default), as configured
  Http,    // RFC 9111: the origin's Cache-Control, Expires, validators; any GET/HEAD
};

// RFC 9211 Cache-Status on proxied responses.
enum class CacheStatusField {
  Off,
  On,
  WithKey,  // also key="...": the Redis key, which tells clients how keys are made
};

struct Config {
  HostPort listen{"0.0.0.0", 8080};
  int workers = 1;
  // Host names served (lowercase; "*.example" matches any subdomain); any other Host gets
  // 421 before Redis or the upstream see the request. Empty: every host (see http/host.h).
  std::vector<std::string> hosts;

  struct Upstream {
    UpstreamUrl url{{"127.0.0.1", 3000}, ""};
    Duration connect_timeout{2'000};
    // Longest wait for the response head, and for each read of the body after it.
    Duration timeout{30'000};
    int max_idle_connections = 64;
  } upstream;

  struct Redis {
    RedisUrl url{{"127.0.0.1", 6379}, "", "", 0};
    Duration command_timeout{100};
    // Connecting, the TLS handshake and the AUTH/SELECT/PING handshake together.
    Duration connect_timeout{1'000};
    TlsSettings tls;  // with rediss://
    // Built from `tls` when the URL is rediss://, so that a certificate or key that cannot be
    // loaded is a configuration error (exit 2), not a connection that fails forever.
    std::shared_ptr<const TlsContext> tls_context;
    int tls_line = 0;  // where redis.tls was read, for errors found after the environment
  } redis;

  struct Cache {
    CacheMode mode = CacheMode::Routes;
    std::string key_prefix;  // prepended to every key cachecar reads or writes
    std::vector<int> statuses{200};
    uint64_t max_object_size = 1024 * 1024;
    // Let the upstream's Cache-Control (s-maxage, max-age, no-cache) lower the TTL or forbid
    // storing. no-store and private always forbid it.
    bool respect_cache_control = false;
    // GET/HEAD on paths no route matches: uncached (nullopt) or cached with this TTL under a
    // key made of the path and query.
    std::optional<Duration> default_ttl;
    InvalidationFailure on_invalidation_failure = InvalidationFailure::Journal;
    // Keys a worker remembers while their invalidation is unconfirmed; past it, one bump of
    // the cache epoch stands in for all of them.
    size_t journal_max_keys = 100'000;
    // Each worker's near cache (cache/near_cache.h): recent hits kept in memory, in front of
    // Redis. Off by default.
    struct Near {
      bool enabled = false;
      uint64_t max_bytes = 32 * 1024 * 1024;  // per worker
      Duration max_ttl{10'000};               // no entry lives longer, nor past its Redis TTL
      // Redis announces every change of a cached key (CLIENT TRACKING); off: an entry may be
      // served stale for up to max_ttl after another replica's write.
      bool tracking = true;
    } near;
    // Tags (issue 18, cache/surrogate_keys.h): the response fields that name an answer's
    // tags, recorded with its key for purges; empty: tags are not read.
    struct Tags {
      std::vector<std::string> fields{"Surrogate-Key", "Cache-Tag"};
      bool strip = true;  // removed from what clients receive, as CDNs do
    } tags;
    // mode http: the longest heuristic lifetime (10% of the time since Last-Modified).
    Duration heuristic_max{24 * 3600 * 1000};
    // mode http: no entry stays in Redis longer, whatever the origin allows.
    Duration max_ttl{24 * 3600 * 1000};
    // mode http: how long past its freshness a response with a validator is kept, so that it
    // can be revalidated (a 304) rather than fetched whole.
    Duration revalidate_window{3600 * 1000};
    // mode http: serve a stale response this long past its freshness when the upstream fails
    // (RFC 5861 stale-if-error for every response that gives none itself). nullopt: only
    // responses that say stale-if-error.
    std::optional<Duration> stale_if_error;
    // Unset: on in mode http, off in mode routes.
    std::optional<CacheStatusField> status_field;
    CacheStatusField cache_status() const {
      return status_field.value_or(mode == CacheMode::Http ? CacheStatusField::On
                                                           : CacheStatusField::Off);
    }
  } cache;

  std::vector<RouteConfig> routes;

  struct RateLimit {
    bool enabled = true;  // "rate_limit: off" turns limiting off everywhere
    int64_t limit = 100;
    Duration window{60'000};
    RateLimitAlgorithm algorithm = RateLimitAlgorithm::FixedWindow;
    std::string key_prefix = "rl:";
    // Peers whose X-Forwarded-For is believed.
    std::vector<Cidr> trusted_proxies;
    // Clients never limited.
    std::vector<Cidr> allow;
    // IPv6 clients share a bucket per network of this size.
    int ipv6_prefix = 64;
    // With Redis unavailable: false lets requests through without limit headers (fail open);
    // true answers 503 (fail closed).
    bool deny_on_redis_error = false;
    RateLimitSync sync = RateLimitSync::Exact;
    // Whose requests a counter counts; a route's rate_limit.key overrides it.
    RateLimitKey key = RateLimitKey::Ip;
    int key_line = 0;
    // Batched: the shortest time between two settlements of one client's count by a worker.
    Duration sync_interval{10};
    // Batched: requests of one client a worker may admit before Redis has confirmed them; past
    // it a request is counted in Redis first (as in exact mode). The worst-case overshoot is
    // replicas x workers x local_budget per window (README: "Batched counting").
    int64_t local_budget = 10;
  } rate_limit;

  struct Admin {
    HostPort listen{"127.0.0.1", 9901};
    int listen_line = 0;
    // POST /purge (issue 18): on, off, or auto (unset): on where only this host can reach the
    // admin listener (loopback) or with a token, off elsewhere. On, off loopback, it needs the
    // token.
    std::optional<bool> purge;
    int purge_line = 0;
    // From ADMIN_TOKEN, never from the file: purge requests must carry
    // "Authorization: Bearer <token>". Never rendered or logged.
    std::string token;
    bool purge_enabled() const;
  } admin;

  // The sessions express-session keeps in Redis through connect-redis (session/).
  struct Session {
    std::string cookie_name = "connect.sid";
    std::string key_prefix = "sess:";
    std::string user_field = "passport.user";  // a dotted path into the stored JSON
    // Sent to the upstream with the user of a valid session; a client's own copy never is.
    std::string user_header = "X-Session-User";
    // When cachecar answers a request that read the session itself (a hit, a 304), it renews
    // the session's expiry as express-session's touch would have.
    bool touch = true;
    std::string secrets_file;  // one secret per line; SESSION_SECRET (comma-separated) wins
    int secrets_file_line = 0;
    // The first signs, any verifies. From the environment or secrets_file, never from this
    // file, and never rendered or logged.
    std::vector<std::string> secrets;
  } session;

  struct Limits {
    uint64_t max_header_bytes = 16 * 1024;
    int max_headers = 100;
    uint64_t max_body_bytes = 10 * 1024 * 1024;
    int max_connections = 10'000;
    Duration header_timeout{10'000};
    Duration idle_timeout{60'000};
  } limits;

  Duration drain_timeout{30'000};

  struct Log {
    std::string level = "info";
    LogFormat format = LogFormat::Text;
    bool access = true;
  } log;
};

struct ConfigError {
  std::string key;     // dotted path, e.g. "upstream.timeout" or "routes[1].ttl"; may be empty
  int line = 0;        // 1-based line in the file; 0 when the value came from the environment
  std::string reason;  // what is wrong and, where it helps, what would be right

  // "config.yaml:12: upstream.timeout: missing unit: write e.g. 250ms, 5s or 1m"
  std::string describe(std::string_view file_name) const;
};

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;

// Parses and validates `yaml_text`, then applies REDIS_URL, UPSTREAM_URL, LISTEN,
// ADMIN_LISTEN and LOG_LEVEL from `env`. An empty document yields the defaults.
std::variant<Config, ConfigError> parse_config(std::string_view yaml_text, const EnvLookup& env);

// The effective configuration as YAML that parse_config accepts again (the Redis password
// masked), for --check-config.
std::string render_config(const Config& config);

}  // namespace cachecar
