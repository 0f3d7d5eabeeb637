// cachecar: the command line. Everything else lives in the modules: configuration in
// config/, the process and its signals in server/supervisor.

#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "admin/purge_command.h"
#include "config/config_file.h"
#include "log/logging.h"
#include "server/supervisor.h"

namespace cachecar {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;

constexpr const char* kUsage = R"(usage: cachecar [--config FILE]
       cachecar --check-config FILE
       cachecar purge [--config FILE] [--key KEY]... [--prefix PREFIX] [--tag TAG]...
       cachecar --version | --help

A reverse caching proxy in front of an HTTP API, with its cache and rate limits in Redis.

  --config FILE        run with this configuration (default: config.yaml)
  --check-config FILE  validate FILE with the environment applied, print the effective
                       configuration and exit: 0 valid, 2 invalid
  --version            print the version and exit
  --help               print this text and exit
  purge                purge cached entries through the admin API (POST /purge) of the
                       cachecar that FILE configures, with ADMIN_TOKEN: exit 0 purged, 3 owed
                       until Redis answers, 1 refused or unreachable

Environment overrides: REDIS_URL, UPSTREAM_URL, LISTEN, ADMIN_LISTEN, ADMIN_TOKEN, LOG_LEVEL,
SESSION_SECRET.
Signals: SIGTERM or SIGINT drain in-flight requests (up to drain_timeout) and exit 0, a second
one exits at once; SIGHUP reloads the configuration file.
)";

int run_main(int argc, char** argv) {
  std::string config_path = "config.yaml";
  bool check_only = false;
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args.front() == "purge") {
    return run_purge_command(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    }
    if (arg == "--version") {
      std::printf("cachecar %s\n", CACHECAR_VERSION);
      return kExitOk;
    }
    if (arg == "--config" || arg == "--check-config") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "cachecar: %s needs a file\n%s", arg.c_str(), kUsage);
        return kExitUsage;
      }
      config_path = args[++i];
      check_only = check_only || arg == "--check-config";
      continue;
    }
    std::fprintf(stderr, "cachecar: unknown argument '%s'\n%s", arg.c_str(), kUsage);
    return kExitUsage;
  }

  std::string error;
  auto config = load_config_file(config_path, error);
  if (!config) {
    std::fprintf(stderr, "cachecar: %s\n", error.c_str());
    return kExitUsage;
  }
  if (check_only) {
    std::printf("# %s: valid\n%s", config_path.c_str(), render_config(*config).c_str());
    return kExitOk;
  }

  // A write to a socket the peer closed must be an error code, not a process-killing signal.
  signal(SIGPIPE, SIG_IGN);
  setup_logging(config->log);
  Supervisor supervisor(config_path, config);
  return supervisor.run();
}

}  // namespace
}  // namespace cachecar

int main(int argc, char** argv) { return cachecar::run_main(argc, argv); }
