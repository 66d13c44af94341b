// Fuzz target: /proc/stat text (load::parse_proc_stat), read every interval:
// it never throws.
#include <cstdint>

#include "fuzz_input.h"
#include "profiler/proc_stat_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)stackwatch::load::parse_proc_stat(stackwatch::fuzz::as_text(data, size));
  return 0;
}
