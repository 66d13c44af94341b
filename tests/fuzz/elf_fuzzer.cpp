// Fuzz target: ELF and DWARF of any binary stackwatch is pointed at
// (`stackwatch symbolize -e FILE`, and every module a profiled process maps):
// Symbolizer::symbolize_file through libelf/libdw and our own indexes
// (symbol tables, .eh_frame bounds, DWARF ranges, line tables, inlines).
// A file that is not ELF is a stackwatch::Error; any other outcome than
// frames or that error is a bug.
#include <cstdint>
#include <cstring>

#include "fuzz_input.h"
#include "recording/error.h"
#include "symbolizer/symbolizer.h"

namespace {

uint64_t read_u64(const uint8_t* data, size_t size, size_t at) {
  uint64_t v = 0;
  if (size >= 8 && at <= size - 8) std::memcpy(&v, data + at, 8);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stackwatch;
  fuzz::MemoryFile file(data, size);
  symbolizer::Options options;
  options.debug_root = "/nonexistent";  // only the input itself, no separate debug files
  options.kallsyms_path = "/nonexistent";
  options.kallsyms_cache_dir = "";
  options.image_cache_dir = "";  // inputs are throwaway files: nothing to keep
  options.max_cached_modules = 1;
  symbolizer::Symbolizer symbolizer(options);
  // The entry point (e_entry of a 64-bit header) and around it, where the
  // seeds' functions are (0x6b0: sum_squares in the small PIE seeds), common
  // text starts, and an address the input chooses (its last 8 bytes).
  uint64_t entry = read_u64(data, size, 24);
  uint64_t addresses[] = {entry,  entry + 0x10, entry - 0x40, 0x6b0,
                          0x1000, 0x1130,       0x401000,     read_u64(data, size, size - 8)};
  try {
    for (uint64_t a : addresses) {
      auto frames = symbolizer.symbolize_file(file.path(), a);
      if (frames.empty()) __builtin_trap();  // "never empty"
    }
  } catch (const Error&) {
  }
  return 0;
}
