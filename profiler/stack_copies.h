// DWARF mode: consumes the stack copies BPF sends through the stack_samples
// ring buffer (see sw_stack_sample in bpf/stackwatch.h), unwinds each user
// stack with the CFI unwinder, and aggregates the results into RawStacks the
// way the kernel aggregates frame-pointer stacks, so the rest of the
// pipeline does not know which kind of unwinding produced a stack.
//
// Threads: a reader thread empties the rings into a queue of copied records
// (taking the lock only to copy) when BPF wakes it, once a ring is a quarter
// full, or every kReadEvery; consume() and everything else run on the
// caller's thread, which alone unwinds, so the unwinder and the symbolizer
// are never shared. Why a reader: the recording's thread spends whole
// stretches symbolizing at interval ends (tens of ms for libc's DWARF, more
// for a machine's first interval), and BPF only writes into the ring;
// without the reader the ring had to hold a quarter of a second of the
// largest copies at -F on every CPU (16 MiB at 999 Hz, resident twice over:
// the kernel maps a ring's pages twice). With it the ring holds two reads'
// worth of the largest copies (ring_window(); 1 MiB at 999 Hz on 2 CPUs) and
// the queue only what is actually waiting, in chunks (see Chunk). The
// caller consumes every 100 ms (the rings and the queue), sooner when the
// reader wakes it (wake_fd()) because the queue passed kWakeCallerBytes.
//
// Copies are only as long as unwinding needs: once a thread's stack has
// been unwound whole, the highest address its unwinding read (plus a
// margin) goes to BPF's stack_tops map, and later copies of that thread
// stop there instead of at the end of its stack mapping (the thread block
// and TLS above a thread's outermost frame, the main thread's environment:
// 2-4 KiB of a typical 3-5 KiB copy). A copy that ended there and was then
// too short to unwind turns that off for the thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
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
  // Bytes of the copies unwound (records as sent: header, kernel stack,
  // user stack).
  uint64_t copied_bytes = 0;
  // Times the reader woke and read the rings.
  uint64_t reader_wakeups = 0;
};

class StackCopies {
 public:
  // The span of copies a ring must hold at hz samples a second per CPU
  // (record_session sizes the ring for two of them at the largest copies):
  // about ten samples, between 10 and 100 ms. The reader is woken sooner
  // (a quarter-full ring) when copies come faster than that.
  static std::chrono::milliseconds ring_window(double hz);
  // The longest the reader sleeps when BPF does not wake it.
  static constexpr std::chrono::milliseconds kReadEvery{100};
  // Past this many bytes waiting, the reader wakes the caller (wake_fd()).
  static constexpr size_t kWakeCallerBytes = size_t{256} << 10;
  // Bytes above the highest address a thread's unwinding read that its
  // later copies still take (a frame that saves one more register).
  static constexpr uint64_t kStackTopMargin = 256;
  // Threads whose stack top is remembered here (stack_tops in BPF holds
  // as many).
  static constexpr size_t kMaxStackTops = 16384;
  // Bytes of copies the queue may hold: past it the reader leaves records in
  // the rings, which then fill and count their drops in BPF (as when there
  // was no reader). The capacity the 999 Hz ring had, used only when a
  // backlog builds up.
  static constexpr size_t kMaxQueuedBytes = size_t{16} << 20;

  // ring_fd: the stack_samples ring buffer; tops_fd: BPF's stack_tops map
  // (-1: copies are not shortened); offcpu: where the kernel stack ids of
  // off-CPU copies are read (nullptr if off-CPU is not recorded). Starts
  // the reader thread.
  StackCopies(int ring_fd, int tops_fd, const OffCpuSampler* offcpu, symbolizer::Symbolizer& symbolizer);
  ~StackCopies();
  StackCopies(const StackCopies&) = delete;
  StackCopies& operator=(const StackCopies&) = delete;

  // Also consumes this ring of copies (another program's, e.g. I/O calls).
  void add_ring(int ring_fd);
  // Readable when the reader has queued kWakeCallerBytes or more: call
  // consume() then (it reads the fd).
  int wake_fd() const { return wake_caller_.get(); }
  // Unwinds every copy sent so far: those the reader queued and those still
  // in the rings. Call it every 100 ms at least, not only when woken: a
  // process's maps are re-read when its code was mapped after the snapshot
  // (the libraries the loader maps after exec), which only works while it
  // lives.
  void consume();

  // Everything aggregated since the last call (after a final consume()).
  std::vector<RawStack> take();
  UnwindReport take_report();
  void forget_process(uint32_t tgid) {
    unwinder_.forget_process(tgid);
    maps_.erase(tgid);
    unwound_.erase(tgid);
  }
  // Copies whose length BPF took from a thread's known stack top, and those
  // of them that turned out too short (the thread's copies are whole again).
  uint64_t trimmed_copies() const { return trimmed_; }
  uint64_t trimmed_too_short() const { return trimmed_too_short_; }

 private:
  // Copies a record into queue_ (under mutex_).
  static int on_sample(void* ctx, void* data, size_t size);
  void read_loop();
  void handle(const struct sw_stack_sample& s);
  // Tells BPF where tid's copies may stop, from the copy just unwound.
  void learn_stack_top(const struct sw_stack_sample& s);
  // One event of the sample just unwound (result_ holds its user stack).
  struct Event {
    StackKind kind = StackKind::kOnCpu;
    uint32_t state = 0;
    int32_t kernel_stack_id = -1;
    std::span<const uint64_t> kernel_ips;
    std::string_view detail;
    uint64_t ns = 0;     // off-CPU time, or an I/O call's time
    uint64_t bytes = 0;  // an I/O call's bytes
  };
  // Counts e under its stack; allocates only for a stack not seen yet this
  // interval.
  void add(const struct sw_stack_sample& s, const Event& e);
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
  // Unwinds a batch taken from the queue, then keeps a few of its chunks.
  void unwind_batch(std::vector<Chunk>& batch);

  RingBufferPtr ring_;
  int tops_fd_;
  // The reader's state.
  mutable std::mutex mutex_;
  UniqueFd stop_reader_;    // eventfd: written to stop the reader
  UniqueFd wake_caller_;    // eventfd: see wake_fd()
  bool caller_woken_ = false;   // wake_caller_ written since the last consume
  bool stop_ = false;
  bool reader_reading_ = false;  // on_sample runs for the reader (marks what it queues)
  std::vector<Chunk> queue_;
  size_t queued_words_ = 0;
  size_t max_queued_words_ = 0;  // since the last take_report
  uint64_t reader_wakeups_ = 0;   // since the last take_report
  std::vector<Chunk> spare_;  // emptied chunks, reused
  std::thread reader_;
  const OffCpuSampler* offcpu_;
  symbolizer::Symbolizer& symbolizer_;
  unwinder::Unwinder unwinder_;
  unwinder::UnwindResult result_;
  // Aggregation key -> stack; looked up by a string_view of key_.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view v) const { return std::hash<std::string_view>{}(v); }
  };
  std::unordered_map<std::string, RawStack, KeyHash, std::equal_to<>> pending_;
  std::string key_;  // the key being built (its buffer reused)
  std::vector<uint64_t> kernel_scratch_;  // an off-CPU block's kernel stack
  // Per thread: the stack top told to BPF (~0: copies are whole).
  std::unordered_map<uint32_t, uint64_t> tops_;
  uint64_t trimmed_ = 0;
  uint64_t trimmed_too_short_ = 0;
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
