// Compiles libdw's view of a CFI section (Dwarf_CFI) into flat CfiRows: for
// every FDE, every row (address range with constant rules) is asked for with
// dwarf_cfi_addrframe + dwarf_frame_info and its CFA / return address / rbp
// rules are reduced to the few shapes cfi_row.h knows. Anything else becomes
// an "unsupported" rule, so the unwinder stops there instead of guessing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <elfutils/libdw.h>

#include "unwinder/cfi_row.h"

namespace stackwatch::unwinder {

struct CompileStats {
  size_t fdes = 0;
  size_t rows = 0;
  size_t unsupported_cfa = 0;
  size_t failed_lookups = 0;  // FDE starts libdw could not find a frame for
};

// The row for one libdw frame state.
CfiRow row_from_frame(Dwarf_Frame* frame);

// Appends the rows of every FDE starting at fde_starts (ELF virtual
// addresses, any order, duplicates allowed) to rows.
void compile_cfi(Dwarf_CFI* cfi, std::vector<uint64_t> fde_starts, std::vector<CfiRow>& rows,
                 CompileStats& stats);

// FDE start addresses of a .debug_frame section (absolute, 8-byte addresses).
std::vector<uint64_t> debug_frame_fde_starts(std::span<const uint8_t> section);

}  // namespace stackwatch::unwinder
