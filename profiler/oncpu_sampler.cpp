// On-CPU sampling (see oncpu_sampler.h).
#include "profiler/oncpu_sampler.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include "oncpu.skel.h"
#include "profiler/process_tracker.h"

namespace stackwatch::profiler {

OnCpuSampler::OnCpuSampler(const Options& options, const ProcessTracker& tracker) {
  skel_ = oncpu_bpf__open();
  if (!skel_) throw_bpf_error("cannot open the on-CPU BPF program", errno);
  auto fail = [&](const std::string& what, int err) {
    links_.clear();
    oncpu_bpf__destroy(skel_);
    skel_ = nullptr;
    throw_bpf_error(what, err);
  };
  skel_->rodata->filter_targets = options.filter_targets;
  skel_->rodata->self_tgid = static_cast<uint32_t>(getpid());
  skel_->rodata->copy_user_stacks = options.copy_user_stacks;
  for (bpf_map* m : {skel_->maps.counts0, skel_->maps.counts1}) bpf_map__set_max_entries(m, options.max_stacks);
  for (bpf_map* m : {skel_->maps.stacks0, skel_->maps.stacks1})
    bpf_map__set_max_entries(m, stack_map_entries(options.max_stacks));
  if (bpf_map__reuse_fd(skel_->maps.targets, tracker.targets_fd()) ||
      bpf_map__reuse_fd(skel_->maps.seen, tracker.seen_fd()) ||
      bpf_map__reuse_fd(skel_->maps.proc_events, tracker.events_fd()) ||
      bpf_map__reuse_fd(skel_->maps.stack_samples, tracker.stack_samples_fd()) ||
      bpf_map__reuse_fd(skel_->maps.stack_tops, tracker.stack_tops_fd()))
    fail("cannot share the process maps with the on-CPU program", errno);
  if (int err = oncpu_bpf__load(skel_); err) fail("cannot load the on-CPU BPF program", err);
  try {
    events_ = open_sampling_events(options.hz);
  } catch (...) {
    oncpu_bpf__destroy(skel_);
    skel_ = nullptr;
    throw;
  }
  for (size_t i = 0; i < events_.fds.size(); ++i) {
    bpf_link* link = bpf_program__attach_perf_event(skel_->progs.sample_on_cpu, events_.fds[i].get());
    if (!link) fail("cannot attach the on-CPU program to CPU " + std::to_string(events_.cpus[i]), errno);
    // The link now owns the perf event fd and closes it on destroy.
    events_.fds[i].release();
    links_.emplace_back(link);
  }
}

OnCpuSampler::~OnCpuSampler() {
  links_.clear();
  if (skel_) oncpu_bpf__destroy(skel_);
}

RawInterval OnCpuSampler::drain() {
  RawInterval out;
  DoubleBuffer buffers{&skel_->bss->active_buffer,
                       {bpf_map__fd(skel_->maps.counts0), bpf_map__fd(skel_->maps.counts1)},
                       {bpf_map__fd(skel_->maps.stacks0), bpf_map__fd(skel_->maps.stacks1)}};
  flip_and_drain(buffers, StackKind::kOnCpu, out.stacks);
  out.drops = read_drop_counters(bpf_map__fd(skel_->maps.oncpu_drops), drop_totals_);
  return out;
}

}  // namespace stackwatch::profiler
