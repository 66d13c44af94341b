// Per-FDE compilation on demand.
#include "unwinder/lazy_cfi.h"

#include <algorithm>
#include <cstdlib>

#include "unwinder/cfi_compiler.h"
#include "unwinder/eh_frame_hdr.h"

namespace stackwatch::unwinder {

LazyCfi::~LazyCfi() {
  for (Source& source : sources_) {
    if (source.owned_cfi != nullptr) dwarf_cfi_end(source.owned_cfi);
    if (source.dwarf != nullptr) dwarf_end(source.dwarf);
  }
}

bool LazyCfi::add(Source source) {
  std::sort(source.fde_starts.begin(), source.fde_starts.end());
  source.fde_starts.erase(std::unique(source.fde_starts.begin(), source.fde_starts.end()),
                          source.fde_starts.end());
  source.first_row.assign(source.fde_starts.size(), kNotCompiled);
  source.row_count.assign(source.fde_starts.size(), 0);
  sources_.push_back(std::move(source));
  return true;
}

bool LazyCfi::add_eh_frame(std::shared_ptr<ElfFile> file) {
  std::optional<ByteRange> hdr = file->eh_frame_hdr();
  if (!hdr) return false;
  Source source;
  source.fde_starts = eh_frame_hdr_fde_starts(hdr->bytes, hdr->vaddr);
  if (source.fde_starts.empty()) return false;
  source.owned_cfi = dwarf_getcfi_elf(file->elf());
  if (source.owned_cfi == nullptr) return false;
  source.cfi = source.owned_cfi;
  source.file = std::move(file);
  return add(std::move(source));
}

bool LazyCfi::add_debug_frame(std::shared_ptr<ElfFile> file) {
  std::optional<ByteRange> section = file->section(".debug_frame");
  if (!section) return false;
  Source source;
  source.fde_starts = debug_frame_fde_starts(section->bytes);
  if (source.fde_starts.empty()) return false;
  source.dwarf = dwarf_begin_elf(file->elf(), DWARF_C_READ, nullptr);
  if (source.dwarf == nullptr) return false;
  source.cfi = dwarf_getcfi(source.dwarf);
  if (source.cfi == nullptr) {
    dwarf_end(source.dwarf);
    return false;
  }
  source.file = std::move(file);
  return add(std::move(source));
}

size_t LazyCfi::fdes() const {
  size_t n = 0;
  for (const Source& source : sources_) n += source.fde_starts.size();
  return n;
}

void LazyCfi::compile(Source& source, size_t fde) {
  // The FDE's rows, up to where libdw finds no more frame or the next FDE
  // begins (the header lists starts only).
  uint64_t cursor = source.fde_starts[fde];
  uint64_t limit = fde + 1 < source.fde_starts.size() ? source.fde_starts[fde + 1] : UINT64_MAX;
  source.first_row[fde] = static_cast<uint32_t>(rows_.size());
  while (cursor < limit) {
    Dwarf_Frame* frame = nullptr;
    if (dwarf_cfi_addrframe(source.cfi, cursor, &frame) != 0) break;
    CfiRow row = row_from_frame(frame);
    std::free(frame);
    if (row.length == 0 || row.end() <= cursor) break;
    uint64_t end = std::min(row.end(), limit);
    row.start = cursor;
    row.length = static_cast<uint32_t>(end - cursor);
    rows_.push_back(row);
    cursor = end;
  }
  source.row_count[fde] = static_cast<uint32_t>(rows_.size() - source.first_row[fde]);
  ++compiled_fdes_;
}

const CfiRow* LazyCfi::find(uint64_t vaddr) {
  for (Source& source : sources_) {
    auto it = std::upper_bound(source.fde_starts.begin(), source.fde_starts.end(), vaddr);
    if (it == source.fde_starts.begin()) continue;
    size_t fde = static_cast<size_t>(it - source.fde_starts.begin()) - 1;
    if (source.first_row[fde] == kNotCompiled) compile(source, fde);
    const CfiRow* first = rows_.data() + source.first_row[fde];
    const CfiRow* last = first + source.row_count[fde];
    const CfiRow* row = std::upper_bound(first, last, vaddr, [](uint64_t a, const CfiRow& r) { return a < r.start; });
    if (row != first && vaddr < (row - 1)->end()) return row - 1;
  }
  return nullptr;
}

}  // namespace stackwatch::unwinder
