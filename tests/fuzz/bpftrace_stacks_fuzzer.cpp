// Fuzz target: bpftrace map output of stack keys
// (flamegraph::parse_bpftrace_stacks), read by `stackwatch flamegraph`.
#include <cstdint>
#include <sstream>

#include "flamegraph/bpftrace_stacks.h"
#include "fuzz_input.h"
#include "recording/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in{std::string(stackwatch::fuzz::as_text(data, size))};
  try {
    stackwatch::flamegraph::parse_bpftrace_stacks(in);
  } catch (const stackwatch::Error&) {
  }
  return 0;
}
