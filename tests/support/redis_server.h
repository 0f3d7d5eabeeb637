#pragma once

// RedisServer runs a private redis-server (found on PATH) for one test: loopback only, on a
// free port, no persistence, working directory and log in its own TempDir.
//
// The port is chosen once and kept across stop()/start(), so a test can restart Redis under a
// running cachecar and check that it reconnects. The object also speaks just enough RESP to
// seed and inspect keys: each command() opens a fresh connection (bounded by a 2 s timeout),
// so no stale socket survives a restart, kill or pause.
//
// Not thread-safe: drive one RedisServer from one test thread.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.h"
#include "support/temp_dir.h"

namespace cachecar::test {

// One RESP2 reply.
struct RespReply {
  enum class Type { SimpleString, Error, Integer, Bulk, Nil, Array };
  Type type = Type::Nil;
  std::string text;  // SimpleString, Error (without the '-'), Bulk bytes, Integer digits
  long long integer = 0;
  std::vector<RespReply> elements;  // Array

  // As RedisServer::command() documents it.
  std::string render() const;
};

class RedisServer {
 public:
  // Starts Redis and waits until it answers PING. `extra_args` are appended to the command
  // line (e.g. {"--requirepass", "secret"}); a --requirepass value is remembered and used by
  // command(). Throws std::runtime_error (with Redis's output) if it does not come up on any
  // of a few ports.
  // `config_file_text`, when set, is written to a file of the server's own that it loads
  // first, and may rewrite: a sentinel needs one ({"--sentinel"} in `extra_args`).
  explicit RedisServer(std::vector<std::string> extra_args = {},
                       const std::string& config_file_text = "");
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  std::string url() const;  // "redis://127.0.0.1:PORT"
  const std::string& password() const { return password_; }

  // Starts again on the same port after stop() or kill(). Throws if it is running or does
  // not come up.
  void start();
  // SIGTERM (plus SIGCONT in case it is paused) and wait for the exit; SIGKILL after 10 s.
  void stop();
  // SIGKILL and reap: a crash, as far as clients can tell.
  void kill();
  // SIGSTOP: the socket stays open and accepts connections but nothing answers, which is
  // what a hung Redis looks like. Returns once the process is stopped.
  void pause();
  // SIGCONT.
  void resume();
  bool running() const;

  // Sends one command and renders the reply as text: simple string → its text, error →
  // "-" + message, integer → decimal, bulk string → raw bytes, nil → "(nil)", array → the
  // rendered elements joined by "\n". Throws std::runtime_error on connection failure or
  // timeout (2 s), e.g. while paused or stopped.
  std::string command(const std::vector<std::string>& argv);
  // The same, with the reply's structure kept (to tell a nil from the string "(nil)").
  RespReply command_reply(const std::vector<std::string>& argv);

  // Runs `commands` in order on ONE connection and returns every reply: what ASKING and WAIT
  // need, since each acts on the commands of its own connection (command() opens a new one
  // each time). Every reply must arrive within `timeout`.
  std::vector<RespReply> pipeline(const std::vector<std::vector<std::string>>& commands,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Calls of `command` (lower case) Redis has run since it started, from INFO commandstats:
  // how tests see which commands cachecar sent, off Redis itself.
  long long command_calls(const std::string& command);

  std::optional<std::string> get(const std::string& key);
  // TTL in seconds; -1 without expiry, -2 if the key does not exist.
  long long ttl(const std::string& key);

  // What redis-server has printed (current or last run).
  std::string output() const;

 private:
  // Starts redis-server on port_ and waits for PING; false if it exited or never answered.
  bool launch();
  RespReply exchange(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);
  std::vector<RespReply> exchange_all(const std::vector<std::vector<std::string>>& commands,
                                      std::chrono::milliseconds timeout);

  std::vector<std::string> extra_args_;
  std::string password_;
  TempDir dir_;
  std::string config_file_;
  int port_ = 0;
  int launches_ = 0;  // names each run's log file
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace cachecar::test
