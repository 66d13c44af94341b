// bpftrace's map output of stack keys, e.g. from
//   bpftrace -e 'profile:hz:99 { @[kstack, ustack, comm] = count(); }'
// which prints blocks like
//   @[
//       do_syscall_64+56
//       entry_SYSCALL_64_after_hwframe+99
//   ,
//       __libc_write+20
//       main+42
//   , myprog]: 17
// Stacks are innermost first; they become one folded stack, outermost first,
// with the scalar keys (comm, pid) as the outermost frames.
#pragma once

#include <iosfwd>
#include <vector>

#include "flamegraph/folded.h"

namespace stackwatch::flamegraph {

std::vector<FoldedStack> parse_bpftrace_stacks(std::istream& in);

// Reads a stacks file of any kind we know: bpftrace map output (first
// non-blank, non-"Attaching" line starts with '@'), else folded lines.
// "-" reads stdin. Throws stackwatch::Error naming the file on failure.
std::vector<FoldedStack> read_stacks_file(const std::string& path);

}  // namespace stackwatch::flamegraph
