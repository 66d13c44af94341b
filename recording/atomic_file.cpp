// Atomic file replacement (see atomic_file.h).
#include "recording/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "recording/error.h"

namespace stackwatch {

void write_file_atomically(const std::string& path, std::string_view contents) {
  std::string tmp = path + ".tmp.XXXXXX";
  // mkstemp creates with O_EXCL and mode 0600: a symlink planted at the
  // temporary name is never followed, and no other user can read it early.
  int fd = mkstemp(tmp.data());
  if (fd < 0) throw Error("cannot create " + tmp + ": " + std::strerror(errno));
  auto fail = [&](const char* what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(std::string("cannot ") + what + " " + path + ": " + std::strerror(err));
  };
  if (fchmod(fd, 0644) != 0) fail("set permissions of");
  const char* p = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("sync");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot write " + path + ": " + std::strerror(err));
  }
  // rename() replaces a planted symlink at `path` itself rather than following it.
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot replace " + path + ": " + std::strerror(err));
  }
}

}  // namespace stackwatch
