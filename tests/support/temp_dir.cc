#include "support/temp_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "support/socket_util.h"

namespace cachecar::test {

TempDir::TempDir(std::string_view prefix) {
  const char* tmpdir = std::getenv("TMPDIR");
  const std::string base = (tmpdir != nullptr && *tmpdir != '\0') ? tmpdir : "/tmp";
  std::string name_template = base + "/" + std::string(prefix) + "XXXXXX";
  std::vector<char> buffer(name_template.begin(), name_template.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    throw std::runtime_error(errno_message("mkdtemp " + name_template, errno));
  }
  path_ = buffer.data();
}

TempDir::~TempDir() {
  // A destructor must not throw; a leftover directory in /tmp is the lesser harm.
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::write_file(std::string_view name, std::string_view content) const {
  const std::filesystem::path full = std::filesystem::path(path_) / name;
  std::error_code error;
  std::filesystem::create_directories(full.parent_path(), error);
  if (error) {
    throw std::runtime_error("create directory " + full.parent_path().string() + ": " +
                             error.message());
  }
  std::ofstream out(full, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) {
    throw std::runtime_error("write file " + full.string() + " failed");
  }
  return full.string();
}

}  // namespace cachecar::test
