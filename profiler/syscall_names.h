// Names of this architecture's system calls, by number ("write" for 1 on
// x86-64): the table is generated at build time from the kernel headers'
// asm/unistd_64.h (profiler/syscall_names.cmake), so it follows the headers
// the binary was built with. Thread-safe (a constant table).
#pragma once

#include <cstdint>
#include <string>

namespace stackwatch::profiler {

// "fdatasync"; "syscall 999" for a number the headers do not name.
std::string syscall_name(uint32_t nr);

}  // namespace stackwatch::profiler
