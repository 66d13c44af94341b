// ModuleCache: mapping of a process -> its module's compiled CFI, parsed once
// per file for the whole machine. Keyed by build-id (else dev+inode+size+
// mtime), with an alias from the file identity so that a second process
// mapping the same file costs one fstat, not a parse. LRU-bounded.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "symbolizer/symbolizer.h"
#include "unwinder/module_cfi.h"

namespace stackwatch::unwinder {

struct ModuleCacheCounters {
  uint64_t hits = 0;      // found by identity or build-id
  uint64_t builds = 0;    // parsed and compiled
  uint64_t failures = 0;  // could not open or not an ELF file
  uint64_t evictions = 0;
};

class ModuleCache {
 public:
  // lazy: compile each module's CFI per FDE on first use (ModuleCfi::build_lazy),
  // else all of it when the module is first seen.
  ModuleCache(size_t max_modules, std::string proc_root, std::string debug_root, bool lazy = true);

  // The CFI of the file mapping m of pid shows, or nullptr if unreadable.
  // Files are opened by path when the path still names the mapped inode,
  // else through <proc_root>/PID/map_files/START-END (deleted or replaced
  // binaries, other mount namespaces). "[vdso]" is read from the process's
  // memory, else taken from our own vDSO (the same kernel image).
  std::shared_ptr<const ModuleCfi> module_for(uint32_t pid, const symbolizer::Mapping& m);

  const ModuleCacheCounters& counters() const { return counters_; }
  size_t size() const { return entries_.size(); }

 private:
  // (dev, inode, size, mtime ns) of an open file, or a pseudo identity.
  using Identity = std::tuple<uint64_t, uint64_t, uint64_t, int64_t, std::string>;
  struct Entry {
    std::string key;  // "b:<build-id>" or "f:<identity>"
    std::shared_ptr<const ModuleCfi> module;
  };

  // An fd for the file behind m (identity filled from fstat), or -1.
  int open_mapping(uint32_t pid, const symbolizer::Mapping& m, Identity& identity) const;
  std::unique_ptr<ElfFile> open_vdso(uint32_t pid, const symbolizer::Mapping& m) const;
  std::shared_ptr<const ModuleCfi> touch(std::list<Entry>::iterator it);
  void insert(const std::string& key, const Identity& identity,
              std::shared_ptr<const ModuleCfi> module);

  size_t max_modules_;
  std::string proc_root_;
  std::string debug_root_;
  bool lazy_;
  std::list<Entry> entries_;  // most recently used first
  std::map<std::string, std::list<Entry>::iterator> by_key_;
  std::map<Identity, std::string> key_by_identity_;
  ModuleCacheCounters counters_;
};

}  // namespace stackwatch::unwinder
