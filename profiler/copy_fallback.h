// DWARF mode, I/O calls and page faults: an event that found the stack-copy
// ring full was counted in the kernel under its frame-pointer stack, which
// in code built without frame pointers ends a frame or two above the system
// call or the faulting instruction. Left as they are, such events would
// draw a second, truncated tower beside the whole stacks of the events that
// were copied. attribute_copy_fallbacks() gives each such entry's calls,
// bytes and time to the copied stacks of the same thread and detail that
// share its innermost frames (the most of them; for a system call at least
// its site and caller, for a fault the faulting instruction), in proportion
// to the events copied under each: the copies are the sample, the kernel's
// counts the exact totals. An entry that no copy explains stays as it is.
// Totals are kept exactly (integer shares, the remainder to the largest).
#pragma once

#include <vector>

#include "profiler/raw_stack.h"

namespace stackwatch::profiler {

// stacks: one interval's stacks of every kind; the copies are those marked
// `unwound`, the fallbacks the other kIo entries that are not block
// requests and the other page-fault entries. Returns the fallback entries
// merged away.
size_t attribute_copy_fallbacks(std::vector<RawStack>& stacks);

}  // namespace stackwatch::profiler
