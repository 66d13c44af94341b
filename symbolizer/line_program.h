// A decoder for one compile unit's .debug_line program (DWARF 2 to 5), in
// place of libdw's dwarf_getsrclines for the DWARF index. Why not libdw:
// in elfutils 0.188 that call keeps every row in a linked list, qsorts all of
// them and caches them until dwarf_end; on a cold module (every unit read,
// e.g. python3.11's DWARF) that sort and copy were a quarter of the time,
// and the index re-sorts and re-packs the rows anyway. This decoder hands
// the rows over in program order (each sequence ascending) and leaves the
// file table undecoded until a name is asked for.
//
// It produces what libdw's would: the same rows, and file names built by
// the same rules (an absolute name as it is, else "dir/name" with the
// directory from the table, directory 0 being DW_AT_comp_dir before DWARF 5;
// file 0 "???" before DWARF 5). When it meets anything it does not handle
// (a string form it cannot read, a 64-bit-offset oddity, a truncated
// program) decode() returns false and the caller falls back to libdw.
#pragma once

#include <libelf.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace stackwatch::symbolizer {

// The sections a line program refers to (empty when absent).
struct LineSections {
  std::span<const uint8_t> line;      // .debug_line
  std::span<const uint8_t> line_str;  // .debug_line_str (DW_FORM_line_strp)
  std::span<const uint8_t> str;       // .debug_str (DW_FORM_strp)
};

// The sections of elf, when its .debug_line can be read as it is: not
// compressed (call after dwarf_begin_elf, which inflates SHF_COMPRESSED
// sections in place; GNU .zdebug_ ones are left to libdw's reader).
std::optional<LineSections> find_line_sections(Elf* elf);

struct LineRow {
  uint64_t address = 0;
  uint32_t file = 0;  // index into the unit's file table (LineProgram::file_path)
  int32_t line = 0;
  uint32_t column = 0;
  bool end_sequence = false;
};

class LineProgram {
 public:
  // Decodes the program at offset (the unit's DW_AT_stmt_list) into rows,
  // appended in program order. comp_dir may be null. False (rows then
  // unspecified) when the program is malformed or uses something this
  // decoder does not read.
  bool decode(const LineSections& sections, uint64_t offset, unsigned address_size, const char* comp_dir,
              std::vector<LineRow>& rows);

  // The sequences decode() appended: [begin, end) indices into its rows,
  // each ending with its end_sequence row (but a last one the program left
  // unterminated), in program order.
  const std::vector<std::pair<size_t, size_t>>& sequences() const { return sequences_; }
  // Whether each sequence's rows ascend by address (as a sort by address,
  // end of sequence first among equal addresses, leaves them), allowing
  // the end tie below.
  bool sequences_ascend() const { return sequences_ascend_; }
  // Whether some sequence ends at the address of its last row (GCC's often
  // do): ascending but for that end row.
  bool end_ties() const { return end_ties_; }

  size_t file_count() const { return files_.size(); }
  // The path of file index, as libdw's dwarf_filesrc would give it; empty
  // when index is out of range.
  std::string file_path(uint64_t index) const;

 private:
  struct File {
    const char* name = nullptr;
    uint64_t dir = 0;
  };
  bool read_header_tables(const uint8_t*& p, const uint8_t* end, unsigned version, unsigned offset_size,
                          const LineSections& sections);

  // Special opcodes' advances for the header they were computed for.
  struct Special {
    int32_t line = 0;
    uint32_t operations = 0;
  };
  Special special_[256];
  uint64_t special_base_ = 0, special_range_ = 0;
  int special_line_base_ = 0;
  std::vector<std::pair<size_t, size_t>> sequences_;
  bool sequences_ascend_ = true;
  bool end_ties_ = false;
  std::vector<const char*> dirs_;  // may hold null (no DW_AT_comp_dir)
  std::vector<File> files_;
  bool dwarf5_ = false;
};

}  // namespace stackwatch::symbolizer
