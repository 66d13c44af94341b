// Frame classification from names and modules (see frame_kind.h).
#include "flamegraph/frame_kind.h"


namespace stackwatch::flamegraph {
namespace {

// Entry points and subsystems that only exist in the kernel, for folded files
// from tools that do not annotate kernel frames (bpftrace, older perf). Only
// prefixes unlikely to name user functions: "tcp_" or "bpf_" could be a
// library's own symbols, so they are left out.
constexpr std::string_view kKernelPrefixes[] = {
    "entry_SYSCALL",     "entry_INT80",        "do_syscall_",       "__x64_sys_",
    "__ia32_sys_",       "__se_sys_",          "__do_sys_",         "ksys_",
    "syscall_exit_",     "syscall_enter_",     "exit_to_user_mode", "asm_exc_",
    "asm_sysvec_",       "asm_common_interrupt", "exc_page_fault",  "do_user_addr_fault",
    "handle_mm_fault",   "__handle_mm_fault",  "irq_exit",          "__irq_exit_rcu",
    "__do_softirq",      "__softirqentry",     "schedule_",         "__schedule",
    "preempt_schedule",  "finish_task_switch", "do_futex",          "__x64_",
    "futex_wait",        "futex_wake",         "vfs_",              "ext4_",
    "xfs_",              "btrfs_",             "submit_bio",        "__submit_bio",
    "do_idle",           "cpu_startup_entry",  "secondary_startup_64", "start_kernel",
    "ret_from_fork",     "worker_thread",     "process_one_work",
    "native_",           "sysvec_",            "__sysvec_",         "hrtimer_",
    "__hrtimer_",        "copy_user_",         "rep_movs_alternative", "try_to_wake_up",
};

// Kernel functions whose names are too generic to use as prefixes.
constexpr std::string_view kKernelNames[] = {"schedule", "kthread", "io_schedule"};

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// "libc.so.6", "[libc.so.6]", "libfoo.so+0x12", "/usr/lib/x86_64-linux-gnu/libm.so.6".
bool names_shared_object(std::string_view s) {
  for (size_t pos = s.find(".so"); pos != std::string_view::npos; pos = s.find(".so", pos + 1)) {
    size_t after = pos + 3;
    if (after == s.size()) return true;
    char c = s[after];
    if (c == '.' || c == '+' || c == ']' || c == ')' || c == ' ' || c == '`' || c == '!') return true;
  }
  return false;
}

}  // namespace

const char* to_string(FrameKind kind) {
  switch (kind) {
    case FrameKind::kUser: return "user";
    case FrameKind::kLibrary: return "library";
    case FrameKind::kKernel: return "kernel";
    case FrameKind::kInlined: return "inlined";
    case FrameKind::kJit: return "jit";
    case FrameKind::kUnknown: return "unknown";
  }
  return "user";
}

std::string_view strip_annotation(std::string_view name) {
  if (name.size() > 4 && ends_with(name, "]") && name[name.size() - 4] == '_' &&
      name[name.size() - 3] == '[') {
    char a = name[name.size() - 2];
    if (a == 'k' || a == 'i' || a == 'j' || a == 'w') return name.substr(0, name.size() - 4);
  }
  return name;
}

FrameKind classify_frame(std::string_view name) {
  if (ends_with(name, "_[k]")) return FrameKind::kKernel;
  if (ends_with(name, "_[i]")) return FrameKind::kInlined;
  if (ends_with(name, "_[j]")) return FrameKind::kJit;
  name = strip_annotation(name);
  if (name.empty() || name == "[unknown]" || starts_with(name, "[unknown]")) return FrameKind::kUnknown;
  if (starts_with(name, "[jit]")) return FrameKind::kJit;
  // perf names unresolved JIT code by its map file, /tmp/perf-PID.map: "[perf-PID.map]".
  if ((starts_with(name, "[perf-") || starts_with(name, "perf-")) && name.find(".map") != std::string_view::npos)
    return FrameKind::kJit;
  if (starts_with(name, "[kernel") || starts_with(name, "[vmlinux")) return FrameKind::kKernel;
  if (starts_with(name, "[vdso]") || names_shared_object(name)) return FrameKind::kLibrary;
  std::string_view bare = name.substr(0, name.find('+'));  // bpftrace's "do_syscall_64+56"
  for (std::string_view n : kKernelNames)
    if (bare == n) return FrameKind::kKernel;
  for (std::string_view p : kKernelPrefixes)
    if (starts_with(name, p)) return FrameKind::kKernel;
  return FrameKind::kUser;
}

FrameKind classify_frame(const Frame& frame) {
  if (frame.kernel) return FrameKind::kKernel;
  if (frame.inlined) return FrameKind::kInlined;
  if (frame.module == "[jit]" || (starts_with(frame.module, "/tmp/perf-") && ends_with(frame.module, ".map")))
    return FrameKind::kJit;
  if (frame.function.empty() && frame.module.empty()) return FrameKind::kUnknown;
  if (frame.module == "[vdso]" || names_shared_object(frame.module)) return FrameKind::kLibrary;
  return FrameKind::kUser;
}

}  // namespace stackwatch::flamegraph
