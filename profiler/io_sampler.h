// I/O stacks (`record --io`): loads bpf/io.bpf.c, which counts bytes, calls
// and time per stack for read/write/pread64/pwrite64/readv/writev/sendto/
// recvfrom/sendmsg/recvmsg/fsync/fdatasync (at syscall entry and exit, with
// the file descriptor's kind: file, socket, pipe), and block I/O latency per
// issuing stack (block_rq_issue to block_rq_complete).
//
// In DWARF mode (copy_user_stacks) each call is sent to user space with a
// copy of its stack instead (StackCopies unwinds it, with the call's detail
// as below); only calls that find the copy ring full are counted here.
//
// The stacks are walked with frame pointers from the system call's
// registers, which skips the caller of a function that keeps no frame
// (glibc's write(), read(), ... : `main -> write_data -> write` would read
// `main -> write`). The sampler lists the `syscall` sites of such code in
// every executable file of the recorded processes (unwinder/syscall_sites.h)
// for the BPF program, which then reads the missing return address where
// the CFI says it is; drain() puts it back into the stack.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "profiler/bpf_handles.h"
#include "profiler/raw_stack.h"

struct io_bpf;

namespace stackwatch::profiler {

class ProcessTracker;

// An I/O entry's detail: "write file", "read socket", "fsync file"; "block
// write" for block requests (op: enum sw_io_op, fd_kind: enum sw_io_fd_kind).
std::string io_detail(uint32_t op, uint32_t fd_kind);

class IoSampler {
 public:
  struct Options {
    bool filter_targets = false;
    uint32_t max_stacks = 16384;  // per counts buffer; at least 16384 (calls are not rate-limited)
    bool block_io = true;
    // DWARF mode: system calls go through the stack-copy ring (block
    // requests keep frame-pointer stacks: they complete out of context).
    bool copy_user_stacks = false;
  };

  IoSampler(const Options& options, const ProcessTracker& tracker);
  ~IoSampler();
  IoSampler(const IoSampler&) = delete;
  IoSampler& operator=(const IoSampler&) = delete;

  // kind kIo stacks of this interval: detail "<op> <fd kind>" (e.g.
  // "write file") or "block read"/"block write"; count, bytes, latency_ns.
  RawInterval drain();

  // Lists the frameless system call sites of the executable files that
  // process tgid maps now (each file once). Our own process's files (its
  // libc is what a COMMAND will map) are listed by the constructor; drain()
  // adds the processes it sees. False if the process is gone.
  bool add_process(uint32_t tgid);
  // DWARF mode: the ring of the calls' stack copies (for StackCopies::add_ring).
  int stack_copies_fd() const;
  // Files scanned and sites listed so far.
  size_t site_files() const { return scanned_files_.size(); }
  size_t sites() const { return sites_; }

 private:
  io_bpf* skel_ = nullptr;
  std::vector<LinkPtr> links_;
  DropCounters drop_totals_;
  // (dev, inode) of the files scanned for sites; the processes looked at.
  std::set<std::tuple<uint32_t, uint32_t, uint64_t>> scanned_files_;
  std::unordered_set<uint32_t> looked_at_;
  size_t sites_ = 0;
  bool sites_full_ = false;
};

}  // namespace stackwatch::profiler
