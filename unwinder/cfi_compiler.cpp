// libdw frame states -> CfiRows. The DWARF expressions recognised are the ones
// GCC, binutils and glibc emit on x86_64: register+offset CFAs, the
// dereferenced CFA of stack-realigning functions and signal trampolines, and
// the PLT's "rsp + 8 + 8 * (ip & 15 >= 11)" expression.
#include "unwinder/cfi_compiler.h"

#include <dwarf.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace stackwatch::unwinder {
namespace {

struct FreeDeleter {
  void operator()(Dwarf_Frame* frame) const { std::free(frame); }
};
using FramePtr = std::unique_ptr<Dwarf_Frame, FreeDeleter>;

bool fits_i32(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

// DW_OP_bregN / DW_OP_bregx -> (register, offset).
bool as_breg(const Dwarf_Op& op, uint8_t& reg, int64_t& offset) {
  if (op.atom >= DW_OP_breg0 && op.atom <= DW_OP_breg31) {
    reg = static_cast<uint8_t>(op.atom - DW_OP_breg0);
    offset = static_cast<int64_t>(op.number);
    return true;
  }
  if (op.atom == DW_OP_bregx && op.number < 256) {
    reg = static_cast<uint8_t>(op.number);
    offset = static_cast<int64_t>(op.number2);
    return true;
  }
  return false;
}

bool as_lit(const Dwarf_Op& op, uint64_t& value) {
  if (op.atom >= DW_OP_lit0 && op.atom <= DW_OP_lit31) {
    value = op.atom - DW_OP_lit0;
    return true;
  }
  return false;
}

void set_cfa(CfiRow& row, Dwarf_Op* ops, size_t nops) {
  uint8_t reg = 0;
  int64_t offset = 0;
  row.cfa_rule = CfaRule::kUnsupported;
  if (nops == 0 || !as_breg(ops[0], reg, offset) || !fits_i32(offset)) return;
  row.cfa_reg = reg;
  row.cfa_offset = static_cast<int32_t>(offset);
  if (nops == 1) {
    row.cfa_rule = CfaRule::kRegOffset;
  } else if (nops == 2 && ops[1].atom == DW_OP_deref) {
    row.cfa_rule = CfaRule::kDerefRegOffset;
  } else if (nops == 9 && reg == kDwarfRsp) {
    // binutils' PLT CFA: breg7 N; breg16 0; lit15; and; litK; ge; lit3; shl; plus
    uint8_t ip_reg = 0;
    int64_t ip_offset = 0;
    uint64_t mask = 0, threshold = 0, shift = 0;
    if (as_breg(ops[1], ip_reg, ip_offset) && ip_reg == kDwarfRa && ip_offset == 0 &&
        as_lit(ops[2], mask) && mask == 15 && ops[3].atom == DW_OP_and &&
        as_lit(ops[4], threshold) && ops[5].atom == DW_OP_ge && as_lit(ops[6], shift) &&
        shift == 3 && ops[7].atom == DW_OP_shl && ops[8].atom == DW_OP_plus) {
      row.cfa_rule = CfaRule::kPlt;
      row.plt_threshold = static_cast<uint8_t>(threshold);
    }
  }
}

void set_register(RegRule& rule, int32_t& out_offset, int regno, Dwarf_Op* ops, Dwarf_Op* ops_mem,
                  size_t nops) {
  rule = RegRule::kUnsupported;
  out_offset = 0;
  if (nops == 0) {
    rule = ops == nullptr ? RegRule::kSameValue : RegRule::kUndefined;
    (void)ops_mem;
    return;
  }
  bool is_value = ops[nops - 1].atom == DW_OP_stack_value;
  if (is_value) --nops;
  uint8_t reg = 0;
  int64_t offset = 0;
  if (nops >= 1 && ops[0].atom == DW_OP_call_frame_cfa) {
    // Offset rules: "CFA [+ N]", location or value.
    if (nops == 1) {
      offset = 0;
    } else if (nops == 2 && ops[1].atom == DW_OP_plus_uconst) {
      offset = static_cast<int64_t>(ops[1].number);
    } else if (nops == 2 && !is_value && as_breg(ops[1], reg, offset) && reg == kDwarfRsp) {
      // DW_CFA_expression "breg7 N" (libdw pushes the CFA first, unused):
      // glibc's signal trampoline saves every register at rsp + N.
      if (!fits_i32(offset)) return;
      rule = RegRule::kAtRsp;
      out_offset = static_cast<int32_t>(offset);
      return;
    } else {
      return;
    }
    if (!fits_i32(offset)) return;
    rule = is_value ? RegRule::kValCfa : RegRule::kAtCfa;
    out_offset = static_cast<int32_t>(offset);
    return;
  }
  // DW_CFA_register to itself is "same value"; to another register (glibc's
  // vfork keeps its return address in rdi, longjmp in rdx), unknown: those
  // registers are not captured.
  bool self = (ops[0].atom == DW_OP_regx && ops[0].number == static_cast<Dwarf_Word>(regno)) ||
              (as_breg(ops[0], reg, offset) && reg == regno && offset == 0 && is_value);
  if (nops == 1 && self) rule = RegRule::kSameValue;
}

}  // namespace

CfiRow row_from_frame(Dwarf_Frame* frame) {
  CfiRow row;
  Dwarf_Addr start = 0, end = 0;
  bool signal = false;
  int ra_reg = dwarf_frame_info(frame, &start, &end, &signal);
  row.start = start;
  row.length = end > start && end - start <= UINT32_MAX ? static_cast<uint32_t>(end - start) : 0;
  row.flags = signal ? kRowSignalFrame : 0;

  Dwarf_Op* ops = nullptr;
  size_t nops = 0;
  if (dwarf_frame_cfa(frame, &ops, &nops) == 0) {
    set_cfa(row, ops, nops);
  }
  Dwarf_Op ops_mem[3];
  if (ra_reg < 0 || dwarf_frame_register(frame, ra_reg, ops_mem, &ops, &nops) != 0) {
    row.ra_rule = RegRule::kUnsupported;
  } else {
    set_register(row.ra_rule, row.ra_offset, ra_reg, ops, ops_mem, nops);
  }
  if (dwarf_frame_register(frame, kDwarfRbp, ops_mem, &ops, &nops) != 0) {
    row.bp_rule = RegRule::kUnsupported;
  } else {
    set_register(row.bp_rule, row.bp_offset, kDwarfRbp, ops, ops_mem, nops);
  }
  return row;
}

void compile_cfi(Dwarf_CFI* cfi, std::vector<uint64_t> fde_starts, std::vector<CfiRow>& rows,
                 CompileStats& stats) {
  std::sort(fde_starts.begin(), fde_starts.end());
  fde_starts.erase(std::unique(fde_starts.begin(), fde_starts.end()), fde_starts.end());
  stats.fdes += fde_starts.size();
  uint64_t covered = 0;  // rows exist up to here
  for (uint64_t fde_start : fde_starts) {
    if (fde_start < covered) continue;  // already walked as part of an earlier FDE
    uint64_t cursor = fde_start;
    // Each row's end is the next row's start; the FDE ends where libdw finds
    // no more frame (a gap) or the next FDE begins (walked on here too).
    while (true) {
      Dwarf_Frame* raw = nullptr;
      if (dwarf_cfi_addrframe(cfi, cursor, &raw) != 0) {
        if (cursor == fde_start) ++stats.failed_lookups;
        break;
      }
      FramePtr frame(raw);
      CfiRow row = row_from_frame(frame.get());
      if (row.length == 0 || row.end() <= cursor) break;
      if (row.start < cursor) {  // clip to what is not yet covered
        row.length = static_cast<uint32_t>(row.end() - cursor);
        row.start = cursor;
      }
      if (row.cfa_rule == CfaRule::kUnsupported) ++stats.unsupported_cfa;
      rows.push_back(row);
      ++stats.rows;
      cursor = row.end();
    }
    covered = std::max(covered, cursor);
  }
}

std::vector<uint64_t> debug_frame_fde_starts(std::span<const uint8_t> section) {
  std::vector<uint64_t> starts;
  Elf_Data data;
  std::memset(&data, 0, sizeof data);
  data.d_buf = const_cast<uint8_t*>(section.data());
  data.d_size = section.size();
  data.d_type = ELF_T_BYTE;
  Dwarf_Off offset = 0;
  while (true) {
    Dwarf_CFI_Entry entry;
    Dwarf_Off next = 0;
    // e_ident is only consulted for byte order and class: little-endian 64-bit.
    static const unsigned char kIdent[EI_NIDENT] = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3,
                                                    ELFCLASS64, ELFDATA2LSB, EV_CURRENT};
    int rc = dwarf_next_cfi(kIdent, &data, false, offset, &next, &entry);
    if (rc != 0) break;  // 1: end of section, -1: malformed; keep what we have
    if (!dwarf_cfi_cie_p(&entry)) {
      const uint8_t* p = entry.fde.start;
      if (p + 8 <= entry.fde.end) {
        uint64_t start = 0;
        std::memcpy(&start, p, 8);
        starts.push_back(start);
      }
    }
    offset = next;
  }
  return starts;
}

}  // namespace stackwatch::unwinder
