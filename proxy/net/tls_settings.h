#pragma once
// redis.tls: how cachecar verifies a Redis server over TLS and proves itself to one. A value
// type of its own, so the configuration does not include OpenSSL (net/tls.h uses it).

#include <string>

namespace cachecar {

struct TlsSettings {
  std::string ca_file;      // PEM bundle of trusted CAs; empty: the system's default paths
  std::string cert_file;    // PEM client certificate (chain), for servers that require one
  std::string key_file;     // its private key (PEM)
  std::string server_name;  // the name to verify and send as SNI; empty: the URL's host
  bool insecure_skip_verify = false;
};

}  // namespace cachecar
