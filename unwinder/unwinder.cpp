// The unwind loop: one CfiRow per frame gives the CFA (the caller's rsp), the
// return address (the caller's ip) and the caller's rbp, read from the copy of
// the stack. Stops, with a reason, at the first frame it cannot do exactly.
#include "unwinder/unwinder.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "unwinder/module_cache.h"
#include "unwinder/process_modules.h"

namespace stackwatch::unwinder {
namespace {

// The copied stack: [base, base + bytes.size()).
class StackCopy {
 public:
  StackCopy(uint64_t base, std::span<const uint8_t> bytes) : base_(base), bytes_(bytes) {}
  bool read(uint64_t address, uint64_t& value) {
    if (address < base_ || address - base_ > bytes_.size() || bytes_.size() - (address - base_) < 8) {
      return false;
    }
    std::memcpy(&value, bytes_.data() + (address - base_), 8);
    end_read_ = std::max(end_read_, address - base_ + 8);
    return true;
  }
  bool contains(uint64_t address) const { return address >= base_ && address - base_ < bytes_.size(); }
  // Bytes from base to the end of the highest value read.
  uint64_t bytes_read() const { return end_read_; }

 private:
  uint64_t base_;
  std::span<const uint8_t> bytes_;
  uint64_t end_read_ = 0;
};

// DWARF numbers of the other captured registers.
constexpr uint8_t kDwarfRbx = 3, kDwarfR12 = 12, kDwarfR13 = 13, kDwarfR14 = 14, kDwarfR15 = 15;

// What is known of the registers of the frame being unwound.
struct FrameRegs {
  uint64_t ip = 0, sp = 0, bp = 0;
  bool bp_known = true;
  bool innermost = true;  // the other captured registers are still valid
  const UserRegs* captured = nullptr;

  bool get(uint8_t dwarf_reg, uint64_t& value) const {
    switch (dwarf_reg) {
      case kDwarfRsp: value = sp; return true;
      case kDwarfRbp: value = bp; return bp_known;
      default: break;
    }
    if (!innermost) return false;
    switch (dwarf_reg) {
      case kDwarfRbx: value = captured->bx; return true;
      case kDwarfR12: value = captured->r12; return true;
      case kDwarfR13: value = captured->r13; return true;
      case kDwarfR14: value = captured->r14; return true;
      case kDwarfR15: value = captured->r15; return true;
      default: return false;
    }
  }
};

enum class Step { kNext, kOutermost, kStop };

}  // namespace

const char* reason_name(IncompleteReason reason) {
  switch (reason) {
    case IncompleteReason::kNone: return "complete";
    case IncompleteReason::kNoUnwindInfo: return "no unwind info";
    case IncompleteReason::kReadOutsideStack: return "read outside the copied stack";
    case IncompleteReason::kUnsupportedRule: return "unsupported CFA rule";
    case IncompleteReason::kRegisterUnknown: return "CFA register unknown";
    case IncompleteReason::kStackNotAdvancing: return "stack pointer did not advance";
    case IncompleteReason::kMaxDepth: return "max depth";
    case IncompleteReason::kNotMapped: return "address not in any mapping";
    case IncompleteReason::kModuleUnreadable: return "module unreadable";
    case IncompleteReason::kCount: break;
  }
  return "unknown";
}

struct Unwinder::Impl {
  explicit Impl(Options o)
      : options(std::move(o)),
        cache(options.max_cached_modules, options.proc_root, options.debug_root, options.lazy_cfi) {}

  ProcessModules& process(uint32_t pid, const std::vector<symbolizer::Mapping>& maps) {
    auto it = processes.find(pid);
    if (it == processes.end()) {
      if (processes.size() >= options.max_processes && !processes.empty()) {
        auto oldest = std::min_element(processes.begin(), processes.end(), [](const auto& a, const auto& b) {
          return a.second.last_use < b.second.last_use;
        });
        processes.erase(oldest);
      }
      it = processes.emplace(pid, ProcessModules{}).first;
    }
    it->second.update(maps);
    it->second.last_use = ++tick;
    return it->second;
  }

  // One frame by CFI. On kNext, regs describe the caller.
  Step step_cfi(const CfiRow& row, StackCopy& stack, FrameRegs& regs, IncompleteReason& reason) {
    uint64_t cfa = 0;
    switch (row.cfa_rule) {
      case CfaRule::kRegOffset:
      case CfaRule::kDerefRegOffset: {
        uint64_t base = 0;
        if (!regs.get(row.cfa_reg, base)) {
          reason = IncompleteReason::kRegisterUnknown;
          return Step::kStop;
        }
        cfa = base + static_cast<int64_t>(row.cfa_offset);
        if (row.cfa_rule == CfaRule::kDerefRegOffset && !stack.read(cfa, cfa)) {
          reason = IncompleteReason::kReadOutsideStack;
          return Step::kStop;
        }
        break;
      }
      case CfaRule::kPlt:
        cfa = regs.sp + static_cast<int64_t>(row.cfa_offset) + ((regs.ip & 15) >= row.plt_threshold ? 8 : 0);
        break;
      case CfaRule::kUnsupported:
        reason = IncompleteReason::kUnsupportedRule;
        return Step::kStop;
    }

    uint64_t ra = 0;
    switch (row.ra_rule) {
      case RegRule::kUndefined:
        return Step::kOutermost;  // _start, clone: CFI says there is no caller
      case RegRule::kAtCfa:
      case RegRule::kAtRsp: {
        uint64_t at = (row.ra_rule == RegRule::kAtCfa ? cfa : regs.sp) + static_cast<int64_t>(row.ra_offset);
        if (!stack.read(at, ra)) {
          reason = IncompleteReason::kReadOutsideStack;
          return Step::kStop;
        }
        break;
      }
      case RegRule::kValCfa:
        ra = cfa + static_cast<int64_t>(row.ra_offset);
        break;
      case RegRule::kSameValue:
      case RegRule::kUnsupported:
        reason = IncompleteReason::kUnsupportedRule;
        return Step::kStop;
    }

    switch (row.bp_rule) {
      case RegRule::kSameValue: break;
      case RegRule::kAtCfa:
      case RegRule::kAtRsp: {
        uint64_t at = (row.bp_rule == RegRule::kAtCfa ? cfa : regs.sp) + static_cast<int64_t>(row.bp_offset);
        regs.bp_known = stack.read(at, regs.bp);
        break;
      }
      case RegRule::kValCfa: regs.bp = cfa + static_cast<int64_t>(row.bp_offset); break;
      case RegRule::kUndefined:
      case RegRule::kUnsupported: regs.bp_known = false; break;
    }

    if (ra == 0) return Step::kOutermost;
    bool signal = (row.flags & kRowSignalFrame) != 0;
    // A call pushes the return address, so the caller's rsp is above ours;
    // only a signal frame (sigaltstack) may move elsewhere.
    if (!signal && cfa <= regs.sp) {
      reason = IncompleteReason::kStackNotAdvancing;
      return Step::kStop;
    }
    regs.sp = cfa;
    regs.ip = ra;
    regs.innermost = false;
    return Step::kNext;
  }

  // One frame by the rbp chain, only where it looks like one: rbp points into
  // the copied stack above rsp and the saved return address is code.
  bool step_frame_pointer(const ProcessModules& process, StackCopy& stack, FrameRegs& regs) {
    if (!options.frame_pointer_fallback || !regs.bp_known) return false;
    uint64_t bp = regs.bp;
    if (bp < regs.sp || (bp & 7) != 0 || !stack.contains(bp)) return false;
    uint64_t saved_bp = 0, ra = 0;
    if (!stack.read(bp, saved_bp) || !stack.read(bp + 8, ra)) return false;
    if (ra == 0 || process.find(ra - 1) == nullptr) return false;
    if (saved_bp != 0 && saved_bp <= bp) return false;  // frames go up the stack
    regs.sp = bp + 16;
    regs.bp = saved_bp;
    regs.ip = ra;
    regs.innermost = false;
    return true;
  }

  void unwind(uint32_t pid, const std::vector<symbolizer::Mapping>& maps, const UserRegs& user,
              std::span<const uint8_t> bytes, UnwindResult& result) {
    result.ips.clear();
    result.status = UnwindStatus::kIncomplete;
    result.reason = IncompleteReason::kNone;
    ProcessModules& proc = process(pid, maps);
    StackCopy stack(user.sp, bytes);
    FrameRegs regs;
    regs.ip = user.ip;
    regs.sp = user.sp;
    regs.bp = user.bp;
    regs.captured = &user;
    bool exact_ip = true;  // the sampled ip, or an ip interrupted by a signal

    IncompleteReason reason = IncompleteReason::kNone;
    while (true) {
      result.ips.push_back(regs.ip);
      // A return address points after the call; the call itself (and its
      // CFI row) is one byte before. A call as a function's last instruction
      // would otherwise be looked up in the next function.
      uint64_t lookup = exact_ip ? regs.ip : regs.ip - 1;
      const ExecMapping* exec = proc.find_resolved(lookup, pid, cache);
      if (exec == nullptr) {
        // The sampled ip is reported whatever it is; a return address that
        // points nowhere is a misread stack, not a frame.
        if (result.ips.size() > 1) result.ips.pop_back();
        reason = IncompleteReason::kNotMapped;
        break;
      }
      if (result.ips.size() >= options.max_depth) {
        reason = IncompleteReason::kMaxDepth;
        break;
      }
      // Copied: a lazy module's next lookup may move its rows.
      const CfiRow* found = exec->module ? exec->module->find(lookup - exec->bias) : nullptr;
      if (found == nullptr) {
        if (step_frame_pointer(proc, stack, regs)) {
          ++counters.frame_pointer_frames;
          exact_ip = false;
          continue;
        }
        reason = exec->unreadable ? IncompleteReason::kModuleUnreadable : IncompleteReason::kNoUnwindInfo;
        break;
      }
      const CfiRow row = *found;
      Step step = step_cfi(row, stack, regs, reason);
      if (step == Step::kOutermost) {
        result.status = UnwindStatus::kComplete;
        break;
      }
      if (step == Step::kStop) break;
      exact_ip = (row.flags & kRowSignalFrame) != 0;
    }

    result.reason = result.status == UnwindStatus::kComplete ? IncompleteReason::kNone : reason;
    result.stack_bytes_read = stack.bytes_read();
    ++counters.stacks;
    counters.frames += result.ips.size();
    if (result.complete()) {
      ++counters.complete;
    } else {
      ++counters.incomplete[static_cast<size_t>(result.reason)];
    }
  }

  const UnwindCounters& snapshot_counters() {
    counters.modules_built = cache.counters().builds;
    counters.module_cache_hits = cache.counters().hits;
    counters.module_failures = cache.counters().failures;
    return counters;
  }

  Options options;
  ModuleCache cache;
  std::unordered_map<uint32_t, ProcessModules> processes;
  uint64_t tick = 0;
  UnwindCounters counters;
};

Unwinder::Unwinder(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Unwinder::~Unwinder() = default;

UnwindResult Unwinder::unwind(uint32_t pid, const std::vector<symbolizer::Mapping>& maps,
                              const UserRegs& regs, std::span<const uint8_t> stack) {
  UnwindResult result;
  impl_->unwind(pid, maps, regs, stack, result);
  return result;
}

void Unwinder::unwind(uint32_t pid, const std::vector<symbolizer::Mapping>& maps, const UserRegs& regs,
                      std::span<const uint8_t> stack, UnwindResult& result) {
  impl_->unwind(pid, maps, regs, stack, result);
}

void Unwinder::forget_process(uint32_t pid) { impl_->processes.erase(pid); }

const UnwindCounters& Unwinder::counters() const { return impl_->snapshot_counters(); }

}  // namespace stackwatch::unwinder
