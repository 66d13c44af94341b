// DWARF mode, I/O calls: a call that found the stack-copy ring full was
// counted in the kernel under its frame-pointer stack, which in code built
// without frame pointers ends a frame or two above the system call (the
// wrapper and its caller, see io_sampler.h). Left as they are, such calls
// would draw a second, truncated tower beside the whole stacks of the calls
// that were copied. attribute_copy_fallbacks() gives each such entry's
// calls, bytes and time to the copied stacks of the same thread and
// operation that share its innermost frames (the most of them, at least
// two), in proportion to the calls copied under each: the copies are the
// sample, the kernel's counts the exact totals. An entry that no copy
// explains stays as it is. Totals are kept exactly (integer shares, the
// remainder to the largest).
#pragma once

#include <vector>

#include "profiler/raw_stack.h"

namespace stackwatch::profiler {

// stacks: one interval's stacks of every kind; the copies are those marked
// `unwound`, the fallbacks the other kIo entries that are not block
// requests. Returns the fallback entries merged away.
size_t attribute_copy_fallbacks(std::vector<RawStack>& stacks);

}  // namespace stackwatch::profiler
