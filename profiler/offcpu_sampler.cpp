// Off-CPU sampling (see offcpu_sampler.h).
#include "profiler/offcpu_sampler.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <string>
#include <unistd.h>

#include "offcpu.skel.h"
#include "profiler/process_tracker.h"

namespace stackwatch::profiler {

static constexpr uint32_t kOffCpuStackDepth = 64;

OffCpuSampler::OffCpuSampler(const Options& options, const ProcessTracker& tracker) {
  skel_ = offcpu_bpf__open();
  if (!skel_) throw_bpf_error("cannot open the off-CPU BPF program", errno);
  auto fail = [&](const std::string& what, int err) {
    links_.clear();
    offcpu_bpf__destroy(skel_);
    skel_ = nullptr;
    throw_bpf_error(what, err);
  };
  skel_->rodata->filter_targets = options.filter_targets;
  skel_->rodata->self_tgid = static_cast<uint32_t>(getpid());
  skel_->rodata->min_block_ns = options.min_block_ns;
  skel_->rodata->copy_user_stacks = options.copy_user_stacks;
  // The syscall-exit hook runs on every system call of the machine: load it
  // only when stacks are copied.
  bpf_program__set_autoload(skel_->progs.off_cpu_sys_exit, options.copy_user_stacks);
  // Blocks are not rate-limited like samples: the whole machine's distinct
  // (thread, stack) pairs per interval decide the size, not -F.
  uint32_t counts = std::max<uint32_t>(options.max_stacks, 16384);
  bpf_map__set_max_entries(skel_->maps.off_counts0, counts);
  bpf_map__set_max_entries(skel_->maps.off_counts1, counts);
  // Never recycled during a recording (see offcpu.bpf.c): room for more
  // stacks, with a low load factor since a hash collision fails the
  // insert. Blocking stacks are shallow (a syscall path, and user frames up
  // to main or the thread's start), so 64 frames per entry halve the kernel
  // memory of the map; deeper ones are truncated, not lost.
  bpf_map__set_max_entries(skel_->maps.off_stacks, options.max_stack_ids);
  bpf_map__set_value_size(skel_->maps.off_stacks, kOffCpuStackDepth * sizeof(uint64_t));
  bpf_map__set_max_entries(skel_->maps.off_start, options.max_threads);
  if (bpf_map__reuse_fd(skel_->maps.targets, tracker.targets_fd()) ||
      bpf_map__reuse_fd(skel_->maps.seen, tracker.seen_fd()) ||
      bpf_map__reuse_fd(skel_->maps.proc_events, tracker.events_fd()) ||
      bpf_map__reuse_fd(skel_->maps.stack_samples, tracker.stack_samples_fd()))
    fail("cannot share the process maps with the off-CPU program", errno);
  if (int err = offcpu_bpf__load(skel_); err) fail("cannot load the off-CPU BPF program", err);
  std::vector<bpf_program*> progs = {skel_->progs.off_cpu_switch, skel_->progs.off_cpu_exit};
  if (options.copy_user_stacks) progs.push_back(skel_->progs.off_cpu_sys_exit);
  for (bpf_program* prog : progs) {
    bpf_link* link = bpf_program__attach(prog);
    if (!link) fail(std::string("cannot attach the off-CPU program ") + bpf_program__name(prog), errno);
    links_.emplace_back(link);
  }
}

OffCpuSampler::~OffCpuSampler() {
  links_.clear();
  if (skel_) offcpu_bpf__destroy(skel_);
}

int OffCpuSampler::stacks_fd() const { return bpf_map__fd(skel_->maps.off_stacks); }

uint64_t OffCpuSampler::stale_thread_entries() const {
  int fd = bpf_map__fd(skel_->maps.off_start);
  uint64_t stale = 0;
  uint32_t key = 0, next = 0;
  bool first = true;
  while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
    // /proc/TID exists for every live thread, hidden from listings but not from access().
    if (::access(("/proc/" + std::to_string(next)).c_str(), F_OK) != 0) ++stale;
    key = next;
    first = false;
  }
  return stale;
}

RawInterval OffCpuSampler::drain() {
  RawInterval out;
  DoubleBuffer buffers{&skel_->bss->active_buffer,
                       {bpf_map__fd(skel_->maps.off_counts0), bpf_map__fd(skel_->maps.off_counts1)},
                       {bpf_map__fd(skel_->maps.off_stacks), bpf_map__fd(skel_->maps.off_stacks)},
                       /*clear_stacks=*/false};
  flip_and_drain(buffers, StackKind::kOffCpu, out.stacks);
  out.drops = read_drop_counters(bpf_map__fd(skel_->maps.offcpu_drops), drop_totals_);
  return out;
}

}  // namespace stackwatch::profiler
