// Fuzz target: /proc/kallsyms text (symbolizer::Kallsyms::parse) and lookups
// in what it parsed, at addresses taken from the input itself.
#include <cstdint>
#include <cstring>

#include "fuzz_input.h"
#include "symbolizer/symbolizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using stackwatch::symbolizer::Kallsyms;
  Kallsyms syms = Kallsyms::parse(stackwatch::fuzz::as_text(data, size));
  uint64_t probes[] = {0, 1, ~0ull, 0xffffffff81000000ull, 0xffffffffc0000000ull};
  for (uint64_t a : probes) (void)syms.find(a);
  // The input's last 8 bytes as an address: lands near parsed symbols often.
  if (size >= 8) {
    uint64_t a;
    std::memcpy(&a, data + size - 8, 8);
    (void)syms.find(a);
  }
  (void)syms.has_addresses();
  return 0;
}
