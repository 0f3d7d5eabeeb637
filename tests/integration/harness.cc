#include "harness.h"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace cachecar::test {
namespace {

long proc_status_kb(int pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream value(line.substr(field.size() + 1));
      long kb = 0;
      value >> kb;
      return kb;
    }
  }
  return -1;
}

}  // namespace

std::string cachecar_binary() { return CACHECAR_BINARY; }

std::pair<int, std::string> run_cachecar(const std::vector<std::string>& args,
                                         std::vector<std::pair<std::string, std::string>> env) {
  ChildProcessOptions options;
  options.env = std::move(env);
  ChildProcess process(cachecar_binary(), args, options);
  auto code = process.wait_exit(10s);
  if (!code) {
    throw std::runtime_error("cachecar did not exit: " + process.output());
  }
  return {*code, process.output()};
}

namespace {

std::string full_config(const std::string& yaml) {
  std::string config = "listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n" + yaml;
  // Tests that are not about rate limiting send more than the default limit allows.
  if (yaml.rfind("rate_limit:", 0) != 0 && yaml.find("\nrate_limit:") == std::string::npos) {
    config += "rate_limit: off\n";
  }
  return config;
}

}  // namespace

void Cachecar::rewrite_config(const std::string& yaml) {
  dir_.write_file("config.yaml", full_config(yaml));
}

Cachecar::Cachecar(const std::string& yaml, std::vector<std::pair<std::string, std::string>> env) {
  const std::string config = full_config(yaml);
  config_path_ = dir_.write_file("config.yaml", config);
  ChildProcessOptions options;
  options.env = std::move(env);
  options.log_path = dir_.path() + "/cachecar.log";
  process_ = std::make_unique<ChildProcess>(
      cachecar_binary(), std::vector<std::string>{"--config", config_path_}, options);
  auto port = process_->wait_for_regex(R"(listening on 127\.0\.0\.1:(\d+) with)", 10s);
  if (!port) {
    throw std::runtime_error("cachecar did not start:\n" + process_->output() + "\nconfig:\n" +
                             config);
  }
  port_ = std::stoi(*port);
  auto admin_port = process_->wait_for_regex(R"(admin listening on 127\.0\.0\.1:(\d+))", 1s);
  if (!admin_port) {
    throw std::runtime_error("cachecar did not report its admin port:\n" + process_->output());
  }
  admin_port_ = std::stoi(*admin_port);
}

Cachecar::~Cachecar() {
  if (process_->running()) {
    process_->signal(SIGTERM);
    // A test may leave a request hanging on a stalled upstream; past this the drain is not
    // waited for and ChildProcess's SIGKILL ends it.
    process_->wait_exit(3s);
  }
  const std::string output = process_->output();
  for (const char* marker : {"Sanitizer", "runtime error:"}) {
    const size_t at = output.find(marker);
    if (at != std::string::npos) {
      FAIL_CHECK("cachecar reported a sanitizer finding:\n",
                 output.substr(at > 2000 ? at - 2000 : 0, 6000));
      break;
    }
  }
}

long Cachecar::rss_kb() const { return proc_status_kb(process_->pid(), "VmRSS"); }
long Cachecar::peak_rss_kb() const { return proc_status_kb(process_->pid(), "VmHWM"); }

std::optional<int> Cachecar::stop(std::chrono::milliseconds timeout) {
  process_->signal(SIGTERM);
  return process_->wait_exit(timeout);
}

RedisStatsProbe::RedisStatsProbe(int port) : fd_(connect_loopback(port, 2s)) {
  set_io_timeout(fd_.get(), 2s);
  reader_.set_fd(fd_.get());
}

long long RedisStatsProbe::stat(const std::string& field) {
  if (send_all(fd_.get(), "*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n") != IoStatus::Ok) {
    throw std::runtime_error("INFO: cannot send");
  }
  const ReadResult length = reader_.read_until("\r\n", 64);
  if (length.status != IoStatus::Ok || length.text.empty() || length.text[0] != '$') {
    throw std::runtime_error("INFO: unexpected reply");
  }
  std::string info;
  const size_t size = std::stoul(length.text.substr(1));
  if (reader_.read_exact(size + 2, [&](std::string_view piece) { info += piece; }) !=
      IoStatus::Ok) {
    throw std::runtime_error("INFO: truncated reply");
  }
  const size_t at = info.find(field + ":");
  if (at == std::string::npos) {
    throw std::runtime_error("INFO stats has no " + field);
  }
  return std::stoll(info.substr(at + field.size() + 1));
}

std::string stack_yaml(const TestUpstream& upstream, const RedisServer& redis,
                       const std::string& redis_yaml) {
  return "upstream:\n  url: " + upstream.url() + "\n  timeout: 2s\n  connect_timeout: 1s\n" +
         "redis:\n  url: " + redis.url() + "\n" + redis_yaml;
}

Stack::Stack(const std::string& extra_yaml, const std::string& routes_yaml,
             const std::string& redis_yaml) {
  std::string yaml = stack_yaml(upstream, redis, redis_yaml) + extra_yaml;
  if (!routes_yaml.empty()) {
    yaml += "routes:\n" + routes_yaml;
  }
  cachecar = std::make_unique<Cachecar>(yaml);
  if (!cachecar->process().wait_for_output(": connected", 5s)) {
    throw std::runtime_error("cachecar did not connect to Redis:\n" + cachecar->output());
  }
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

}  // namespace cachecar::test
