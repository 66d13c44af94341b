// Kallsyms::load_cached: the kernel symbol table, kept per boot in a cache
// file (see KallsymsSources in symbolizer.h).
//
// File: a header, the entries as they are in memory, the name arena, the
// module names (NUL-separated, vmlinux's empty one first) and the module
// extents. Written to a temporary file and renamed, so a reader sees a whole
// file or none; read back only when its owner, mode, magic, key and every
// size check out, else the table is read from /proc/kallsyms again.
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "recording/error.h"
#include "symbolizer/symbolizer.h"

namespace stackwatch::symbolizer {

namespace {

constexpr char kMagic[8] = {'S', 'W', 'K', 'S', 'Y', 'M', '1', '\0'};

struct CacheHeader {
  char magic[8];
  uint64_t key;
  uint64_t entries;
  uint64_t names_bytes;
  uint64_t module_bytes;
  uint64_t modules;
  uint32_t padding_name;
  uint32_t entry_size;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

uint64_t fnv1a(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Only ours and only for us: a directory or file anyone else could write
// would let them choose the names in our stacks.
bool private_to_us(const struct stat& st, mode_t type) {
  return (st.st_mode & S_IFMT) == type && st.st_uid == geteuid() && (st.st_mode & 077) == 0;
}

bool write_exact(int fd, const void* data, size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Pseudo-modules whose symbols come and go within a boot.
bool dynamic_module(std::string_view m) { return m == "bpf" || m.starts_with("__builtin__"); }

long bpf_call(int cmd, bpf_attr& attr) { return ::syscall(__NR_bpf, cmd, &attr, sizeof attr); }

}  // namespace

void Kallsyms::add_bpf_programs() {
  // The cache left the BPF programs out (they come and go): their JIT images
  // now, from the kernel's own list, named as /proc/kallsyms names them
  // ("bpf_prog_<tag>_<name>"). Without CAP_SYS_ADMIN, or with
  // kptr_restrict hiding addresses, there are none: their frames are unknown.
  auto bpf = std::find(modules_.begin(), modules_.end(), "bpf");
  if (bpf == modules_.end()) bpf = modules_.insert(modules_.end(), "bpf");
  uint32_t module = static_cast<uint32_t>(bpf - modules_.begin());
  std::vector<Entry> added;
  for (uint32_t id = 0;;) {
    bpf_attr attr{};
    attr.start_id = id;
    if (bpf_call(BPF_PROG_GET_NEXT_ID, attr) != 0) break;
    id = attr.next_id;
    attr = {};
    attr.prog_id = id;
    int fd = static_cast<int>(bpf_call(BPF_PROG_GET_FD_BY_ID, attr));
    if (fd < 0) continue;
    bpf_prog_info info{};
    attr = {};
    attr.info.bpf_fd = static_cast<uint32_t>(fd);
    attr.info.info_len = sizeof info;
    attr.info.info = reinterpret_cast<uint64_t>(&info);
    std::vector<uint64_t> ksyms;
    if (bpf_call(BPF_OBJ_GET_INFO_BY_FD, attr) == 0 && info.nr_jited_ksyms > 0 && info.nr_jited_ksyms <= 4096) {
      ksyms.resize(info.nr_jited_ksyms);
      char name[BPF_OBJ_NAME_LEN + 1] = {};
      std::memcpy(name, info.name, BPF_OBJ_NAME_LEN);
      char tag[2 * BPF_TAG_SIZE + 1] = {};
      for (int i = 0; i < BPF_TAG_SIZE; ++i) std::snprintf(tag + 2 * i, 3, "%02x", info.tag[i]);
      bpf_prog_info again{};
      again.nr_jited_ksyms = info.nr_jited_ksyms;
      again.jited_ksyms = reinterpret_cast<uint64_t>(ksyms.data());
      attr = {};
      attr.info.bpf_fd = static_cast<uint32_t>(fd);
      attr.info.info_len = sizeof again;
      attr.info.info = reinterpret_cast<uint64_t>(&again);
      if (bpf_call(BPF_OBJ_GET_INFO_BY_FD, attr) == 0) {
        uint32_t offset = static_cast<uint32_t>(names_.size());
        names_.append("bpf_prog_").append(tag).append(name[0] ? "_" : "").append(name).push_back('\0');
        for (uint64_t address : ksyms)
          if (address != 0) added.push_back({address, offset, module});
      }
    }
    ::close(fd);
  }
  if (added.empty()) return;
  std::sort(added.begin(), added.end(), [](const Entry& a, const Entry& b) { return a.address < b.address; });
  size_t middle = entries_.size();
  entries_.insert(entries_.end(), added.begin(), added.end());
  std::inplace_merge(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(middle), entries_.end(),
                     [](const Entry& a, const Entry& b) { return a.address < b.address; });
}

bool Kallsyms::read_cache(const std::string& path, uint64_t key) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st{};
  if (fstat(fd, &st) != 0 || !private_to_us(st, S_IFREG) || static_cast<uint64_t>(st.st_size) < sizeof(CacheHeader))
    return false;
  // Mapped, not read: only the pages lookups touch become ours. The file is
  // never rewritten in place (a new one is renamed over it), so the mapping
  // stays whole for as long as it is held.
  const size_t size = static_cast<size_t>(st.st_size);
  void* base = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (base == MAP_FAILED) return false;
  std::shared_ptr<const void> mapping(base, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
  const char* bytes = static_cast<const char*>(base);
  CacheHeader h{};
  std::memcpy(&h, bytes, sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.key != key || h.entry_size != sizeof(Entry)) return false;
  // Every size against the file's: a truncated or foreign file is refused
  // before anything is made of it.
  uint64_t body = size - sizeof h;
  if (h.entries > body / sizeof(Entry) || h.names_bytes > body || h.module_bytes > body ||
      h.modules > body / sizeof(Extent) + 1 ||
      h.entries * sizeof(Entry) + h.names_bytes + h.module_bytes + h.modules * sizeof(Extent) != body)
    return false;
  static_assert(sizeof(CacheHeader) % alignof(Entry) == 0, "entries follow the header aligned");
  const char* at = bytes + sizeof h;
  std::span<const Entry> entries(reinterpret_cast<const Entry*>(at), h.entries);
  at += h.entries * sizeof(Entry);
  std::string_view names(at, h.names_bytes);
  at += h.names_bytes;
  std::string_view module_blob(at, h.module_bytes);
  at += h.module_bytes;
  std::vector<Extent> extents(h.modules);  // unaligned in the file: copied (a few hundred bytes)
  std::memcpy(extents.data(), at, extents.size() * sizeof(Extent));
  std::vector<std::string> modules;
  for (size_t i = 0; i < module_blob.size();) {
    size_t nul = module_blob.find('\0', i);
    if (nul == std::string_view::npos) return false;
    modules.emplace_back(module_blob.substr(i, nul - i));
    i = nul + 1;
  }
  // The entries' name and module numbers are checked by find() as it uses
  // them (checking them all here would touch every page of the table).
  if (modules.size() != h.modules || modules.empty() || (!names.empty() && names.back() != '\0') ||
      (names.empty() && !entries.empty()))
    return false;
  if (h.padding_name != UINT32_MAX && h.padding_name >= names.size()) return false;
  entries_.clear();
  names_.clear();
  mapping_ = std::move(mapping);
  mapped_ = {entries, names};
  modules_ = std::move(modules);
  extents_ = std::move(extents);
  padding_name_ = h.padding_name;
  has_addresses_ = true;
  return true;
}

void Kallsyms::write_cache(const std::string& dir, const std::string& path, uint64_t key) const {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return;
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0 || !private_to_us(st, S_IFDIR)) return;
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return;
  // The dynamic pseudo-modules' entries stay out (their names would be
  // stale by the next run); their module slots stay, so indices hold.
  std::vector<Entry> kept;
  kept.reserve(entries_.size());
  for (const Entry& e : entries_)
    if (!dynamic_module(modules_[e.module])) kept.push_back(e);
  std::string module_blob;
  for (const std::string& m : modules_) module_blob.append(m).push_back('\0');
  std::vector<Extent> extents = extents_;
  extents.resize(modules_.size());
  CacheHeader h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.key = key;
  h.entries = kept.size();
  h.names_bytes = names_.size();
  h.module_bytes = module_blob.size();
  h.modules = modules_.size();
  h.padding_name = padding_name_;
  h.entry_size = sizeof(Entry);
  bool ok = write_exact(fd, &h, sizeof h) && write_exact(fd, kept.data(), kept.size() * sizeof(Entry)) &&
            write_exact(fd, names_.data(), names_.size()) && write_exact(fd, module_blob.data(), module_blob.size()) &&
            write_exact(fd, extents.data(), extents.size() * sizeof(Extent));
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) ::unlink(tmp.c_str());
}

Kallsyms Kallsyms::load_cached(const KallsymsSources& sources) {
  std::string modules_text = slurp(sources.modules);
  std::string cache_path;
  uint64_t key = 0;
  if (!sources.cache_dir.empty()) {
    std::string boot_id = slurp(sources.boot_id);
    while (!boot_id.empty() && (boot_id.back() == '\n' || boot_id.back() == ' ')) boot_id.pop_back();
    // Without a boot id nothing says when the kernel changed: no cache.
    if (!boot_id.empty() && boot_id.find('/') == std::string::npos) {
      key = fnv1a(fnv1a(fnv1a(0xcbf29ce484222325ull, sources.kallsyms), std::string_view("\0", 1)), modules_text);
      cache_path = sources.cache_dir + "/kallsyms-" + boot_id + ".bin";
      Kallsyms cached;
      if (cached.read_cache(cache_path, key)) {
        cached.from_cache_ = true;
        if (sources.bpf_programs) cached.add_bpf_programs();
        return cached;
      }
    }
  }
  Kallsyms k = load(sources.kallsyms);
  k.set_module_extents(modules_text);
  if (cache_path.empty() || !k.has_addresses_) return k;
  k.write_cache(sources.cache_dir, cache_path, key);
  // The table just written, mapped in place of the one read (which goes):
  // the first recording of a boot holds no more of it than the next ones.
  // The dynamic pseudo-modules' symbols, left out of the file, are kept.
  Kallsyms mapped;
  if (!mapped.read_cache(cache_path, key)) return k;
  for (const Entry& e : k.entries_) {
    if (!dynamic_module(k.modules_[e.module])) continue;
    Entry kept = e;
    kept.name = static_cast<uint32_t>(mapped.names_.size());
    mapped.names_.append(k.names_.c_str() + e.name).push_back('\0');
    mapped.entries_.push_back(kept);  // in address order, as in k
  }
  return mapped;
}

}  // namespace stackwatch::symbolizer
