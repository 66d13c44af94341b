// Small synthetic stacks for the localizer tests: frames are written
// outermost first, the way a person reads a call path, and stored innermost
// first as StackSample wants.
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "recording/recording.h"

namespace stackwatch::localize::testing {

inline Frame user(const std::string& name, const std::string& module = "/opt/app/bin/app") {
  Frame f;
  f.function = name;
  f.module = module;
  return f;
}
inline Frame libc(const std::string& name) { return user(name, "/usr/lib/x86_64-linux-gnu/libc.so.6"); }
inline Frame kern(const std::string& name) {
  Frame f;
  f.function = name;
  f.kernel = true;
  return f;
}
inline Frame inlined(const std::string& name) {
  Frame f = user(name);
  f.inlined = true;
  return f;
}

inline std::vector<Frame> path(std::initializer_list<Frame> outermost_first) {
  return std::vector<Frame>(std::rbegin(outermost_first), std::rend(outermost_first));
}

inline StackSample on_cpu(std::vector<Frame> frames, uint64_t samples, const std::string& process = "app",
                          uint32_t tgid = 100) {
  StackSample s;
  s.tgid = tgid;
  s.tid = tgid;
  s.process_name = process;
  s.thread_name = process;
  s.kind = StackKind::kOnCpu;
  s.frames = std::move(frames);
  s.count = samples;
  return s;
}

inline StackSample off_cpu(std::vector<Frame> frames, uint64_t ns, OffCpuState state, uint64_t events = 1,
                           const std::string& process = "app", uint32_t tgid = 100) {
  StackSample s = on_cpu(std::move(frames), events, process, tgid);
  s.kind = StackKind::kOffCpu;
  s.off_ns = ns;
  s.off_state = state;
  return s;
}

// The kernel path of a write + fdatasync on ext4, outermost first.
inline std::vector<Frame> fdatasync_kernel_path() {
  return {kern("entry_SYSCALL_64_after_hwframe"), kern("do_syscall_64"), kern("__x64_sys_fdatasync"),
          kern("do_fsync"), kern("vfs_fsync_range"), kern("ext4_sync_file"), kern("jbd2_complete_transaction"),
          kern("jbd2_log_wait_commit"), kern("schedule"), kern("__schedule")};
}

// user frames (outermost first) + kernel frames (outermost first), stored innermost first.
inline std::vector<Frame> with_kernel(std::vector<Frame> user_outermost_first, const std::vector<Frame>& kernel) {
  std::vector<Frame> all = std::move(user_outermost_first);
  all.insert(all.end(), kernel.begin(), kernel.end());
  return std::vector<Frame>(all.rbegin(), all.rend());
}

}  // namespace stackwatch::localize::testing
