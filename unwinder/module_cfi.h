// ModuleCfi: everything the unwinder keeps about one ELF module (executable,
// shared library, vDSO): its CFI rows and its PT_LOAD segments (to turn a
// mapping into a load bias). Shared by every process that maps the module.
// Two ways to build it: eagerly, the whole CFI compiled into one CfiTable
// (what an in-BPF unwinder would load; immutable), or lazily, one FDE at a
// time on first lookup (what the user-space unwinder uses by default).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "unwinder/cfi_compiler.h"
#include "unwinder/cfi_table.h"
#include "unwinder/elf_file.h"
#include "unwinder/lazy_cfi.h"

namespace stackwatch::unwinder {

class ModuleCfi {
 public:
  // Compiles .eh_frame (through .eh_frame_hdr), then fills gaps from
  // .debug_frame of the file itself or of its separate debug file
  // <debug_root>/.build-id/xx/yyyy.debug when debug_root is not empty.
  static std::shared_ptr<const ModuleCfi> build(const ElfFile& file, const std::string& debug_root);
  // Same sources, compiled on demand. Keeps file (not its fd) alive.
  static std::shared_ptr<const ModuleCfi> build_lazy(std::unique_ptr<ElfFile> file,
                                                     const std::string& debug_root);

  // The row covering an ELF virtual address, or nullptr. The pointer is
  // valid until the next find() on this module. Lazy modules compile here,
  // which is why this const method mutates (single-threaded, see unwinder.h).
  const CfiRow* find(uint64_t vaddr) const { return lazy_ ? lazy_->find(vaddr) : table_.find(vaddr); }
  bool lazy() const { return lazy_ != nullptr; }
  // Eager modules: all rows. Lazy ones: empty (see lazy_stats()).
  const CfiTable& table() const { return table_; }
  const LazyCfi* lazy_stats() const { return lazy_.get(); }
  const std::string& build_id() const { return build_id_; }
  const CompileStats& stats() const { return stats_; }
  bool used_debug_frame() const { return used_debug_frame_; }

  // Runtime address minus ELF virtual address for a mapping that maps file
  // offset map_offset at map_start; nullopt if no PT_LOAD covers it.
  std::optional<uint64_t> load_bias(uint64_t map_start, uint64_t map_offset) const;

 private:
  CfiTable table_;
  std::unique_ptr<LazyCfi> lazy_;
  std::vector<LoadSegment> loads_;
  std::string build_id_;
  CompileStats stats_;
  bool used_debug_frame_ = false;
};

}  // namespace stackwatch::unwinder
