// LazyCfi: a module's CFI compiled one FDE at a time, on the first lookup of
// an address in it. Stackwatch samples touch a tiny part of a big binary's
// code, so this keeps the one-off cost per module (libc: ~15 ms eagerly,
// cc1plus: ~0.7 s) proportional to the functions actually sampled. Rows are
// the same CfiRows as the eager CfiTable's.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <elfutils/libdw.h>

#include "unwinder/cfi_row.h"
#include "unwinder/elf_file.h"

namespace stackwatch::unwinder {

class LazyCfi {
 public:
  LazyCfi() = default;
  ~LazyCfi();
  LazyCfi(const LazyCfi&) = delete;
  LazyCfi& operator=(const LazyCfi&) = delete;

  // Sources in priority order: .eh_frame (through .eh_frame_hdr), then
  // .debug_frame. Each keeps file alive. False if the file has no such CFI.
  bool add_eh_frame(std::shared_ptr<ElfFile> file);
  bool add_debug_frame(std::shared_ptr<ElfFile> file);

  // The row covering vaddr (compiling its FDE if needed), or nullptr.
  const CfiRow* find(uint64_t vaddr);

  size_t sources() const { return sources_.size(); }
  size_t fdes() const;
  size_t compiled_fdes() const { return compiled_fdes_; }
  size_t compiled_rows() const { return rows_.size(); }

 private:
  static constexpr uint32_t kNotCompiled = UINT32_MAX;
  struct Source {
    std::shared_ptr<ElfFile> file;
    Dwarf* dwarf = nullptr;         // owned, for .debug_frame
    Dwarf_CFI* owned_cfi = nullptr;  // owned, for .eh_frame
    Dwarf_CFI* cfi = nullptr;
    std::vector<uint64_t> fde_starts;  // sorted, unique
    std::vector<uint32_t> first_row;   // per FDE: index in rows_, or kNotCompiled
    std::vector<uint32_t> row_count;
  };
  void compile(Source& source, size_t fde);
  bool add(Source source);

  std::vector<Source> sources_;
  std::vector<CfiRow> rows_;
  size_t compiled_fdes_ = 0;
};

}  // namespace stackwatch::unwinder
