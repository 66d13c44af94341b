// DWARF mode: consumes the stack copies BPF sends through the stack_samples
// ring buffer (see sw_stack_sample in bpf/stackwatch.h), unwinds each user
// stack with the CFI unwinder, and aggregates the results into RawStacks the
// way the kernel aggregates frame-pointer stacks, so the rest of the
// pipeline does not know which kind of unwinding produced a stack.
//
// Threads: a reader thread empties the rings every read_every() into a queue
// of copied records (taking the lock only to copy); consume() and everything
// else run on the caller's thread, which alone unwinds, so the unwinder and
// the symbolizer are never shared. Why a reader: the recording's thread
// spends whole stretches symbolizing at interval ends (tens of ms for libc's
// DWARF, more for a machine's first interval), and BPF only writes into the
// ring; without the reader the ring had to hold a quarter of a second of
// the largest copies at -F on every CPU (16 MiB at 999 Hz, resident twice
// over: the kernel maps a ring's pages twice). With it the ring holds two
// reads' worth of the largest copies (1 MiB at 999 Hz on 2 CPUs) and the
// queue only what is actually waiting, in chunks (see Chunk).
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "profiler/bpf_handles.h"
#include "profiler/raw_stack.h"
#include "symbolizer/symbolizer.h"
#include "unwinder/unwinder.h"

namespace stackwatch::profiler {

class OffCpuSampler;

// Stacks that could not be completed, by reason (reported, never invented).
struct UnwindReport {
  uint64_t stacks = 0;
  uint64_t complete = 0;
  std::map<std::string, uint64_t> incomplete;  // reason -> stacks
  // Copies the reader thread took out of the rings (the rest were still
  // there when the recording's thread consumed them).
  uint64_t queued_by_reader = 0;
  // The most bytes of copies the queue held at once (waiting to be unwound).
  uint64_t max_queued_bytes = 0;
};

class StackCopies {
 public:
  // How often the reader thread empties the rings at hz samples a second
  // per CPU: about every ten samples, between 10 and 100 ms (at 49 Hz the
  // ring holds seconds of copies: no need to wake 100 times a second).
  static std::chrono::milliseconds read_every(double hz);
  // Bytes of copies the queue may hold: past it the reader leaves records in
  // the rings, which then fill and count their drops in BPF (as when there
  // was no reader). The capacity the 999 Hz ring had, used only when a
  // backlog builds up.
  static constexpr size_t kMaxQueuedBytes = size_t{16} << 20;

  // ring_fd: the stack_samples ring buffer; offcpu: where the kernel stack
  // ids of off-CPU copies are read (nullptr if off-CPU is not recorded).
  // Starts the reader thread, which reads every read_every.
  StackCopies(int ring_fd, const OffCpuSampler* offcpu, symbolizer::Symbolizer& symbolizer,
              std::chrono::milliseconds read_every);
  ~StackCopies();
  StackCopies(const StackCopies&) = delete;
  StackCopies& operator=(const StackCopies&) = delete;

  // Also consumes this ring of copies (another program's, e.g. I/O calls).
  void add_ring(int ring_fd);
  // Unwinds every copy sent so far: those the reader queued and those still
  // in the rings.
  void consume();

  // Everything aggregated since the last call (after a final consume()).
  std::vector<RawStack> take();
  UnwindReport take_report();
  void forget_process(uint32_t tgid) {
    unwinder_.forget_process(tgid);
    maps_.erase(tgid);
    unwound_.erase(tgid);
  }

 private:
  // Copies a record into queue_ (under mutex_).
  static int on_sample(void* ctx, void* data, size_t size);
  void read_loop();
  void handle(const struct sw_stack_sample& s);
  // Counts one event under raw's stack: ns is off-CPU time, or an I/O
  // call's time (with its bytes).
  void add(RawStack raw, uint64_t ns, uint64_t bytes = 0);
  // The symbolizer's snapshot of tgid's mappings, copied once per interval.
  const std::vector<symbolizer::Mapping>& mappings_of(uint32_t tgid);

  // Part of the queue: records as [size][bytes, padded to 8], in 8-byte
  // words so each record stays aligned for sw_stack_sample (the size word's
  // top bit: queued by the reader). In chunks, so the queue grows without
  // copying what it holds and shrinks back to what waits: one growing
  // buffer kept twice its largest backlog, and a second one for the batch
  // being unwound (5.5 MB of a 999 Hz recording's heap, measured with
  // heaptrack, when interval ends kept the recording's thread busy).
  struct Chunk {
    std::unique_ptr<uint64_t[]> words;  // written before read: not zeroed
    size_t capacity = 0;                // words
    size_t used = 0;
  };
  static constexpr size_t kChunkWords = 8192;  // 64 KiB: 3 of the largest copies, ~15 typical ones
  static constexpr size_t kSpareChunks = 4;    // kept for reuse after a batch; the rest are freed

  RingBufferPtr ring_;
  // The reader's state.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::chrono::milliseconds read_every_;
  bool stop_ = false;
  bool reader_reading_ = false;  // on_sample runs for the reader (marks what it queues)
  std::vector<Chunk> queue_;
  size_t queued_words_ = 0;
  size_t max_queued_words_ = 0;  // since the last take_report
  std::vector<Chunk> spare_;  // emptied chunks, reused
  std::thread reader_;
  const OffCpuSampler* offcpu_;
  symbolizer::Symbolizer& symbolizer_;
  unwinder::Unwinder unwinder_;
  unwinder::UnwindResult result_;
  std::unordered_map<std::string, RawStack> pending_;  // aggregation key -> stack
  std::unordered_map<uint32_t, std::vector<symbolizer::Mapping>> maps_;
  // Processes with per-process state here and in the symbolizer. Most
  // short-lived ones are never reported exited (only those sampled on-CPU
  // are), so take() checks them: one found gone is forgotten two take()s
  // later, once its last stacks have been symbolized.
  std::unordered_set<uint32_t> unwound_;
  std::vector<uint32_t> gone_[2];  // found gone at the last take(), and the one before
  UnwindReport report_;
};

}  // namespace stackwatch::profiler
