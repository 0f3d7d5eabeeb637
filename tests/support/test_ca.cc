#include "support/test_ca.h"

#include <chrono>
#include <stdexcept>

#include "support/process.h"

namespace cachecar::test {
namespace {

using namespace std::chrono_literals;

void run_openssl(const std::vector<std::string>& args) {
  ChildProcess openssl("openssl", args);
  const auto code = openssl.wait_exit(30s);
  if (code != 0) {
    std::string command = "openssl";
    for (const std::string& arg : args) {
      command += " " + arg;
    }
    throw std::runtime_error(command + " failed:\n" + openssl.output());
  }
}

std::vector<std::string> new_key(const std::string& path) {
  return {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", path};
}

}  // namespace

TestCa::TestCa(std::string name) : dir_("cachecar-ca-") {
  ca_cert_ = dir_.path() + "/ca.crt";
  ca_key_ = dir_.path() + "/ca.key";
  std::vector<std::string> args = {"req",     "-x509",
                                   "-days",   "2",
                                   "-subj",   "/CN=" + name,
                                   "-addext", "basicConstraints=critical,CA:TRUE",
                                   "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                                   "-out",    ca_cert_};
  const std::vector<std::string> key = new_key(ca_key_);
  args.insert(args.begin() + 2, key.begin(), key.end());
  run_openssl(args);
}

IssuedCertificate TestCa::issue(const std::string& file_name, const std::string& common_name,
                                const std::string& extensions) {
  IssuedCertificate issued{dir_.path() + "/" + file_name + ".crt",
                           dir_.path() + "/" + file_name + ".key"};
  const std::string request = dir_.path() + "/" + file_name + ".csr";
  std::vector<std::string> args = {"req", "-new", "-subj", "/CN=" + common_name, "-out", request};
  const std::vector<std::string> key = new_key(issued.key_file);
  args.insert(args.begin() + 2, key.begin(), key.end());
  run_openssl(args);
  const std::string extfile = dir_.write_file(file_name + ".ext", extensions);
  run_openssl({"x509", "-req", "-in", request, "-CA", ca_cert_, "-CAkey", ca_key_, "-set_serial",
               std::to_string(++serial_), "-days", "2", "-extfile", extfile, "-out",
               issued.cert_file});
  return issued;
}

IssuedCertificate TestCa::issue_server(const std::string& file_name,
                                       const std::vector<std::string>& dns_names,
                                       const std::vector<std::string>& ip_addresses) {
  std::string names;
  for (const std::string& dns : dns_names) {
    names += (names.empty() ? "" : ",") + std::string("DNS:") + dns;
  }
  for (const std::string& ip : ip_addresses) {
    names += (names.empty() ? "" : ",") + std::string("IP:") + ip;
  }
  return issue(file_name, dns_names.empty() ? ip_addresses.front() : dns_names.front(),
               "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
               "extendedKeyUsage=serverAuth\nsubjectAltName=" +
                   names + "\n");
}

IssuedCertificate TestCa::issue_client(const std::string& file_name,
                                       const std::string& common_name) {
  return issue(file_name, common_name,
               "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
               "extendedKeyUsage=clientAuth\n");
}

}  // namespace cachecar::test
