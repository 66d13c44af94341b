// I/O stacks (see io_sampler.h and bpf/io.bpf.c).
#include "profiler/io_sampler.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>

#include "bpf/io.h"
#include "io.skel.h"
#include "profiler/process_tracker.h"
#include "symbolizer/symbolizer.h"
#include "unwinder/syscall_sites.h"

namespace stackwatch::profiler {

static_assert(sizeof(sw_io_key) == 48, "sw_io_key must match bpf/io.h");
static_assert(sizeof(sw_io_site) == 24, "sw_io_site must match bpf/io.h");
static_assert(sizeof(sw_io_value) == 40, "sw_io_value must match bpf/io.h");

// Distinct block-submitting stacks over the whole recording (the map is
// never cleared, see io.bpf.c): submitters are few (the processes' read and
// direct-write paths, writeback, the journal), and each entry is 1 KiB.
static constexpr uint32_t kBlockStackEntries = 4096;
// Entries per counts buffer at least (as off-CPU blocks): -F and -i size the
// on-CPU maps, but I/O calls come at whatever rate the programs make them.
static constexpr uint32_t kMinCountEntries = 16384;
// Files scanned for frameless syscall sites at most: a machine's distinct
// executables and libraries, with room for churn through many binaries.
static constexpr size_t kMaxSiteFiles = 4096;
// Processes remembered as looked at before the set starts over (a process
// looked at again only costs reading its maps: its files are known).
static constexpr size_t kMaxLookedAt = 65536;
// DWARF mode: the I/O calls' stack-copy ring (see the constructor).
static constexpr uint32_t kCopyRingBytes = 8u << 20;
// As in map_drain.cpp: programs that read the old buffer index run for
// microseconds; 2 ms is a wide margin.
static constexpr auto kBufferFlipGrace = std::chrono::milliseconds(2);

static const char* op_name(uint32_t op) {
  switch (static_cast<sw_io_op>(op)) {
    case SW_IO_READ: return "read";
    case SW_IO_WRITE: return "write";
    case SW_IO_PREAD64: return "pread64";
    case SW_IO_PWRITE64: return "pwrite64";
    case SW_IO_READV: return "readv";
    case SW_IO_WRITEV: return "writev";
    case SW_IO_SENDTO: return "sendto";
    case SW_IO_RECVFROM: return "recvfrom";
    case SW_IO_SENDMSG: return "sendmsg";
    case SW_IO_RECVMSG: return "recvmsg";
    case SW_IO_FSYNC: return "fsync";
    case SW_IO_FDATASYNC: return "fdatasync";
    case SW_IO_PREADV: return "preadv";
    case SW_IO_PWRITEV: return "pwritev";
    case SW_IO_BLOCK_READ: return "block read";
    case SW_IO_BLOCK_WRITE: return "block write";
    case SW_IO_BLOCK_FLUSH: return "block flush";
    case SW_IO_OP_MAX: break;
  }
  return "unknown";
}

static const char* fd_kind_name(uint32_t kind) {
  static constexpr const char* kNames[SW_FD_KIND_MAX] = {"", "file", "socket", "pipe", "device", "other"};
  return kind < SW_FD_KIND_MAX ? kNames[kind] : "other";
}

std::string io_detail(uint32_t op, uint32_t fd_kind) {
  std::string d = op_name(op);
  if (op < SW_IO_BLOCK_READ) d += std::string(" ") + fd_kind_name(fd_kind);
  return d;
}

IoSampler::IoSampler(const Options& options, const ProcessTracker& tracker) {
  skel_ = io_bpf__open();
  if (!skel_) throw_bpf_error("cannot open the I/O BPF program", errno);
  auto fail = [&](const std::string& what, int err) {
    links_.clear();
    io_bpf__destroy(skel_);
    skel_ = nullptr;
    throw_bpf_error(what, err);
  };
  skel_->rodata->filter_targets = options.filter_targets;
  skel_->rodata->self_tgid = static_cast<uint32_t>(getpid());
  skel_->rodata->copy_user_stacks = options.copy_user_stacks;
  // Calls are not rate-limited like samples: the machine's distinct
  // (thread, stack, operation) triples per interval decide the size, not -F.
  uint32_t counts = std::max<uint32_t>(options.max_stacks, kMinCountEntries);
  for (bpf_map* m : {skel_->maps.io_counts0, skel_->maps.io_counts1}) bpf_map__set_max_entries(m, counts);
  // System call entries carry only a user stack: half the stack ids of an
  // on-CPU buffer of the same size.
  for (bpf_map* m : {skel_->maps.io_stacks0, skel_->maps.io_stacks1})
    bpf_map__set_max_entries(m, stack_map_entries(counts / 2));
  bpf_map__set_max_entries(skel_->maps.block_stacks, kBlockStackEntries);
  for (bpf_program* p : {skel_->progs.io_block_start, skel_->progs.io_block_issue, skel_->progs.io_block_complete})
    bpf_program__set_autoload(p, options.block_io);
  if (bpf_map__reuse_fd(skel_->maps.targets, tracker.targets_fd()) ||
      bpf_map__reuse_fd(skel_->maps.seen, tracker.seen_fd()) ||
      bpf_map__reuse_fd(skel_->maps.proc_events, tracker.events_fd()) ||
      bpf_map__reuse_fd(skel_->maps.stack_tops, tracker.stack_tops_fd()))
    fail("cannot share the process maps with the I/O program", errno);
  // Its own stack-copy ring, so that a burst of calls never crowds out the
  // on- and off-CPU copies (8 MiB: per 100 ms, 480 calls at the largest
  // copy, a few times more at typical sizes). A ring the program never
  // writes (frame-pointer mode) stays one page.
  bpf_map__set_max_entries(skel_->maps.stack_samples,
                           options.copy_user_stacks ? kCopyRingBytes : static_cast<uint32_t>(getpagesize()));
  if (int err = io_bpf__load(skel_); err) fail("cannot load the I/O BPF program", err);
  std::vector<bpf_program*> progs = {skel_->progs.io_sys_enter, skel_->progs.io_sys_exit};
  if (options.block_io)
    progs.insert(progs.end(),
                 {skel_->progs.io_block_start, skel_->progs.io_block_issue, skel_->progs.io_block_complete});
  for (bpf_program* prog : progs) {
    bpf_link* link = bpf_program__attach(prog);
    if (!link) fail(std::string("cannot attach the I/O program ") + bpf_program__name(prog), errno);
    links_.emplace_back(link);
  }
  add_process(static_cast<uint32_t>(getpid()));
}

bool IoSampler::add_process(uint32_t tgid) {
  if (looked_at_.size() >= kMaxLookedAt) looked_at_.clear();
  looked_at_.insert(tgid);
  const std::string proc = "/proc/" + std::to_string(tgid);
  std::ifstream in(proc + "/maps");
  if (!in) return false;
  std::stringstream text_stream;
  text_stream << in.rdbuf();
  const std::string text = text_stream.str();
  int sites_fd = bpf_map__fd(skel_->maps.io_sites);
  for (const symbolizer::Mapping& m : symbolizer::parse_proc_maps(text)) {
    if (!m.executable() || m.inode == 0 || m.path.empty() || m.path[0] == '[') continue;
    auto identity = std::make_tuple(m.dev_major, m.dev_minor, m.inode);
    if (sites_full_ || scanned_files_.size() >= kMaxSiteFiles || scanned_files_.count(identity)) continue;
    scanned_files_.insert(identity);
    // Through map_files: the file the process maps, even if replaced or in
    // another mount namespace; the path only as a fallback.
    char range[64];
    std::snprintf(range, sizeof range, "/map_files/%llx-%llx", static_cast<unsigned long long>(m.start),
                  static_cast<unsigned long long>(m.end));
    int fd = open((proc + range).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fd = open(m.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    bool same = fstat(fd, &st) == 0 && st.st_ino == m.inode;
    std::vector<unwinder::SyscallSite> found = same ? unwinder::frameless_syscall_sites(fd, "") : std::vector<unwinder::SyscallSite>{};
    close(fd);
    for (const unwinder::SyscallSite& site : found) {
      sw_io_site key{};
      key.ino = m.inode;
      key.file_offset = site.file_offset;
      key.dev = (m.dev_major << 20) | m.dev_minor;  // the kernel's dev_t (MKDEV)
      uint32_t value = site.ra_sp_offset;
      if (bpf_map_update_elem(sites_fd, &key, &value, BPF_ANY) != 0) {
        sites_full_ = true;  // the callers of later sites stay missing, as before
        break;
      }
      ++sites_;
    }
  }
  return true;
}

int IoSampler::stack_copies_fd() const { return bpf_map__fd(skel_->maps.stack_samples); }

IoSampler::~IoSampler() {
  links_.clear();
  if (skel_) io_bpf__destroy(skel_);
}

RawInterval IoSampler::drain() {
  RawInterval out;
  uint32_t old = __atomic_load_n(&skel_->bss->active_buffer, __ATOMIC_SEQ_CST) & 1u;
  __atomic_store_n(&skel_->bss->active_buffer, old ^ 1u, __ATOMIC_SEQ_CST);
  std::this_thread::sleep_for(kBufferFlipGrace);

  int counts_fd = bpf_map__fd(old == 0 ? skel_->maps.io_counts0 : skel_->maps.io_counts1);
  int stacks_fd = bpf_map__fd(old == 0 ? skel_->maps.io_stacks0 : skel_->maps.io_stacks1);
  StackMapReader call_stacks(stacks_fd);
  StackMapReader block_stacks(bpf_map__fd(skel_->maps.block_stacks));
  std::vector<sw_io_key> keys = map_keys<sw_io_key>(counts_fd, bpf_map__max_entries(skel_->maps.io_counts0));
  for (const sw_io_key& k : keys) {
    sw_io_value v{};
    if (bpf_map_lookup_elem(counts_fd, &k, &v) != 0) continue;
    RawStack raw;
    raw.kind = StackKind::kIo;
    raw.key.tgid = k.tgid;
    raw.key.tid = k.tid;
    raw.key.kernel_stack_id = k.kernel_stack_id;
    raw.key.user_stack_id = k.user_stack_id;
    std::memcpy(raw.key.comm, k.comm, sizeof(raw.key.comm));
    raw.value.count = v.count;
    std::memcpy(raw.value.process_comm, v.process_comm, sizeof(raw.value.process_comm));
    raw.bytes = v.bytes;
    raw.latency_ns = v.total_ns;
    raw.detail = io_detail(k.op, k.fd_kind);
    StackMapReader& stacks = k.op >= SW_IO_BLOCK_READ ? block_stacks : call_stacks;
    raw.kernel_ips = stacks.ips(k.kernel_stack_id);
    raw.user_ips = stacks.ips(k.user_stack_id);
    // The caller the frame-pointer walk skipped, right above the innermost frame.
    if (k.caller != 0 && !raw.user_ips.empty()) raw.user_ips.insert(raw.user_ips.begin() + 1, k.caller);
    out.stacks.push_back(std::move(raw));
  }
  for (const sw_io_key& k : keys)
    if (!looked_at_.count(k.tgid)) add_process(k.tgid);
  for (const sw_io_key& k : keys) bpf_map_delete_elem(counts_fd, &k);
  // Every syscall stack of the old buffer, also ones whose count insert failed.
  for (uint32_t id : map_keys<uint32_t>(stacks_fd, bpf_map__max_entries(skel_->maps.io_stacks0))) bpf_map_delete_elem(stacks_fd, &id);

  out.drops = read_drop_counters(bpf_map__fd(skel_->maps.io_drops), drop_totals_);
  return out;
}

}  // namespace stackwatch::profiler
