// SymbolTable: one sorted vector, binary-searched per address.
#include "symbolizer/symbol_table.h"

#include <gelf.h>

#include <algorithm>

#include "symbolizer/address_buckets.h"
#include "symbolizer/address_order.h"

namespace stackwatch::symbolizer {

void SymbolTable::add(const ElfFile& file, uint32_t section_type) {
  Elf* elf = file.elf();
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != section_type || shdr.sh_entsize == 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr) continue;
    size_t count = shdr.sh_size / shdr.sh_entsize;
    for (size_t i = 0; i < count; ++i) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
      int type = GELF_ST_TYPE(sym.st_info);
      if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
      const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (name == nullptr || *name == '\0') continue;
      symbols_.push_back({sym.st_value, sym.st_size, name, static_cast<uint32_t>(symbols_.size())});
    }
  }
}

void SymbolTable::finish() {
  // At one address keep one symbol: the largest, then the last in table
  // order, which is llvm-symbolizer's choice among aliases, so both tools
  // print the same name for the same function.
  //
  // Ordered by address with address_order's radix sort (ties in table
  // order), then each run of one address by size and order: libc's 12,500
  // symbols took 0.6 ms under std::sort's comparisons, mispredicted on
  // random addresses.
  std::vector<uint64_t> starts(symbols_.size());
  for (size_t i = 0; i < symbols_.size(); ++i) starts[i] = symbols_[i].start;
  AddressOrder order = address_order(starts);
  for (size_t i = 0; i < order.size();) {
    size_t j = i + 1;
    while (j < order.size() && order[j].address == order[i].address) ++j;
    if (j - i > 1)
      std::sort(order.begin() + static_cast<ptrdiff_t>(i), order.begin() + static_cast<ptrdiff_t>(j),
                [this](const OrderedAddress& a, const OrderedAddress& b) {
                  const ElfSymbol& x = symbols_[a.index];
                  const ElfSymbol& y = symbols_[b.index];
                  if (x.size != y.size) return x.size > y.size;
                  return x.order > y.order;
                });
    i = j;
  }
  std::vector<ElfSymbol> sorted;
  sorted.reserve(order.size());
  for (const OrderedAddress& o : order) sorted.push_back(symbols_[o.index]);
  symbols_.swap(sorted);
  size_t kept = 0;
  for (size_t i = 0; i < symbols_.size(); ++i) {
    if (kept > 0 && symbols_[kept - 1].start == symbols_[i].start)
      aliases_.push_back(symbols_[i]);
    else
      symbols_[kept++] = symbols_[i];
  }
  symbols_.resize(kept);
  symbols_.shrink_to_fit();
  aliases_.shrink_to_fit();
}

std::span<const ElfSymbol> SymbolTable::aliases_of(const ElfSymbol* symbol) const {
  auto [first, last] = std::equal_range(aliases_.begin(), aliases_.end(), *symbol,
                                        [](const ElfSymbol& a, const ElfSymbol& b) { return a.start < b.start; });
  return {first, last};
}

const ElfSymbol* SymbolTable::find_sized(uint64_t vaddr) const {
  const ElfSymbol* s = find(vaddr);
  return s != nullptr && s->size > 0 ? s : nullptr;
}

std::vector<ElfSymbol>::const_iterator SymbolTable::upper_of(uint64_t vaddr) const {
  return std::upper_bound(symbols_.begin(), symbols_.end(), vaddr,
                          [](uint64_t a, const ElfSymbol& s) { return a < s.start; });
}

const ElfSymbol* SymbolTable::find_sized_near(uint64_t vaddr, size_t& hint) const {
  size_t upper = 0;
  if (!upper_bound_near(symbols_.data(), symbols_.size(), hint, vaddr, [](const ElfSymbol& s) { return s.start; },
                        upper))
    upper = static_cast<size_t>(upper_of(vaddr) - symbols_.begin());
  hint = upper;
  const ElfSymbol* s = find_before(symbols_.begin() + static_cast<ptrdiff_t>(upper), vaddr);
  return s != nullptr && s->size > 0 ? s : nullptr;
}

const ElfSymbol* SymbolTable::find(uint64_t vaddr) const { return find_before(upper_of(vaddr), vaddr); }

const ElfSymbol* SymbolTable::find_before(std::vector<ElfSymbol>::const_iterator it, uint64_t vaddr) const {
  if (it == symbols_.begin()) return nullptr;
  const ElfSymbol* nearest = &*std::prev(it);
  // Symbols rarely nest; look a few back for a larger one that still covers.
  constexpr int kLookBack = 4;
  for (int i = 0; i < kLookBack && it != symbols_.begin(); ++i) {
    --it;
    if (it->size > 0 && vaddr < it->start + it->size) return &*it;
  }
  return nearest->size == 0 ? nearest : nullptr;
}

}  // namespace stackwatch::symbolizer
