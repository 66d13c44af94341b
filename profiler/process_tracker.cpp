// Process tracking (see process_tracker.h).
#include "profiler/process_tracker.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include "bpf/stackwatch.h"
#include "proc.skel.h"
#include "profiler/process_exists.h"

namespace stackwatch::profiler {

ProcessTracker::ProcessTracker(const Options& options, symbolizer::Symbolizer& symbolizer)
    : options_(options), symbolizer_(symbolizer), exited_(process_exists) {
  skel_ = proc_bpf__open();
  if (!skel_) throw_bpf_error("cannot open the process-tracking BPF program", errno);
  skel_->rodata->filter_targets = options.filter_targets;
  skel_->rodata->self_tgid = static_cast<uint32_t>(getpid());
  skel_->rodata->follow_children = options.follow_children;
  bpf_map__set_max_entries(skel_->maps.targets, options.max_processes);
  bpf_map__set_max_entries(skel_->maps.seen, options.max_processes);
  bpf_map__set_max_entries(skel_->maps.stack_samples, options.stack_samples_bytes);
  // The stack-copy helpers of common.bpf.h are the samplers' (a per-CPU
  // record slot, a per-thread cache): no program here uses them.
  bpf_map__set_autocreate(skel_->maps.stack_scratch, false);
  bpf_map__set_autocreate(skel_->maps.stack_mappings, false);
  if (int err = proc_bpf__load(skel_); err) {
    proc_bpf__destroy(skel_);
    skel_ = nullptr;
    throw_bpf_error("cannot load the process-tracking BPF program", err);
  }
  for (bpf_program* prog : {skel_->progs.on_fork, skel_->progs.on_exec, skel_->progs.on_exit}) {
    bpf_link* link = bpf_program__attach(prog);
    if (!link) {
      int err = errno;
      links_.clear();
      proc_bpf__destroy(skel_);
      skel_ = nullptr;
      throw_bpf_error(std::string("cannot attach ") + bpf_program__name(prog), err);
    }
    links_.emplace_back(link);
  }
  ring_.reset(ring_buffer__new(bpf_map__fd(skel_->maps.proc_events), &ProcessTracker::on_event, this, nullptr));
  if (!ring_) {
    int err = errno;
    links_.clear();
    proc_bpf__destroy(skel_);
    skel_ = nullptr;
    throw_bpf_error("cannot set up the process-event ring buffer", err);
  }
}

ProcessTracker::~ProcessTracker() {
  ring_.reset();
  links_.clear();
  if (skel_) proc_bpf__destroy(skel_);
}

void ProcessTracker::add_target(uint32_t tgid) {
  uint8_t one = 1;
  bpf_map_update_elem(targets_fd(), &tgid, &one, BPF_ANY);
  // Mark as seen and snapshot now, while it is surely alive.
  bpf_map_update_elem(seen_fd(), &tgid, &one, BPF_ANY);
  symbolizer_.remember_process(tgid);
}

void ProcessTracker::remove_target(uint32_t tgid) { bpf_map_delete_elem(targets_fd(), &tgid); }

int ProcessTracker::targets_fd() const { return bpf_map__fd(skel_->maps.targets); }
int ProcessTracker::seen_fd() const { return bpf_map__fd(skel_->maps.seen); }
int ProcessTracker::events_fd() const { return bpf_map__fd(skel_->maps.proc_events); }
int ProcessTracker::stack_samples_fd() const { return bpf_map__fd(skel_->maps.stack_samples); }
int ProcessTracker::stack_tops_fd() const { return bpf_map__fd(skel_->maps.stack_tops); }
int ProcessTracker::poll_fd() const { return ring_buffer__epoll_fd(ring_.get()); }

int ProcessTracker::targets_count() const {
  int n = 0;
  uint32_t key = 0, next = 0;
  bool first = true;
  while (bpf_map_get_next_key(targets_fd(), first ? nullptr : &key, &next) == 0) {
    ++n;
    key = next;
    first = false;
  }
  return n;
}

void ProcessTracker::consume_events() { ring_buffer__consume(ring_.get()); }

int ProcessTracker::on_event(void* ctx, void* data, size_t size) {
  if (size < sizeof(sw_proc_event)) return 0;
  static_cast<ProcessTracker*>(ctx)->handle(*static_cast<const sw_proc_event*>(data));
  return 0;
}

void ProcessTracker::handle(const sw_proc_event& e) {
  ++events_handled_;
  std::string comm(e.comm, strnlen(e.comm, sizeof e.comm));
  switch (e.type) {
    case SW_EVENT_FIRST_SEEN:
    case SW_EVENT_FORK:
      names_[e.tgid] = comm;
      exited_.alive(e.tgid);
      symbolizer_.remember_process(e.tgid);
      break;
    case SW_EVENT_EXEC:
      names_[e.tgid] = comm;
      exited_.alive(e.tgid);
      symbolizer_.remember_process(e.tgid);  // new mappings after exec
      break;
    case SW_EVENT_EXIT:
      exited_.exited(e.tgid);
      break;
    default:
      break;
  }
}

std::string ProcessTracker::process_name(uint32_t tgid) const {
  auto it = names_.find(tgid);
  return it == names_.end() ? std::string() : it->second;
}

std::vector<uint32_t> ProcessTracker::after_drain() {
  std::vector<uint32_t> gone = exited_.take_gone();
  for (uint32_t tgid : gone) {
    symbolizer_.forget_process(tgid);
    names_.erase(tgid);
  }
  return gone;
}

}  // namespace stackwatch::profiler
