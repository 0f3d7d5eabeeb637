#include "admin/purge_command.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "config/config_file.h"

namespace cachecar {
namespace {

constexpr int kPurged = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 2;
constexpr int kOwed = 3;

constexpr const char* kPurgeUsage =
    "usage: cachecar purge [--config FILE] [--soft] [--key KEY]... [--prefix PREFIX] "
    "[--tag TAG]...\n"
    "  --soft  mark the entries stale instead of deleting them\n";

// The admin listener as a client reaches it: a wildcard bind answers on loopback.
std::string client_host(const std::string& host) {
  if (host.empty() || host == "0.0.0.0") {
    return "127.0.0.1";
  }
  return host == "::" ? "::1" : host;
}

// One request, one answer, then the connection closes: what a command needs.
bool post(const std::string& host, uint16_t port, const std::string& request, std::string& response,
          std::string& error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    error = gai_strerror(rc);
    return false;
  }
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    error = "cannot connect";
    return false;
  }
  // A prefix purge walks the keyspace; a minute is long for one, short for a hung listener.
  timeval timeout{60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      ::close(fd);
      error = "the connection closed while sending";
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  char buffer[16 * 1024];
  while (true) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    response.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  if (response.empty()) {
    error = "no answer";
    return false;
  }
  return true;
}

}  // namespace

int run_purge_command(const std::vector<std::string>& args) {
  std::string config_path = "config.yaml";
  nlohmann::json body = nlohmann::json::object();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kPurgeUsage, stdout);
      return kPurged;
    }
    if (arg == "--soft") {
      body["soft"] = true;
      continue;
    }
    if (i + 1 >= args.size()) {
      std::fprintf(stderr, "cachecar purge: %s needs a value\n%s", arg.c_str(), kPurgeUsage);
      return kUsage;
    }
    const std::string& value = args[++i];
    if (arg == "--config") {
      config_path = value;
    } else if (arg == "--key") {
      body["keys"].push_back(value);
    } else if (arg == "--tag") {
      body["tags"].push_back(value);
    } else if (arg == "--prefix") {
      body["prefix"] = value;
    } else {
      std::fprintf(stderr, "cachecar purge: unknown argument '%s'\n%s", arg.c_str(), kPurgeUsage);
      return kUsage;
    }
  }
  if (!body.contains("keys") && !body.contains("tags") && !body.contains("prefix")) {
    std::fprintf(stderr, "cachecar purge: name a --key, a --prefix or a --tag\n%s", kPurgeUsage);
    return kUsage;
  }
  std::string error;
  auto config = load_config_file(config_path, error);
  if (!config) {
    std::fprintf(stderr, "cachecar purge: %s\n", error.c_str());
    return kUsage;
  }
  const std::string payload = body.dump();
  const std::string host = client_host(config->admin.listen.host);
  std::string request = "POST /purge HTTP/1.1\r\nHost: " +
                        (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                        "\r\nContent-Type: application/json\r\nConnection: close\r\n";
  if (!config->admin.token.empty()) {
    request += "Authorization: Bearer " + config->admin.token + "\r\n";
  }
  request += "Content-Length: " + std::to_string(payload.size()) + "\r\n\r\n" + payload;
  std::string response;
  if (!post(host, config->admin.listen.port, request, response, error)) {
    std::fprintf(stderr, "cachecar purge: %s:%u: %s\n", host.c_str(),
                 static_cast<unsigned>(config->admin.listen.port), error.c_str());
    return kFailed;
  }
  const size_t space = response.find(' ');
  const int status = space == std::string::npos ? 0 : std::atoi(response.c_str() + space + 1);
  const size_t body_at = response.find("\r\n\r\n");
  const std::string answer = body_at == std::string::npos ? "" : response.substr(body_at + 4);
  std::printf("%s\n", answer.c_str());
  if (status == 200) {
    return kPurged;
  }
  return status == 202 ? kOwed : kFailed;
}

}  // namespace cachecar
