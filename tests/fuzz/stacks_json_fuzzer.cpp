// Fuzz target: recordings (stacks.json, recording/stacks_json.h), read by
// `stackwatch localize` and the flame graph commands from files anyone may
// hand over. Not JSON at all is nlohmann's to report; JSON of the wrong shape
// must be a stackwatch::Error, never another exception or a crash. What
// parses must survive a write/parse round trip.
#include <cstdint>

#include "fuzz_input.h"
#include "recording/error.h"
#include "recording/stacks_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stackwatch;
  nlohmann::json doc = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;
  std::vector<StackSample> stacks;
  StacksFileMeta meta;
  try {
    stacks = stacks_from_json(doc, &meta);
  } catch (const Error&) {
    return 0;
  }
  std::vector<StackSample> again = stacks_from_json(stacks_to_json(stacks, meta));
  if (again.size() != stacks.size()) __builtin_trap();  // the writer lost or invented stacks
  return 0;
}
