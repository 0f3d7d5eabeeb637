#include "http/headers.h"

#include <algorithm>
#include <vector>

#include "http/chars.h"

namespace cachecar {
namespace {

template <typename Fn>
void for_each_token(std::string_view value, Fn&& fn) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view item = trim_ows(value.substr(0, comma));
    if (!item.empty()) {
      fn(item);
    }
    if (comma == std::string_view::npos) {
      break;
    }
    value.remove_prefix(comma + 1);
  }
}

void append_via(Headers& headers) {
  std::string via;
  headers.for_each("Via", [&](std::string_view value) {
    via += via.empty() ? "" : ", ";
    via += value;
  });
  via += via.empty() ? "" : ", ";
  via += kViaValue;
  headers.set("Via", std::move(via));
}

}  // namespace

bool has_token(const Headers& headers, std::string_view name, std::string_view token) {
  bool found = false;
  headers.for_each(name, [&](std::string_view value) {
    for_each_token(value, [&](std::string_view item) { found = found || iequals(item, token); });
  });
  return found;
}

void remove_hop_by_hop(Headers& headers) {
  std::vector<std::string> named;
  headers.for_each("Connection", [&](std::string_view value) {
    for_each_token(value, [&](std::string_view item) { named.emplace_back(item); });
  });
  static constexpr std::string_view kAlways[] = {
      "Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length",
  };
  auto& list = headers.list();
  list.erase(std::remove_if(list.begin(), list.end(),
                            [&](const Header& h) {
                              if (starts_with_ci(h.name, "Proxy-")) {
                                return true;
                              }
                              for (std::string_view name : kAlways) {
                                if (iequals(h.name, name)) {
                                  return true;
                                }
                              }
                              for (const std::string& name : named) {
                                if (iequals(h.name, name)) {
                                  return true;
                                }
                              }
                              return false;
                            }),
             list.end());
}

void prepare_upstream_request_headers(Headers& headers, const ForwardingInfo& info) {
  remove_hop_by_hop(headers);
  headers.remove("Expect");
  // Fields some frameworks read to override the path or the method: they could change the
  // upstream's answer without changing the cache key, so they never reach it.
  for (std::string_view name : kOverrideFields) {
    headers.remove(name);
  }
  // CGI-style backends read "Transfer_Encoding" as HTTP_TRANSFER_ENCODING, the same variable
  // as Transfer-Encoding: a field cachecar did not frame by could frame the upstream's read.
  // Dropped, as nginx does by default (underscores_in_headers off).
  auto& list = headers.list();
  list.erase(std::remove_if(list.begin(), list.end(),
                            [](const Header& h) { return h.name.find('_') != std::string::npos; }),
             list.end());

  std::string forwarded_for;
  headers.for_each("X-Forwarded-For", [&](std::string_view value) {
    forwarded_for += forwarded_for.empty() ? "" : ", ";
    forwarded_for += value;
  });
  forwarded_for += forwarded_for.empty() ? "" : ", ";
  forwarded_for += info.client_address;
  headers.set("X-Forwarded-For", std::move(forwarded_for));
  headers.set("X-Forwarded-Proto", std::string(info.protocol));
  if (auto host = headers.get("Host")) {
    headers.set("X-Forwarded-Host", std::string(*host));
  } else {
    headers.remove("X-Forwarded-Host");
  }
  append_via(headers);
}

void prepare_client_response_headers(Headers& headers) {
  remove_hop_by_hop(headers);
  append_via(headers);
}

void remove_rate_limit_fields(Headers& headers) {
  auto& list = headers.list();
  list.erase(std::remove_if(list.begin(), list.end(),
                            [](const Header& h) { return starts_with_ci(h.name, "RateLimit"); }),
             list.end());
}

}  // namespace cachecar
