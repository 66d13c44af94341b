// I/O stacks (`record --io`): loads bpf/io.bpf.c, which counts bytes, calls
// and time per stack for read/write/pread64/pwrite64/readv/writev/sendto/
// recvfrom/sendmsg/recvmsg/fsync/fdatasync (at syscall entry and exit, with
// the file descriptor's kind: file, socket, pipe), and block I/O latency per
// issuing stack (block_rq_issue to block_rq_complete).
#pragma once

#include <cstdint>
#include <vector>

#include "profiler/bpf_handles.h"
#include "profiler/raw_stack.h"

struct io_bpf;

namespace stackwatch::profiler {

class ProcessTracker;

class IoSampler {
 public:
  struct Options {
    bool filter_targets = false;
    uint32_t max_stacks = 16384;  // per counts buffer; at least 16384 (calls are not rate-limited)
    bool block_io = true;
  };

  IoSampler(const Options& options, const ProcessTracker& tracker);
  ~IoSampler();
  IoSampler(const IoSampler&) = delete;
  IoSampler& operator=(const IoSampler&) = delete;

  // kind kIo stacks of this interval: detail "<op> <fd kind>" (e.g.
  // "write file") or "block read"/"block write"; count, bytes, latency_ns.
  RawInterval drain();

 private:
  io_bpf* skel_ = nullptr;
  std::vector<LinkPtr> links_;
  DropCounters drop_totals_;
};

}  // namespace stackwatch::profiler
