// The generated system call table (see syscall_names.h).
#include "profiler/syscall_names.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace stackwatch::profiler {

namespace {

struct Entry {
  uint32_t nr;
  const char* name;
};

// Sorted by number: {0, "read"}, {1, "write"}, ...
constexpr Entry kSyscalls[] = {
#include "syscall_names.inc"
};

}  // namespace

std::string syscall_name(uint32_t nr) {
  auto it = std::lower_bound(std::begin(kSyscalls), std::end(kSyscalls), nr,
                             [](const Entry& e, uint32_t n) { return e.nr < n; });
  if (it != std::end(kSyscalls) && it->nr == nr) return it->name;
  return "syscall " + std::to_string(nr);
}

}  // namespace stackwatch::profiler
