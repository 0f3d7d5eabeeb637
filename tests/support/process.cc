#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <regex>
#include <stdexcept>

extern char** environ;

namespace cachecar::test {

std::string tail_lines(const std::string& text, int max_lines) {
  size_t pos = text.size();
  for (int i = 0; i <= max_lines && pos > 0; ++i) {
    const size_t newline = text.rfind('\n', pos - 1);
    if (newline == std::string::npos) {
      return text;
    }
    pos = newline;
  }
  return text.substr(pos + 1);
}

namespace {

constexpr size_t kDrainChunk = 64 * 1024;

std::string find_on_path(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    return program;
  }
  const char* path_env = std::getenv("PATH");
  const std::string path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  size_t begin = 0;
  while (begin <= path.size()) {
    const size_t end = std::min(path.find(':', begin), path.size());
    const std::string dir = end > begin ? path.substr(begin, end - begin) : ".";
    const std::string candidate = dir + "/" + program;
    struct stat info {};
    if (::stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    begin = end + 1;
  }
  throw std::runtime_error("cannot start '" + program + "': not found on PATH");
}

std::vector<std::string> build_environment(
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view item(*entry);
    const std::string_view name = item.substr(0, item.find('='));
    const bool overridden =
        std::any_of(extra.begin(), extra.end(), [&](const auto& var) { return var.first == name; });
    if (!overridden) {
      env.emplace_back(item);
    }
  }
  for (const auto& [name, value] : extra) {
    env.push_back(name + "=" + value);
  }
  return env;
}

std::vector<char*> to_c_array(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (std::string& s : strings) {
    pointers.push_back(s.data());
  }
  pointers.push_back(nullptr);
  return pointers;
}

int decode_wait_status(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

// Runs in the forked child of a multi-threaded parent, so only async-signal-safe calls
// (no allocation, no locks) until execve.
[[noreturn]] void exec_child(const char* path, char* const* argv, char* const* envp,
                             const char* working_dir, pid_t parent, int null_fd, int output_fd,
                             int status_fd) {
  auto fail = [status_fd]() {
    const int err = errno;
    [[maybe_unused]] const ssize_t ignored = ::write(status_fd, &err, sizeof err);
    ::_exit(127);
  };
  // Die with the test: see the comment on PR_SET_PDEATHSIG in process.h. The getppid check
  // closes the race where the parent died before prctl ran.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) {
    ::_exit(127);
  }
  // Own process group, so the destructor can kill grandchildren (sh -c '...; sleep 5') too.
  ::setpgid(0, 0);
  // The parent may have blocked or ignored signals (a test runner, product_api's sigwait);
  // a fresh server must start with default dispositions.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) {
      ::sigaction(sig, &default_action, nullptr);
    }
  }
  if (working_dir != nullptr && ::chdir(working_dir) != 0) {
    fail();
  }
  if (::dup2(null_fd, STDIN_FILENO) < 0 || ::dup2(output_fd, STDOUT_FILENO) < 0 ||
      ::dup2(output_fd, STDERR_FILENO) < 0) {
    fail();
  }
#ifdef SYS_close_range
  // Our own fds are CLOEXEC, but other code in the test process may have opened some
  // without it; the child must not keep, say, a listening socket alive.
  ::syscall(SYS_close_range, 3U, static_cast<unsigned>(status_fd) - 1U, 0U);
  ::syscall(SYS_close_range, static_cast<unsigned>(status_fd) + 1U, ~0U, 0U);
#endif
  ::execve(path, argv, envp);
  fail();
  ::_exit(127);  // not reached; fail() exits
}

}  // namespace

ChildProcess::ChildProcess(std::string program, std::vector<std::string> args,
                           ChildProcessOptions options)
    : program_(std::move(program)) {
  std::string path = find_on_path(program_);
  std::vector<std::string> argv_strings;
  argv_strings.push_back(program_);
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv = to_c_array(argv_strings);
  std::vector<std::string> env_strings = build_environment(options.env);
  std::vector<char*> envp = to_c_array(env_strings);

  if (!options.log_path.empty()) {
    log_file_.reset(
        ::open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!log_file_.valid()) {
      throw std::runtime_error(errno_message("open log file " + options.log_path, errno));
    }
  }
  int output_pipe[2];
  if (::pipe2(output_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error(errno_message("pipe2", errno));
  }
  output_read_.reset(output_pipe[0]);
  UniqueFd output_write(output_pipe[1]);
  // The child writes its execve errno here; a CLOEXEC pipe that just closes means success.
  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error(errno_message("pipe2", errno));
  }
  UniqueFd status_read(status_pipe[0]);
  UniqueFd status_write(status_pipe[1]);
  UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_fd.valid()) {
    throw std::runtime_error(errno_message("open /dev/null", errno));
  }
  wake_.reset(::eventfd(0, EFD_CLOEXEC));
  if (!wake_.valid()) {
    throw std::runtime_error(errno_message("eventfd", errno));
  }

  const char* working_dir = options.working_dir.empty() ? nullptr : options.working_dir.c_str();
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) {
    throw std::runtime_error(errno_message("fork for " + program_, errno));
  }
  if (pid_ == 0) {
    exec_child(path.c_str(), argv.data(), envp.data(), working_dir, parent, null_fd.get(),
               output_write.get(), status_write.get());
  }
  output_write.reset();
  status_write.reset();
  null_fd.reset();

  int exec_errno = 0;
  ssize_t n = 0;
  do {
    n = ::read(status_read.get(), &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    throw std::runtime_error(errno_message("cannot start " + path, exec_errno));
  }

#ifdef SYS_pidfd_open
  pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
#endif
  drain_thread_ = std::thread([this] { drain(); });
}

ChildProcess::~ChildProcess() {
  {
    std::lock_guard lock(reap_mutex_);
    if (!exit_code_) {
      // The child is alive or a zombie, so its pid (and thus its group id) cannot have
      // been reused: killing the group is safe and takes grandchildren along.
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      int status = 0;
      pid_t r = 0;
      do {
        r = ::waitpid(pid_, &status, 0);
      } while (r < 0 && errno == EINTR);
      exit_code_ = r == pid_ ? decode_wait_status(status) : -1;
    }
  }
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
  drain_thread_.join();
}

void ChildProcess::drain() {
  std::string chunk(kDrainChunk, '\0');
  pollfd fds[2] = {{output_read_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
  while (true) {
    // The timeout only bounds each wait; the destructor's eventfd write is what ends it.
    const int ready = ::poll(fds, 2, 1000);
    if (ready < 0 && errno != EINTR) {
      break;
    }
    if (ready <= 0) {
      continue;
    }
    if (fds[1].revents != 0) {
      break;
    }
    if (fds[0].revents == 0) {
      continue;
    }
    const ssize_t n = ::read(output_read_.get(), chunk.data(), chunk.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    const std::string_view data(chunk.data(), static_cast<size_t>(n));
    if (log_file_.valid()) {
      std::string_view rest = data;
      while (!rest.empty()) {
        const ssize_t written = ::write(log_file_.get(), rest.data(), rest.size());
        if (written <= 0) {
          break;  // a full disk must not stop the capture the test depends on
        }
        rest.remove_prefix(static_cast<size_t>(written));
      }
    }
    {
      std::lock_guard lock(output_mutex_);
      output_.append(data);
    }
    output_changed_.notify_all();
  }
  {
    std::lock_guard lock(output_mutex_);
    output_eof_ = true;
  }
  output_changed_.notify_all();
}

std::string ChildProcess::output() const {
  std::lock_guard lock(output_mutex_);
  return output_;
}

bool ChildProcess::wait_for_output(std::string_view needle, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(output_mutex_);
  size_t search_from = 0;
  while (true) {
    if (output_.find(needle, search_from) != std::string::npos) {
      return true;
    }
    // Only the tail that could still begin a match needs searching again.
    search_from = output_.size() >= needle.size() ? output_.size() - needle.size() + 1 : 0;
    if (output_eof_) {
      return false;
    }
    if (output_changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
      return output_.find(needle, search_from) != std::string::npos;
    }
  }
}

std::optional<std::string> ChildProcess::wait_for_regex(const std::string& pattern,
                                                        std::chrono::milliseconds timeout) {
  const std::regex regex(pattern);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto match_line = [&regex](std::string_view line) -> std::optional<std::string> {
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    std::match_results<std::string_view::const_iterator> match;
    if (std::regex_search(line.begin(), line.end(), match, regex)) {
      return match.size() > 1 ? match[1].str() : match[0].str();
    }
    return std::nullopt;
  };
  std::unique_lock lock(output_mutex_);
  size_t line_start = 0;  // complete lines before this were already matched
  while (true) {
    size_t newline = 0;
    while ((newline = output_.find('\n', line_start)) != std::string::npos) {
      if (auto found =
              match_line(std::string_view(output_).substr(line_start, newline - line_start))) {
        return found;
      }
      line_start = newline + 1;
    }
    // The line being written may already match (a prompt without a newline).
    if (auto found = match_line(std::string_view(output_).substr(line_start))) {
      return found;
    }
    if (output_eof_ || std::chrono::steady_clock::now() >= deadline) {
      return std::nullopt;
    }
    output_changed_.wait_until(lock, deadline);
  }
}

void ChildProcess::signal(int sig) {
  std::lock_guard lock(reap_mutex_);
  // Holding the lock while checking and killing means the pid cannot be reaped (and reused
  // by an unrelated process) in between.
  if (!try_reap_locked()) {
    ::kill(pid_, sig);
  }
}

std::optional<int> ChildProcess::wait_exit(std::chrono::milliseconds timeout) {
  using namespace std::chrono_literals;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<int> code;
  while (true) {
    {
      std::lock_guard lock(reap_mutex_);
      if (try_reap_locked()) {
        code = exit_code_;
        break;
      }
    }
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining <= 0ms) {
      return std::nullopt;
    }
    if (pidfd_.valid()) {
      pollfd pfd{pidfd_.get(), POLLIN, 0};
      ::poll(&pfd, 1, static_cast<int>(std::min(remaining, 1000ms).count()));
    } else {
      std::this_thread::sleep_for(std::min(remaining, std::chrono::milliseconds(5)));
    }
  }
  // Let the drain thread catch up with the last words, so output() right after wait_exit()
  // is complete. Bounded: a grandchild holding the pipe open must not stall the test.
  std::unique_lock lock(output_mutex_);
  output_changed_.wait_for(lock, 500ms, [this] { return output_eof_; });
  return code;
}

bool ChildProcess::running() {
  std::lock_guard lock(reap_mutex_);
  return !try_reap_locked();
}

bool ChildProcess::try_reap_locked() {
  if (exit_code_) {
    return true;
  }
  // Peek first (WNOWAIT): while the child is an unreaped zombie its pid cannot be reused, so
  // this is the last moment at which killing its process group is sure to hit only what it
  // left behind (sh -c 'server &'), which would otherwise outlive the test.
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
      info.si_pid == 0) {
    return false;
  }
  ::kill(-pid_, SIGKILL);
  int status = 0;
  pid_t r = 0;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  exit_code_ = r == pid_ ? decode_wait_status(status) : -1;
  return true;
}

}  // namespace cachecar::test
