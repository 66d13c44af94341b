// Fuzz target: folded stack files (flamegraph::parse_folded), which
// `stackwatch flamegraph` reads from any tool. Malformed text may throw
// stackwatch::Error (a one-line message); anything else is a bug. What
// parses must survive a write/parse round trip with the same weights.
#include <cstdint>
#include <sstream>

#include "flamegraph/folded.h"
#include "fuzz_input.h"
#include "recording/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stackwatch;
  std::istringstream in{std::string(fuzz::as_text(data, size))};
  std::vector<flamegraph::FoldedStack> stacks;
  try {
    stacks = flamegraph::parse_folded(in);
  } catch (const Error&) {
    return 0;
  }
  std::istringstream again{flamegraph::folded_to_string(stacks)};
  std::vector<flamegraph::FoldedStack> reparsed = flamegraph::parse_folded(again);
  uint64_t before = 0, after = 0;
  for (const auto& s : stacks) before += s.weight;
  for (const auto& s : reparsed) after += s.weight;
  if (before != after) __builtin_trap();  // the writer lost or invented weight
  return 0;
}
