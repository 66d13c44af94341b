// What the symbolizer keeps of a process: its mappings as read from
// /proc/PID/maps when first seen, an open fd on each executable file it maps
// (taken through /proc/PID/map_files, so deleted or replaced binaries and
// containers' files still resolve, and so everything keeps working after the
// process exits), its vDSO image, and its JIT map.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "symbolizer/perf_map.h"
#include "symbolizer/symbolizer.h"

namespace stackwatch::symbolizer {

class Module;

// An open executable file, shared by every process that maps it.
struct MappedFile {
  int fd = -1;
  std::string path;      // as the process saw it, without " (deleted)"
  std::string identity;  // "f:path:dev:inode:size:mtime", the cache key before the build-id is known
  std::string error;     // why it could not be opened (fd is then -1)
  // The parsed module of this file once known, so a lookup needs no key
  // hashing; the module cache still owns it (and may evict it).
  mutable std::weak_ptr<Module> module;
  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();
};

// Opens files once per identity across processes.
class FileRegistry {
 public:
  // The file of mapping m of the process whose /proc directory is proc_dir.
  std::shared_ptr<MappedFile> open_mapped(const std::string& proc_dir, const Mapping& m);
  // A file named on the command line / by path. Throws stackwatch::Error if it cannot be opened.
  std::shared_ptr<MappedFile> open_path(const std::string& path);
  // A process's vDSO image, shared with every snapshot whose vDSO has the
  // same bytes (on one kernel, all of them: 8 KiB a process otherwise, 16 MB
  // of a churning machine's snapshots).
  std::shared_ptr<const std::vector<char>> share_vdso(std::vector<char> image);

 private:
  std::shared_ptr<const std::vector<char>> vdso_;  // the last one shared
  std::shared_ptr<MappedFile> share(int fd, const std::string& path, const std::string& identity);
  std::unordered_map<std::string, std::weak_ptr<MappedFile>> files_;
};

enum class MappingKind { kFile, kVdso, kAnonymous, kOther };

struct ProcessMapping {
  Mapping mapping;
  MappingKind kind = MappingKind::kOther;
  std::shared_ptr<MappedFile> file;  // executable file mappings only
};

struct ProcessSnapshot {
  uint32_t pid = 0;
  std::vector<ProcessMapping> mappings;  // sorted by start
  std::shared_ptr<const std::vector<char>> vdso_image;  // null when unreadable (FileRegistry::share_vdso)
  PerfMap jit;
  int64_t jit_mtime_ns = -1;
  std::chrono::steady_clock::time_point jit_checked;
  std::chrono::steady_clock::time_point taken;

  const ProcessMapping* find(uint64_t address) const;
};

// Reads proc_root/PID/{maps,map_files,mem} now. nullopt if the process is gone.
std::optional<ProcessSnapshot> capture_process(uint32_t pid, const Options& options, FileRegistry& files);
// Re-reads the JIT map when it changed since the last read; looks at most
// every 100 ms so JIT-heavy samples do not stat() the file each time.
void refresh_jit_map(ProcessSnapshot& snapshot, const Options& options);

}  // namespace stackwatch::symbolizer
