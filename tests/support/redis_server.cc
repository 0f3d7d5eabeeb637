#include "support/redis_server.h"

#include <charconv>
#include <csignal>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "support/free_port.h"
#include "support/socket_util.h"

namespace cachecar::test {

namespace {

using namespace std::chrono_literals;

constexpr auto kCommandTimeout = 2000ms;
constexpr auto kPingTimeout = 500ms;
constexpr auto kStartupTimeout = 10s;
constexpr auto kStopTimeout = 10s;
constexpr int kFirstStartAttempts = 5;
constexpr int kRestartAttempts = 3;
constexpr size_t kMaxReplyLine = 64 * 1024;
constexpr int kMaxReplyDepth = 32;

// Built with append() rather than "*" + std::to_string(...): GCC 12 at -O2 reports a bogus
// -Wrestrict on that pattern (GCC bug 105329), which -Werror turns into a build failure.
std::string encode_command(const std::vector<std::string>& argv) {
  std::string out;
  out.append("*").append(std::to_string(argv.size())).append("\r\n");
  for (const std::string& arg : argv) {
    out.append("$").append(std::to_string(arg.size())).append("\r\n");
    out.append(arg).append("\r\n");
  }
  return out;
}

long long parse_integer(std::string_view text, std::string_view what) {
  long long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    throw std::runtime_error("redis: malformed " + std::string(what) + " '" + std::string(text) +
                             "'");
  }
  return value;
}

RespReply read_reply(SocketReader& reader, int depth) {
  if (depth > kMaxReplyDepth) {
    throw std::runtime_error("redis: reply nested too deeply");
  }
  const ReadResult line = reader.read_until("\r\n", kMaxReplyLine);
  if (line.status != IoStatus::Ok) {
    throw std::runtime_error("redis: reading reply: " + std::string(to_string(line.status)));
  }
  if (line.text.empty()) {
    throw std::runtime_error("redis: empty reply line");
  }
  const std::string_view rest = std::string_view(line.text).substr(1);
  RespReply reply;
  switch (line.text[0]) {
    case '+':
      reply.type = RespReply::Type::SimpleString;
      reply.text = rest;
      return reply;
    case '-':
      reply.type = RespReply::Type::Error;
      reply.text = rest;
      return reply;
    case ':':
      reply.type = RespReply::Type::Integer;
      reply.integer = parse_integer(rest, "integer reply");
      reply.text = rest;
      return reply;
    case '$': {
      const long long length = parse_integer(rest, "bulk length");
      if (length < 0) {
        return reply;  // Nil
      }
      reply.type = RespReply::Type::Bulk;
      std::string data;
      const IoStatus status = reader.read_exact(static_cast<size_t>(length) + 2,
                                                [&data](std::string_view piece) { data += piece; });
      if (status != IoStatus::Ok) {
        throw std::runtime_error("redis: reading bulk reply: " + std::string(to_string(status)));
      }
      if (data.compare(data.size() - 2, 2, "\r\n") != 0) {
        throw std::runtime_error("redis: bulk reply not terminated by CRLF");
      }
      data.resize(data.size() - 2);
      reply.text = std::move(data);
      return reply;
    }
    case '*': {
      const long long count = parse_integer(rest, "array length");
      if (count < 0) {
        return reply;  // Nil
      }
      reply.type = RespReply::Type::Array;
      for (long long i = 0; i < count; ++i) {
        reply.elements.push_back(read_reply(reader, depth + 1));
      }
      return reply;
    }
    default:
      throw std::runtime_error("redis: unexpected reply type in '" + line.text + "'");
  }
}

// Whether `pid` is in the stopped state ('T'), read from /proc/<pid>/stat.
bool process_stopped(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  std::getline(stat, content);
  // "pid (comm) S ...": comm may contain spaces and parentheses, so find the last ')'.
  const size_t paren = content.rfind(')');
  return paren != std::string::npos && paren + 2 < content.size() && content[paren + 2] == 'T';
}

}  // namespace

std::string RespReply::render() const {
  switch (type) {
    case Type::SimpleString:
    case Type::Bulk:
    case Type::Integer:
      return text;
    case Type::Error:
      return "-" + text;
    case Type::Nil:
      return "(nil)";
    case Type::Array: {
      std::string out;
      for (size_t i = 0; i < elements.size(); ++i) {
        if (i > 0) {
          out += '\n';
        }
        out += elements[i].render();
      }
      return out;
    }
  }
  return {};
}

RedisServer::RedisServer(std::vector<std::string> extra_args, const std::string& config_file_text)
    : extra_args_(std::move(extra_args)), dir_("cachecar-redis-") {
  if (!config_file_text.empty()) {
    config_file_ = dir_.write_file("redis.conf", config_file_text);
  }
  for (size_t i = 0; i + 1 < extra_args_.size(); ++i) {
    if (extra_args_[i] == "--requirepass") {
      password_ = extra_args_[i + 1];
    }
  }
  std::string failures;
  for (int attempt = 0; attempt < kFirstStartAttempts; ++attempt) {
    port_ = free_tcp_port();
    if (launch()) {
      return;
    }
    failures += "--- port " + std::to_string(port_) + ":\n" + tail_lines(output(), 8) + "\n";
  }
  process_.reset();
  throw std::runtime_error("redis-server did not start after " +
                           std::to_string(kFirstStartAttempts) + " attempts:\n" + failures);
}

RedisServer::~RedisServer() = default;

std::string RedisServer::url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

bool RedisServer::launch() {
  ++launches_;
  std::vector<std::string> args;
  if (!config_file_.empty()) {
    args.push_back(config_file_);  // redis-server reads a file only as its first argument
  }
  args.insert(args.end(), {"--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--daemonize", "no", "--dir", dir_.path()});
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  process_.reset();
  ChildProcessOptions options;
  options.log_path = dir_.path() + "/redis-" + std::to_string(launches_) + ".log";
  process_ = std::make_unique<ChildProcess>("redis-server", std::move(args), std::move(options));

  const std::string our_pid = "process_id:" + std::to_string(process_->pid()) + "\r\n";
  const auto deadline = std::chrono::steady_clock::now() + kStartupTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->running()) {
      return false;  // typically "Address already in use": the caller picks another port
    }
    try {
      // The process_id check makes sure we are not talking to someone else's server that
      // grabbed the port between free_tcp_port() and our bind.
      const RespReply info = exchange({"INFO", "server"}, kPingTimeout);
      if (info.type == RespReply::Type::Bulk && info.text.find(our_pid) != std::string::npos &&
          exchange({"PING"}, kPingTimeout).render() == "PONG") {
        return true;
      }
    } catch (const std::runtime_error&) {
      // Not listening yet.
    }
    std::this_thread::sleep_for(20ms);
  }
  process_->signal(SIGKILL);
  process_->wait_exit(kStopTimeout);
  return false;
}

void RedisServer::start() {
  if (running()) {
    throw std::runtime_error("RedisServer::start: already running on port " +
                             std::to_string(port_));
  }
  for (int attempt = 0; attempt < kRestartAttempts; ++attempt) {
    if (launch()) {
      return;
    }
    // The old socket may linger briefly; Redis sets SO_REUSEADDR, so this is rare.
    std::this_thread::sleep_for(200ms);
  }
  throw std::runtime_error("redis-server did not restart on port " + std::to_string(port_) + ":\n" +
                           tail_lines(output(), 8));
}

void RedisServer::stop() {
  if (!process_ || !process_->running()) {
    return;
  }
  process_->signal(SIGTERM);
  // A stopped process keeps SIGTERM pending until it is continued.
  process_->signal(SIGCONT);
  if (!process_->wait_exit(kStopTimeout)) {
    process_->signal(SIGKILL);
    process_->wait_exit(kStopTimeout);
  }
}

void RedisServer::kill() {
  if (!process_ || !process_->running()) {
    return;
  }
  process_->signal(SIGKILL);
  if (!process_->wait_exit(kStopTimeout)) {
    throw std::runtime_error("redis-server did not die from SIGKILL within 10 s");
  }
}

void RedisServer::pause() {
  if (!process_ || !process_->running()) {
    throw std::runtime_error("RedisServer::pause: not running");
  }
  process_->signal(SIGSTOP);
  // Signal delivery is asynchronous; a test that pauses and then expects a timeout must not
  // race a Redis that is still answering.
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (!process_stopped(process_->pid()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
}

void RedisServer::resume() {
  if (process_) {
    process_->signal(SIGCONT);
  }
}

bool RedisServer::running() const { return process_ && process_->running(); }

std::string RedisServer::command(const std::vector<std::string>& argv) {
  return command_reply(argv).render();
}

long long RedisServer::command_calls(const std::string& command_name) {
  const std::string info = command({"INFO", "commandstats"});
  const std::string field = "cmdstat_" + command_name + ":calls=";
  const size_t at = info.find(field);
  return at == std::string::npos ? 0 : std::stoll(info.substr(at + field.size()));
}

RespReply RedisServer::command_reply(const std::vector<std::string>& argv) {
  return exchange(argv, kCommandTimeout);
}

std::optional<std::string> RedisServer::get(const std::string& key) {
  RespReply reply = command_reply({"GET", key});
  if (reply.type == RespReply::Type::Nil) {
    return std::nullopt;
  }
  if (reply.type != RespReply::Type::Bulk) {
    throw std::runtime_error("redis GET " + key + ": unexpected reply " + reply.render());
  }
  return std::move(reply.text);
}

long long RedisServer::ttl(const std::string& key) {
  const RespReply reply = command_reply({"TTL", key});
  if (reply.type != RespReply::Type::Integer) {
    throw std::runtime_error("redis TTL " + key + ": unexpected reply " + reply.render());
  }
  return reply.integer;
}

std::string RedisServer::output() const { return process_ ? process_->output() : std::string(); }

RespReply RedisServer::exchange(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout) {
  return exchange_all({argv}, timeout).back();
}

std::vector<RespReply> RedisServer::pipeline(const std::vector<std::vector<std::string>>& commands,
                                             std::chrono::milliseconds timeout) {
  return exchange_all(commands, timeout);
}

std::vector<RespReply> RedisServer::exchange_all(
    const std::vector<std::vector<std::string>>& commands, std::chrono::milliseconds timeout) {
  if (commands.empty() || commands.front().empty()) {
    throw std::invalid_argument("redis: empty command");
  }
  const std::string context =
      "redis 127.0.0.1:" + std::to_string(port_) + " " + commands.front()[0] + ": ";
  try {
    const UniqueFd fd = connect_loopback(port_, timeout);
    set_io_timeout(fd.get(), timeout);
    std::string request;
    if (!password_.empty()) {
      // Pipelined with the commands: one round trip either way.
      request += encode_command({"AUTH", password_});
    }
    for (const auto& argv : commands) {
      request += encode_command(argv);
    }
    const IoStatus sent = send_all(fd.get(), request);
    if (sent != IoStatus::Ok) {
      throw std::runtime_error("sending: " + std::string(to_string(sent)));
    }
    SocketReader reader(fd.get());
    if (!password_.empty()) {
      const RespReply auth = read_reply(reader, 0);
      if (auth.type == RespReply::Type::Error) {
        throw std::runtime_error("AUTH failed: " + auth.text);
      }
    }
    std::vector<RespReply> replies;
    for (size_t i = 0; i < commands.size(); ++i) {
      replies.push_back(read_reply(reader, 0));
    }
    return replies;
  } catch (const std::runtime_error& error) {
    throw std::runtime_error(context + error.what());
  }
}

}  // namespace cachecar::test
