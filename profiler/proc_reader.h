// ProcReader: reads small pseudo-files (/proc/stat, /proc/pressure/io, ...)
// below a root directory. The root is "/proc" in the tool and a temporary
// directory of fixture text in the unit tests, so every parser above it is
// tested on exact kernel-looking text without a real /proc.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace stackwatch::load {

class ProcReader {
 public:
  explicit ProcReader(std::string root = "/proc");

  // Contents of root/relative, or nullopt when the file is absent or
  // unreadable: a kernel without PSI simply has no /proc/pressure, and that
  // is a missing column, not an error.
  std::optional<std::string> read(std::string_view relative) const;

  // root/relative, for messages.
  std::string path_of(std::string_view relative) const;

  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

}  // namespace stackwatch::load
