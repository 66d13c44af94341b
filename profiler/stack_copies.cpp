// DWARF-mode stack copies: unwind and aggregate (see stack_copies.h).
#include "profiler/stack_copies.h"

#include <bpf/bpf.h>

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

std::chrono::milliseconds StackCopies::read_every(double hz) {
  double ms = hz > 0 ? 10 * 1000.0 / hz : 100;
  return std::chrono::milliseconds(static_cast<int64_t>(std::clamp(ms, 10.0, 100.0)));
}

StackCopies::StackCopies(int ring_fd, const OffCpuSampler* offcpu, symbolizer::Symbolizer& symbolizer,
                         std::chrono::milliseconds read_every)
    : read_every_(read_every), offcpu_(offcpu), symbolizer_(symbolizer) {
  ring_.reset(ring_buffer__new(ring_fd, &StackCopies::on_sample, this, nullptr));
  if (!ring_) throw_bpf_error("cannot set up the stack-copy ring buffer", errno);
  reader_ = std::thread([this] { read_loop(); });
}

StackCopies::~StackCopies() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  reader_.join();
}

void StackCopies::add_ring(int ring_fd) {
  std::lock_guard lock(mutex_);  // the reader may be in ring_buffer__consume
  if (int err = ring_buffer__add(ring_.get(), ring_fd, &StackCopies::on_sample, this); err)
    throw_bpf_error("cannot set up a stack-copy ring buffer", -err);
}

void StackCopies::read_loop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, read_every_);
    if (stop_) break;
    // Past the cap the records stay in the rings (see kMaxQueuedBytes).
    if (queued_words_ * sizeof(uint64_t) >= kMaxQueuedBytes) continue;
    reader_reading_ = true;
    ring_buffer__consume(ring_.get());
    reader_reading_ = false;
  }
}

void StackCopies::consume() {
  std::vector<Chunk> batch;
  {
    std::lock_guard lock(mutex_);
    ring_buffer__consume(ring_.get());  // what the reader has not read yet
    batch.swap(queue_);
    queued_words_ = 0;
  }
  for (const Chunk& chunk : batch) {
    for (size_t at = 0; at < chunk.used;) {
      size_t size = static_cast<size_t>(chunk.words[at] & ~kQueuedByReader);
      report_.queued_by_reader += (chunk.words[at] & kQueuedByReader) != 0;
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
  // A record carries its header and stack_len bytes of stack, not the
  // whole stack array (send_stack_sample in bpf/common.bpf.h).
  constexpr size_t kHeader = offsetof(sw_stack_sample, stack);
  if (size < kHeader) return 0;
  const auto& s = *static_cast<const sw_stack_sample*>(data);
  if (s.stack_len > size - kHeader) return 0;  // never sent so: not ours
  // Queued whole (the ring's space is reused as soon as this returns),
  // padded so the next record starts on an 8-byte word; the stack bytes
  // past stack_len are not sent, so a copy holds only what handle() reads.
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
  std::span<const uint8_t> stack(s.stack, std::min<uint32_t>(s.stack_len, SW_USER_STACK_BYTES));
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

  RawStack raw;
  raw.key.tgid = s.tgid;
  raw.key.tid = s.tid;
  raw.key.user_stack_id = -1;
  std::memcpy(raw.key.comm, s.comm, sizeof raw.key.comm);
  std::memcpy(raw.value.process_comm, s.process_comm, sizeof raw.value.process_comm);
  raw.user_ips = result_.ips;
  raw.unwound = true;
  if (s.kind == SW_KIND_IO) {
    // One system call: its kernel stack would only be the exit path.
    raw.kind = StackKind::kIo;
    raw.key.kernel_stack_id = -EFAULT;
    raw.detail = io_detail(s.io_op, s.io_fd_kind);
    add(std::move(raw), s.io_ns, s.io_bytes);
    return;
  }
  if (s.kind == SW_KIND_PAGE_FAULT) {
    raw.kind = StackKind::kMemory;
    raw.key.kernel_stack_id = -1;
    raw.detail = "page-fault";
    add(std::move(raw), 0);
    return;
  }
  if (s.kind != SW_KIND_OFF_CPU) {
    raw.kind = StackKind::kOnCpu;
    raw.key.kernel_stack_id = -1;
    uint32_t depth = std::min<uint32_t>(s.kernel_depth, SW_MAX_STACK_DEPTH);
    raw.kernel_ips.assign(s.kernel_ips, s.kernel_ips + depth);
    add(std::move(raw), 0);
    return;
  }
  // Off-CPU: the blocks of one system call share this user stack.
  raw.kind = StackKind::kOffCpu;
  for (uint32_t i = 0; i < std::min<uint32_t>(s.nblocks, SW_MAX_PENDING_BLOCKS); ++i) {
    const sw_off_block& b = s.blocks[i];
    RawStack r = raw;
    r.key.state = b.state;
    r.key.kernel_stack_id = b.kernel_stack_id;
    if (b.kernel_stack_id >= 0 && offcpu_) offcpu_->read_stack(b.kernel_stack_id, r.kernel_ips);
    add(std::move(r), b.off_ns);
  }
}

void StackCopies::add(RawStack raw, uint64_t ns, uint64_t bytes) {
  // Aggregate like the kernel does: thread, state, comm and both stacks.
  std::string key;
  key.reserve(64 + 8 * (raw.kernel_ips.size() + raw.user_ips.size()));
  key.append(reinterpret_cast<const char*>(&raw.key.tgid), 8);
  key.append(reinterpret_cast<const char*>(&raw.key.state), 4);
  key.push_back(static_cast<char>(raw.kind));
  key.append(raw.key.comm, strnlen(raw.key.comm, sizeof raw.key.comm));
  key.push_back('\0');
  key.append(raw.detail);
  key.push_back('\0');
  key.append(reinterpret_cast<const char*>(raw.kernel_ips.data()), raw.kernel_ips.size() * 8);
  key.push_back('|');
  key.append(reinterpret_cast<const char*>(raw.user_ips.data()), raw.user_ips.size() * 8);
  auto [it, inserted] = pending_.try_emplace(std::move(key), std::move(raw));
  RawStack& sum = it->second;
  sum.value.count += 1;
  if (sum.kind == StackKind::kIo) {
    sum.latency_ns += ns;
    sum.bytes += bytes;
  } else {
    sum.value.total_ns += ns;
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
  return r;
}

}  // namespace stackwatch::profiler
