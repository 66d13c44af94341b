// Capturing a process: maps, files (through map_files), vDSO bytes, JIT map.
#include "symbolizer/process_snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <fstream>
#include <sstream>

#include "recording/error.h"

namespace stackwatch::symbolizer {
namespace {

constexpr std::string_view kDeleted = " (deleted)";

std::string identity_of(const std::string& path, const struct stat& st) {
  char buf[160];
  std::snprintf(buf, sizeof buf, ":%u:%u:%llu:%lld:%lld.%09ld", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino), static_cast<long long>(st.st_size),
                static_cast<long long>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec);
  return "f:" + path + buf;
}

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return text.str();
}

std::vector<char> read_memory(const std::string& proc_dir, uint64_t start, uint64_t size) {
  // The vDSO is two or three pages; anything far larger is not one.
  constexpr uint64_t kMaxVdsoSize = 1 << 20;
  if (size == 0 || size > kMaxVdsoSize) return {};
  int fd = ::open((proc_dir + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::vector<char> image(size);
  ssize_t n = ::pread(fd, image.data(), size, static_cast<off_t>(start));
  ::close(fd);
  if (n != static_cast<ssize_t>(size)) return {};
  return image;
}

}  // namespace

MappedFile::~MappedFile() {
  if (fd >= 0) ::close(fd);
}

std::shared_ptr<MappedFile> FileRegistry::share(int fd, const std::string& path, const std::string& identity) {
  if (auto it = files_.find(identity); it != files_.end()) {
    if (auto existing = it->second.lock()) {
      if (fd >= 0) ::close(fd);
      return existing;
    }
  }
  auto file = std::make_shared<MappedFile>();
  file->fd = fd;
  file->path = path;
  file->identity = identity;
  files_[identity] = file;
  // Drop dead entries now and then so the registry stays bounded by live files.
  if (files_.size() > 64 && files_.size() % 64 == 0)
    std::erase_if(files_, [](const auto& kv) { return kv.second.expired(); });
  return file;
}

std::shared_ptr<const std::vector<char>> FileRegistry::share_vdso(std::vector<char> image) {
  if (!vdso_ || *vdso_ != image) vdso_ = std::make_shared<const std::vector<char>>(std::move(image));
  return vdso_;
}

std::shared_ptr<MappedFile> FileRegistry::open_mapped(const std::string& proc_dir, const Mapping& m) {
  std::string path = m.path;
  if (path.ends_with(kDeleted)) path.resize(path.size() - kDeleted.size());
  char range[64];
  std::snprintf(range, sizeof range, "/map_files/%" PRIx64 "-%" PRIx64, m.start, m.end);
  struct stat st;
  // map_files names exactly the mapped file even when deleted or replaced
  // (it needs CAP_SYS_ADMIN); the path is the fallback, checked by inode.
  std::string via = proc_dir + range;
  if (::stat(via.c_str(), &st) != 0) {
    via = path;
    if (::stat(via.c_str(), &st) != 0 || st.st_ino != m.inode) {
      auto file = std::make_shared<MappedFile>();
      file->path = path;
      file->error = m.path.ends_with(kDeleted) ? "the mapped file was deleted or replaced on disk, and map_files is not readable (needs CAP_SYS_ADMIN)"
                    : ::access(path.c_str(), F_OK) == 0 ? "the file on disk is not the mapped one (replaced), and map_files is not readable (needs CAP_SYS_ADMIN)"
                                                         : "cannot open the mapped file";
      return file;
    }
  }
  std::string identity = identity_of(path, st);
  if (auto it = files_.find(identity); it != files_.end())
    if (auto existing = it->second.lock()) return existing;
  int fd = ::open(via.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && via != path) {
    // map_files could be stat'ed but not opened: the path, if it is still
    // the mapped inode.
    struct stat at_path;
    if (::stat(path.c_str(), &at_path) == 0 && at_path.st_ino == m.inode) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) {
    auto file = std::make_shared<MappedFile>();
    file->path = path;
    file->error = std::string("cannot open the mapped file: ") + std::strerror(errno);
    return file;
  }
  return share(fd, path, identity);
}

std::shared_ptr<MappedFile> FileRegistry::open_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + " is not a regular file");
  }
  return share(fd, path, identity_of(path, st));
}

const ProcessMapping* ProcessSnapshot::find(uint64_t address) const {
  auto it = std::upper_bound(mappings.begin(), mappings.end(), address,
                             [](uint64_t a, const ProcessMapping& m) { return a < m.mapping.start; });
  if (it == mappings.begin()) return nullptr;
  --it;
  return address < it->mapping.end ? &*it : nullptr;
}

std::optional<ProcessSnapshot> capture_process(uint32_t pid, const Options& options, FileRegistry& files) {
  std::string proc_dir = options.proc_root + "/" + std::to_string(pid);
  auto text = read_text(proc_dir + "/maps");
  if (!text || text->empty()) return std::nullopt;
  ProcessSnapshot snap;
  snap.pid = pid;
  snap.taken = std::chrono::steady_clock::now();
  for (Mapping& m : parse_proc_maps(*text)) {
    ProcessMapping pm;
    if (m.path == "[vdso]") {
      pm.kind = MappingKind::kVdso;
      if (auto image = read_memory(proc_dir, m.start, m.end - m.start); !image.empty())
        snap.vdso_image = files.share_vdso(std::move(image));
    } else if (m.path.empty()) {
      pm.kind = MappingKind::kAnonymous;
    } else if (m.path.front() == '/' && m.inode != 0) {
      pm.kind = MappingKind::kFile;
      if (m.executable()) pm.file = files.open_mapped(proc_dir, m);
    } else {
      pm.kind = MappingKind::kOther;  // [heap], [stack], [vsyscall], memfd:..., ...
    }
    pm.mapping = std::move(m);
    snap.mappings.push_back(std::move(pm));
  }
  std::sort(snap.mappings.begin(), snap.mappings.end(),
            [](const ProcessMapping& a, const ProcessMapping& b) { return a.mapping.start < b.mapping.start; });
  refresh_jit_map(snap, options);
  return snap;
}

void refresh_jit_map(ProcessSnapshot& snapshot, const Options& options) {
  constexpr auto kJitMapCheckInterval = std::chrono::milliseconds(100);
  auto now = std::chrono::steady_clock::now();
  if (snapshot.jit_checked != std::chrono::steady_clock::time_point{} && now - snapshot.jit_checked < kJitMapCheckInterval)
    return;
  snapshot.jit_checked = now;
  std::string path = options.perf_map_dir + "/perf-" + std::to_string(snapshot.pid) + ".map";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return;
  int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec + st.st_size;
  if (mtime == snapshot.jit_mtime_ns) return;
  if (auto text = read_text(path)) {
    snapshot.jit = PerfMap::parse(*text);
    snapshot.jit_mtime_ns = mtime;
  }
}

}  // namespace stackwatch::symbolizer
