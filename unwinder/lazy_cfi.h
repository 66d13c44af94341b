// LazyCfi: a module's CFI compiled one row at a time, on the first lookup of
// an address in it. Stackwatch samples touch a tiny part of a big binary's
// code, so this keeps the one-off cost per module (libc: ~15 ms eagerly,
// cc1plus: ~0.7 s) proportional to the code actually sampled. Rows have the
// same rules as the eager CfiTable's (their bounds may be narrower where
// FDEs overlap).
//
// Only the row asked for: libdw's dwarf_cfi_addrframe runs the FDE's CFA
// program from its start up to the address, so compiling a whole FDE row by
// row costs the square of its length (a fifth of a short recording's CPU,
// in libdw's interpreter, when it did); a sampled function is usually seen at
// a few return addresses only.
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

  // The row covering vaddr (compiling it if needed), or nullptr. The
  // pointer is valid until the next find().
  const CfiRow* find(uint64_t vaddr);

  size_t sources() const { return sources_.size(); }
  size_t fdes() const;
  size_t compiled_fdes() const { return compiled_fdes_; }  // FDEs looked into
  size_t compiled_rows() const;

 private:
  struct Source {
    std::shared_ptr<ElfFile> file;
    Dwarf* dwarf = nullptr;         // owned, for .debug_frame
    Dwarf_CFI* owned_cfi = nullptr;  // owned, for .eh_frame
    Dwarf_CFI* cfi = nullptr;
    std::vector<uint64_t> fde_starts;  // sorted, unique
    std::vector<bool> touched;         // per FDE: looked into
    std::vector<CfiRow> rows;          // compiled, sorted by start, disjoint
    std::vector<uint64_t> misses;      // sorted addresses of an FDE that have no row
  };
  const CfiRow* compile(Source& source, size_t fde, uint64_t vaddr);
  bool add(Source source);

  std::vector<Source> sources_;
  size_t compiled_fdes_ = 0;
};

}  // namespace stackwatch::unwinder
