// Fuzz target: /proc/loadavg text (load::parse_loadavg): it never throws.
#include <cstdint>

#include "fuzz_input.h"
#include "profiler/loadavg_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)stackwatch::load::parse_loadavg(stackwatch::fuzz::as_text(data, size));
  return 0;
}
