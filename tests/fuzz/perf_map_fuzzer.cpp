// Fuzz target: JIT symbol maps /tmp/perf-PID.map (symbolizer::PerfMap),
// which any process can write and stackwatch, as root, reads.
#include <cstdint>
#include <cstring>

#include "fuzz_input.h"
#include "symbolizer/perf_map.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using stackwatch::symbolizer::PerfMap;
  PerfMap map = PerfMap::parse(stackwatch::fuzz::as_text(data, size));
  uint64_t probes[] = {0, 0x1000, 0x7f0000000000ull, ~0ull};
  for (uint64_t a : probes) (void)map.find(a);
  if (size >= 8) {
    uint64_t a;
    std::memcpy(&a, data + size - 8, 8);
    (void)map.find(a);
  }
  return 0;
}
