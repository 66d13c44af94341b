// Fuzz target: /proc/pressure/{cpu,io,memory} text (load::parse_pressure):
// it never throws.
#include <cstdint>

#include "fuzz_input.h"
#include "profiler/pressure_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)stackwatch::load::parse_pressure(stackwatch::fuzz::as_text(data, size));
  return 0;
}
