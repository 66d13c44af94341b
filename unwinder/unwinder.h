// unwinder: complete user stacks for code built without frame pointers.
//
// Given a sample's user registers and a copy of the top of its user stack
// (taken by BPF at the sample: rsp upwards, typically 16 KiB), walks the
// stack with the modules' DWARF CFI (.eh_frame, and .debug_frame from the
// file or its separate debug file where .eh_frame says nothing) and returns
// the instruction addresses, innermost first: the sampled ip, then one return
// address per caller frame.
//
// Each module's CFI is compiled once into fixed-size rows (cfi_row.h; per
// function on first use, or all at once) and cached per build-id (else
// dev+inode+size+mtime) for every process that maps it, so a frame costs a
// binary search or two and a few loads.
// Handles PIE and non-PIE executables, shared libraries, the vDSO, PLT stubs
// and glibc's signal trampoline. Where a module has no CFI for an address but
// rbp looks like a frame pointer, one frame is taken from the frame-pointer
// chain (counted).
//
// It does not: symbolize (that is symbolizer/), read a live process's memory
// (only the copy it is given), unwind 32-bit processes or other architectures
// than x86_64, recover registers other than rsp/rbp/rip across frames (a CFA
// based on rbx or r12-r15 works in the innermost frame only), or invent a
// frame: when it cannot go on, the result is incomplete with a reason.
//
// Thread safety: an Unwinder is single-threaded; use one per thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "symbolizer/symbolizer.h"

namespace stackwatch::unwinder {

// User registers at the sample (x86_64 pt_regs).
struct UserRegs {
  uint64_t ip = 0, sp = 0, bp = 0, bx = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
};

enum class UnwindStatus : uint8_t {
  // Reached the outermost frame: CFI marks the return address undefined
  // (_start, clone/thread start) or the return address is zero.
  kComplete,
  kIncomplete,  // stopped early; see IncompleteReason
};

enum class IncompleteReason : uint8_t {
  kNone = 0,          // complete
  kNoUnwindInfo,      // no CFI for the address (and no usable frame pointer)
  kReadOutsideStack,  // a saved value lies outside the copied stack
  kUnsupportedRule,   // a CFA or return-address rule we do not evaluate
  kRegisterUnknown,   // the CFA is based on a register we no longer know
  kStackNotAdvancing, // CFA <= sp: corrupt stack or wrong CFI
  kMaxDepth,
  kNotMapped,         // the address is in no executable mapping of the process
  kModuleUnreadable,  // the mapped file cannot be opened or parsed
  kCount,
};

// "no unwind info", "read outside the copied stack", ...
const char* reason_name(IncompleteReason reason);

struct UnwindResult {
  std::vector<uint64_t> ips;  // innermost first; ips[0] is the sampled ip
  UnwindStatus status = UnwindStatus::kIncomplete;
  IncompleteReason reason = IncompleteReason::kNone;
  // Bytes of the copy from regs.sp to the end of the highest value the walk
  // read: of a complete stack, all a copy of the same outermost frames
  // needs (StackCopies tells BPF to copy no more of that thread).
  uint64_t stack_bytes_read = 0;
  const char* reason_text() const { return reason_name(reason); }
  bool complete() const { return status == UnwindStatus::kComplete; }
};

struct UnwindCounters {
  uint64_t stacks = 0;
  uint64_t complete = 0;
  uint64_t frames = 0;                // addresses returned, all stacks
  uint64_t frame_pointer_frames = 0;  // frames found by the rbp fallback
  std::array<uint64_t, static_cast<size_t>(IncompleteReason::kCount)> incomplete{};  // by reason
  uint64_t modules_built = 0;         // CFI tables compiled
  uint64_t module_cache_hits = 0;
  uint64_t module_failures = 0;       // unreadable mapped files
};

struct Options {
  // The kernel's own limit for user stacks (PERF_MAX_STACK_DEPTH), so both
  // kinds of stack look alike.
  size_t max_depth = 127;
  bool frame_pointer_fallback = true;
  // Compile a module's CFI one function (FDE) at a time, on first use,
  // instead of all of it when the module is first seen: the one-off cost
  // follows what is sampled (libc: ~15 ms eagerly; a 35 MB binary: ~0.7 s).
  bool lazy_cfi = true;
  size_t max_cached_modules = 512;  // LRU bound over compiled modules
  size_t max_processes = 4096;      // per-pid mapping state kept
  std::string proc_root = "/proc";  // overridable for tests
  std::string debug_root = "/usr/lib/debug";  // separate .debug_frame; "" to skip
};

class Unwinder {
 public:
  explicit Unwinder(Options options = {});
  ~Unwinder();
  Unwinder(const Unwinder&) = delete;
  Unwinder& operator=(const Unwinder&) = delete;

  // Unwinds one sample of pid. maps are the process's mappings (from
  // parse_proc_maps); the per-pid state built from them is kept and checked
  // against them cheaply on each call. stack holds the bytes copied from
  // regs.sp upwards. ips[0] is always regs.ip; every further address is a
  // return address (or, after a signal frame, the interrupted ip) inside an
  // executable mapping. An address outside every mapping ends the walk with
  // kNotMapped: if the process may have mapped new code (dlopen, JIT),
  // re-read its maps and unwind again. Never throws; failures are counted.
  UnwindResult unwind(uint32_t pid, const std::vector<symbolizer::Mapping>& maps,
                      const UserRegs& regs, std::span<const uint8_t> stack);
  // Same, reusing result's storage (no allocation once warmed up).
  void unwind(uint32_t pid, const std::vector<symbolizer::Mapping>& maps, const UserRegs& regs,
              std::span<const uint8_t> stack, UnwindResult& result);

  // Drops the per-pid state (the process exited or exec'd).
  void forget_process(uint32_t pid);

  const UnwindCounters& counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stackwatch::unwinder
