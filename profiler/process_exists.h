// Whether a process still exists: kill(pid, 0) succeeds, or fails for lack
// of permission only. A zombie exists (its parent has not reaped it yet).
// Used wherever the record loop retires what it keeps per process.
#pragma once

#include <signal.h>

#include <cerrno>
#include <cstdint>

namespace stackwatch::profiler {

inline bool process_exists(uint32_t tgid) { return ::kill(static_cast<pid_t>(tgid), 0) == 0 || errno == EPERM; }

}  // namespace stackwatch::profiler
