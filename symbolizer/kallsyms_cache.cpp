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
#include "symbolizer/private_files.h"
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
  int raw_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (raw_fd < 0) return false;
  auto fd = std::shared_ptr<const int>(new int(raw_fd), [](const int* p) {
    ::close(*p);
    delete p;
  });
  struct stat st{};
  if (fstat(raw_fd, &st) != 0 || !private_to_us(st, S_IFREG) || static_cast<uint64_t>(st.st_size) < sizeof(CacheHeader))
    return false;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  CacheHeader h{};
  if (!pread_exact(raw_fd, &h, sizeof h, 0)) return false;
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.key != key || h.entry_size != sizeof(Entry)) return false;
  // Every size against the file's: a truncated or foreign file is refused
  // before anything is made of it.
  uint64_t body = size - sizeof h;
  if (h.entries > body / sizeof(Entry) || h.names_bytes > body || h.module_bytes > body ||
      h.modules > body / sizeof(Extent) + 1 ||
      h.entries * sizeof(Entry) + h.names_bytes + h.module_bytes + h.modules * sizeof(Extent) != body)
    return false;
  static_assert(sizeof(CacheHeader) % alignof(Entry) == 0, "entries follow the header aligned");
  CacheTable table;
  table.entries_at = sizeof h;
  table.count = h.entries;
  table.names_at = table.entries_at + h.entries * sizeof(Entry);
  table.names_size = h.names_bytes;
  const uint64_t modules_at = table.names_at + h.names_bytes;
  std::string module_blob(h.module_bytes, '\0');
  std::vector<Extent> extents(h.modules);
  char last_name_byte = '\0';
  if (!pread_exact(raw_fd, module_blob.data(), module_blob.size(), modules_at) ||
      !pread_exact(raw_fd, extents.data(), extents.size() * sizeof(Extent), modules_at + h.module_bytes) ||
      (h.names_bytes > 0 && !pread_exact(raw_fd, &last_name_byte, 1, table.names_at + h.names_bytes - 1)))
    return false;
  std::vector<std::string> modules;
  for (size_t i = 0; i < module_blob.size();) {
    size_t nul = module_blob.find('\0', i);
    if (nul == std::string::npos) return false;
    modules.emplace_back(module_blob.substr(i, nul - i));
    i = nul + 1;
  }
  // The entries' name and module numbers are checked by find() as it uses
  // them; here only the first address of each block is kept, read through a
  // small buffer (the whole load, BPF programs listed too: 1.4 ms here).
  if (modules.size() != h.modules || modules.empty() || last_name_byte != '\0' ||
      (h.names_bytes == 0 && h.entries != 0))
    return false;
  if (h.padding_name != UINT32_MAX && h.padding_name >= h.names_bytes) return false;
  table.block_first.reserve((h.entries + kCacheBlock - 1) / kCacheBlock);
  constexpr size_t kChunkEntries = 16 * kCacheBlock;
  std::vector<Entry> chunk(kChunkEntries);
  for (uint64_t first = 0; first < h.entries; first += kChunkEntries) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkEntries, h.entries - first));
    if (!pread_exact(raw_fd, chunk.data(), n * sizeof(Entry), table.entries_at + first * sizeof(Entry))) return false;
    for (size_t k = 0; k < n; k += kCacheBlock) table.block_first.push_back(chunk[k].address);
  }
  table.fd = std::move(fd);
  entries_.clear();
  names_.clear();
  cache_ = std::move(table);
  modules_ = std::move(modules);
  extents_ = std::move(extents);
  padding_name_ = h.padding_name;
  has_addresses_ = true;
  return true;
}

bool Kallsyms::read_cached_entries(size_t first, size_t count, Entry* out) const {
  return pread_exact(*cache_.fd, out, count * sizeof(Entry), cache_.entries_at + first * sizeof(Entry));
}

bool Kallsyms::cached_entry_before(uint64_t address, Entry& entry, size_t& index) const {
  const std::vector<uint64_t>& firsts = cache_.block_first;
  auto block = std::upper_bound(firsts.begin(), firsts.end(), address);
  if (block == firsts.begin()) return false;
  const size_t first = static_cast<size_t>(block - firsts.begin() - 1) * kCacheBlock;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(kCacheBlock, cache_.count - first));
  Entry entries[kCacheBlock];
  if (!read_cached_entries(first, n, entries)) return false;
  Entry* it = std::upper_bound(entries, entries + n, address, [](uint64_t a, const Entry& e) { return a < e.address; });
  if (it == entries) return false;  // the block's first entry is past address: not the file opened
  index = first + static_cast<size_t>(it - entries) - 1;
  entry = *(it - 1);
  // Of several names at one address, the first listed (see find), which may
  // be in an earlier block.
  while (index > 0) {
    Entry before;
    if (index > first)
      before = entries[index - 1 - first];
    else if (!read_cached_entries(index - 1, 1, &before))
      break;
    if (before.address != entry.address) break;
    entry = before;
    --index;
  }
  return true;
}

bool Kallsyms::read_cached_name(uint32_t offset, std::string& name) const {
  name.clear();
  char buffer[128];
  for (uint64_t at = offset; at < cache_.names_size;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(sizeof buffer, cache_.names_size - at));
    if (!pread_exact(*cache_.fd, buffer, want, cache_.names_at + at)) return false;
    if (const void* nul = std::memchr(buffer, '\0', want)) {
      name.append(buffer, static_cast<size_t>(static_cast<const char*>(nul) - buffer));
      return true;
    }
    name.append(buffer, want);
    at += want;
  }
  return false;  // no NUL before the end: read_cache saw one there
}

void Kallsyms::write_cache(const std::string& dir, const std::string& path, uint64_t key) const {
  if (!private_directory(dir, true)) return;
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
  // The table just written, opened in place of the one read (which goes):
  // the first recording of a boot holds no more of it than the next ones.
  // The dynamic pseudo-modules' symbols, left out of the file, are kept.
  Kallsyms cached;
  if (!cached.read_cache(cache_path, key)) return k;
  for (const Entry& e : k.entries_) {
    if (!dynamic_module(k.modules_[e.module])) continue;
    Entry kept = e;
    kept.name = static_cast<uint32_t>(cached.names_.size());
    cached.names_.append(k.names_.c_str() + e.name).push_back('\0');
    cached.entries_.push_back(kept);  // in address order, as in k
  }
  return cached;
}

}  // namespace stackwatch::symbolizer
