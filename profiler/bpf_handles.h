// RAII owners for libbpf objects and file descriptors, and the translation of
// libbpf's negative-errno results into stackwatch::Error messages.
#pragma once

#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "recording/error.h"

namespace stackwatch::profiler {

struct LinkDeleter {
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

struct RingBufferDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferDeleter>;

// A skeleton type T with T__destroy; `SkeletonPtr<oncpu_bpf, oncpu_bpf__destroy>`.
template <typename T, void (*Destroy)(T*)>
struct SkeletonDeleter {
  void operator()(T* skel) const { Destroy(skel); }
};
template <typename T, void (*Destroy)(T*)>
using SkeletonPtr = std::unique_ptr<T, SkeletonDeleter<T, Destroy>>;

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Turns a failed libbpf call into an actionable message. Privileges are
// checked before anything is loaded, so EACCES at load time is the verifier
// rejecting a program: say where to see its log.
[[noreturn]] inline void throw_bpf_error(const std::string& what, int err) {
  if (err < 0) err = -err;
  std::string msg = what + ": " + std::strerror(err);
  if (err == EPERM) msg += " (stackwatch record needs root, or CAP_BPF and CAP_PERFMON)";
  if (err == EACCES) msg += " (rejected by the kernel; STACKWATCH_DEBUG=1 prints libbpf's log)";
  throw Error(msg);
}

// Routes libbpf's messages: silent unless STACKWATCH_DEBUG is set, because
// its verifier dumps are for developers, not for the user's terminal.
void install_libbpf_logger();

}  // namespace stackwatch::profiler
