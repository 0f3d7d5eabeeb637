#pragma once

// TestCa makes a certificate authority for one test, with the openssl command line tool:
// a self-signed CA, and certificates it signs for servers (with the names they answer to) and
// for clients. Files live in the CA's own TempDir and go with it.
//
// Not thread-safe; cheap enough (EC P-256 keys) to make one per test.

#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace cachecar::test {

struct IssuedCertificate {
  std::string cert_file;  // PEM
  std::string key_file;   // PEM, unencrypted
};

class TestCa {
 public:
  // `name` is the CA's common name, and the files' prefix. Throws std::runtime_error with
  // openssl's output if it fails.
  explicit TestCa(std::string name = "cachecar test CA");

  const std::string& cert_file() const { return ca_cert_; }

  // A server certificate for `dns_names` and `ip_addresses` (subjectAltName).
  IssuedCertificate issue_server(const std::string& file_name,
                                 const std::vector<std::string>& dns_names,
                                 const std::vector<std::string>& ip_addresses);
  // A client certificate (extendedKeyUsage clientAuth) with common name `common_name`.
  IssuedCertificate issue_client(const std::string& file_name, const std::string& common_name);

 private:
  IssuedCertificate issue(const std::string& file_name, const std::string& common_name,
                          const std::string& extensions);

  TempDir dir_;
  std::string ca_cert_;
  std::string ca_key_;
  int serial_ = 1;
};

}  // namespace cachecar::test
