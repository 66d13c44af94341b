// ProcReader (see proc_reader.h).
#include "profiler/proc_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace stackwatch::load {
namespace {

struct OwnedFd {
  int fd;
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

ProcReader::ProcReader(std::string root) : root_(std::move(root)) {}

std::string ProcReader::path_of(std::string_view relative) const {
  std::string path = root_;
  if (!path.empty() && path.back() != '/') path += '/';
  path += relative;
  return path;
}

std::optional<std::string> ProcReader::read(std::string_view relative) const {
  // Plain read(2) rather than iostreams: /proc files report size 0, and a
  // large first read of a small seq_file gets it in one consistent piece.
  OwnedFd file{::open(path_of(relative).c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) return std::nullopt;
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(file.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

}  // namespace stackwatch::load
