#include "net/endpoints.h"

#include <charconv>

#include "http/chars.h"

namespace cachecar {
namespace {

bool parse_port(std::string_view text, uint16_t& port, std::string& reason) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > 65535) {
    reason = "port must be a number from 0 to 65535";
    return false;
  }
  port = static_cast<uint16_t>(value);
  return true;
}

bool valid_host(std::string_view host) {
  for (char c : host) {
    const bool ok = is_alpha(c) || is_digit(c) || c == '.' || c == '-' || c == ':' || c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

// Parses "host", "host:port", "[v6]" or "[v6]:port"; `default_port` applies when none given.
std::optional<HostPort> parse_authority(std::string_view text, std::optional<uint16_t> default_port,
                                        std::string& reason) {
  HostPort out;
  std::string_view port_text;
  bool has_port = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) {
      reason = "unterminated '[' in IPv6 address";
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        reason = "expected ':' after ']'";
        return std::nullopt;
      }
      port_text = rest.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon != std::string_view::npos) {
      if (text.find(':') != colon) {
        reason = "an IPv6 address must be written in brackets, e.g. [::1]:8080";
        return std::nullopt;
      }
      out.host = std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
      has_port = true;
    } else {
      out.host = std::string(text);
    }
  }
  if (!valid_host(out.host)) {
    reason = "invalid host '" + out.host + "'";
    return std::nullopt;
  }
  if (has_port) {
    if (!parse_port(port_text, out.port, reason)) {
      return std::nullopt;
    }
  } else if (default_port) {
    out.port = *default_port;
  } else {
    reason = "missing port (write host:port)";
    return std::nullopt;
  }
  return out;
}

}  // namespace

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

std::optional<HostPort> parse_host_port(std::string_view text, std::string& reason) {
  if (text.empty()) {
    reason = "expected host:port";
    return std::nullopt;
  }
  return parse_authority(text, std::nullopt, reason);
}

std::string UpstreamUrl::to_string() const { return "http://" + address.to_string() + path_prefix; }

std::optional<UpstreamUrl> parse_upstream_url(std::string_view text, std::string& reason) {
  constexpr std::string_view kHttp = "http://";
  if (text.substr(0, 8) == "https://") {
    reason = "https upstreams are not supported yet; use http://";
    return std::nullopt;
  }
  if (text.substr(0, kHttp.size()) != kHttp) {
    reason = "expected http://host[:port][/path]";
    return std::nullopt;
  }
  text.remove_prefix(kHttp.size());
  const size_t slash = text.find('/');
  const std::string_view authority = text.substr(0, slash);
  if (authority.empty()) {
    reason = "missing host";
    return std::nullopt;
  }
  if (authority.find('@') != std::string_view::npos) {
    reason = "credentials in the upstream URL are not supported";
    return std::nullopt;
  }
  auto address = parse_authority(authority, 80, reason);
  if (!address) {
    return std::nullopt;
  }
  UpstreamUrl url;
  url.address = std::move(*address);
  if (url.address.host.empty()) {
    reason = "missing host";
    return std::nullopt;
  }
  if (slash != std::string_view::npos) {
    std::string_view path = text.substr(slash);
    if (path.find_first_of("?#") != std::string_view::npos) {
      reason = "the upstream URL cannot carry a query or fragment";
      return std::nullopt;
    }
    while (!path.empty() && path.back() == '/') {
      path.remove_suffix(1);
    }
    url.path_prefix = std::string(path);
  }
  return url;
}

std::string RedisUrl::to_redacted_string() const {
  std::string out = tls ? "rediss" : "redis";
  out += uses_sentinel() ? "+sentinel://" : uses_cluster() ? "+cluster://" : "://";
  if (!username.empty() || !password.empty()) {
    // "user:@" keeps a user without a password distinct from a password alone ("secret@").
    out += username;
    out += ":";
    if (!password.empty()) {
      out += "***";
    }
    out += "@";
  }
  if (uses_sentinel()) {
    for (size_t i = 0; i < sentinels.size(); ++i) {
      out += (i == 0 ? "" : ",") + sentinels[i].to_string();
    }
    out += "/" + master_name;
  } else if (uses_cluster()) {
    for (size_t i = 0; i < cluster_seeds.size(); ++i) {
      out += (i == 0 ? "" : ",") + cluster_seeds[i].to_string();
    }
    return out;
  } else {
    out += address.to_string();
  }
  out += "/" + std::to_string(database);
  return out;
}

namespace {

constexpr std::string_view kUrlForms =
    "expected redis://[user:password@]host[:port][/db] (rediss:// for TLS) or "
    "redis+sentinel://[user:password@]host[:port],.../master[/db] or "
    "redis+cluster://[user:password@]host[:port],...";

enum class Topology { Single, Sentinel, Cluster };

// The scheme: whether TLS, and which topology. False for any other scheme.
bool take_scheme(std::string_view& text, RedisUrl& url, Topology& topology) {
  const size_t end = text.find("://");
  if (end == std::string_view::npos) {
    return false;
  }
  const std::string_view scheme = text.substr(0, end);
  text.remove_prefix(end + 3);
  std::string_view kind = scheme;
  url.tls = kind.starts_with("rediss");
  kind.remove_prefix(url.tls ? 6 : kind.starts_with("redis") ? 5 : 0);
  topology = kind == "+sentinel" ? Topology::Sentinel
             : kind == "+cluster" ? Topology::Cluster
                                  : Topology::Single;
  return scheme.starts_with("redis") && (kind.empty() || topology != Topology::Single);
}


bool take_userinfo(std::string_view& text, RedisUrl& url, std::string& reason) {
  const size_t at = text.rfind('@');
  if (at == std::string_view::npos) {
    return true;
  }
  const std::string_view userinfo = text.substr(0, at);
  text.remove_prefix(at + 1);
  const size_t colon = userinfo.find(':');
  auto user = percent_decode(userinfo.substr(0, colon));
  auto pass = colon == std::string_view::npos ? std::optional<std::string>("")
                                              : percent_decode(userinfo.substr(colon + 1));
  if (!user || !pass) {
    reason = "invalid percent-escape in user or password";
    return false;
  }
  if (colon == std::string_view::npos) {
    // redis://secret@host is how many clients spell a password-only URL.
    url.password = std::move(*user);
  } else {
    url.username = std::move(*user);
    url.password = std::move(*pass);
  }
  return true;
}

std::optional<HostPort> take_host(std::string_view authority, uint16_t default_port,
                                  std::string& reason) {
  auto address = parse_authority(authority, default_port, reason);
  if (address && address->host.empty()) {
    reason = "missing host";
    return std::nullopt;
  }
  return address;
}

// "host[:port],host[:port]" into `hosts`.
bool take_host_list(std::string_view text, uint16_t default_port, std::vector<HostPort>& hosts,
                    std::string& reason) {
  while (true) {
    const size_t comma = text.find(',');
    auto host = take_host(text.substr(0, comma), default_port, reason);
    if (!host) {
      return false;
    }
    hosts.push_back(std::move(*host));
    if (comma == std::string_view::npos) {
      return true;
    }
    text.remove_prefix(comma + 1);
  }
}

bool take_database(std::string_view db, RedisUrl& url, std::string& reason) {
  if (db.empty()) {
    return true;
  }
  auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), url.database);
  if (ec != std::errc() || end != db.data() + db.size() || url.database < 0) {
    reason = "database must be a non-negative number";
    return false;
  }
  return true;
}

// "host[:port],host[:port]/master[/db]"
bool take_sentinels(std::string_view text, RedisUrl& url, std::string& reason) {
  const size_t slash = text.find('/');
  if (!take_host_list(text.substr(0, slash), 26379, url.sentinels, reason)) {
    return false;
  }
  url.address = url.sentinels.front();
  const std::string_view path = slash == std::string_view::npos ? "" : text.substr(slash + 1);
  const size_t next = path.find('/');
  url.master_name = std::string(path.substr(0, next));
  if (url.master_name.empty()) {
    reason = "missing the master's name after the sentinels (/mymaster)";
    return false;
  }
  return next == std::string_view::npos || take_database(path.substr(next + 1), url, reason);
}

// "host[:port],host[:port]", and at most "/" or "/0" after it.
bool take_cluster_seeds(std::string_view text, RedisUrl& url, std::string& reason) {
  const size_t slash = text.find('/');
  if (!take_host_list(text.substr(0, slash), 6379, url.cluster_seeds, reason)) {
    return false;
  }
  url.address = url.cluster_seeds.front();
  if (slash != std::string_view::npos && !take_database(text.substr(slash + 1), url, reason)) {
    return false;
  }
  if (url.database != 0) {
    reason = "a Redis Cluster has database 0 only";
    return false;
  }
  return true;
}

}  // namespace

std::optional<RedisUrl> parse_redis_url(std::string_view text, std::string& reason) {
  RedisUrl url;
  Topology topology = Topology::Single;
  if (!take_scheme(text, url, topology)) {
    reason = std::string(kUrlForms);
    return std::nullopt;
  }
  if (!take_userinfo(text, url, reason)) {
    return std::nullopt;
  }
  if (topology == Topology::Sentinel) {
    return take_sentinels(text, url, reason) ? std::optional<RedisUrl>(std::move(url))
                                             : std::nullopt;
  }
  if (topology == Topology::Cluster) {
    return take_cluster_seeds(text, url, reason) ? std::optional<RedisUrl>(std::move(url))
                                                 : std::nullopt;
  }
  const size_t slash = text.find('/');
  auto address = take_host(text.substr(0, slash), 6379, reason);
  if (!address) {
    return std::nullopt;
  }
  url.address = std::move(*address);
  if (slash != std::string_view::npos && !take_database(text.substr(slash + 1), url, reason)) {
    return std::nullopt;
  }
  return url;
}

}  // namespace cachecar
