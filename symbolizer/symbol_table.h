// The function symbols of an ELF module (.symtab, else .dynsym), sorted by
// address. Names point into the ElfFile's string tables, so a SymbolTable must
// not outlive the ElfFiles it was built from.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "symbolizer/elf_file.h"

namespace stackwatch::symbolizer {

struct ElfSymbol {
  uint64_t start = 0;
  uint64_t size = 0;
  const char* name = nullptr;
  uint32_t order = 0;  // position in the tables as added: the later alias wins
};

class SymbolTable {
 public:
  // Adds the STT_FUNC / STT_GNU_IFUNC symbols of the SHT_SYMTAB or SHT_DYNSYM
  // sections of file. Call finish() after the last add.
  void add(const ElfFile& file, uint32_t section_type);
  void finish();

  // The sized symbol covering vaddr, or nullptr.
  const ElfSymbol* find_sized(uint64_t vaddr) const;
  // The same, starting from hint, the position find_sized_near left there
  // last time (0 at first): ascending lookups mostly stay in one function
  // or move to the next few, also where none covers them (a stripped
  // binary's static functions), which a binary search would pay for.
  const ElfSymbol* find_sized_near(uint64_t vaddr, size_t& hint) const;
  // The sized symbol covering vaddr, else the nearest preceding sizeless one
  // (the caller must check its bounds some other way), else nullptr.
  const ElfSymbol* find(uint64_t vaddr) const;
  // The other symbols that start where `symbol` does, which finish() set
  // aside (aliases: memcpy / __memcpy_avx_unaligned, or GCC's two manglings
  // of one template), in table order.
  std::span<const ElfSymbol> aliases_of(const ElfSymbol* symbol) const;
  size_t size() const { return symbols_.size(); }
  // Position of a symbol returned by find(), for per-symbol caches.
  size_t index_of(const ElfSymbol* symbol) const { return static_cast<size_t>(symbol - symbols_.data()); }

 private:
  // The first symbol starting above vaddr.
  std::vector<ElfSymbol>::const_iterator upper_of(uint64_t vaddr) const;
  // find()'s answer given the upper bound of vaddr among symbols_.
  const ElfSymbol* find_before(std::vector<ElfSymbol>::const_iterator upper, uint64_t vaddr) const;

  std::vector<ElfSymbol> symbols_;
  std::vector<ElfSymbol> aliases_;  // sorted by start
};

}  // namespace stackwatch::symbolizer
