// Folded stacks: `comm;outermost;...;innermost WEIGHT`, one stack a line,
// the format flamegraph.pl, inferno and speedscope read.
//
// Frame annotations, as stackcollapse-perf.pl writes them and as our files
// use them: a `_[k]` suffix marks a kernel frame, `_[i]` an inlined one (inlined
// into the frame before it), `_[j]` JIT code. Readers that do not know them
// show them as part of the name; flamegraph/ colours by them.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace stackwatch::flamegraph {

struct FoldedStack {
  std::vector<std::string> frames;  // outermost first (comm first for ours)
  uint64_t weight = 0;
};

// A frame name made safe for a folded line: ';' (the separator) becomes ':',
// and control characters (newlines, tabs) become spaces. Spaces stay: readers
// split the weight off at the last space.
std::string escape_frame(std::string_view name);

// Writes one line per stack, in the order given; stacks with weight 0 are skipped.
void write_folded(std::ostream& out, const std::vector<FoldedStack>& stacks);
std::string folded_to_string(const std::vector<FoldedStack>& stacks);

// Parses folded text: ours, stackcollapse-perf.pl's, bpftrace's. Blank lines
// and lines starting with '#' are skipped. Throws stackwatch::Error naming
// the line number for a line with no weight.
std::vector<FoldedStack> parse_folded(std::istream& in);

}  // namespace stackwatch::flamegraph
