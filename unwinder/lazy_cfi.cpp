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
  source.touched.assign(source.fde_starts.size(), false);
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

size_t LazyCfi::compiled_rows() const {
  size_t n = 0;
  for (const Source& source : sources_) n += source.rows.size();
  return n;
}

const CfiRow* LazyCfi::compile(Source& source, size_t fde, uint64_t vaddr) {
  // The row libdw finds for vaddr, within its FDE's span (the header lists
  // starts only: up to the next FDE) and between the rows already known.
  auto at = std::upper_bound(source.rows.begin(), source.rows.end(), vaddr,
                             [](uint64_t a, const CfiRow& r) { return a < r.start; });
  uint64_t lo = source.fde_starts[fde];
  uint64_t hi = fde + 1 < source.fde_starts.size() ? source.fde_starts[fde + 1] : UINT64_MAX;
  if (at != source.rows.begin()) lo = std::max(lo, std::prev(at)->end());
  if (at != source.rows.end()) hi = std::min(hi, at->start);
  Dwarf_Frame* frame = nullptr;
  CfiRow row;
  if (vaddr >= lo && vaddr < hi && dwarf_cfi_addrframe(source.cfi, vaddr, &frame) == 0) {
    row = row_from_frame(frame);
    std::free(frame);
  }
  if (row.length == 0 || row.start > vaddr || row.end() <= vaddr) {
    source.misses.insert(std::lower_bound(source.misses.begin(), source.misses.end(), vaddr), vaddr);
    return nullptr;
  }
  // libdw's rules and end are right for the address asked, its start not
  // always: after a DW_CFA_restore_state it reports where the remembered
  // state began (libc: asked at 0x122010, [0x121ffc, 0x122086) with CFA
  // rbp+16, where 0x121ffc-0x122000 is CFA rsp+8). The start is kept only
  // if asking there gives the same row back; else the row starts here.
  if (row.start < vaddr) {
    bool confirmed = false;
    if (dwarf_cfi_addrframe(source.cfi, row.start, &frame) == 0) {
      CfiRow there = row_from_frame(frame);
      std::free(frame);
      confirmed = there.same_rules(row) && there.start == row.start && there.end() == row.end();
    }
    if (!confirmed) {
      row.length = static_cast<uint32_t>(row.end() - vaddr);
      row.start = vaddr;
    }
  }
  uint64_t start = std::max(row.start, lo), end = std::min(row.end(), hi);
  row.start = start;
  row.length = static_cast<uint32_t>(end - start);
  return &*source.rows.insert(at, row);
}

const CfiRow* LazyCfi::find(uint64_t vaddr) {
  for (Source& source : sources_) {
    auto it = std::upper_bound(source.fde_starts.begin(), source.fde_starts.end(), vaddr);
    if (it == source.fde_starts.begin()) continue;
    size_t fde = static_cast<size_t>(it - source.fde_starts.begin()) - 1;
    if (!source.touched[fde]) {
      source.touched[fde] = true;
      ++compiled_fdes_;
    }
    auto row = std::upper_bound(source.rows.begin(), source.rows.end(), vaddr,
                                [](uint64_t a, const CfiRow& r) { return a < r.start; });
    if (row != source.rows.begin() && vaddr < std::prev(row)->end()) return &*std::prev(row);
    if (std::binary_search(source.misses.begin(), source.misses.end(), vaddr)) continue;
    if (const CfiRow* compiled = compile(source, fde, vaddr)) return compiled;
  }
  return nullptr;
}

}  // namespace stackwatch::unwinder
