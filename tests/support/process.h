#pragma once

// ChildProcess runs a program for an integration test (cachecar, redis-server, product_api)
// and captures everything it prints.
//
// Ownership: the object owns the child, the read end of its output pipe and a drain thread.
// stdout and stderr go into one pipe, so the captured text keeps the child's own interleaving.
// The drain thread appends to an in-memory log (and optionally a file) until EOF or
// destruction. The child runs in its own process group. When it is reaped, whatever it left
// running in that group is SIGKILLed; the destructor SIGKILLs the group if the child still
// runs, reaps it and joins the drain thread: no zombies, no leaked fds, no stray grandchildren.
//
// The child is also given PR_SET_PDEATHSIG=SIGKILL, so a test binary that crashes (ASan abort,
// doctest REQUIRE in a destructor) does not leave redis-servers behind. Linux sends that signal
// when the *thread* that spawned the child exits, so create ChildProcess objects on a thread that
// outlives them (normally the test's main thread).
//
// All methods are thread-safe.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "support/socket_util.h"

namespace cachecar::test {

// The last `max_lines` lines of `text` (a process's output), for error messages.
std::string tail_lines(const std::string& text, int max_lines);

struct ChildProcessOptions {
  // Added to the inherited environment; a name that is already set is overridden.
  std::vector<std::pair<std::string, std::string>> env;
  // When non-empty, the output is also written to this file (truncated first).
  std::string log_path;
  // When non-empty, the child starts in this directory.
  std::string working_dir;
};

class ChildProcess {
 public:
  // Starts `program` with `args` as argv[1..]. A program without '/' is looked up on PATH.
  // Throws std::runtime_error if the program cannot be found or executed.
  ChildProcess(std::string program, std::vector<std::string> args,
               ChildProcessOptions options = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Everything captured so far.
  std::string output() const;

  // True as soon as the captured output contains `needle`. Returns false at the timeout, or
  // early once the child closed its output without printing it (it exited or crashed).
  bool wait_for_output(std::string_view needle, std::chrono::milliseconds timeout);

  // Waits for a line of output matching `pattern` (ECMAScript syntax, one capture group) and
  // returns the first group. Matched line by line because libstdc++'s regex recurses per
  // character and would overflow the stack on megabytes of output. nullopt as for
  // wait_for_output.
  std::optional<std::string> wait_for_regex(const std::string& pattern,
                                            std::chrono::milliseconds timeout);

  // Sends `sig` to the child itself (not its group). No-op once the child has been reaped.
  void signal(int sig);

  // Waits for the child to exit and returns its exit code, or 128+signo if a signal killed it
  // (the shell convention). nullopt if it is still running at the timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  // False once the child has exited (it is reaped here if so).
  bool running();

 private:
  // Requires: reap_mutex_ held.
  bool try_reap_locked();
  void drain();

  std::string program_;
  pid_t pid_ = -1;
  UniqueFd output_read_;  // read end of the stdout+stderr pipe; drained by drain_thread_
  UniqueFd log_file_;     // mirror of the output; written only by drain_thread_
  UniqueFd pidfd_;        // readable when the child exits; may be invalid on old kernels
  UniqueFd wake_;         // eventfd that tells drain_thread_ to stop

  mutable std::mutex reap_mutex_;
  std::optional<int> exit_code_;  // guarded by reap_mutex_; set once the child is reaped

  mutable std::mutex output_mutex_;
  std::condition_variable output_changed_;
  std::string output_;       // guarded by output_mutex_
  bool output_eof_ = false;  // guarded by output_mutex_

  std::thread drain_thread_;  // started last in the constructor
};

}  // namespace cachecar::test
