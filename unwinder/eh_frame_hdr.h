// .eh_frame_hdr (PT_GNU_EH_FRAME): the linker's sorted table of FDE start
// addresses. It is how the CFI compiler enumerates a module's FDEs without
// decoding .eh_frame's per-CIE pointer encodings itself.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace stackwatch::unwinder {

// FDE initial locations (ELF virtual addresses) listed in an .eh_frame_hdr
// whose bytes are hdr, loaded at virtual address hdr_vaddr. Empty when the
// header has no search table or uses an encoding we do not read.
std::vector<uint64_t> eh_frame_hdr_fde_starts(std::span<const uint8_t> hdr, uint64_t hdr_vaddr);

}  // namespace stackwatch::unwinder
