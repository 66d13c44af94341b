// Frame display names and small value-type helpers.
#include <cstdio>

#include "recording/error.h"
#include "recording/recording.h"

namespace stackwatch {

std::string Frame::display_name() const {
  if (!function.empty()) return function;
  std::string base = module;
  if (auto slash = base.rfind('/'); slash != std::string::npos) base = base.substr(slash + 1);
  if (base.empty()) base = kernel ? "[kernel]" : "[unknown]";
  char off[32];
  std::snprintf(off, sizeof off, "+0x%llx", static_cast<unsigned long long>(module_offset));
  return base + off;
}

const char* to_string(StackKind kind) {
  switch (kind) {
    case StackKind::kOnCpu: return "on";
    case StackKind::kOffCpu: return "off";
    case StackKind::kMemory: return "memory";
    case StackKind::kIo: return "io";
  }
  return "on";
}

StackKind stack_kind_from_string(const std::string& name) {
  if (name == "on" || name.empty()) return StackKind::kOnCpu;  // files before "kind" existed
  if (name == "off") return StackKind::kOffCpu;
  if (name == "memory") return StackKind::kMemory;
  if (name == "io") return StackKind::kIo;
  throw Error("unknown stack kind \"" + name + "\"");
}

const char* to_string(OffCpuState state) {
  switch (state) {
    case OffCpuState::kNone: return "none";
    case OffCpuState::kRunning: return "running";
    case OffCpuState::kInterruptible: return "interruptible";
    case OffCpuState::kUninterruptible: return "uninterruptible";
    case OffCpuState::kOther: return "other";
  }
  return "other";
}

OffCpuState off_cpu_state_from_string(const std::string& name) {
  if (name == "running") return OffCpuState::kRunning;
  if (name == "interruptible") return OffCpuState::kInterruptible;
  if (name == "uninterruptible") return OffCpuState::kUninterruptible;
  if (name == "none" || name.empty()) return OffCpuState::kNone;
  return OffCpuState::kOther;
}

DropCounters& DropCounters::operator+=(const DropCounters& o) {
  kernel_stack_errors += o.kernel_stack_errors;
  user_stack_errors += o.user_stack_errors;
  stack_map_full += o.stack_map_full;
  counts_map_full += o.counts_map_full;
  other += o.other;
  copy_ring_full += o.copy_ring_full;
  return *this;
}

}  // namespace stackwatch
