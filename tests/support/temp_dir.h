#pragma once

// TempDir is a private scratch directory for one test (configs, logs, Redis's working dir).
// It is created under $TMPDIR (or /tmp) with a unique name and removed recursively, with
// everything in it, when the object is destroyed.

#include <string>
#include <string_view>

namespace cachecar::test {

class TempDir {
 public:
  // `prefix` starts the directory's name; mkdtemp appends six random characters.
  explicit TempDir(std::string_view prefix = "cachecar-test-");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

  // Writes `content` to `name` (relative to path(); parent directories are created) and
  // returns the file's full path. Throws std::runtime_error on failure.
  std::string write_file(std::string_view name, std::string_view content) const;

 private:
  std::string path_;
};

}  // namespace cachecar::test
