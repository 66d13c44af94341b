// DwarfIndex construction (one DIE walk per unit) and lookup (binary search).
#include "symbolizer/dwarf_index.h"

#include <dwarf.h>

#include <algorithm>

namespace stackwatch::symbolizer {
namespace {

constexpr uint32_t kTopLevel = UINT32_MAX;
// Siblings should not overlap, but DWARF from odd producers sometimes does:
// look back a few ranges for one that still covers the address.
constexpr int kLookBack = 4;

const char* function_name(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  for (unsigned at : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name, DW_AT_name}) {
    if (dwarf_attr_integrate(die, at, &attr) != nullptr) {
      if (const char* s = dwarf_formstring(&attr); s != nullptr) return s;
    }
  }
  return "";
}

}  // namespace

class DwarfIndex::Builder {
 public:
  explicit Builder(DwarfIndex& index) : index_(index) {
    index_.files_.emplace_back();  // file 0: unknown
  }

  void add_unit(Dwarf_Die* cudie) {
    unit_files_ = nullptr;
    unit_file_ids_.clear();
    unit_names_.clear();
    // Relative names are relative to the CU's directory; join them as
    // addr2line, eu-addr2line and llvm-symbolizer print them.
    Dwarf_Attribute attr;
    const char* comp_dir = dwarf_formstring(dwarf_attr(cudie, DW_AT_comp_dir, &attr));
    comp_dir_ = comp_dir != nullptr ? comp_dir : "";
    if (dwarf_getsrcfiles(cudie, &unit_files_, &unit_file_count_) != 0) unit_files_ = nullptr;
    add_lines(cudie);
    walk(cudie, kTopLevel);
  }

  void finish() {
    auto& ranges = index_.ranges_;
    std::stable_sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
      if (a.parent != b.parent) return a.parent < b.parent;
      return a.low < b.low;
    });
    size_t i = 0;
    while (i < ranges.size() && ranges[i].parent != kTopLevel) {
      size_t j = i;
      while (j < ranges.size() && ranges[j].parent == ranges[i].parent) ++j;
      index_.nodes_[ranges[i].parent].first_child = static_cast<uint32_t>(i);
      index_.nodes_[ranges[i].parent].end_child = static_cast<uint32_t>(j);
      i = j;
    }
    index_.top_begin_ = static_cast<uint32_t>(i);
    sort_rows();
    ranges.shrink_to_fit();
    index_.rows_.shrink_to_fit();
    const Range* top = ranges.data() + index_.top_begin_;
    index_.top_buckets_.build(ranges.size() - index_.top_begin_, [top](size_t k) { return top[k].low; });
    const Row* rows = index_.rows_.data();
    index_.row_buckets_.build(index_.rows_.size(), [rows](size_t k) { return rows[k].address; });
  }

 private:
  uint32_t intern_file(const char* name) {
    if (name == nullptr || *name == '\0') return 0;
    auto [cached, fresh] = unit_names_.try_emplace(name, 0);
    if (!fresh) return cached->second;
    std::string path = name;
    if (path.front() != '/' && !comp_dir_.empty()) path = comp_dir_ + "/" + path;
    auto [it, inserted] = file_ids_.try_emplace(std::move(path), static_cast<uint32_t>(index_.files_.size()));
    if (inserted) index_.files_.push_back(it->first);
    cached->second = it->second;
    return it->second;
  }

  uint32_t unit_file(Dwarf_Word index) {
    if (unit_files_ == nullptr || index >= unit_file_count_) return 0;
    if (unit_file_ids_.empty()) unit_file_ids_.assign(unit_file_count_, UINT32_MAX);
    uint32_t& id = unit_file_ids_[index];
    if (id == UINT32_MAX) id = intern_file(dwarf_filesrc(unit_files_, index, nullptr, nullptr));
    return id;
  }

  // Each line-table sequence covers one address interval and sequences do not
  // overlap: ordering the sequences by start address sorts all rows without
  // a full sort of a million rows (kept as the fallback for odd tables).
  void sort_rows() {
    auto& rows = index_.rows_;
    auto by_address = [](const Row& a, const Row& b) {
      if (a.address != b.address) return a.address < b.address;
      return a.end_sequence > b.end_sequence;  // a sequence starting where another ends wins
    };
    bool blocks_sorted = true;
    for (const auto& [begin, end] : row_blocks_)
      blocks_sorted = blocks_sorted && std::is_sorted(rows.begin() + begin, rows.begin() + end, by_address);
    if (blocks_sorted) {
      std::sort(row_blocks_.begin(), row_blocks_.end(), [&rows](const auto& a, const auto& b) {
        return rows[a.first].address < rows[b.first].address;
      });
      std::vector<Row> merged;
      merged.reserve(rows.size());
      for (const auto& [begin, end] : row_blocks_) {
        // A sequence at address 0 is code the linker discarded (--gc-sections,
        // COMDAT): no real address is there, and it would overlap the others.
        if (rows[begin].address == 0) continue;
        merged.insert(merged.end(), rows.begin() + begin, rows.begin() + end);
      }
      if (std::is_sorted(merged.begin(), merged.end(), by_address)) {
        rows = std::move(merged);
        return;
      }
    }
    // Some units have overlapping sequences (hand-written assembly in libc).
    std::stable_sort(rows.begin(), rows.end(), by_address);
  }

  void add_lines(Dwarf_Die* cudie) {
    size_t begin = index_.rows_.size();
    add_unit_lines(cudie);
    // libdw sorts each unit's rows by address; split them at sequence ends.
    const auto& rows = index_.rows_;
    for (size_t i = begin; i < rows.size(); ++i) {
      if (rows[i].end_sequence || i + 1 == rows.size()) {
        row_blocks_.emplace_back(begin, i + 1);
        begin = i + 1;
      }
    }
  }

  void add_unit_lines(Dwarf_Die* cudie) {
    Dwarf_Lines* lines = nullptr;
    size_t count = 0;
    if (dwarf_getsrclines(cudie, &lines, &count) != 0) return;
    const char* last_name = nullptr;
    uint32_t last_id = 0;
    for (size_t i = 0; i < count; ++i) {
      Dwarf_Line* line = dwarf_onesrcline(lines, i);
      Row row;
      Dwarf_Addr addr = 0;
      int lineno = 0, column = 0;
      bool end = false;
      if (line == nullptr || dwarf_lineaddr(line, &addr) != 0) continue;
      dwarf_lineno(line, &lineno);
      dwarf_linecol(line, &column);
      dwarf_lineendsequence(line, &end);
      const char* name = dwarf_linesrc(line, nullptr, nullptr);
      if (name != last_name) {
        last_name = name;
        last_id = intern_file(name);
      }
      row.address = addr;
      row.location = {last_id, static_cast<uint32_t>(std::max(lineno, 0)), static_cast<uint32_t>(std::max(column, 0))};
      row.end_sequence = end;
      index_.rows_.push_back(row);
    }
  }

  void walk(Dwarf_Die* parent_die, uint32_t parent) {
    Dwarf_Die child;
    if (dwarf_child(parent_die, &child) != 0) return;
    do {
      int tag = dwarf_tag(&child);
      switch (tag) {
        case DW_TAG_subprogram:
        case DW_TAG_inlined_subroutine:
        case DW_TAG_entry_point:
          add_function(&child, tag == DW_TAG_inlined_subroutine ? parent : kTopLevel,
                       tag == DW_TAG_inlined_subroutine);
          break;
        case DW_TAG_lexical_block:
        case DW_TAG_try_block:
        case DW_TAG_catch_block:
        case DW_TAG_namespace:
        case DW_TAG_module:
          // Code-bearing DIEs nest in these. Not in classes: GCC and clang
          // put a method's concrete instance at namespace level, pointing to
          // its declaration in the class with DW_AT_specification, so type
          // DIEs (most of a C++ unit) are skipped whole.
          walk(&child, parent);
          break;
        default:
          break;
      }
    } while (dwarf_siblingof(&child, &child) == 0);
  }

  void add_function(Dwarf_Die* die, uint32_t parent, bool inlined) {
    if (inlined && parent == kTopLevel) return;  // inlined into nothing we know: malformed
    uint32_t node = static_cast<uint32_t>(index_.nodes_.size());
    bool any = false;
    Dwarf_Addr base = 0, start = 0, end = 0;
    ptrdiff_t offset = 0;
    while ((offset = dwarf_ranges(die, offset, &base, &start, &end)) > 0) {
      // low_pc 0 marks a function the linker discarded (--gc-sections, COMDAT).
      if (end <= start || start == 0) continue;
      index_.ranges_.push_back({start, end, node, parent});
      any = true;
    }
    if (!any) return;  // abstract instance or declaration: no code of its own
    Node n;
    n.name = function_name(die);
    if (inlined) {
      Dwarf_Attribute attr;
      Dwarf_Word value = 0;
      if (dwarf_attr(die, DW_AT_call_file, &attr) != nullptr && dwarf_formudata(&attr, &value) == 0)
        n.call_site.file = unit_file(value);
      if (dwarf_attr(die, DW_AT_call_line, &attr) != nullptr && dwarf_formudata(&attr, &value) == 0)
        n.call_site.line = static_cast<uint32_t>(value);
      if (dwarf_attr(die, DW_AT_call_column, &attr) != nullptr && dwarf_formudata(&attr, &value) == 0)
        n.call_site.column = static_cast<uint32_t>(value);
    }
    index_.nodes_.push_back(n);
    walk(die, node);
  }

  DwarfIndex& index_;
  std::vector<std::pair<size_t, size_t>> row_blocks_;  // [begin, end) of each sequence's rows
  std::unordered_map<std::string, uint32_t> file_ids_;
  std::unordered_map<const char*, uint32_t> unit_names_;  // this unit's names as libdw returned them
  std::string comp_dir_;
  Dwarf_Files* unit_files_ = nullptr;
  size_t unit_file_count_ = 0;
  std::vector<uint32_t> unit_file_ids_;
};

std::unique_ptr<DwarfIndex> DwarfIndex::build(Dwarf* dwarf) {
  auto index = std::make_unique<DwarfIndex>();
  Builder builder(*index);
  Dwarf_CU* cu = nullptr;
  Dwarf_Half version = 0;
  uint8_t unit_type = 0;
  Dwarf_Die cudie, subdie;
  while (dwarf_get_units(dwarf, cu, &cu, &version, &unit_type, &cudie, &subdie) == 0) {
    if (unit_type == DW_UT_type || unit_type == DW_UT_split_type) continue;
    int tag = dwarf_tag(&cudie);
    if (tag != DW_TAG_compile_unit && tag != DW_TAG_partial_unit) continue;
    builder.add_unit(&cudie);
  }
  builder.finish();
  return index;
}

const DwarfIndex::Range* DwarfIndex::find_range(const Range* begin, const Range* search_begin,
                                                const Range* search_end, uint64_t vaddr) {
  const Range* it =
      std::upper_bound(search_begin, search_end, vaddr, [](uint64_t a, const Range& r) { return a < r.low; });
  for (int i = 0; i < kLookBack && it != begin; ++i) {
    --it;
    if (vaddr < it->high) return it;
  }
  return nullptr;
}

bool DwarfIndex::functions_at(uint64_t vaddr, std::vector<uint32_t>& chain) const {
  chain.clear();
  const Range* top = ranges_.data() + top_begin_;
  auto [lo, hi] = top_buckets_.window(vaddr);
  const Range* r = find_range(top, top + lo, top + hi, vaddr);
  while (r != nullptr) {
    chain.push_back(r->node);
    const Node& n = nodes_[r->node];
    if (n.first_child == n.end_child) break;
    r = find_range(ranges_.data() + n.first_child, ranges_.data() + n.first_child, ranges_.data() + n.end_child, vaddr);
  }
  return !chain.empty();
}

bool DwarfIndex::line_at(uint64_t vaddr, SourceLocation& out) const {
  auto [lo, hi] = row_buckets_.window(vaddr);
  auto it = std::upper_bound(rows_.begin() + lo, rows_.begin() + hi, vaddr,
                             [](uint64_t a, const Row& r) { return a < r.address; });
  if (it == rows_.begin()) return false;
  --it;
  if (it->end_sequence) return false;
  out = it->location;
  return true;
}

}  // namespace stackwatch::symbolizer
