// A per-module index of DWARF address ranges, built once with one pass over
// the DIEs and the line tables, then binary-searched per address. This is what
// makes the symbolizer fast: libdw's dwarf_getscopes walks the DIE tree for
// every address (eu-addr2line manages ~100 addresses/s that way).
//
// Shape: a tree of functions. The top level is every concrete subprogram's
// address ranges, sorted; each function's children are the ranges of the
// inlined subroutines directly inside it (lexical blocks are flattened away),
// sorted. Names are resolved through DW_AT_abstract_origin /
// DW_AT_specification chains (dwarf_attr_integrate), which is where LTO
// binaries put them, across units. Every unit is walked, partial units
// included, so DW_TAG_imported_unit needs no following. The line table of
// every CU is merged into one sorted row vector.
#pragma once

#include <elfutils/libdw.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "symbolizer/address_buckets.h"

namespace stackwatch::symbolizer {

struct SourceLocation {
  uint32_t file = 0;  // index into DwarfIndex::file_name; 0 is "unknown"
  uint32_t line = 0;
  uint32_t column = 0;
};

class DwarfIndex {
 public:
  // The Dwarf handle must outlive the index (names point into its sections).
  static std::unique_ptr<DwarfIndex> build(Dwarf* dwarf);

  // The function nodes containing vaddr, outermost (the subprogram) first,
  // each following one inlined into the previous. False if no function covers it.
  bool functions_at(uint64_t vaddr, std::vector<uint32_t>& chain) const;
  // The line-table row for vaddr. False if no row covers it.
  bool line_at(uint64_t vaddr, SourceLocation& out) const;

  // Raw (possibly mangled) name of a function node; never null ("" if unnamed).
  const char* raw_name(uint32_t node) const { return nodes_[node].name; }
  // Where an inlined node was called from (in its parent function).
  SourceLocation call_site(uint32_t node) const { return nodes_[node].call_site; }
  const std::string& file_name(uint32_t file) const { return files_[file]; }

  size_t function_count() const { return nodes_.size(); }
  size_t line_count() const { return rows_.size(); }

 private:
  struct Node {
    const char* name = "";
    SourceLocation call_site;
    uint32_t first_child = 0;  // into ranges_
    uint32_t end_child = 0;
  };
  struct Range {
    uint64_t low = 0;
    uint64_t high = 0;
    uint32_t node = 0;
    uint32_t parent = 0;  // node index, or kTopLevel
  };
  struct Row {
    uint64_t address = 0;
    SourceLocation location;
    bool end_sequence = false;
  };
  class Builder;

  // The range containing vaddr among [begin, end); the binary search runs
  // over [search_begin, search_end), the look-back may go down to begin.
  static const Range* find_range(const Range* begin, const Range* search_begin, const Range* search_end,
                                 uint64_t vaddr);

  std::vector<Node> nodes_;
  std::vector<Range> ranges_;  // grouped by parent, sorted by low within a group
  uint32_t top_begin_ = 0;     // the top-level group is the tail of ranges_
  AddressBuckets top_buckets_;
  std::vector<Row> rows_;
  AddressBuckets row_buckets_;
  std::vector<std::string> files_;
};

}  // namespace stackwatch::symbolizer
