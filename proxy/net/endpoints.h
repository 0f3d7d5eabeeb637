#pragma once
// Addresses cachecar listens on or connects to, parsed from their configuration text.
// Pure: resolving host names is the I/O layer's job (never on the request path).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cachecar {

struct HostPort {
  std::string host;  // IP literal or name; "" means every interface when listening
  uint16_t port = 0;

  // "host:port" with IPv6 hosts in brackets, as an operator would write it again.
  std::string to_string() const;
};

// "127.0.0.1:8080", "[::1]:8080", "localhost:8080", ":8080", "0.0.0.0:0".
std::optional<HostPort> parse_host_port(std::string_view text, std::string& reason);

struct UpstreamUrl {
  HostPort address;
  // Prepended to every forwarded request target ("" or "/v1", never ending in '/').
  std::string path_prefix;

  std::string to_string() const;
};

// "http://host[:port][/prefix]". https is refused: TLS toward the upstream is not built yet,
// and a silent plaintext fallback would be worse than an error.
std::optional<UpstreamUrl> parse_upstream_url(std::string_view text, std::string& reason);

struct RedisUrl {
  HostPort address;      // the Redis; else the first sentinel or cluster seed
  std::string username;  // empty: AUTH with the password alone (requirepass)
  std::string password;  // empty: no AUTH
  int database = 0;
  bool tls = false;  // rediss://
  // redis+sentinel://: the sentinels to ask for the master named `master_name`. The user and
  // password are the master's; the sentinels are asked without AUTH.
  std::vector<HostPort> sentinels{};
  std::string master_name{};
  // redis+cluster://: the nodes first asked for the slot map (any node of the cluster will do;
  // the map names the rest). Database 0 only: a cluster has no other.
  std::vector<HostPort> cluster_seeds{};

  bool uses_sentinel() const { return !sentinels.empty(); }
  bool uses_cluster() const { return !cluster_seeds.empty(); }
  // The URL with the password masked, safe to print or log.
  std::string to_redacted_string() const;
};

// "redis://[[user]:password@]host[:port][/db]", port 6379 by default; "rediss://" for TLS;
// "redis+sentinel://[[user]:password@]host[:port],host[:port]/master[/db]", port 26379 by
// default ("rediss+sentinel://": TLS to the master and the sentinels);
// "redis+cluster://[[user]:password@]host[:port],host[:port]" ("rediss+cluster://" for TLS).
// Percent-escapes in the user and password are decoded so any byte can appear in a password.
std::optional<RedisUrl> parse_redis_url(std::string_view text, std::string& reason);

}  // namespace cachecar
