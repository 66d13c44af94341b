// A per-module index of DWARF address ranges, binary-searched per address.
// This is what makes the symbolizer fast: libdw's dwarf_getscopes walks the
// DIE tree for every address (eu-addr2line manages ~100 addresses/s that way).
//
// Lazy per compile unit: building the index reads only each unit's address
// ranges, from .debug_aranges and the unit's header where that section
// gives them (GCC's units), else from its unit DIE (DW_AT_low_pc/high_pc or
// DW_AT_ranges). Units are listed and walked by UnitReader (die_reader.h)
// where it can read them, else through libdw. A unit's
// functions and line table are read the first time an address falls in it,
// so a profiler that samples a few hot functions of libc pays for the few
// units holding them, not for all of libc's DWARF (nor does libdw cache the
// line tables of the others). Units that state no ranges (partial units,
// odd producers) are read up front, as before.
//
// Shape per unit: a tree of functions. The top level is every concrete
// subprogram's address ranges, sorted; each function's children are the
// ranges of the inlined subroutines directly inside it (lexical blocks are
// flattened away), sorted. Names are resolved through DW_AT_abstract_origin /
// DW_AT_specification chains (as dwarf_attr_integrate), which is where LTO
// binaries put them, across units, on the first lookup that needs a node's
// name: by UnitReader while the chain stays in the unit just read or the
// node's own unit, else through libdw. The unit's line table (decoded by
// LineProgram, else by libdw) is kept as compact sorted rows. Function node
// ids are global to the module (they grow as units are read).
#pragma once

#include <elfutils/libdw.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "symbolizer/address_buckets.h"
#include "symbolizer/die_reader.h"
#include "symbolizer/line_program.h"

namespace stackwatch::symbolizer {

struct SourceLocation {
  uint32_t file = 0;  // index into DwarfIndex::file_name; 0 is "unknown"
  uint32_t line = 0;
  uint32_t column = 0;
};

class DwarfIndex {
 public:
  // An index over the DWARF of elf (which must outlive it: names point into
  // its sections), or nullptr when libdw cannot read it. The index owns its
  // libdw handle and ends and restarts it after reading units worth
  // kLibdwRowBudget line rows: libdw keeps every line table and abbreviation
  // table it ever parsed until dwarf_end (~60 bytes a row, tens of MB for a
  // whole machine's C++ binaries), and the index needs none of them once a
  // unit is read. Section data, where names live, belongs to the Elf. Line
  // tables are decoded by LineProgram where it can (line_program.h), which
  // leaves libdw only abbreviations to cache: such units count little.
  // libdw_row_budget overrides that budget (tests: 0 restarts after every unit).
  // own_die_reader false lists and walks every unit through libdw (tests
  // compare the two).
  static constexpr size_t kLibdwRowBudget = 65536;
  static std::unique_ptr<DwarfIndex> build(Elf* elf, size_t libdw_row_budget = kLibdwRowBudget,
                                           bool own_die_reader = true);
  ~DwarfIndex();
  DwarfIndex(const DwarfIndex&) = delete;
  DwarfIndex& operator=(const DwarfIndex&) = delete;

  // The function nodes containing vaddr, outermost (the subprogram) first,
  // each following one inlined into the previous. False if no function covers
  // it. Reads the unit holding vaddr on first use (hence not const).
  bool functions_at(uint64_t vaddr, std::vector<uint32_t>& chain);
  // The line-table row for vaddr. False if no row covers it.
  bool line_at(uint64_t vaddr, SourceLocation& out);
  // Both at once (one search for the unit): functions_at's result; *line
  // (when not null) is set as line_at would set it.
  bool lookup(uint64_t vaddr, std::vector<uint32_t>& chain, SourceLocation* line);

  // Raw (possibly mangled) name of a function node; never null ("" if unnamed).
  // Read from its DIE on first use (hence not const): most nodes of a unit
  // are never asked for, and naming one follows DW_AT_abstract_origin /
  // DW_AT_specification chains, across units in LTO binaries.
  const char* raw_name(uint32_t node);
  // Where an inlined node was called from (in its parent function).
  SourceLocation call_site(uint32_t node) const { return nodes_[node].call_site; }
  const std::string& file_name(uint32_t file) const { return *files_[file]; }

  // Function nodes and line rows read so far.
  size_t function_count() const { return nodes_.size(); }
  size_t line_count() const;
  size_t unit_count() const { return units_.size(); }
  size_t units_read() const { return units_read_; }
  // Units whose DIEs were walked through libdw rather than UnitReader.
  size_t units_walked_by_libdw() const { return units_walked_by_libdw_; }
  // Units whose ranges came from .debug_aranges (their unit DIEs unread
  // until an address falls in them).
  size_t units_listed_by_aranges() const { return units_listed_by_aranges_; }
  // Function names read through libdw rather than UnitReader.
  size_t names_read_by_libdw() const { return names_read_by_libdw_; }
  size_t libdw_restarts() const { return restarts_; }
  // Heap bytes held by the index itself (not libdw's caches).
  size_t memory_bytes() const;

 private:
  struct Node {
    const char* name = nullptr;  // nullptr until raw_name reads it
    Dwarf_Off die = 0;           // its DIE in .debug_info
    SourceLocation call_site;
    uint32_t first_child = 0;  // into the unit's ranges
    uint32_t end_child = 0;
  };
  struct Range {
    uint64_t low = 0;
    uint64_t high = 0;
    uint32_t node = 0;
    uint32_t parent = 0;  // node index, or kTopLevel
  };
  // 16 bytes instead of 24: a million-row line table is 16 MB, not 24.
  struct Row {
    uint64_t address = 0;
    uint32_t line = 0;
    uint16_t file = 0;    // into Unit::files (unit-local); 0 is "unknown"
    uint16_t column = 0;  // low 15 bits (clamped); top bit: end of sequence
    bool end_sequence() const { return (column & 0x8000) != 0; }
  };
  struct Unit {
    Dwarf_Off die_offset = 0;  // of the unit DIE: Dwarf_Dies die with a restarted handle
    uint64_t unit_offset = UINT64_MAX;  // of its header, when UnitReader listed it
    bool read = false;
    std::vector<Range> ranges;  // grouped by parent, sorted by low within a group
    uint32_t top_begin = 0;     // the top-level group is the tail of ranges
    AddressBuckets top_buckets;
    std::vector<Row> rows;
    AddressBuckets row_buckets;
    std::vector<uint32_t> files;  // unit-local file -> global file id
    // The last lookup's upper bounds among the top-level ranges and the
    // rows: where the next one starts looking (upper_bound_near).
    mutable uint32_t top_hint = 0;
    mutable uint32_t row_hint = 0;
  };
  // One address range of a unit, from its DIE.
  struct UnitSpan {
    uint64_t low = 0;
    uint64_t high = 0;
    uint32_t unit = 0;
  };
  class Builder;

  // The range containing vaddr among [begin, end); the binary search runs
  // over [search_begin, search_end), the look-back may go down to begin.
  static const Range* find_range(const Range* begin, const Range* search_begin, const Range* search_end,
                                 uint64_t vaddr);
  // The same, given the upper bound of vaddr among the ranges from begin.
  static const Range* range_before(const Range* begin, const Range* upper, uint64_t vaddr);
  // Calls visit(unit) on each unit whose ranges hold vaddr (reading it first)
  // until visit returns true; false when none did.
  template <typename Visit>
  bool for_units_at(uint64_t vaddr, Visit visit);
  void read_unit(uint32_t unit);
  // Lists the units through UnitReader; false (nothing listed) when it cannot read one.
  bool list_units_own(std::vector<uint32_t>& unstated);

  void list_units_libdw(std::vector<uint32_t>& unstated);
  // Ends and restarts the libdw handle, dropping its caches (see build).
  void restart_libdw();
  // The name as function_name() in dwarf_index.cpp reads it through libdw,
  // read by UnitReader while the DIEs it needs are in the unit unit_reader_
  // has open (the one just read, in a batch) or the node's own unit, which
  // name_reader_ opens; nullptr when they are not (then libdw).
  const char* own_name(uint64_t die);
  // Opens the unit holding the DIE at die with name_reader_; false if none
  // it can read does. libc's units' ranges interleave, so a batch names some
  // functions after another unit was read: reopening one costs its header
  // and abbreviations, a libdw lookup several times that.
  bool open_unit_holding(uint64_t die);
  // Whether to go on reopening units for names: not once most reopenings
  // ended in libdw all the same (LTO: the chain leaves the unit).
  bool reopen_for_names() const { return names_reopened_ < 64 || names_reopened_in_vain_ * 2 < names_reopened_; }
  bool functions_in(const Unit& unit, uint64_t vaddr, std::vector<uint32_t>& chain) const;
  bool line_in(const Unit& unit, uint64_t vaddr, SourceLocation& out) const;

  DwarfIndex() = default;

  Elf* elf_ = nullptr;
  Dwarf* dwarf_ = nullptr;
  bool can_restart_ = true;        // false when names may live in a supplementary file libdw owns
  size_t rows_since_restart_ = 0;  // line rows libdw has cached since the last restart
  size_t lookups_since_restart_ = 0;
  size_t row_budget_ = kLibdwRowBudget;
  size_t restarts_ = 0;
  std::optional<LineSections> line_sections_;  // set when LineProgram can read the line tables
  std::vector<LineRow> line_scratch_;          // one unit's decoded rows, reused
  // The rest of one unit's working memory, kept for the next unit (a cold
  // module reads thousands: libc's 2,063).
  struct BuildScratch {
    LineProgram program;
    std::vector<int32_t> local_of_file;                         // line-table file -> unit-local file
    std::vector<uint32_t> unit_file_ids;                        // line-table file -> global file id
    std::vector<uint16_t> local_of_global;                      // global file id -> unit-local, 0: none
    std::vector<std::pair<size_t, size_t>> ordered_blocks;      // sequences by address
    std::vector<Row> sorted_rows;                               // before drop_unreachable_rows
  };
  BuildScratch scratch_;
  std::optional<DebugSections> debug_sections_;  // set when UnitReader can read the DIEs
  std::optional<UnitReader> unit_reader_;
  std::optional<UnitReader> name_reader_;  // reopens the units of nodes named late (own_name)
  size_t names_reopened_ = 0;               // names for which name_reader_ opened the node's unit
  size_t names_reopened_in_vain_ = 0;       // ... and that libdw read after all
  UnitWalk walk_scratch_;  // one unit's function DIEs, reused
  size_t units_walked_by_libdw_ = 0;
  size_t units_listed_by_aranges_ = 0;
  size_t names_read_by_libdw_ = 0;
  std::vector<Unit> units_;
  std::vector<uint64_t> unit_starts_;  // units_' unit_offset where UnitReader may read them, sorted
  std::vector<UnitSpan> spans_;  // sorted by low
  size_t span_hint_ = 0;         // the last lookup's upper bound among spans_
  size_t units_read_ = 0;
  std::vector<Node> nodes_;
  // Boxed: file_ids_ keys point into the strings, and indexing per frame
  // stays one vector access.
  std::vector<std::unique_ptr<std::string>> files_;
  std::unordered_map<std::string_view, uint32_t> file_ids_;  // path -> index in files_
};

}  // namespace stackwatch::symbolizer
