// DwarfIndex construction (unit ranges up front, one DIE walk per unit on
// first use) and lookup (binary search).
#include "symbolizer/dwarf_index.h"

#include <dwarf.h>
#include <gelf.h>
#include <malloc.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>

namespace stackwatch::symbolizer {
namespace {

constexpr uint32_t kTopLevel = UINT32_MAX;
// Siblings should not overlap, but DWARF from odd producers sometimes does:
// look back a few ranges for one that still covers the address.
constexpr int kLookBack = 4;
// Units' spans overlap only when a unit without stated ranges was given the
// spans of its contents; look back further among them.
constexpr int kUnitLookBack = 8;
constexpr uint16_t kEndSequence = 0x8000;
constexpr uint32_t kMaxColumn = 0x7fff;
constexpr uint32_t kMaxUnitFiles = 0xffff;
// Below this many elements a binary search is as fast as a bucket lookup:
// small units get no buckets (saves their memory).
constexpr size_t kBucketThreshold = 64;
// A unit's ranges are sorted by insertion up to this many.
constexpr size_t kInsertionSortRanges = 32;
// A unit whose line table LineProgram decoded leaves only its abbreviations
// and unit records in libdw, ~1.3 KB: counted as this many ~60-byte rows
// toward the restart budget.
constexpr size_t kOwnLinesUnitCost = 24;
// A restart gives libdw's freed memory back to the system only when at least
// this many lookups came since the previous one, i.e. units are read
// sparsely (a profiler's steady state); a bulk read restarts every few
// thousand lookups (every 65,536 line rows read).
constexpr size_t kTrimAfterLookups = 65536;

// True if elf refers to a supplementary DWARF file (dwz's .gnu_debugaltlink,
// DWARF 5 .debug_sup): libdw opens it and owns its strings, so a restart
// would leave names dangling.
bool has_supplementary_file(Elf* elf) {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return true;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    const char* name = elf_strptr(elf, shstrndx, shdr.sh_name);
    if (name != nullptr && (std::strcmp(name, ".gnu_debugaltlink") == 0 || std::strcmp(name, ".debug_sup") == 0))
      return true;
  }
  return false;
}

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

// Reads one unit's functions and line table into its Unit.
class DwarfIndex::Builder {
 public:
  Builder(DwarfIndex& index, Unit& unit) : index_(index), unit_(unit) {
    unit_.files.reserve(16);  // one allocation for most units' files
    unit_.files.push_back(0);  // local file 0: unknown
  }

  // The whole unit through libdw.
  void read(Dwarf_Die* cudie) {
    // Relative names are relative to the CU's directory; join them as
    // addr2line, eu-addr2line and llvm-symbolizer print them.
    Dwarf_Attribute attr;
    const char* comp_dir = dwarf_formstring(dwarf_attr(cudie, DW_AT_comp_dir, &attr));
    comp_dir_ = comp_dir != nullptr ? comp_dir : "";
    libdw_walked_ = true;
    if (!read_own_lines(cudie, comp_dir)) libdw_lines(cudie);
    walk(cudie, kTopLevel);
    finish();
  }

  // The unit as UnitReader walked it; libdw only if LineProgram cannot
  // read its line table.
  void read(const UnitReader& reader, const UnitWalk& functions) {
    const char* comp_dir = reader.comp_dir();
    comp_dir_ = comp_dir != nullptr ? comp_dir : "";
    if (!read_own_lines(reader.unit_type(), reader.address_size(), reader.stmt_list(), comp_dir)) {
      Dwarf_Die cudie;
      libdw_walked_ = true;  // its abbreviations are in libdw now
      if (index_.dwarf_ != nullptr && dwarf_offdie(index_.dwarf_, reader.die_offset(), &cudie) != nullptr)
        libdw_lines(&cudie);
    }
    add_walk(functions);
    finish();
  }

  // What reading the unit left in libdw's caches, in line rows: its line
  // table when libdw decoded it; else, if libdw walked its DIEs, about what
  // its abbreviation table and unit records cost (libc's 1,500 units hold
  // ~2 MB of them); nothing when UnitReader and LineProgram read it all.
  size_t libdw_rows_cached() const {
    if (!own_lines_) return rows_read_;
    return libdw_walked_ ? kOwnLinesUnitCost : 0;
  }

 private:
  void finish() {
    // The next unit numbers its files afresh.
    for (uint32_t global : unit_.files)
      if (global < index_.scratch_.local_of_global.size()) index_.scratch_.local_of_global[global] = 0;
    auto& ranges = unit_.ranges;
    auto by_parent_then_low = [](const Range& a, const Range& b) {
      if (a.parent != b.parent) return a.parent < b.parent;
      return a.low < b.low;
    };
    // Most units have a handful of ranges (libc's: 5 on average): an
    // insertion sort, stable too, without stable_sort's buffer allocation.
    if (ranges.size() <= kInsertionSortRanges) {
      for (size_t k = 1; k < ranges.size(); ++k) {
        Range r = ranges[k];
        size_t m = k;
        for (; m > 0 && by_parent_then_low(r, ranges[m - 1]); --m) ranges[m] = ranges[m - 1];
        ranges[m] = r;
      }
    } else {
      std::stable_sort(ranges.begin(), ranges.end(), by_parent_then_low);
    }
    size_t i = 0;
    while (i < ranges.size() && ranges[i].parent != kTopLevel) {
      size_t j = i;
      while (j < ranges.size() && ranges[j].parent == ranges[i].parent) ++j;
      index_.nodes_[ranges[i].parent].first_child = static_cast<uint32_t>(i);
      index_.nodes_[ranges[i].parent].end_child = static_cast<uint32_t>(j);
      i = j;
    }
    unit_.top_begin = static_cast<uint32_t>(i);
    sort_rows();
    std::vector<Row>& rows = rows_sorted_ ? index_.scratch_.sorted_rows : unit_.rows;
    // As libdw does after sorting (a row some producers leave at the
    // address of the final end of sequence must not run on past it); the
    // rows then equal dwarf_getsrclines' whichever decoder read them.
    if (!rows.empty()) rows.back().column |= kEndSequence;
    drop_unreachable_rows(rows);
    if (rows_sorted_) unit_.rows.assign(rows.begin(), rows.end());
    ranges.shrink_to_fit();
    unit_.rows.shrink_to_fit();
    unit_.files.shrink_to_fit();
    size_t top_count = ranges.size() - unit_.top_begin;
    if (top_count >= kBucketThreshold) {
      const Range* top = ranges.data() + unit_.top_begin;
      unit_.top_buckets.build(top_count, [top](size_t k) { return top[k].low; });
    }
    if (unit_.rows.size() >= kBucketThreshold) {
      const Row* rows = unit_.rows.data();
      unit_.row_buckets.build(unit_.rows.size(), [rows](size_t k) { return rows[k].address; });
    }
  }

  // Line, file and column (neither an end: the same column bit), compared
  // as the one 8-byte word they are in memory (field by field, GCC merged
  // them through a stack slot, and the reload missed store forwarding).
  static bool same_place(const Row& a, const Row& b) {
    static_assert(offsetof(Row, file) == offsetof(Row, line) + 4 && offsetof(Row, column) == offsetof(Row, line) + 6 &&
                  sizeof(Row) == offsetof(Row, line) + 8);
    uint64_t x = 0, y = 0;
    std::memcpy(&x, &a.line, sizeof x);
    std::memcpy(&y, &b.line, sizeof y);
    return x == y;
  }

  // Drops the rows no lookup can return or tell apart from the row before
  // them: a row followed by one at the same address (line_in takes the last
  // row at or below an address), and a row saying what the row before it
  // says. Half of libc's rows (GCC emits a row per view and per is_stmt
  // change); line_in answers as before for every address. End-of-sequence
  // rows stay, and so does the last row (an end since finish marked it).
  // Without branches: the drops follow no pattern a branch predictor
  // learns, so each row is written past the kept ones and the count
  // advances only for those kept.
  static void drop_unreachable_rows(std::vector<Row>& rows) {
    const size_t n = rows.size();
    if (n == 0) return;
    Row* r = rows.data();
    size_t kept = 0;
    Row last_kept;
    bool have_kept = false;  // and the last kept row is no end of sequence
    for (size_t i = 0; i + 1 < n; ++i) {
      const Row row = r[i];
      const Row& next = r[i + 1];
      bool end = row.end_sequence();
      bool unreachable = !next.end_sequence() && next.address == row.address;
      bool repeated = have_kept && same_place(last_kept, row);
      bool drop = !end && (unreachable || repeated);
      r[kept] = row;
      kept += !drop;
      last_kept = drop ? last_kept : row;
      have_kept = drop ? have_kept : !end;
    }
    r[kept++] = r[n - 1];  // the last row stays (an end since finish marked it)
    rows.resize(kept);
  }

  // A global file id for a name as libdw returned it.
  uint32_t intern_file(const char* name) {
    if (name == nullptr || *name == '\0') return 0;
    auto [cached, fresh] = unit_names_.try_emplace(name, 0);
    if (!fresh) return cached->second;
    cached->second = intern_path(name);
    return cached->second;
  }

  // A global file id for a path from the line table (libdw's or ours).
  uint32_t intern_path(std::string path) {
    if (path.empty()) return 0;
    if (path.front() != '/' && !comp_dir_.empty()) path = std::string(comp_dir_) + "/" + path;
    auto it = index_.file_ids_.find(path);
    if (it == index_.file_ids_.end()) {
      index_.files_.push_back(std::make_unique<std::string>(std::move(path)));
      it = index_.file_ids_.emplace(*index_.files_.back(), static_cast<uint32_t>(index_.files_.size() - 1)).first;
    }
    return it->second;
  }

  // The unit's line table through LineProgram (see line_program.h for why
  // not libdw). False when the unit has none we can read: then libdw's.
  bool read_own_lines(Dwarf_Die* cudie, const char* comp_dir) {
    uint8_t unit_type = 0, address_size = 0;
    if (dwarf_cu_info(cudie->cu, nullptr, &unit_type, nullptr, nullptr, nullptr, &address_size, nullptr) != 0)
      return false;
    Dwarf_Attribute attr;
    Dwarf_Word stmt_list = 0;
    if (dwarf_attr(cudie, DW_AT_stmt_list, &attr) == nullptr)
      return read_own_lines(unit_type, address_size, std::nullopt, comp_dir);
    if (dwarf_formudata(&attr, &stmt_list) != 0) return false;
    return read_own_lines(unit_type, address_size, stmt_list, comp_dir);
  }

  // stmt_list: the unit's DW_AT_stmt_list, none when it has no line table.
  bool read_own_lines(unsigned unit_type, unsigned address_size, std::optional<uint64_t> stmt_list,
                      const char* comp_dir) {
    if (!index_.line_sections_ || (unit_type != DW_UT_compile && unit_type != DW_UT_partial))
      return false;  // split DWARF keeps its line table elsewhere
    if (!stmt_list) {
      own_lines_ = true;
      return true;  // no line table at all
    }
    std::vector<LineRow>& decoded = index_.line_scratch_;
    decoded.clear();
    LineProgram& program = index_.scratch_.program;
    if (!program.decode(*index_.line_sections_, *stmt_list, address_size, comp_dir, decoded)) return false;
    own_lines_ = true;  // unit_file now reads the program's table
    rows_read_ = decoded.size();
    auto by_address = [](const LineRow& a, const LineRow& b) {
      if (a.address != b.address) return a.address < b.address;
      return a.end_sequence > b.end_sequence;
    };
    // The sequences, and whether each one ascends, as the decoder found
    // them. A sequence ending at the address of its last rows (GCC does so
    // in 347 of libc's units) ascends but for its end, which sorting puts
    // first among those rows.
    auto& blocks = row_blocks_;
    blocks.assign(program.sequences().begin(), program.sequences().end());
    const bool blocks_sorted = program.sequences_ascend();
    const bool end_ties = program.end_ties();
    // Unit-local files, numbered in the order rows are written.
    std::vector<int32_t>& local = index_.scratch_.local_of_file;  // file index -> unit-local file
    local.assign(program.file_count(), -1);
    auto local_of = [&](uint32_t file) -> uint16_t {
      if (file >= local.size()) return 0;
      if (local[file] < 0) local[file] = local_file(unit_file(file));
      return static_cast<uint16_t>(local[file]);
    };
    auto to_row = [&local_of](const LineRow& r) {
      Row row;
      row.address = r.address;
      row.line = static_cast<uint32_t>(std::max(r.line, 0));
      row.file = local_of(r.file);
      row.column = static_cast<uint16_t>(std::min(r.column, kMaxColumn));
      if (r.end_sequence) row.column |= kEndSequence;
      return row;
    };
    // Then the rows straight in the order sort_rows would give them, when
    // it is the sequences' order (the usual case): one array written once,
    // not written in program order and copied again. Each sequence ascends,
    // so the whole does if each one starts where the previous one may end.
    if (blocks_sorted) {
      std::vector<Row>& sorted = index_.scratch_.sorted_rows;
      sorted.clear();
      auto& ordered = index_.scratch_.ordered_blocks;
      ordered.assign(blocks.begin(), blocks.end());
      std::sort(ordered.begin(), ordered.end(), [&decoded](const auto& a, const auto& b) {
        return decoded[a.first].address < decoded[b.first].address;
      });
      const LineRow* last = nullptr;
      bool ascending = true;
      for (const auto& [b, e] : ordered) {
        // Discarded code (see sort_rows). With end ties the rows must come
        // out as the stable sort of them all in program order (sort_rows'
        // fallback), which keeps such sequences: that sort then; and the
        // sequences strictly apart, so that no rows of two of them tie.
        if (decoded[b].address == 0) {
          if (!end_ties) continue;
          ascending = false;
          break;
        }
        if (last != nullptr && (end_ties ? decoded[b].address <= last->address : by_address(decoded[b], *last))) {
          ascending = false;
          break;
        }
        last = &decoded[e - 1];
      }
      if (ascending) {
        for (const auto& [b, e] : ordered) {
          if (decoded[b].address == 0) continue;
          // A sequence whose end ties with the rows before it: the end
          // first among them, as a stable sort puts it.
          size_t tied = e;
          if (end_ties && e - b >= 2 && decoded[e - 1].end_sequence && decoded[e - 2].address == decoded[e - 1].address) {
            tied = e - 1;
            while (tied > b && decoded[tied - 1].address == decoded[e - 1].address) --tied;
            for (size_t i = b; i < tied; ++i) sorted.push_back(to_row(decoded[i]));
            sorted.push_back(to_row(decoded[e - 1]));
            for (size_t i = tied; i + 1 < e; ++i) sorted.push_back(to_row(decoded[i]));
            continue;
          }
          for (size_t i = b; i < e; ++i) sorted.push_back(to_row(decoded[i]));
        }
        rows_sorted_ = true;
        return true;
      }
    }
    unit_.rows.reserve(decoded.size());
    for (const LineRow& r : decoded) unit_.rows.push_back(to_row(r));  // sort_rows sorts them
    return true;
  }

  // A unit-local file number for a row (rows keep 16 bits).
  uint16_t local_file(uint32_t global) {
    if (global == 0) return 0;
    std::vector<uint16_t>& local_of_global = index_.scratch_.local_of_global;
    if (global >= local_of_global.size()) local_of_global.resize(index_.files_.size(), 0);
    uint16_t& local = local_of_global[global];
    if (local == 0) {
      if (unit_.files.size() > kMaxUnitFiles) return 0;
      local = static_cast<uint16_t>(unit_.files.size());
      unit_.files.push_back(global);
    }
    return local;
  }

  uint32_t unit_file(Dwarf_Word index) {
    const LineProgram& program = index_.scratch_.program;
    size_t count = own_lines_ ? program.file_count() : (unit_files_ != nullptr ? unit_file_count_ : 0);
    if (index >= count) return 0;
    std::vector<uint32_t>& ids = index_.scratch_.unit_file_ids;
    if (!unit_file_ids_ready_) {
      ids.assign(count, UINT32_MAX);
      unit_file_ids_ready_ = true;
    }
    uint32_t& id = ids[index];
    if (id == UINT32_MAX)
      id = own_lines_ ? intern_path(program.file_path(index))
                      : intern_file(dwarf_filesrc(unit_files_, index, nullptr, nullptr));
    return id;
  }

  // Each line-table sequence covers one address interval and sequences do not
  // overlap: ordering the sequences by start address sorts all rows without
  // a full sort (kept as the fallback for odd tables).
  // A sequence starting where another ends comes after its end.
  static bool row_order(const Row& a, const Row& b) {
    if (a.address != b.address) return a.address < b.address;
    return a.end_sequence() > b.end_sequence();
  }

  void sort_rows() {
    if (rows_sorted_) return;  // read_own_lines wrote them in order
    auto& rows = unit_.rows;
    auto by_address = row_order;
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

  void libdw_lines(Dwarf_Die* cudie) {
    own_lines_ = false;
    if (dwarf_getsrcfiles(cudie, &unit_files_, &unit_file_count_) != 0) unit_files_ = nullptr;
    add_lines(cudie);
  }

  // Nodes and ranges for UnitReader's function DIEs, as walk() would add
  // them: in the same order, so node ids and file ids come out the same.
  void add_walk(const UnitWalk& functions) {
    const uint32_t base = static_cast<uint32_t>(index_.nodes_.size());
    unit_.ranges.reserve(functions.ranges.size());  // exactly: no growth, nothing for finish to shrink
    for (size_t i = 0; i < functions.functions.size(); ++i) {
      const FunctionDie& f = functions.functions[i];
      uint32_t node = base + static_cast<uint32_t>(i);
      uint32_t parent = f.parent == FunctionDie::kTopLevel ? kTopLevel : base + f.parent;
      for (uint32_t r = f.first_range; r < f.end_range; ++r)
        unit_.ranges.push_back({functions.ranges[r].low, functions.ranges[r].high, node, parent});
      Node n;
      n.die = f.offset;
      if (f.inlined) {
        if (f.has_call_file) n.call_site.file = unit_file(f.call_file);
        n.call_site.line = f.call_line;
        n.call_site.column = f.call_column;
      }
      index_.nodes_.push_back(n);
    }
  }

  void add_lines(Dwarf_Die* cudie) {
    size_t begin = 0;
    add_unit_lines(cudie);
    // libdw sorts each unit's rows by address; split them at sequence ends.
    const auto& rows = unit_.rows;
    for (size_t i = begin; i < rows.size(); ++i) {
      if (rows[i].end_sequence() || i + 1 == rows.size()) {
        row_blocks_.emplace_back(begin, i + 1);
        begin = i + 1;
      }
    }
  }

  void add_unit_lines(Dwarf_Die* cudie) {
    Dwarf_Lines* lines = nullptr;
    size_t count = 0;
    if (dwarf_getsrclines(cudie, &lines, &count) != 0) return;
    rows_read_ = count;
    unit_.rows.reserve(count);
    const char* last_name = nullptr;
    uint16_t last_id = 0;
    for (size_t i = 0; i < count; ++i) {
      Dwarf_Line* line = dwarf_onesrcline(lines, i);
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
        last_id = local_file(intern_file(name));
      }
      Row row;
      row.address = addr;
      row.line = static_cast<uint32_t>(std::max(lineno, 0));
      row.file = last_id;
      row.column = static_cast<uint16_t>(std::min(static_cast<uint32_t>(std::max(column, 0)), kMaxColumn));
      if (end) row.column |= kEndSequence;
      unit_.rows.push_back(row);
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
      unit_.ranges.push_back({start, end, node, parent});
      any = true;
    }
    if (!any) return;  // abstract instance or declaration: no code of its own
    Node n;
    n.die = dwarf_dieoffset(die);
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
  Unit& unit_;
  std::vector<std::pair<size_t, size_t>> row_blocks_;     // [begin, end) of each sequence's rows
  std::unordered_map<const char*, uint32_t> unit_names_;  // this unit's names as libdw returned them
  std::string_view comp_dir_;  // in the sections (or libdw's): a unit's whole life
  Dwarf_Files* unit_files_ = nullptr;  // libdw's file table, when its line table is used
  size_t unit_file_count_ = 0;
  bool own_lines_ = false;  // the line table came from scratch_.program (or there is none)
  bool libdw_walked_ = false;  // libdw read the unit's DIEs
  bool rows_sorted_ = false;   // the rows are in scratch_.sorted_rows, as sort_rows would leave them
  bool unit_file_ids_ready_ = false;  // scratch_.unit_file_ids is this unit's
  size_t rows_read_ = 0;
};

DwarfIndex::~DwarfIndex() {
  if (dwarf_ != nullptr) dwarf_end(dwarf_);
}

void DwarfIndex::restart_libdw() {
  if (!can_restart_) return;
  dwarf_end(dwarf_);
  dwarf_ = dwarf_begin_elf(elf_, DWARF_C_READ, nullptr);
  rows_since_restart_ = 0;
  ++restarts_;
  // libdw's tables are thousands of small blocks in the heap: hand the freed
  // ones back so they do not stay resident. Not while units are being read
  // in bulk (a cold module, a batch of addresses): the next units would
  // fault the same pages straight back in, which costs a fifth of a cold
  // read, and the freed blocks are what their tables reuse anyway.
  if (lookups_since_restart_ >= kTrimAfterLookups) malloc_trim(0);
  lookups_since_restart_ = 0;
}

// kLibdwRowBudget: line rows libdw may cache (~60 bytes each with its file
// tables) before the handle is restarted, ~4 MB. Restarting costs a re-read
// of the section headers and, for the next unit, of the unit headers before
// it; much below this the cold symbolizer (every unit read) would spend more
// on restarts than on reading.
std::unique_ptr<DwarfIndex> DwarfIndex::build(Elf* elf, size_t libdw_row_budget, bool own_die_reader) {
  Dwarf* dwarf = dwarf_begin_elf(elf, DWARF_C_READ, nullptr);
  if (dwarf == nullptr) return nullptr;
  std::unique_ptr<DwarfIndex> index(new DwarfIndex());
  index->elf_ = elf;
  index->dwarf_ = dwarf;
  index->can_restart_ = !has_supplementary_file(elf);
  index->line_sections_ = find_line_sections(elf);
  if (own_die_reader) index->debug_sections_ = find_debug_sections(elf);
  if (index->debug_sections_) {
    index->unit_reader_.emplace(*index->debug_sections_);
    index->name_reader_.emplace(*index->debug_sections_);
  }
  index->row_budget_ = libdw_row_budget;
  index->files_.push_back(std::make_unique<std::string>());  // file 0: unknown
  std::vector<uint32_t> unstated;  // units that give no ranges
  bool listed_by_libdw = !index->unit_reader_ || !index->list_units_own(unstated);
  if (listed_by_libdw) index->list_units_libdw(unstated);
  // A unit without ranges may still hold code (hand-written assembly, odd
  // producers): read it now and let its functions and line sequences stand
  // for its ranges. Partial units (DWZ) hold none and cost one walk.
  for (uint32_t id : unstated) {
    index->read_unit(id);
    const Unit& u = index->units_[id];
    for (size_t k = u.top_begin; k < u.ranges.size(); ++k) index->spans_.push_back({u.ranges[k].low, u.ranges[k].high, id});
    size_t begin = 0;
    for (size_t k = 0; k < u.rows.size(); ++k) {
      if (u.rows[k].end_sequence() || k + 1 == u.rows.size()) {
        if (u.rows[k].address > u.rows[begin].address)
          index->spans_.push_back({u.rows[begin].address, u.rows[k].address + 1, id});
        begin = k + 1;
      }
    }
  }
  std::sort(index->spans_.begin(), index->spans_.end(),
            [](const UnitSpan& a, const UnitSpan& b) { return a.low < b.low; });
  if (index->unit_reader_) {
    for (const Unit& u : index->units_)
      if (u.unit_offset != UINT64_MAX) index->unit_starts_.push_back(u.unit_offset);
    std::sort(index->unit_starts_.begin(), index->unit_starts_.end());
  }
  index->spans_.shrink_to_fit();
  index->units_.shrink_to_fit();
  // Listing the units made libdw parse every unit header and many abbrevs.
  if (listed_by_libdw && index->units_.size() > 1) index->restart_libdw();
  return index->dwarf_ != nullptr ? std::move(index) : nullptr;
}

bool DwarfIndex::list_units_own(std::vector<uint32_t>& unstated) {
  UnitReader& reader = *unit_reader_;
  const size_t info_size = debug_sections_->info.size();
  std::vector<AddressRange> ranges;
  // Units .debug_aranges gives ranges for are listed from their headers
  // alone; the others' unit DIEs are read, which means skimming their
  // abbreviation tables (GCC puts the unit DIE's last): for libc, 1 MB of
  // tables that the walks parse again.
  std::vector<UnitArange> aranges = read_aranges(debug_sections_->aranges, info_size);
  size_t next_arange = 0;
  for (uint64_t offset = 0; offset < info_size; offset = reader.next_unit_offset()) {
    while (next_arange < aranges.size() && aranges[next_arange].unit < offset) ++next_arange;
    if (next_arange < aranges.size() && aranges[next_arange].unit == offset && reader.open_header(offset) &&
        (reader.unit_type() == DW_UT_compile || reader.unit_type() == DW_UT_partial)) {
      uint32_t id = static_cast<uint32_t>(units_.size());
      Unit& unit = units_.emplace_back();
      unit.die_offset = reader.die_offset();
      unit.unit_offset = offset;
      for (; next_arange < aranges.size() && aranges[next_arange].unit == offset; ++next_arange)
        spans_.push_back({aranges[next_arange].low, aranges[next_arange].high, id});
      ++units_listed_by_aranges_;
      continue;
    }
    if (!reader.open(offset, true)) {
      // Listed by libdw instead, which may still read this unit.
      units_.clear();
      spans_.clear();
      unstated.clear();
      return false;
    }
    if (reader.unit_type() != DW_UT_compile && reader.unit_type() != DW_UT_partial) continue;
    if (reader.tag() != DW_TAG_compile_unit && reader.tag() != DW_TAG_partial_unit) continue;
    uint32_t id = static_cast<uint32_t>(units_.size());
    Unit& unit = units_.emplace_back();
    unit.die_offset = reader.die_offset();
    unit.unit_offset = offset;
    ranges.clear();
    if (!reader.unit_ranges(ranges)) {
      units_.clear();
      spans_.clear();
      unstated.clear();
      return false;
    }
    for (const AddressRange& r : ranges) spans_.push_back({r.low, r.high, id});
    if (ranges.empty()) unstated.push_back(id);
  }
  return true;
}

void DwarfIndex::list_units_libdw(std::vector<uint32_t>& unstated) {
  Dwarf_CU* cu = nullptr;
  Dwarf_Half version = 0;
  uint8_t unit_type = 0;
  Dwarf_Die cudie, subdie;
  while (dwarf_get_units(dwarf_, cu, &cu, &version, &unit_type, &cudie, &subdie) == 0) {
    if (unit_type == DW_UT_type || unit_type == DW_UT_split_type) continue;
    int tag = dwarf_tag(&cudie);
    if (tag != DW_TAG_compile_unit && tag != DW_TAG_partial_unit) continue;
    uint32_t id = static_cast<uint32_t>(units_.size());
    Unit& unit = units_.emplace_back();
    unit.die_offset = dwarf_dieoffset(&cudie);
    // UnitReader may still read this unit's DIEs (units of .debug_types
    // and split units it does not: their offsets are not in .debug_info).
    if (unit_reader_ && (unit_type == DW_UT_compile || unit_type == DW_UT_partial))
      unit.unit_offset = unit.die_offset - dwarf_cuoffset(&cudie);
    bool any = false;
    Dwarf_Addr base = 0, start = 0, end = 0;
    ptrdiff_t offset = 0;
    while ((offset = dwarf_ranges(&cudie, offset, &base, &start, &end)) > 0) {
      if (end <= start || start == 0) continue;  // discarded code
      spans_.push_back({start, end, id});
      any = true;
    }
    if (!any) unstated.push_back(id);
  }
}

void DwarfIndex::read_unit(uint32_t id) {
  Unit& unit = units_[id];
  if (unit.read) return;
  unit.read = true;
  ++units_read_;
  if (unit_reader_ && unit.unit_offset != UINT64_MAX && unit_reader_->open(unit.unit_offset) &&
      unit_reader_->die_offset() == unit.die_offset && unit_reader_->walk(walk_scratch_)) {
    Builder builder(*this, unit);
    builder.read(*unit_reader_, walk_scratch_);
    rows_since_restart_ += builder.libdw_rows_cached();
    if (rows_since_restart_ >= row_budget_) restart_libdw();
    return;
  }
  ++units_walked_by_libdw_;
  if (dwarf_ == nullptr) return;
  Dwarf_Die cudie;
  if (dwarf_offdie(dwarf_, unit.die_offset, &cudie) == nullptr) return;
  Builder builder(*this, unit);
  builder.read(&cudie);
  rows_since_restart_ += builder.libdw_rows_cached();
  if (rows_since_restart_ >= row_budget_) restart_libdw();
}

template <typename Visit>
bool DwarfIndex::for_units_at(uint64_t vaddr, Visit visit) {
  ++lookups_since_restart_;
  size_t upper = 0;
  if (!upper_bound_near(spans_.data(), spans_.size(), span_hint_, vaddr, [](const UnitSpan& s) { return s.low; }, upper))
    upper = static_cast<size_t>(std::upper_bound(spans_.begin(), spans_.end(), vaddr,
                                                 [](uint64_t a, const UnitSpan& s) { return a < s.low; }) -
                                spans_.begin());
  span_hint_ = upper;
  auto it = spans_.begin() + static_cast<ptrdiff_t>(upper);
  uint32_t last = UINT32_MAX;
  for (int i = 0; i < kUnitLookBack && it != spans_.begin(); ++i) {
    --it;
    if (vaddr >= it->high || it->unit == last) continue;
    last = it->unit;
    if (!units_[it->unit].read) read_unit(it->unit);
    if (visit(units_[it->unit])) return true;
  }
  return false;
}

const DwarfIndex::Range* DwarfIndex::find_range(const Range* begin, const Range* search_begin,
                                                const Range* search_end, uint64_t vaddr) {
  return range_before(begin, std::upper_bound(search_begin, search_end, vaddr,
                                              [](uint64_t a, const Range& r) { return a < r.low; }),
                      vaddr);
}

const DwarfIndex::Range* DwarfIndex::range_before(const Range* begin, const Range* upper, uint64_t vaddr) {
  const Range* it = upper;
  for (int i = 0; i < kLookBack && it != begin; ++i) {
    --it;
    if (vaddr < it->high) return it;
  }
  return nullptr;
}

bool DwarfIndex::functions_in(const Unit& unit, uint64_t vaddr, std::vector<uint32_t>& chain) const {
  const Range* top = unit.ranges.data() + unit.top_begin;
  size_t top_count = unit.ranges.size() - unit.top_begin;
  size_t upper = 0;
  if (!upper_bound_near(top, top_count, unit.top_hint, vaddr, [](const Range& r) { return r.low; }, upper)) {
    auto [lo, hi] =
        top_count >= kBucketThreshold ? unit.top_buckets.window(vaddr) : std::pair<size_t, size_t>{0, top_count};
    upper = static_cast<size_t>(
        std::upper_bound(top + lo, top + hi, vaddr, [](uint64_t a, const Range& r) { return a < r.low; }) - top);
  }
  unit.top_hint = static_cast<uint32_t>(upper);
  const Range* r = range_before(top, top + upper, vaddr);
  while (r != nullptr) {
    chain.push_back(r->node);
    const Node& n = nodes_[r->node];
    if (n.first_child == n.end_child) break;
    const Range* children = unit.ranges.data();
    r = find_range(children + n.first_child, children + n.first_child, children + n.end_child, vaddr);
  }
  return !chain.empty();
}

bool DwarfIndex::functions_at(uint64_t vaddr, std::vector<uint32_t>& chain) {
  chain.clear();
  return for_units_at(vaddr, [&](const Unit& unit) { return functions_in(unit, vaddr, chain); });
}

bool DwarfIndex::line_in(const Unit& unit, uint64_t vaddr, SourceLocation& out) const {
  size_t upper = 0;
  if (!upper_bound_near(unit.rows.data(), unit.rows.size(), unit.row_hint, vaddr,
                        [](const Row& r) { return r.address; }, upper)) {
    auto [lo, hi] = unit.rows.size() >= kBucketThreshold ? unit.row_buckets.window(vaddr)
                                                         : std::pair<size_t, size_t>{0, unit.rows.size()};
    upper = static_cast<size_t>(std::upper_bound(unit.rows.begin() + lo, unit.rows.begin() + hi, vaddr,
                                                 [](uint64_t a, const Row& r) { return a < r.address; }) -
                                unit.rows.begin());
  }
  unit.row_hint = static_cast<uint32_t>(upper);
  auto it = unit.rows.begin() + static_cast<ptrdiff_t>(upper);
  if (it == unit.rows.begin()) return false;
  --it;
  if (it->end_sequence()) return false;
  out.file = unit.files[it->file];
  out.line = it->line;
  out.column = it->column & kMaxColumn;
  return true;
}

bool DwarfIndex::line_at(uint64_t vaddr, SourceLocation& out) {
  return for_units_at(vaddr, [&](const Unit& unit) { return line_in(unit, vaddr, out); });
}

bool DwarfIndex::lookup(uint64_t vaddr, std::vector<uint32_t>& chain, SourceLocation* line) {
  chain.clear();
  bool line_found = line == nullptr;
  bool found = for_units_at(vaddr, [&](const Unit& unit) {
    if (!line_found) line_found = line_in(unit, vaddr, *line);
    return functions_in(unit, vaddr, chain);
  });
  // The function's unit had no row: the units after it, as line_at would.
  if (!line_found) line_at(vaddr, *line);
  return found;
}

const char* DwarfIndex::own_name(uint64_t die) {
  if (!unit_reader_) return nullptr;
  // As function_name(): each of the three names through the chain of
  // DW_AT_abstract_origin / DW_AT_specification, as dwarf_attr_integrate
  // follows it (the DIE itself and at most 16 more).
  const char* found[3] = {nullptr, nullptr, nullptr};
  UnitReader::NameStep step;
  uint64_t at = die;
  bool reopened = false;
  for (int i = 0; i <= 16; ++i) {
    UnitReader* reader = unit_reader_->holds(at) ? &*unit_reader_ : name_reader_->holds(at) ? &*name_reader_ : nullptr;
    // The node's own unit is opened for it; not the units a chain leads to
    // (LTO's abstract origins, all over python3.11's units: reopening them
    // for each name costs more than libdw's lookup, which keeps them).
    if (reader == nullptr && i == 0 && reopen_for_names() && open_unit_holding(at)) {
      reader = &*name_reader_;
      reopened = true;
      ++names_reopened_;
    }
    if (reader == nullptr || !reader->name_step(at, step)) {
      if (reopened) ++names_reopened_in_vain_;
      return nullptr;
    }
    if (found[0] == nullptr) found[0] = step.linkage_name;
    if (found[1] == nullptr) found[1] = step.mips_linkage_name;
    if (found[2] == nullptr) found[2] = step.name;
    if (found[0] != nullptr || !step.has_next) break;  // the first choice is found, or the chain ends
    at = step.next;
  }
  for (const char* name : found)
    if (name != nullptr) return name;
  return "";
}

bool DwarfIndex::open_unit_holding(uint64_t die) {
  // The last unit starting at or before die.
  auto it = std::upper_bound(unit_starts_.begin(), unit_starts_.end(), die);
  if (it == unit_starts_.begin()) return false;
  return name_reader_->open(*--it) && name_reader_->holds(die);
}

const char* DwarfIndex::raw_name(uint32_t node) {
  Node& n = nodes_[node];
  if (n.name == nullptr) n.name = own_name(n.die);
  if (n.name == nullptr) {
    ++names_read_by_libdw_;
    // Through the current libdw handle, which may have been restarted since
    // the node's unit was read: offsets stay valid, and names point into
    // the ELF file's .debug_str, not into libdw.
    Dwarf_Die die;
    n.name = dwarf_ != nullptr && dwarf_offdie(dwarf_, n.die, &die) != nullptr ? function_name(&die) : "";
  }
  return n.name;
}

size_t DwarfIndex::line_count() const {
  size_t n = 0;
  for (const Unit& u : units_) n += u.rows.size();
  return n;
}

size_t DwarfIndex::memory_bytes() const {
  size_t bytes = units_.capacity() * sizeof(Unit) + spans_.capacity() * sizeof(UnitSpan) +
                 nodes_.capacity() * sizeof(Node);
  for (const Unit& u : units_)
    bytes += u.ranges.capacity() * sizeof(Range) + u.rows.capacity() * sizeof(Row) +
             u.files.capacity() * sizeof(uint32_t) + u.top_buckets.memory_bytes() + u.row_buckets.memory_bytes();
  bytes += files_.capacity() * sizeof(files_[0]);
  for (const auto& f : files_) bytes += sizeof(std::string) + f->capacity() + 32;  // + hash node
  return bytes;
}

}  // namespace stackwatch::symbolizer
