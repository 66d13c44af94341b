// Memory stacks: loading bpf/memory.bpf.c, probing allocators, draining the
// outstanding levels and the interval's events (see memory_sampler.h).
#include "profiler/memory_sampler.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "memory.skel.h"
#include "profiler/perf_events.h"
#include "profiler/process_exists.h"
#include "profiler/process_tracker.h"
#include "profiler/uprobe_target.h"
#include "recording/error.h"
#include "symbolizer/symbolizer.h"

extern "C" {
#include "bpf/memory.h"
}

namespace stackwatch::profiler {

static_assert(sizeof(sw_mem_alloc_key) == 16);
static_assert(sizeof(sw_mem_alloc) == 16);
static_assert(sizeof(sw_mem_stack_key) == 8);
static_assert(sizeof(sw_mem_outstanding) == 56);
static_assert(sizeof(sw_mem_pending) == 56);
static_assert(sizeof(sw_mem_frames) == SW_MEM_STACK_DEPTH * 8);

namespace {

namespace fs = std::filesystem;

constexpr uint32_t kMemStackDepth = SW_MEM_STACK_DEPTH;  // see bpf/memory.h
// Page-fault stacks are new every interval (the map is cleared at each drain).
constexpr uint32_t kFaultStacks = 4096;
constexpr uint32_t kEventsPerInterval = 16384;
// Empty per-stack entries are removed once the map is this full: removal
// races with an allocation on the same stack (see drain()), so it is done
// only when the room is needed.
constexpr double kPruneLoad = 0.5;
// How long a program that read the old buffer index may still write to it.
constexpr auto kBufferFlipGrace = std::chrono::milliseconds(2);

struct ProbedFunction {
  const char* name;
  sw_mem_op op;
};

// Aliases (aligned_alloc/memalign, mmap/mmap64 in glibc) share an address
// and are probed once.
constexpr ProbedFunction kFunctions[] = {
    {"malloc", SW_MEM_MALLOC},   {"calloc", SW_MEM_CALLOC},         {"realloc", SW_MEM_REALLOC},
    {"free", SW_MEM_FREE},       {"posix_memalign", SW_MEM_POSIX_MEMALIGN}, {"aligned_alloc", SW_MEM_MEMALIGN},
    {"memalign", SW_MEM_MEMALIGN}, {"valloc", SW_MEM_VALLOC},       {"pvalloc", SW_MEM_PVALLOC},
    {"mmap", SW_MEM_MMAP},       {"mmap64", SW_MEM_MMAP},           {"munmap", SW_MEM_MUNMAP},
};

bool is_libc(const std::string& path) {
  std::string base = fs::path(path).filename().string();
  return base.rfind("libc.so", 0) == 0 || base.rfind("libc-", 0) == 0 || base.rfind("ld-musl-", 0) == 0;
}

// The libc file process tgid maps, as a path we can open; "" if none,
// nullopt if the process is gone.
std::optional<std::string> libc_of(uint32_t tgid) {
  std::ifstream in("/proc/" + std::to_string(tgid) + "/maps");
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  for (const symbolizer::Mapping& m : symbolizer::parse_proc_maps(ss.str())) {
    if (!m.executable() || m.path.empty() || m.path.front() != '/' || !is_libc(m.path)) continue;
    if (fs::exists(m.path)) return m.path;
    return "/proc/" + std::to_string(tgid) + "/root" + m.path;  // another mount namespace
  }
  return "";
}

// libc's executable segment, as file offsets: the BPF side tells the
// program's calls from libc's own by it (see called_from_libc).
struct TextSegment {
  uint64_t offset = 0;
  uint64_t size = 0;
};

TextSegment text_segment_of(const std::string& path, uint64_t file_offset) {
  TextSegment seg;
  elf_version(EV_CURRENT);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return seg;
  if (Elf* elf = elf_begin(fd, ELF_C_READ, nullptr)) {
    size_t n = 0;
    if (elf_getphdrnum(elf, &n) == 0)
      for (size_t i = 0; i < n; ++i) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
        if (file_offset >= ph.p_offset && file_offset < ph.p_offset + ph.p_filesz) seg = {ph.p_offset, ph.p_filesz};
      }
    elf_end(elf);
  }
  ::close(fd);
  return seg;
}

// See COOKIE_* in bpf/memory.bpf.c.
uint64_t cookie_of(sw_mem_op op, uint64_t file_offset, const TextSegment& text) {
  uint64_t in_text = file_offset - text.offset;
  if (text.size == 0 || in_text >= (1u << 24) || text.size >= (1ull << 32)) return op;  // never "from libc"
  return static_cast<uint64_t>(op) | in_text << 8 | text.size << 32;
}

// DWARF mode: the ring of the page faults' stack copies (per 100 ms, 480 at
// the largest copy, a few times more at typical sizes).
static constexpr uint32_t kCopyRingBytes = 8u << 20;

const char* detail_of(uint32_t event) {
  switch (event) {
    case SW_MEM_EV_PAGE_FAULT: return "page-fault";
    case SW_MEM_EV_DOUBLE_FREE: return "double-free";
    case SW_MEM_EV_FREE_UNKNOWN: return "free-unknown";
    case SW_MEM_EV_REALLOC_FREED: return "realloc-freed";
    case SW_MEM_EV_ZERO_SIZE: return "zero-size";
    default: return "unknown";
  }
}

std::vector<uint64_t> sum_per_cpu(int fd, uint32_t entries) {
  std::vector<uint64_t> totals(entries, 0);
  int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) return totals;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpus));
  for (uint32_t i = 0; i < entries; ++i) {
    if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0) continue;
    for (uint64_t v : per_cpu) totals[i] += v;
  }
  return totals;
}

}  // namespace

MemorySampler::MemorySampler(const Options& options, const ProcessTracker& tracker) : options_(options) {
  skel_ = memory_bpf__open();
  if (!skel_) throw_bpf_error("cannot open the memory BPF program", errno);
  auto fail = [&](const std::string& what, int err) {
    program_links_.clear();
    memory_bpf__destroy(skel_);
    skel_ = nullptr;
    throw_bpf_error(what, err);
  };
  // Only targets, whatever the other samplers do: allocator probes placed
  // machine-wide must not record every process.
  skel_->rodata->filter_targets = true;
  skel_->rodata->self_tgid = static_cast<uint32_t>(getpid());
  skel_->rodata->traced_from_start = options.traced_from_start;
  skel_->rodata->max_events_per_second = options.max_events_per_second;

  bpf_map__set_max_entries(skel_->maps.mem_allocs, std::max<uint32_t>(options.max_allocations, 1024));
  bpf_map__set_max_entries(skel_->maps.mem_outstanding, std::max<uint32_t>(options.max_stacks, 1024));
  bpf_map__set_max_entries(skel_->maps.mem_stacks, stack_map_entries(options.max_stacks));
  bpf_map__set_value_size(skel_->maps.mem_stacks, kMemStackDepth * sizeof(uint64_t));
  for (bpf_map* m : {skel_->maps.fault_stacks0, skel_->maps.fault_stacks1}) {
    bpf_map__set_max_entries(m, kFaultStacks);
    bpf_map__set_value_size(m, kMemStackDepth * sizeof(uint64_t));
  }
  for (bpf_map* m : {skel_->maps.mem_faults0, skel_->maps.mem_faults1, skel_->maps.mem_bad0, skel_->maps.mem_bad1})
    bpf_map__set_max_entries(m, kEventsPerInterval);

  // Page faults: the x86 tracepoint if the kernel has it, else the software
  // event on every CPU.
  bool tracepoint = options.page_faults && libbpf_find_vmlinux_btf_id("page_fault_user", BPF_TRACE_RAW_TP) > 0;
  bpf_program__set_autoload(skel_->progs.mem_fault_tp, tracepoint);
  bpf_program__set_autoload(skel_->progs.mem_fault_perf, options.page_faults && !tracepoint);

  // DWARF mode: page faults' stack copies, in a ring of their own (as the
  // I/O calls'); one page when the program never writes it.
  skel_->rodata->copy_user_stacks = options.copy_user_stacks && options.page_faults;
  bpf_map__set_max_entries(skel_->maps.stack_samples, skel_->rodata->copy_user_stacks
                                                          ? kCopyRingBytes
                                                          : static_cast<uint32_t>(getpagesize()));
  if (bpf_map__reuse_fd(skel_->maps.targets, tracker.targets_fd()) ||
      bpf_map__reuse_fd(skel_->maps.seen, tracker.seen_fd()) ||
      bpf_map__reuse_fd(skel_->maps.proc_events, tracker.events_fd()) ||
      bpf_map__reuse_fd(skel_->maps.stack_tops, tracker.stack_tops_fd()))
    fail("cannot share the process maps with the memory program", errno);
  if (int err = memory_bpf__load(skel_); err) fail("cannot load the memory BPF program", err);

  bpf_link* exec_link = bpf_program__attach(skel_->progs.mem_exec);
  if (!exec_link) fail("cannot attach to the sched_process_exec tracepoint", errno);
  program_links_.emplace_back(exec_link);
  if (tracepoint) {
    bpf_link* link = bpf_program__attach(skel_->progs.mem_fault_tp);
    if (!link) fail("cannot attach to the page_fault_user tracepoint", errno);
    program_links_.emplace_back(link);
    fault_source_ = "page_fault_user";
  } else if (options.page_faults) {
    for (int cpu : online_cpus()) {
      perf_event_attr attr{};
      attr.size = sizeof(attr);
      attr.type = PERF_TYPE_SOFTWARE;
      attr.config = PERF_COUNT_SW_PAGE_FAULTS;
      attr.sample_period = 1;
      attr.exclude_kernel = 1;
      int fd = static_cast<int>(::syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
      if (fd < 0) fail("cannot open the page-faults event on CPU " + std::to_string(cpu), errno);
      fault_events_.emplace_back(fd);
      bpf_link* link = bpf_program__attach_perf_event(skel_->progs.mem_fault_perf, fd);
      if (!link) fail("cannot attach to the page-faults event", errno);
      program_links_.emplace_back(link);
    }
    fault_source_ = "page-faults";
  }
}

MemorySampler::~MemorySampler() {
  links_.clear();  // uprobes first: no allocator call is seen half
  program_links_.clear();
  fault_events_.clear();
  if (skel_) memory_bpf__destroy(skel_);
}

void MemorySampler::attach_libc(const std::string& path, int pid) {
  std::vector<LinkPtr>& links = links_[pid < 0 ? 0 : static_cast<uint32_t>(pid)];
  std::set<uint64_t> offsets;
  TextSegment text;
  bool have_malloc = false, have_free = false;
  for (const ProbedFunction& f : kFunctions) {
    std::vector<ProbeTarget> found;
    try {
      found = find_functions_in_elf(path, f.name);
    } catch (const Error& e) {
      throw Error(std::string("--memory: ") + e.what());
    }
    if (found.empty()) continue;  // pvalloc and friends are optional
    uint64_t offset = found.front().file_offset;
    if (!offsets.insert(offset).second) continue;  // an alias of one already probed
    if (text.size == 0) text = text_segment_of(path, offset);
    have_malloc = have_malloc || f.op == SW_MEM_MALLOC;
    have_free = have_free || f.op == SW_MEM_FREE;
    bool entry_only = f.op == SW_MEM_FREE || f.op == SW_MEM_MUNMAP;
    bpf_program* entry = f.op == SW_MEM_FREE     ? skel_->progs.mem_free
                         : f.op == SW_MEM_MUNMAP ? skel_->progs.mem_munmap
                                                 : skel_->progs.mem_entry;
    // The return probe first: an entry whose return is never seen would
    // leave its thread looking busy inside an allocator.
    for (bool retprobe : {true, false}) {
      if (retprobe && entry_only) continue;
      bpf_uprobe_opts opts{};
      opts.sz = sizeof(opts);
      opts.retprobe = retprobe;
      opts.bpf_cookie = cookie_of(f.op, offset, text);
      bpf_program* prog = retprobe ? skel_->progs.mem_return : entry;
      bpf_link* link = bpf_program__attach_uprobe_opts(prog, pid, path.c_str(), offset, &opts);
      if (!link)
        throw_bpf_error(std::string("--memory: cannot attach a ") + (retprobe ? "uretprobe" : "uprobe") + " to " +
                            f.name + " in " + path,
                        errno);
      links.emplace_back(link);
    }
  }
  if (!have_malloc || !have_free)
    throw Error("--memory: " + path + " has no malloc/free to probe (not a C library stackwatch knows)");
}

void MemorySampler::add_process(uint32_t tgid) {
  std::optional<std::string> found = libc_of(tgid);
  if (!found) return;  // exited already: nothing left to probe
  const std::string& path = *found;
  if (path.empty())
    throw Error("--memory: process " + std::to_string(tgid) +
                " maps no shared C library (statically linked?): its allocator cannot be probed");
  bool self = tgid == static_cast<uint32_t>(getpid());
  if (probed_libraries_.count(path)) return;  // already probed in every process
  if (!self && probed_pids_.count(tgid)) return;
  try {
    attach_libc(path, self ? -1 : static_cast<int>(tgid));
  } catch (...) {
    links_.erase(self ? 0 : tgid);
    throw;
  }
  if (self)
    probed_libraries_.insert(path);
  else
    probed_pids_.insert(tgid);
}

void MemorySampler::forget_exited() {
  std::set<uint32_t> gone;
  int outstanding_fd = bpf_map__fd(skel_->maps.mem_outstanding);
  for (const sw_mem_stack_key& k : map_keys<sw_mem_stack_key>(outstanding_fd, bpf_map__max_entries(skel_->maps.mem_outstanding)))
    if (!process_exists(k.tgid)) gone.insert(k.tgid);
  for (uint32_t pid : probed_pids_)
    if (!process_exists(pid)) gone.insert(pid);
  if (gone.empty()) return;
  for (uint32_t pid : gone) {
    links_.erase(pid);
    probed_pids_.erase(pid);
  }
  for (const sw_mem_stack_key& k : map_keys<sw_mem_stack_key>(outstanding_fd, bpf_map__max_entries(skel_->maps.mem_outstanding)))
    if (gone.count(k.tgid)) bpf_map_delete_elem(outstanding_fd, &k);
  // Their live blocks went with them. A walk of the whole map, but only
  // when a probed process has exited.
  int allocs_fd = bpf_map__fd(skel_->maps.mem_allocs);
  for (const sw_mem_alloc_key& k : map_keys<sw_mem_alloc_key>(allocs_fd, bpf_map__max_entries(skel_->maps.mem_allocs)))
    if (gone.count(k.tgid)) bpf_map_delete_elem(allocs_fd, &k);
}

RawInterval MemorySampler::drain() {
  RawInterval out;
  StackMapReader stacks(bpf_map__fd(skel_->maps.mem_stacks));

  // Outstanding levels: read, not cleared.
  int outstanding_fd = bpf_map__fd(skel_->maps.mem_outstanding);
  std::vector<sw_mem_stack_key> keys = map_keys<sw_mem_stack_key>(outstanding_fd, bpf_map__max_entries(skel_->maps.mem_outstanding));
  std::vector<sw_mem_stack_key> empty;
  int generation_fd = bpf_map__fd(skel_->maps.mem_generation);
  std::unordered_map<uint32_t, uint32_t> generations;
  for (const sw_mem_stack_key& k : keys) {
    sw_mem_outstanding v{};
    if (bpf_map_lookup_elem(outstanding_fd, &k, &v) != 0) continue;
    auto [g, fresh] = generations.try_emplace(k.tgid, 0);
    if (fresh) bpf_map_lookup_elem(generation_fd, &k.tgid, &g->second);
    if (v.generation != g->second) {
      bpf_map_delete_elem(outstanding_fd, &k);  // blocks of the image before an exec
      continue;
    }
    if (v.bytes <= 0 && v.count <= 0) {
      empty.push_back(k);
      continue;
    }
    RawStack r;
    r.kind = StackKind::kMemory;
    r.key.tgid = k.tgid;
    r.key.tid = v.tid;
    r.key.kernel_stack_id = -1;
    r.key.user_stack_id = k.user_stack_id;
    std::copy(std::begin(v.comm), std::end(v.comm), r.key.comm);
    std::copy(std::begin(v.process_comm), std::end(v.process_comm), r.value.process_comm);
    // Negative only after a lost race (see below): shown as nothing.
    r.value.count = static_cast<uint64_t>(std::max<int64_t>(v.count, 0));
    r.bytes = static_cast<uint64_t>(std::max<int64_t>(v.bytes, 0));
    r.user_ips = stacks.ips(k.user_stack_id);
    out.stacks.push_back(std::move(r));
  }
  // An allocation that looked the entry up just before this delete adds to
  // the deleted copy and is lost (its free later makes the level negative):
  // empty entries are removed only when the map needs the room.
  if (static_cast<double>(keys.size()) > kPruneLoad * bpf_map__max_entries(skel_->maps.mem_outstanding))
    for (const sw_mem_stack_key& k : empty) bpf_map_delete_elem(outstanding_fd, &k);

  // This interval's bad operations and page faults: double-buffered.
  volatile uint32_t* active = &skel_->bss->active_buffer;
  uint32_t old = __atomic_load_n(active, __ATOMIC_SEQ_CST) & 1u;
  __atomic_store_n(active, old ^ 1u, __ATOMIC_SEQ_CST);
  std::this_thread::sleep_for(kBufferFlipGrace);
  size_t first_event = out.stacks.size();
  drain_buffer(bpf_map__fd(old ? skel_->maps.mem_bad1 : skel_->maps.mem_bad0), bpf_map__fd(skel_->maps.mem_bad_stacks),
               StackKind::kMemory, out.stacks, /*clear_stacks=*/false);
  if (options_.page_faults)
    drain_buffer(bpf_map__fd(old ? skel_->maps.mem_faults1 : skel_->maps.mem_faults0),
                 bpf_map__fd(old ? skel_->maps.fault_stacks1 : skel_->maps.fault_stacks0), StackKind::kMemory,
                 out.stacks, /*clear_stacks=*/true);
  for (size_t i = first_event; i < out.stacks.size(); ++i) {
    RawStack& r = out.stacks[i];
    r.detail = detail_of(r.key.state);
    r.key.state = 0;
    r.key.kernel_stack_id = -1;
  }

  out.drops = read_drop_counters(bpf_map__fd(skel_->maps.mem_drops), drop_totals_);
  // Events not recorded: counted as lost samples.
  LostEvents now = lost_events();
  const LostEvents& reported = lost_reported_;
  out.drops.counts_map_full += (now.allocations_full - reported.allocations_full) +
                               (now.stacks_full - reported.stacks_full) + (now.threads_full - reported.threads_full);
  out.drops.other += (now.rate_limited - reported.rate_limited) +
                     (now.faults_rate_limited - reported.faults_rate_limited) + (now.read_failed - reported.read_failed);
  lost_reported_ = now;

  forget_exited();
  return out;
}

MemorySampler::LostEvents MemorySampler::lost_events() const {
  std::vector<uint64_t> t = sum_per_cpu(bpf_map__fd(skel_->maps.mem_lost), SW_MEM_LOST_MAX);
  LostEvents l;
  l.rate_limited = t[SW_MEM_LOST_RATE_LIMITED];
  l.allocations_full = t[SW_MEM_LOST_ALLOCS_FULL];
  l.stacks_full = t[SW_MEM_LOST_STACKS_FULL];
  l.threads_full = t[SW_MEM_LOST_THREADS_FULL];
  l.read_failed = t[SW_MEM_LOST_READ_FAILED];
  l.faults_rate_limited = t[SW_MEM_LOST_FAULTS_RATE];
  return l;
}

int MemorySampler::stack_copies_fd() const { return bpf_map__fd(skel_->maps.stack_samples); }

uint64_t MemorySampler::dropped_events() const {
  std::vector<uint64_t> d = sum_per_cpu(bpf_map__fd(skel_->maps.mem_drops), SW_DROP_MAX);
  uint64_t total = lost_events().total();
  for (uint64_t v : d) total += v;
  return total;
}

}  // namespace stackwatch::profiler
