// A reader of one compile unit's DIEs for the DWARF index, in place of
// libdw's per-DIE calls (dwarf_child, dwarf_siblingof, dwarf_attr,
// dwarf_ranges). Why: a cold module has every unit walked, and through libdw
// each DIE costs an abbreviation lookup under a lock plus one re-decoding of
// its attributes per attribute asked for; that was a third of libc's cold
// batch. This reader decodes each DIE once from its unit's abbreviations,
// skips an unwanted DIE with one add when its abbreviation has a fixed size,
// and jumps over type subtrees with DW_AT_sibling.
//
// It yields what the index's libdw walk yields: the same function DIEs
// (subprograms, entry points, inlined subroutines, under lexical blocks and
// namespaces) in the same pre-order, each with its ranges as dwarf_ranges
// gives them (high_pc as address or offset, .debug_ranges or
// .debug_rnglists, indexed addresses), code the linker discarded dropped,
// and its call site. Whatever it does not read (split or supplementary
// DWARF, a form it does not know, an index without its base attribute, a
// damaged unit, big-endian files) makes open() or walk() return false, and
// the caller reads that unit through libdw.
#pragma once

#include <libelf.h>

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace stackwatch::symbolizer {

// The DWARF sections the reader may look at (empty when absent).
struct DebugSections {
  std::span<const uint8_t> info, abbrev, str, line_str, str_offsets, addr, ranges, rnglists, aranges;
};

// The sections of elf when the reader can read them as they are:
// little-endian, .debug_info and .debug_abbrev present, nothing compressed
// (call after dwarf_begin_elf, which inflates SHF_COMPRESSED sections in
// place; GNU .zdebug_ ones are left to libdw).
std::optional<DebugSections> find_debug_sections(Elf* elf);

struct AddressRange {
  uint64_t low = 0;
  uint64_t high = 0;
};

// One address range .debug_aranges gives a unit.
struct UnitArange {
  uint64_t unit = 0;  // offset of the unit's header in .debug_info
  uint64_t low = 0;
  uint64_t high = 0;
  bool operator==(const UnitArange&) const = default;
};

// The ranges of a .debug_aranges section (version 2) that the units' DIEs
// would give too (dwarf_ranges' rules: no empty ranges, none at address 0,
// which is code the linker discarded), sorted by unit, each unit's in the
// section's order. Empty when the section is absent or anything in it is
// unexpected (a unit offset past info_size, another version, segments):
// then every unit's DIE is read instead.
std::vector<UnitArange> read_aranges(std::span<const uint8_t> section, uint64_t info_size);

// A function DIE that has code: what DwarfIndex makes a node of.
struct FunctionDie {
  static constexpr uint32_t kTopLevel = UINT32_MAX;
  uint64_t offset = 0;            // of the DIE in .debug_info
  uint32_t parent = kTopLevel;    // index of the enclosing function in UnitWalk::functions
  uint32_t first_range = 0;       // [first_range, end_range) in UnitWalk::ranges
  uint32_t end_range = 0;
  bool inlined = false;
  bool has_call_file = false;
  uint64_t call_file = 0;
  uint32_t call_line = 0;
  uint32_t call_column = 0;
};

struct UnitWalk {
  std::vector<FunctionDie> functions;  // pre-order: a parent before its children
  std::vector<AddressRange> ranges;
  void clear() {
    functions.clear();
    ranges.clear();
  }
};

class UnitReader {
 public:
  explicit UnitReader(const DebugSections& sections) : s_(sections) {}

  // Reads the header of the unit at offset in .debug_info, its abbreviations
  // and its unit DIE. False when this reader cannot read the unit (then
  // nothing else may be called until the next successful open).
  // unit_die_only: decode only the unit DIE's abbreviation, skimming past the
  // others (listing units: a unit's table is mostly for the DIEs inside it,
  // GCC's ordered by use, so the unit DIE's comes last); walk() then fails.
  bool open(uint64_t offset, bool unit_die_only = false);
  // Reads only the header of the unit at offset: version(), unit_type() (a
  // DWARF 2-4 unit says compile here, whatever its DIE's tag),
  // address_size(), die_offset() and next_unit_offset() are then valid and
  // nothing else is (listing units from .debug_aranges, which needs no DIE).
  bool open_header(uint64_t offset);
  // Where the next unit's header starts (valid after open, even a failed
  // one whose header length could be read: 0 otherwise).
  uint64_t next_unit_offset() const { return next_; }

  unsigned version() const { return version_; }
  unsigned unit_type() const { return unit_type_; }  // DW_UT_* (DWARF 2-4: compile, or partial by tag)
  unsigned address_size() const { return address_size_; }
  unsigned tag() const { return tag_; }                // of the unit DIE
  uint64_t die_offset() const { return die_offset_; }  // of the unit DIE
  const char* comp_dir() const { return comp_dir_; }   // nullptr when absent
  // DW_AT_stmt_list, when present as an offset.
  std::optional<uint64_t> stmt_list() const { return stmt_list_; }
  // The unit DIE's own ranges (discarded code dropped), appended to out.
  // False when they cannot be read.
  bool unit_ranges(std::vector<AddressRange>& out);

  // The unit's function DIEs, into out (cleared first). False when the unit
  // cannot be read to its end by this reader.
  bool walk(UnitWalk& out);

  // What one DIE says toward its function's name: the names it carries and
  // the DIE it defers to (DW_AT_abstract_origin, else DW_AT_specification),
  // one step of dwarf_attr_integrate.
  struct NameStep {
    const char* linkage_name = nullptr;  // DW_AT_linkage_name
    const char* mips_linkage_name = nullptr;
    const char* name = nullptr;
    bool has_next = false;
    uint64_t next = 0;  // offset in .debug_info of the DIE deferred to
  };
  // True when the DIE at offset lies in the open unit and open() read its
  // whole abbreviation table.
  bool holds(uint64_t offset) const { return walkable_ && offset >= die_offset_ && s_.info.data() + offset < end_; }
  // Reads the DIE at offset (holds(offset) must be true). False when a name
  // or reference uses a form this reader does not resolve.
  bool name_step(uint64_t offset, NameStep& out) const;

 private:
  struct AttrSpec {
    uint32_t name = 0;
    uint32_t form = 0;
    int64_t implicit = 0;  // DW_FORM_implicit_const's value
  };
  struct Abbrev {
    uint32_t tag = 0;  // 0: no abbreviation has this code
    bool children = false;
    uint32_t first_spec = 0;
    uint32_t end_spec = 0;
    int32_t fixed_size = -1;  // bytes of its attributes when every form has a fixed size
    bool has_sibling = false;  // has DW_AT_sibling
    // Where DW_AT_sibling's value lies, in bytes past the abbreviation code,
    // when every attribute before it has a fixed size and it is a ref1..8
    // (GCC puts it first): a DIE is then skipped without decoding the rest.
    int32_t sibling_at = -1;
    uint8_t sibling_size = 0;
    // Has DW_AT_low_pc, DW_AT_high_pc or DW_AT_ranges: a function DIE
    // without them (a declaration, an abstract instance) has no code, nor do
    // its children, and is skipped whole.
    bool has_pc = false;
  };
  struct Value {
    uint32_t form = 0;
    uint64_t u = 0;
    const char* string = nullptr;  // DW_FORM_string
  };
  // What a range-bearing DIE says about its addresses.
  struct PcAttributes {
    bool has_low = false, has_high = false, has_ranges = false;
    Value low, high, ranges;
    // Takes attribute `name` if it is one of the three; false otherwise.
    bool take(uint64_t name, const Value& v);
  };

  // only_code: decode only that abbreviation (0: the whole table).
  bool read_abbrevs(uint64_t offset, uint64_t only_code);
  const Abbrev* abbrev(uint64_t code) const {
    return code < abbrevs_.size() && abbrevs_[code].tag != 0 ? &abbrevs_[code] : nullptr;
  }
  int form_size(uint32_t form) const {
    return form < kFormTable ? form_sizes_[form] : form_size_slow(form);
  }
  int form_size_slow(uint32_t form) const;
  void fill_form_sizes();
  bool read_value(uint32_t form, int64_t implicit, const uint8_t*& p, Value& v) const;
  bool skip_attributes(const Abbrev& a, const uint8_t*& p, uint64_t* sibling) const;
  // Moves p from just past a DIE's code to past its attributes, or past its
  // children too when DW_AT_sibling says where they end (die: where the
  // sibling may not point at or before). children_left: the children still
  // follow p.
  bool skip_own(const Abbrev& a, const uint8_t* die, const uint8_t*& p, bool& children_left) const;
  bool skip_children(const uint8_t*& p) const;
  bool skip_die(const Abbrev& a, const uint8_t*& p) const;
  bool walk_siblings(const uint8_t*& p, uint32_t parent, UnitWalk& out, int depth);
  bool read_function(uint64_t die, const Abbrev& a, const uint8_t*& p, uint32_t parent, UnitWalk& out,
                     int depth);
  bool address(const Value& v, uint64_t& out) const;
  bool indexed_address(uint64_t index, uint64_t& out) const;
  bool string(const Value& v, const char*& out) const;
  // The ranges of a DIE as dwarf_ranges gives them, discarded code dropped.
  bool ranges_of(const PcAttributes& pc, std::vector<AddressRange>& out) const;
  bool range_list(uint64_t offset, std::vector<AddressRange>& out) const;
  bool jump_to_sibling(uint64_t sibling, const uint8_t* die, const uint8_t*& p) const;

  DebugSections s_;
  uint64_t unit_ = 0;  // offset of the unit header
  uint64_t next_ = 0;
  const uint8_t* end_ = nullptr;  // of the unit in .debug_info
  const uint8_t* first_child_ = nullptr;
  bool unit_has_children_ = false;
  bool walkable_ = false;  // opened with every abbreviation
  unsigned version_ = 0, unit_type_ = 0, address_size_ = 0, offset_size_ = 0, tag_ = 0;
  uint64_t die_offset_ = 0;
  uint64_t header_abbrev_offset_ = 0;
  const char* comp_dir_ = nullptr;
  std::optional<uint64_t> stmt_list_;
  PcAttributes unit_pc_;
  uint64_t base_address_ = 0;  // the unit's, as libdw's __libdw_cu_base_address
  std::optional<uint64_t> addr_base_, str_offsets_base_, rnglists_base_;
  // Abbreviations by code, kept while consecutive units share a table.
  uint64_t abbrev_offset_ = UINT64_MAX;
  unsigned abbrev_sizes_ = 0;  // address and offset size the fixed sizes were computed for
  std::vector<Abbrev> abbrevs_;
  std::vector<AttrSpec> specs_;
  // form_size of the standard forms for this unit's sizes.
  static constexpr uint32_t kFormTable = 0x30;
  int8_t form_sizes_[kFormTable] = {};
  unsigned form_sizes_for_ = 0;  // address size | offset size << 8 | version << 16 they were filled for
};

}  // namespace stackwatch::symbolizer
