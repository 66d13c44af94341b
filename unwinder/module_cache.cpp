// Opening the file behind a mapping, and the LRU cache of compiled modules.
#include "unwinder/module_cache.h"

#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace stackwatch::unwinder {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Our own [vdso] range from /proc/self/maps (read once).
std::pair<uint64_t, uint64_t> own_vdso_range() {
  static const std::pair<uint64_t, uint64_t> range = [] {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
      if (!ends_with(line, "[vdso]")) continue;
      uint64_t start = 0, end = 0;
      if (std::sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64, &start, &end) == 2) return std::pair{start, end};
    }
    return std::pair<uint64_t, uint64_t>{0, 0};
  }();
  return range;
}

}  // namespace

ModuleCache::ModuleCache(size_t max_modules, std::string proc_root, std::string debug_root, bool lazy)
    : max_modules_(max_modules == 0 ? 1 : max_modules),
      proc_root_(std::move(proc_root)),
      debug_root_(std::move(debug_root)),
      lazy_(lazy) {}

std::unique_ptr<ElfFile> ModuleCache::open_vdso(uint32_t pid, const symbolizer::Mapping& m) const {
  uint64_t size = m.end - m.start;
  // A vDSO is a few pages; anything larger is not one.
  constexpr uint64_t kMaxVdsoSize = 1 << 20;
  if (size == 0 || size > kMaxVdsoSize) return nullptr;
  std::vector<uint8_t> image(size);
  std::string mem_path = proc_root_ + "/" + std::to_string(pid) + "/mem";
  int fd = open(mem_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = pread(fd, image.data(), size, static_cast<off_t>(m.start));
    close(fd);
    if (n == static_cast<ssize_t>(size)) {
      if (auto file = ElfFile::from_image(image)) return file;
    }
  }
  // Without access to its memory: every 64-bit process of this kernel maps
  // the same vDSO image, ours included.
  auto [own_start, own_end] = own_vdso_range();
  if (own_start == 0 || own_end - own_start != size ||
      getauxval(AT_SYSINFO_EHDR) != own_start) {
    return nullptr;
  }
  std::memcpy(image.data(), reinterpret_cast<const void*>(own_start), size);
  return ElfFile::from_image(std::move(image));
}

int ModuleCache::open_mapping(uint32_t pid, const symbolizer::Mapping& m, Identity& identity) const {
  auto identity_of = [&](int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return false;
    identity = Identity{st.st_dev, st.st_ino, static_cast<uint64_t>(st.st_size),
                        static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, ""};
    return st.st_ino == m.inode;
  };
  // By path, when it still names the mapped inode (cheapest, no privileges).
  if (!ends_with(m.path, kDeletedSuffix)) {
    int fd = open(m.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (identity_of(fd)) return fd;
      close(fd);
    }
  }
  // Else through map_files, which reaches the mapped inode itself.
  char name[64];
  std::snprintf(name, sizeof name, "/%u/map_files/%" PRIx64 "-%" PRIx64, pid, m.start, m.end);
  int fd = open((proc_root_ + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) identity_of(fd);
  return fd;
}

std::shared_ptr<const ModuleCfi> ModuleCache::touch(std::list<Entry>::iterator it) {
  entries_.splice(entries_.begin(), entries_, it);
  ++counters_.hits;
  return it->module;
}

void ModuleCache::insert(const std::string& key, const Identity& identity,
                         std::shared_ptr<const ModuleCfi> module) {
  entries_.push_front(Entry{key, std::move(module)});
  by_key_[key] = entries_.begin();
  key_by_identity_[identity] = key;
  while (entries_.size() > max_modules_) {
    const std::string& victim = entries_.back().key;
    for (auto it = key_by_identity_.begin(); it != key_by_identity_.end();) {
      it = it->second == victim ? key_by_identity_.erase(it) : std::next(it);
    }
    by_key_.erase(victim);
    entries_.pop_back();
    ++counters_.evictions;
  }
}

std::shared_ptr<const ModuleCfi> ModuleCache::module_for(uint32_t pid, const symbolizer::Mapping& m) {
  // Identity first (an fstat), so a module already compiled for another
  // process costs no ELF parsing.
  Identity identity;
  std::unique_ptr<ElfFile> file;
  int fd = -1;
  if (m.path == "[vdso]") {
    identity = Identity{0, 0, m.end - m.start, 0, "[vdso]"};
  } else if (!m.path.empty() && m.path[0] != '[') {  // not anonymous, [heap], [stack]...
    fd = open_mapping(pid, m, identity);
    if (fd < 0) {
      ++counters_.failures;
      return nullptr;
    }
  } else {
    ++counters_.failures;
    return nullptr;
  }
  if (auto alias = key_by_identity_.find(identity); alias != key_by_identity_.end()) {
    if (auto it = by_key_.find(alias->second); it != by_key_.end()) {
      if (fd >= 0) close(fd);
      return touch(it->second);
    }
  }
  // Lazy modules live on: read what they need, do not map the whole file.
  file = fd >= 0 ? ElfFile::from_fd(fd, !lazy_) : open_vdso(pid, m);
  if (!file) {
    ++counters_.failures;
    return nullptr;
  }
  std::string build_id = file->build_id();
  std::string key;
  if (!build_id.empty()) {
    key = "b:" + build_id;
  } else {
    std::ostringstream out;
    out << "f:" << std::get<0>(identity) << ":" << std::get<1>(identity) << ":"
        << std::get<2>(identity) << ":" << std::get<3>(identity) << ":" << std::get<4>(identity);
    key = out.str();
  }
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    key_by_identity_[identity] = key;
    return touch(it->second);
  }
  std::shared_ptr<const ModuleCfi> module =
      lazy_ ? ModuleCfi::build_lazy(std::move(file), debug_root_) : ModuleCfi::build(*file, debug_root_);
  ++counters_.builds;
  insert(key, identity, module);
  return module;
}

}  // namespace stackwatch::unwinder
