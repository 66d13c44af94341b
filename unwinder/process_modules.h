// ProcessModules: one process's executable mappings, sorted, each resolved to
// its module's CFI and load bias on first use (lazily: most mappings of a
// process never appear in a sample).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "symbolizer/symbolizer.h"
#include "unwinder/module_cache.h"

namespace stackwatch::unwinder {

struct ExecMapping {
  symbolizer::Mapping mapping;
  bool resolved = false;
  std::shared_ptr<const ModuleCfi> module;  // null: anonymous or unreadable
  bool unreadable = false;                  // a file we could not open or parse
  uint64_t bias = 0;                        // runtime address - ELF vaddr
};

class ProcessModules {
 public:
  // Keeps the executable mappings of maps; returns false (and keeps the
  // resolved state) when they are the ones already held.
  bool update(const std::vector<symbolizer::Mapping>& maps);

  // The executable mapping containing address, or nullptr.
  const ExecMapping* find(uint64_t address) const;
  ExecMapping* find(uint64_t address);
  // Same, with its module resolved through cache.
  const ExecMapping* find_resolved(uint64_t address, uint32_t pid, ModuleCache& cache);

  uint64_t last_use = 0;  // for the per-pid LRU bound

 private:
  std::vector<ExecMapping> mappings_;  // sorted by start, non-overlapping
};

}  // namespace stackwatch::unwinder
