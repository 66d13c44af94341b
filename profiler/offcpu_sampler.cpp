// Off-CPU sampling (see offcpu_sampler.h).
#include "profiler/offcpu_sampler.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <unordered_map>
#include <unistd.h>

#include "offcpu.skel.h"
#include "profiler/process_tracker.h"

namespace stackwatch::profiler {

static constexpr uint32_t kOffCpuStackDepth = 64;

namespace {

// The values of off_start and off_pending as offcpu.bpf.c lays them out
// (private to that program, so not in bpf/stackwatch.h); the constructor
// checks the sizes against the loaded maps.
struct OffStart {
  uint64_t off_ts;
  int32_t kernel_stack_id;
  int32_t user_stack_id;
  uint32_t state;
  uint32_t tgid;
  char comm[SW_COMM_LEN];
  char process_comm[SW_COMM_LEN];
  uint32_t has_user;
  uint32_t pad;
};
struct OffPending {
  OffStart start;
  uint32_t nblocks;
  uint32_t pad;
  sw_off_block blocks[SW_MAX_PENDING_BLOCKS];
};

// Every key of a hash map (keys are read first: deleting while walking
// would restart the walk).
template <typename Key>
std::vector<Key> keys_of(int fd) {
  std::vector<Key> keys;
  Key key{}, next{};
  bool first = true;
  while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
    keys.push_back(next);
    key = next;
    first = false;
  }
  return keys;
}

// Every (key, value) of a hash map BPF keeps changing (off_start changes at
// every context switch). A get_next_key walk restarts from the first key
// whenever the current one was deleted meanwhile, so on a busy machine it
// may never end; batch lookups walk the buckets, and always do.
template <typename Key, typename Value>
std::vector<std::pair<Key, Value>> entries_of_live_map(int fd) {
  std::vector<std::pair<Key, Value>> out;
  std::vector<Key> keys(1024);
  std::vector<Value> values(1024);
  alignas(8) uint8_t token[64] = {};  // the kernel's bucket cursor (a u32 for hash maps)
  bool first = true;
  for (int rounds = 0; rounds < (1 << 20); ++rounds) {
    uint32_t count = static_cast<uint32_t>(keys.size());
    int err = bpf_map_lookup_batch(fd, first ? nullptr : token, token, keys.data(), values.data(), &count, nullptr);
    int e = err ? errno : 0;
    for (uint32_t i = 0; i < std::min<uint32_t>(count, static_cast<uint32_t>(keys.size())); ++i)
      out.emplace_back(keys[i], values[i]);
    if (err && e == ENOSPC && count == 0 && keys.size() < (1u << 16)) {  // a bucket larger than the chunk
      keys.resize(keys.size() * 2);
      values.resize(values.size() * 2);
      continue;
    }
    if (err) break;  // ENOENT: done
    first = false;
  }
  return out;
}

uint32_t bits_for(uint32_t entries) {
  uint32_t bits = 1;
  while (bits < 29 && (1u << bits) < entries) ++bits;
  return bits;
}

}  // namespace

class OffCpuSampler::BpfStackMaps : public OffCpuStackIds::StackMaps {
 public:
  BpfStackMaps(int fd0, int fd1) : fd_{fd0, fd1} {}
  std::vector<std::pair<uint32_t, std::vector<uint64_t>>> take_all(int slot) override {
    std::vector<std::pair<uint32_t, std::vector<uint64_t>>> out;
    for (uint32_t id : keys_of<uint32_t>(fd_[slot])) {
      std::vector<uint64_t> ips;
      if (lookup(slot, id, ips)) out.emplace_back(id, std::move(ips));
      bpf_map_delete_elem(fd_[slot], &id);
    }
    return out;
  }
  bool lookup(int slot, uint32_t id, std::vector<uint64_t>& ips) const override {
    uint64_t buf[SW_MAX_STACK_DEPTH] = {};
    ips.clear();
    if (bpf_map_lookup_elem(fd_[slot], &id, buf) != 0) return false;
    for (uint64_t ip : buf) {
      if (ip == 0) break;
      ips.push_back(ip);
    }
    return true;
  }

 private:
  int fd_[2];
};

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
  uint32_t per_map = std::max<uint32_t>(options.max_stack_ids / 2, 1024);
  for (bpf_map* m : {skel_->maps.off_stacks0, skel_->maps.off_stacks1}) {
    bpf_map__set_max_entries(m, per_map);
    bpf_map__set_value_size(m, kOffCpuStackDepth * sizeof(uint64_t));
  }
  skel_->rodata->stack_id_bits = bits_for(per_map);
  bpf_map__set_max_entries(skel_->maps.off_start, options.max_threads);
  if (bpf_map__reuse_fd(skel_->maps.targets, tracker.targets_fd()) ||
      bpf_map__reuse_fd(skel_->maps.seen, tracker.seen_fd()) ||
      bpf_map__reuse_fd(skel_->maps.proc_events, tracker.events_fd()) ||
      bpf_map__reuse_fd(skel_->maps.stack_samples, tracker.stack_samples_fd()) ||
      bpf_map__reuse_fd(skel_->maps.stack_tops, tracker.stack_tops_fd()))
    fail("cannot share the process maps with the off-CPU program", errno);
  if (int err = offcpu_bpf__load(skel_); err) fail("cannot load the off-CPU BPF program", err);
  if (bpf_map__value_size(skel_->maps.off_start) != sizeof(OffStart) ||
      bpf_map__value_size(skel_->maps.off_pending) != sizeof(OffPending))
    fail("the off-CPU program's maps do not match this build of stackwatch", EINVAL);
  stack_maps_ = std::make_unique<BpfStackMaps>(bpf_map__fd(skel_->maps.off_stacks0),
                                               bpf_map__fd(skel_->maps.off_stacks1));
  stack_ids_ = std::make_unique<OffCpuStackIds>(skel_->rodata->stack_id_bits, *stack_maps_);
  __atomic_store_n(&skel_->bss->stack_epoch, stack_ids_->tag(), __ATOMIC_SEQ_CST);
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

bool OffCpuSampler::read_stack(int32_t stack_id, std::vector<uint64_t>& ips) const {
  return stack_ids_->read(stack_id, ips);
}

size_t OffCpuSampler::copied_stacks() const { return stack_ids_->copied_stacks(); }

std::vector<int32_t> OffCpuSampler::ids_in_flight() const {
  std::vector<int32_t> ids;
  // In the order ids flow (off_start -> off_pending -> counts), so an id
  // that moves on during the scan is still seen in one of them.
  for (const auto& [tid, st] : entries_of_live_map<uint32_t, OffStart>(bpf_map__fd(skel_->maps.off_start))) {
    ids.push_back(st.kernel_stack_id);
    ids.push_back(st.user_stack_id);
  }
  for (const auto& [tid, p] : entries_of_live_map<uint32_t, OffPending>(bpf_map__fd(skel_->maps.off_pending)))
    for (uint32_t i = 0; i < std::min<uint32_t>(p.nblocks, SW_MAX_PENDING_BLOCKS); ++i) {
      ids.push_back(p.blocks[i].kernel_stack_id);
      ids.push_back(p.blocks[i].user_stack_id);
    }
  int active = static_cast<int>(__atomic_load_n(&skel_->bss->active_buffer, __ATOMIC_SEQ_CST) & 1u);
  int counts_fd = bpf_map__fd(active ? skel_->maps.off_counts1 : skel_->maps.off_counts0);
  for (const auto& [k, v] : entries_of_live_map<sw_stack_key, sw_stack_value>(counts_fd)) {
    ids.push_back(k.kernel_stack_id);
    ids.push_back(k.user_stack_id);
  }
  return ids;
}

uint64_t OffCpuSampler::stale_thread_entries() const {
  uint64_t stale = 0;
  for (const auto& [tid, st] : entries_of_live_map<uint32_t, OffStart>(bpf_map__fd(skel_->maps.off_start)))
    // /proc/TID exists for every live thread, hidden from listings but not from access().
    if (::access(("/proc/" + std::to_string(tid)).c_str(), F_OK) != 0) ++stale;
  return stale;
}

RawInterval OffCpuSampler::drain() {
  RawInterval out;
  // New switch-outs take their stacks in the recycled map from now on (the
  // counts flip's grace below also covers programs that read the old tag).
  __atomic_store_n(&skel_->bss->stack_epoch, stack_ids_->recycle(), __ATOMIC_SEQ_CST);
  // Stack ids are tagged (see offcpu.bpf.c): read through stack_ids_, not
  // by the generic drain (given no stack map, it leaves the ips empty).
  DoubleBuffer buffers{&skel_->bss->active_buffer,
                       {bpf_map__fd(skel_->maps.off_counts0), bpf_map__fd(skel_->maps.off_counts1)},
                       {-1, -1},
                       /*clear_stacks=*/false};
  flip_and_drain(buffers, StackKind::kOffCpu, out.stacks);
  std::unordered_map<int32_t, std::vector<uint64_t>> cache;
  auto fill = [&](int32_t id, std::vector<uint64_t>& ips) {
    if (id < 0) return;
    auto it = cache.find(id);
    if (it == cache.end()) {
      std::vector<uint64_t> read;
      stack_ids_->read(id, read);
      it = cache.emplace(id, std::move(read)).first;
    }
    ips = it->second;
  };
  for (RawStack& r : out.stacks) {
    fill(r.key.kernel_stack_id, r.kernel_ips);
    fill(r.key.user_stack_id, r.user_ips);
  }
  stack_ids_->keep_referenced(ids_in_flight());
  out.drops = read_drop_counters(bpf_map__fd(skel_->maps.offcpu_drops), drop_totals_);
  return out;
}

}  // namespace stackwatch::profiler
