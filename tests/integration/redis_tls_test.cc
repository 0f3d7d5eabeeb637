// TLS to Redis (rediss://): a real redis-server with --tls-port and a CA the test makes with
// openssl. The cache works through TLS; a server cachecar cannot verify (wrong CA, wrong
// name, a client certificate it lacks) is refused and logged, and requests go on without
// Redis, as for any Redis fault.

#include <doctest/doctest.h>

#include "harness.h"
#include "support/free_port.h"
#include "support/test_ca.h"

namespace cachecar::test {
namespace {

// A Redis that speaks plain RESP on port() (for the test's own commands) and TLS on
// tls_port(), with a server certificate for "localhost" and 127.0.0.1 from `ca`.
struct TlsRedis {
  TlsRedis(TestCa& ca, bool require_client_certificate)
      : tls_port(free_tcp_port()),
        certificate(
            ca.issue_server("redis-" + std::to_string(tls_port), {"localhost"}, {"127.0.0.1"})),
        redis({"--tls-port", std::to_string(tls_port), "--tls-cert-file", certificate.cert_file,
               "--tls-key-file", certificate.key_file, "--tls-ca-cert-file", ca.cert_file(),
               "--tls-auth-clients", require_client_certificate ? "yes" : "no"}) {}

  int tls_port;
  IssuedCertificate certificate;
  RedisServer redis;
};

std::string tls_yaml(const std::string& url, const std::string& tls_block,
                     const TestUpstream& upstream) {
  return "upstream:\n  url: " + upstream.url() + "\nredis:\n  url: " + url +
         "\n  connect_timeout: 2s\n  tls:\n" + tls_block +
         "routes:\n  - path: /products/{id}\n    key: product:{id}\n    ttl: 60s\n";
}

std::string ca_line(const std::string& file) { return "    ca_file: " + file + "\n"; }

}  // namespace

TEST_CASE("redis tls: the cache works over TLS, verified by the CA and the host name") {
  TestCa ca;
  TlsRedis server(ca, false);
  TestUpstream upstream;
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    CAPTURE(host);
    server.redis.command({"FLUSHALL"});
    upstream.reset_counters();
    Cachecar cachecar(tls_yaml("rediss://" + host + ":" + std::to_string(server.tls_port),
                               ca_line(ca.cert_file()), upstream));
    REQUIRE(cachecar.process().wait_for_output(": connected", 5s));
    CHECK(cachecar.output().find("rediss://" + host) != std::string::npos);
    HttpConnection client(cachecar.port());
    auto miss = client.request("GET", "/products/42");
    CHECK(miss.status == 200);
    CHECK(miss.header("X-Cache") == "MISS");
    // Stored through TLS: the plain port of the same server sees the entry.
    CHECK(eventually([&] { return server.redis.get("product:42").has_value(); }));
    auto hit = client.request("GET", "/products/42");
    CHECK(hit.header("X-Cache") == "HIT");
    CHECK(hit.body == miss.body);
    CHECK(upstream.request_count() == 1);
    // A write's invalidation crosses TLS too.
    CHECK(client.request("PUT", "/products/42", {}, "{}").status == 200);
    CHECK(eventually([&] { return !server.redis.get("product:42").has_value(); }));
  }
}

TEST_CASE("redis tls: the near cache's invalidation connection is TLS too") {
  TestCa ca;
  TlsRedis server(ca, false);
  TestUpstream upstream;
  Cachecar cachecar(tls_yaml("rediss://localhost:" + std::to_string(server.tls_port),
                             ca_line(ca.cert_file()), upstream) +
                    "cache:\n  near: {max_bytes: 1MiB}\n");
  REQUIRE(cachecar.process().wait_for_output("near cache: Redis tracks", 5s));
  CHECK(cachecar.output().find("invalidation") != std::string::npos);
  HttpConnection client(cachecar.port());
  auto x_cache = [&client] { return client.request("GET", "/products/3").header("X-Cache"); };
  CHECK(x_cache() == "MISS");
  REQUIRE(eventually([&] { return x_cache() == "HIT"; }));
  // Changed by another client of the plain port: Redis tells cachecar over TLS.
  REQUIRE(server.redis.command({"DEL", "product:3"}) == "1");
  CHECK(eventually([&] { return x_cache() == "MISS"; }));
}

TEST_CASE("redis tls: a server cachecar cannot verify is refused, logged, and not needed") {
  TestCa ca;
  TestCa stranger("some other CA");
  TlsRedis server(ca, false);
  TestUpstream upstream;
  const std::string url = "rediss://localhost:" + std::to_string(server.tls_port);
  struct Case {
    std::string name;
    std::string url;
    std::string tls_block;
    std::string logged;
  };
  const Case cases[] = {
      {"a CA that did not sign the server's certificate", url, ca_line(stranger.cert_file()),
       "certificate verify failed"},
      {"a name the certificate does not carry", url,
       ca_line(ca.cert_file()) + "    server_name: redis.example\n", "hostname mismatch"},
      {"an address the certificate does not carry",
       "rediss://127.0.0.1:" + std::to_string(server.tls_port),
       ca_line(ca.cert_file()) + "    server_name: 127.0.0.3\n", "IP address mismatch"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    upstream.reset_counters();
    Cachecar cachecar(tls_yaml(c.url, c.tls_block, upstream));
    REQUIRE(cachecar.process().wait_for_output(c.logged, 5s));
    CHECK(cachecar.output().find(": connected") == std::string::npos);
    // Redis is a cache, never a condition of success.
    HttpConnection client(cachecar.port());
    for (int i = 0; i < 2; ++i) {
      auto response = client.request("GET", "/products/7");
      CHECK(response.status == 200);
      CHECK(response.header("X-Cache") != "HIT");
    }
    CHECK(upstream.request_count() == 2);
    CHECK_FALSE(server.redis.get("product:7").has_value());
  }
}

TEST_CASE("redis tls: insecure_skip_verify accepts a server it cannot verify, and says so") {
  TestCa ca;
  TestCa stranger("some other CA");
  TlsRedis server(ca, false);
  TestUpstream upstream;
  Cachecar cachecar(tls_yaml("rediss://localhost:" + std::to_string(server.tls_port),
                             ca_line(stranger.cert_file()) + "    insecure_skip_verify: true\n",
                             upstream));
  REQUIRE(cachecar.process().wait_for_output(": connected", 5s));
  CHECK(cachecar.output().find("insecure_skip_verify") != std::string::npos);
  HttpConnection client(cachecar.port());
  client.request("GET", "/products/8");
  CHECK(client.request("GET", "/products/8").header("X-Cache") == "HIT");
}

TEST_CASE("redis tls: a server that requires a client certificate gets cachecar's") {
  TestCa ca;
  TlsRedis server(ca, true);
  TestUpstream upstream;
  const std::string url = "rediss://localhost:" + std::to_string(server.tls_port);
  {
    Cachecar without(tls_yaml(url, ca_line(ca.cert_file()), upstream));
    REQUIRE(without.process().wait_for_output("certificate required", 5s));
    CHECK(without.output().find(": connected") == std::string::npos);
  }
  const IssuedCertificate client_certificate = ca.issue_client("cachecar-client", "cachecar");
  Cachecar with(tls_yaml(url,
                         ca_line(ca.cert_file()) +
                             "    cert_file: " + client_certificate.cert_file +
                             "\n    key_file: " + client_certificate.key_file + "\n",
                         upstream));
  REQUIRE(with.process().wait_for_output(": connected", 5s));
  HttpConnection client(with.port());
  client.request("GET", "/products/9");
  CHECK(client.request("GET", "/products/9").header("X-Cache") == "HIT");
}

TEST_CASE("redis tls: a reload reports a TLS change and keeps the running one until a restart") {
  TestCa ca;
  TlsRedis server(ca, false);
  TestUpstream upstream;
  const std::string url = "rediss://localhost:" + std::to_string(server.tls_port);
  Cachecar cachecar(tls_yaml(url, ca_line(ca.cert_file()), upstream));
  REQUIRE(cachecar.process().wait_for_output(": connected", 5s));
  // A name the certificate does not carry: applied, it would refuse the server.
  cachecar.rewrite_config(
      tls_yaml(url, ca_line(ca.cert_file()) + "    server_name: redis.example\n", upstream));
  cachecar.process().signal(SIGHUP);
  REQUIRE(cachecar.process().wait_for_output("configuration reloaded", 5s));
  CHECK(cachecar.output().find("redis.tls changed from {ca_file: " + ca.cert_file()) !=
        std::string::npos);
  CHECK(cachecar.output().find("server_name: redis.example, insecure_skip_verify: false}; it "
                               "takes effect after a restart") != std::string::npos);
  // The next connection still verifies the name it started with.
  REQUIRE(cachecar.output().find("connected again") == std::string::npos);
  server.redis.command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
  REQUIRE(eventually(
      [&] {
        HttpConnection client(cachecar.port());
        client.request("GET", "/products/5");
        return client.request("GET", "/products/5").header("X-Cache") == "HIT";
      },
      5s));
  CHECK(cachecar.output().find("connected again") != std::string::npos);
  CHECK(cachecar.output().find("hostname mismatch") == std::string::npos);
}

TEST_CASE("redis tls: --check-config names the TLS file that cannot be used") {
  TempDir dir;
  const std::string not_pem = dir.write_file("ca.pem", "not a certificate\n");
  const std::string config = dir.write_file(
      "config.yaml", "redis:\n  url: rediss://cache\n  tls:\n    ca_file: " + not_pem + "\n");
  auto [code, output] = run_cachecar({"--check-config", config});
  CHECK(code == 2);
  CHECK(output.find("config.yaml:4: redis.tls.ca_file: cannot load " + not_pem) !=
        std::string::npos);
}

}  // namespace cachecar::test
