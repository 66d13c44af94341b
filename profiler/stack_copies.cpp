// DWARF-mode stack copies: unwind and aggregate (see stack_copies.h).
#include "profiler/stack_copies.h"

#include <bpf/bpf.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "bpf/stackwatch.h"
#include "profiler/io_sampler.h"
#include "profiler/offcpu_sampler.h"
#include "profiler/process_exists.h"

namespace stackwatch::profiler {

static_assert(sizeof(sw_user_regs) == sizeof(unwinder::UserRegs), "sw_user_regs must match unwinder::UserRegs");

// In a queued record's size word: the reader thread queued it.
constexpr uint64_t kQueuedByReader = uint64_t{1} << 63;

std::chrono::milliseconds StackCopies::ring_window(double hz) {
  double ms = hz > 0 ? 10 * 1000.0 / hz : 100;
  return std::chrono::milliseconds(static_cast<int64_t>(std::clamp(ms, 10.0, 100.0)));
}

StackCopies::StackCopies(int ring_fd, int tops_fd, const OffCpuSampler* offcpu, symbolizer::Symbolizer& symbolizer)
    : tops_fd_(tops_fd), offcpu_(offcpu), symbolizer_(symbolizer) {
  ring_.reset(ring_buffer__new(ring_fd, &StackCopies::on_sample, this, nullptr));
  if (!ring_) throw_bpf_error("cannot set up the stack-copy ring buffer", errno);
  stop_reader_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  wake_caller_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_reader_ || !wake_caller_) throw_bpf_error("cannot create the stack-copy reader's eventfds", errno);
  reader_ = std::thread([this] { read_loop(); });
}

StackCopies::~StackCopies() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  uint64_t one = 1;
  (void)!::write(stop_reader_.get(), &one, sizeof one);
  reader_.join();
}

void StackCopies::add_ring(int ring_fd) {
  std::lock_guard lock(mutex_);  // the reader may be in ring_buffer__consume
  if (int err = ring_buffer__add(ring_.get(), ring_fd, &StackCopies::on_sample, this); err)
    throw_bpf_error("cannot set up a stack-copy ring buffer", -err);
}

void StackCopies::read_loop() {
  // The rings' epoll fd is readable while a ring holds records; BPF wakes
  // a sleeper only once a ring is a quarter full (send_stack_sample), so
  // after emptying them the reader sleeps until then, or kReadEvery.
  pollfd fds[2] = {{stop_reader_.get(), POLLIN, 0}, {ring_buffer__epoll_fd(ring_.get()), POLLIN, 0}};
  bool capped = false;
  while (true) {
    // Capped, the rings are not watched (they hold records: poll would
    // return at once): the reader only sleeps.
    ::poll(fds, capped ? 1 : 2, static_cast<int>(kReadEvery.count()));
    std::lock_guard lock(mutex_);
    if (stop_) break;
    // Past the cap the records stay in the rings (see kMaxQueuedBytes).
    capped = queued_words_ * sizeof(uint64_t) >= kMaxQueuedBytes;
    if (capped) continue;
    reader_reading_ = true;
    ring_buffer__consume(ring_.get());
    reader_reading_ = false;
    ++reader_wakeups_;
    if (!caller_woken_ && queued_words_ * sizeof(uint64_t) >= kWakeCallerBytes) {
      uint64_t one = 1;
      caller_woken_ = ::write(wake_caller_.get(), &one, sizeof one) == sizeof one;
    }
  }
}

void StackCopies::consume() {
  std::vector<Chunk> batch;
  {
    std::lock_guard lock(mutex_);
    ring_buffer__consume(ring_.get());  // what the reader has not read yet
    batch.swap(queue_);
    queued_words_ = 0;
    uint64_t count;
    (void)!::read(wake_caller_.get(), &count, sizeof count);
    caller_woken_ = false;
  }
  unwind_batch(batch);
}

void StackCopies::unwind_batch(std::vector<Chunk>& batch) {
  for (const Chunk& chunk : batch) {
    for (size_t at = 0; at < chunk.used;) {
      size_t size = static_cast<size_t>(chunk.words[at] & ~kQueuedByReader);
      report_.queued_by_reader += (chunk.words[at] & kQueuedByReader) != 0;
      report_.copied_bytes += size;
      handle(*reinterpret_cast<const sw_stack_sample*>(&chunk.words[at + 1]));
      at += 1 + (size + 7) / 8;
    }
  }
  std::lock_guard lock(mutex_);
  for (Chunk& chunk : batch) {
    if (spare_.size() >= kSpareChunks) break;
    if (chunk.capacity != kChunkWords) continue;  // an oversized record's
    chunk.used = 0;
    spare_.push_back(std::move(chunk));
  }
  // The rest of batch is freed as it goes (after the lock, which the
  // reader may be waiting for).
}

int StackCopies::on_sample(void* ctx, void* data, size_t size) {
  // A record carries its header, kernel_depth kernel addresses and
  // stack_len bytes of stack, not the whole data array (send_stack_sample
  // in bpf/common.bpf.h).
  constexpr size_t kHeader = offsetof(sw_stack_sample, data);
  if (size < kHeader) return 0;
  const auto& s = *static_cast<const sw_stack_sample*>(data);
  // Never sent so: not ours.
  if (s.kernel_depth > SW_MAX_STACK_DEPTH || s.stack_len > SW_USER_STACK_BYTES ||
      size_t{s.kernel_depth} * 8 + s.stack_len > size - kHeader)
    return 0;
  // Queued whole (the ring's space is reused as soon as this returns),
  // padded so the next record starts on an 8-byte word; the stack bytes
  // past them are not sent, so a copy holds only what handle() reads.
  auto* self = static_cast<StackCopies*>(ctx);
  const size_t words = 1 + (size + 7) / 8;
  std::vector<Chunk>& q = self->queue_;
  if (q.empty() || q.back().capacity - q.back().used < words) {
    if (!self->spare_.empty() && words <= kChunkWords) {
      q.push_back(std::move(self->spare_.back()));
      self->spare_.pop_back();
    } else {
      Chunk& chunk = q.emplace_back();
      chunk.capacity = std::max(kChunkWords, words);
      chunk.words = std::make_unique_for_overwrite<uint64_t[]>(chunk.capacity);
    }
  }
  Chunk& chunk = q.back();
  chunk.words[chunk.used] = size | (self->reader_reading_ ? kQueuedByReader : 0);
  std::memcpy(&chunk.words[chunk.used + 1], data, size);
  chunk.used += words;
  self->queued_words_ += words;
  self->max_queued_words_ = std::max(self->max_queued_words_, self->queued_words_);
  return 0;
}

void StackCopies::handle(const sw_stack_sample& s) {
  unwinder::UserRegs regs;
  regs.ip = s.regs.ip;
  regs.sp = s.regs.sp;
  regs.bp = s.regs.bp;
  regs.bx = s.regs.bx;
  regs.r12 = s.regs.r12;
  regs.r13 = s.regs.r13;
  regs.r14 = s.regs.r14;
  regs.r15 = s.regs.r15;
  // on_sample checked both lengths against the record's size.
  const size_t kernel_bytes = size_t{s.kernel_depth} * 8;
  std::span<const uint8_t> stack(s.data + kernel_bytes, s.stack_len);
  unwound_.insert(s.tgid);
  unwinder_.unwind(s.tgid, mappings_of(s.tgid), regs, stack, result_);
  if (result_.reason == unwinder::IncompleteReason::kNotMapped && symbolizer_.remember_process(s.tgid)) {
    // New code mapped since the snapshot (dlopen, JIT): once more with fresh maps.
    maps_.erase(s.tgid);
    unwinder_.unwind(s.tgid, mappings_of(s.tgid), regs, stack, result_);
  }
  ++report_.stacks;
  if (result_.complete())
    ++report_.complete;
  else
    ++report_.incomplete[result_.reason_text()];
  learn_stack_top(s);

  Event e;
  if (s.kind == SW_KIND_IO) {
    // One system call: its kernel stack would only be the exit path.
    e.kind = StackKind::kIo;
    e.kernel_stack_id = -EFAULT;
    std::string detail = io_detail(s.io_op, s.io_fd_kind);
    e.detail = detail;
    e.ns = s.io_ns;
    e.bytes = s.io_bytes;
    add(s, e);
    return;
  }
  if (s.kind == SW_KIND_PAGE_FAULT) {
    e.kind = StackKind::kMemory;
    e.detail = "page-fault";
    add(s, e);
    return;
  }
  if (s.kind != SW_KIND_OFF_CPU) {
    e.kind = StackKind::kOnCpu;
    // 8-byte aligned: the record is (on_sample), and data is in the struct.
    e.kernel_ips = {reinterpret_cast<const uint64_t*>(s.data), s.kernel_depth};
    add(s, e);
    return;
  }
  // Off-CPU: the blocks of one system call share this user stack.
  e.kind = StackKind::kOffCpu;
  for (uint32_t i = 0; i < std::min<uint32_t>(s.nblocks, SW_MAX_PENDING_BLOCKS); ++i) {
    const sw_off_block& b = s.blocks[i];
    e.state = b.state;
    e.kernel_stack_id = b.kernel_stack_id;
    kernel_scratch_.clear();
    if (b.kernel_stack_id >= 0 && offcpu_) offcpu_->read_stack(b.kernel_stack_id, kernel_scratch_);
    e.kernel_ips = kernel_scratch_;
    e.ns = b.off_ns;
    add(s, e);
  }
}

void StackCopies::learn_stack_top(const sw_stack_sample& s) {
  if (tops_fd_ < 0) return;
  const bool trimmed = (s.flags & SW_SAMPLE_STACK_TRIMMED) != 0;
  uint64_t top = 0;
  if (trimmed) {
    ++trimmed_;
    if (result_.complete() || result_.reason != unwinder::IncompleteReason::kReadOutsideStack) return;
    // Too short: this thread's stacks reach higher than its first ones did
    // (another thread with its tid, a coroutine's stack): copy it whole.
    ++trimmed_too_short_;
    top = ~uint64_t{0};
  } else {
    if (!result_.complete() || result_.stack_bytes_read == 0) return;
    top = s.regs.sp + result_.stack_bytes_read + kStackTopMargin;
    // Only the first complete stack of a thread is told (one system call
    // per thread), and only a top that shortens its copies.
    if (top >= s.regs.sp + s.stack_len) return;
  }
  // As many as BPF's LRU map holds (~40 bytes each here); a thread told
  // again after a clear costs one more call.
  if (tops_.size() >= kMaxStackTops) tops_.clear();
  auto [it, inserted] = tops_.try_emplace(s.tid, top);
  if (!inserted) {
    if (it->second == top || it->second == ~uint64_t{0}) return;
    if (!trimmed && top <= it->second) return;
    it->second = top;
  }
  uint32_t tid = s.tid;
  if (bpf_map_update_elem(tops_fd_, &tid, &top, BPF_ANY) != 0) tops_.erase(s.tid);
}

void StackCopies::add(const sw_stack_sample& s, const Event& e) {
  // Aggregate like the kernel does: thread, state, comm and both stacks.
  const size_t comm_len = strnlen(s.comm, sizeof s.comm);
  std::string& key = key_;
  key.clear();
  uint32_t ids[2] = {s.tgid, s.tid};
  key.append(reinterpret_cast<const char*>(ids), sizeof ids);
  key.append(reinterpret_cast<const char*>(&e.state), sizeof e.state);
  key.push_back(static_cast<char>(e.kind));
  key.append(s.comm, comm_len);
  key.push_back('\0');
  key.append(e.detail);
  key.push_back('\0');
  key.append(reinterpret_cast<const char*>(e.kernel_ips.data()), e.kernel_ips.size() * 8);
  key.push_back('|');
  key.append(reinterpret_cast<const char*>(result_.ips.data()), result_.ips.size() * 8);
  auto it = pending_.find(std::string_view(key));
  if (it == pending_.end()) {
    RawStack raw;
    raw.key.tgid = s.tgid;
    raw.key.tid = s.tid;
    raw.key.state = e.state;
    raw.key.user_stack_id = -1;
    raw.key.kernel_stack_id = e.kernel_stack_id;
    std::memcpy(raw.key.comm, s.comm, sizeof raw.key.comm);
    std::memcpy(raw.value.process_comm, s.process_comm, sizeof raw.value.process_comm);
    raw.kind = e.kind;
    raw.kernel_ips.assign(e.kernel_ips.begin(), e.kernel_ips.end());
    raw.user_ips = result_.ips;
    raw.detail = e.detail;
    raw.unwound = true;
    it = pending_.emplace(key, std::move(raw)).first;
  }
  RawStack& sum = it->second;
  sum.value.count += 1;
  if (sum.kind == StackKind::kIo) {
    sum.latency_ns += e.ns;
    sum.bytes += e.bytes;
  } else {
    sum.value.total_ns += e.ns;
  }
}

const std::vector<symbolizer::Mapping>& StackCopies::mappings_of(uint32_t tgid) {
  auto it = maps_.find(tgid);
  if (it == maps_.end()) it = maps_.emplace(tgid, symbolizer_.mappings(tgid)).first;
  return it->second;
}

std::vector<RawStack> StackCopies::take() {
  std::vector<RawStack> out;
  out.reserve(pending_.size());
  for (auto& [k, raw] : pending_) out.push_back(std::move(raw));
  pending_.clear();
  maps_.clear();  // pick up the symbolizer's refreshed snapshots once per interval
  // Found gone two intervals ago: every stack of theirs has been drained
  // and symbolized since (one that exited right after a flip has its last
  // stacks in the next interval). A pid taken again meanwhile is a new
  // process: kept.
  for (uint32_t tgid : gone_[1])
    if (!process_exists(tgid)) {
      unwinder_.forget_process(tgid);
      symbolizer_.forget_process(tgid);
      unwound_.erase(tgid);
    }
  gone_[1] = std::move(gone_[0]);
  gone_[0].clear();
  for (uint32_t tgid : unwound_)
    if (!process_exists(tgid)) gone_[0].push_back(tgid);
  return out;
}

UnwindReport StackCopies::take_report() {
  UnwindReport r = std::move(report_);
  report_ = {};
  std::lock_guard lock(mutex_);
  r.max_queued_bytes = max_queued_words_ * sizeof(uint64_t);
  max_queued_words_ = queued_words_;
  r.reader_wakeups = reader_wakeups_;
  reader_wakeups_ = 0;
  return r;
}

}  // namespace stackwatch::profiler
