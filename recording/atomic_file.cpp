// Atomic file replacement (see atomic_file.h).
#include "recording/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "recording/error.h"

namespace stackwatch {

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp.XXXXXX") {
  // mkstemp creates with O_EXCL and mode 0600: a symlink planted at the
  // temporary name is never followed, and no other user can read it early.
  fd_ = mkstemp(tmp_.data());
  if (fd_ < 0) throw Error("cannot create " + tmp_ + ": " + std::strerror(errno));
  if (fchmod(fd_, 0644) != 0) fail("set permissions of");
  buffer_.reserve(kBufferBytes);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFileWriter::fail(const char* what) {
  int err = errno;
  ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  throw Error(std::string("cannot ") + what + " " + path_ + ": " + std::strerror(err));
}

void AtomicFileWriter::write_fd(const char* p, size_t left) {
  if (fd_ < 0) throw Error("cannot write " + path_ + ": already closed");
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void AtomicFileWriter::flush() {
  write_fd(buffer_.data(), buffer_.size());
  buffer_.clear();
}

void AtomicFileWriter::write(std::string_view data) {
  if (buffer_.size() + data.size() <= buffer_.capacity()) {
    buffer_.append(data);
    return;
  }
  flush();
  if (data.size() >= buffer_.capacity())
    write_fd(data.data(), data.size());  // large: no copy through the buffer
  else
    buffer_.append(data);
}

void AtomicFileWriter::commit() {
  flush();
  if (::fsync(fd_) != 0) fail("sync");
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp_.c_str());
    throw Error("cannot write " + path_ + ": " + std::strerror(err));
  }
  // rename() replaces a planted symlink at `path` itself rather than following it.
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp_.c_str());
    throw Error("cannot replace " + path_ + ": " + std::strerror(err));
  }
}

void write_file_atomically(const std::string& path, std::string_view contents) {
  AtomicFileWriter file(path);
  file.write(contents);
  file.commit();
}

}  // namespace stackwatch
