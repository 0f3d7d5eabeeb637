// The command line: --version, --help, --check-config, and configuration errors that name the
// key, the line and the reason and exit 2.

#include <doctest/doctest.h>

#include "harness.h"

namespace cachecar::test {
namespace {

const std::string kRepoConfig = std::string(CACHECAR_SOURCE_DIR) + "/config.yaml";

TEST_CASE("cli: --version and --help exit 0") {
  auto [version_code, version] = run_cachecar({"--version"});
  CHECK(version_code == 0);
  CHECK(version.find("cachecar ") == 0);

  auto [help_code, help] = run_cachecar({"--help"});
  CHECK(help_code == 0);
  CHECK(help.find("--check-config") != std::string::npos);
}

TEST_CASE("cli: --check-config accepts the repository's config.yaml") {
  auto [code, output] = run_cachecar({"--check-config", kRepoConfig});
  CHECK(code == 0);
  CHECK(output.find("valid") != std::string::npos);
  // The effective configuration is printed, with the defaults filled in.
  CHECK(output.find("listen: \"0.0.0.0:8080\"") != std::string::npos);
  CHECK(output.find("key: \"product:{id}\"") != std::string::npos);
}

TEST_CASE("cli: a misspelt key exits 2 naming the key and its line") {
  TempDir dir;
  const std::string path = dir.write_file("bad.yaml",
                                          "listen: 127.0.0.1:8080\n"
                                          "upstream:\n"
                                          "  url: http://127.0.0.1:3000\n"
                                          "  timout: 5s\n");
  auto [code, output] = run_cachecar({"--check-config", path});
  CHECK(code == 2);
  CAPTURE(output);
  CHECK(output.find("bad.yaml:4: upstream.timout: unknown key") != std::string::npos);
}

TEST_CASE("cli: a bad value exits 2 with the reason, also when running") {
  TempDir dir;
  const std::string path =
      dir.write_file("bad.yaml", "routes:\n  - path: /p/{id}\n    key: p:{idd}\n");
  auto [check_code, check_output] = run_cachecar({"--check-config", path});
  CHECK(check_code == 2);
  CHECK(check_output.find("bad.yaml:3: routes[0].key: {idd} is not a variable") !=
        std::string::npos);

  auto [run_code, run_output] = run_cachecar({"--config", path});
  CHECK(run_code == 2);
  CHECK(run_output.find("routes[0].key") != std::string::npos);
}

TEST_CASE("cli: environment overrides are validated and applied") {
  auto [bad_code, bad_output] =
      run_cachecar({"--check-config", kRepoConfig}, {{"REDIS_URL", "http://nope"}});
  CHECK(bad_code == 2);
  CHECK(bad_output.find("REDIS_URL (environment)") != std::string::npos);

  auto [code, output] =
      run_cachecar({"--check-config", kRepoConfig}, {{"LISTEN", "127.0.0.1:9999"},
                                                     {"UPSTREAM_URL", "http://10.1.2.3:4000"},
                                                     {"LOG_LEVEL", "debug"}});
  CHECK(code == 0);
  CHECK(output.find("listen: \"127.0.0.1:9999\"") != std::string::npos);
  CHECK(output.find("url: \"http://10.1.2.3:4000\"") != std::string::npos);
  CHECK(output.find("level: debug") != std::string::npos);
}

TEST_CASE("cli: unknown arguments and missing files exit 2") {
  CHECK(run_cachecar({"--frobnicate"}).first == 2);
  CHECK(run_cachecar({"--config", "/nonexistent/cachecar.yaml"}).first == 2);
  CHECK(run_cachecar({"--check-config"}).first == 2);
}

TEST_CASE("cli: a port already in use is reported and exits 1") {
  TestUpstream occupant;  // listens on a free port
  TempDir dir;
  const std::string path =
      dir.write_file("c.yaml", "listen: 127.0.0.1:" + std::to_string(occupant.port()) + "\n");
  auto [code, output] = run_cachecar({"--config", path});
  CHECK(code == 1);
  CHECK(output.find("Address already in use") != std::string::npos);
}

}  // namespace
}  // namespace cachecar::test
