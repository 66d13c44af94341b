// The compact unwind row: what the CFI of one module says about one range of
// its code, reduced to the three things an x86_64 unwinder needs (where the
// CFA is, where the return address is, where the caller's rbp is).
//
// A module's CFI (.eh_frame, else .debug_frame) is compiled into these rows
// once (per function on first use, lazy_cfi.h, or the whole module into one
// sorted array, cfi_table.h), so that unwinding a frame is a binary search
// and a few loads, with no DWARF interpretation on the per-sample path. The format
// is deliberately flat and fixed-size (32 bytes, no pointers) so that the same
// table could be copied into a BPF array map by a future in-kernel unwinder.
//
// Addresses are ELF virtual addresses of the module (runtime address minus the
// mapping's load bias). Registers are DWARF x86_64 numbers (6 rbp, 7 rsp,
// 16 return address).
#pragma once

#include <cstdint>

namespace stackwatch::unwinder {

inline constexpr uint8_t kDwarfRbp = 6;
inline constexpr uint8_t kDwarfRsp = 7;
inline constexpr uint8_t kDwarfRa = 16;

// How to compute the Canonical Frame Address (the caller's rsp).
enum class CfaRule : uint8_t {
  kRegOffset = 0,       // CFA = reg + cfa_offset (reg is rsp or rbp)
  kDerefRegOffset = 1,  // CFA = *(reg + cfa_offset) (stack realignment, signal frames)
  kPlt = 2,             // CFA = rsp + cfa_offset + ((ip & 15) >= plt_threshold ? 8 : 0)
  kUnsupported = 3,     // any other DWARF expression: the frame cannot be unwound
};

// Where the caller's value of a register (return address or rbp) is.
enum class RegRule : uint8_t {
  kUndefined = 0,     // not recoverable; for the return address: outermost frame
  kSameValue = 1,     // unchanged by this frame
  kAtCfa = 2,         // saved at *(CFA + offset)
  kValCfa = 3,        // value is CFA + offset
  kAtRsp = 4,         // saved at *(rsp + offset), this frame's rsp (signal frames)
  kUnsupported = 5,   // another expression or register: unknown
};

struct CfiRow {
  uint64_t start = 0;   // first ELF virtual address covered
  uint32_t length = 0;  // bytes covered: [start, start + length)
  CfaRule cfa_rule = CfaRule::kUnsupported;
  uint8_t cfa_reg = kDwarfRsp;
  RegRule ra_rule = RegRule::kUndefined;
  RegRule bp_rule = RegRule::kSameValue;
  int32_t cfa_offset = 0;
  int32_t ra_offset = 0;
  int32_t bp_offset = 0;
  uint8_t flags = 0;           // kRowSignalFrame
  uint8_t plt_threshold = 0;   // for CfaRule::kPlt
  uint8_t reserved[2] = {0, 0};

  uint64_t end() const { return start + length; }
  // Same unwind rules (ignoring the range): adjacent equal rows are merged.
  bool same_rules(const CfiRow& other) const {
    return cfa_rule == other.cfa_rule && cfa_reg == other.cfa_reg && ra_rule == other.ra_rule &&
           bp_rule == other.bp_rule && cfa_offset == other.cfa_offset &&
           ra_offset == other.ra_offset && bp_offset == other.bp_offset && flags == other.flags &&
           plt_threshold == other.plt_threshold;
  }
};

// The FDE is a signal trampoline (augmentation "S"): the caller's ip is the
// interrupted instruction, not a return address, so it is looked up as is.
inline constexpr uint8_t kRowSignalFrame = 1;

static_assert(sizeof(CfiRow) == 32, "CfiRow is a fixed 32-byte record (BPF map value)");

}  // namespace stackwatch::unwinder
