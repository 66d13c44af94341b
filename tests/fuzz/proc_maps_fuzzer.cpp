// Fuzz target: /proc/PID/maps text (symbolizer::parse_proc_maps). Malformed
// lines are skipped, never fatal: no exception may escape.
#include <cstdint>

#include "fuzz_input.h"
#include "symbolizer/symbolizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto maps = stackwatch::symbolizer::parse_proc_maps(stackwatch::fuzz::as_text(data, size));
  for (const auto& m : maps) {
    (void)m.executable();
    (void)m.file_offset_of(m.start);
  }
  return 0;
}
