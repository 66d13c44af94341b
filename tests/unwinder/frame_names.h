// Names of the unwinder's output addresses, for the tests: the module's
// basename and the ELF function symbol containing the address, from .symtab
// (of the file, else of its separate debug file) or .dynsym. Deliberately
// independent of the symbolizer stage, so an unwinder test fails only for an
// unwinder bug.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "symbolizer/symbolizer.h"

namespace stackwatch::unwinder::testing {

struct FrameName {
  std::string module;    // "libc.so.6", "unw_fixture_nofp", "[vdso]", "" if unmapped
  std::string function;  // "" if no symbol contains the address
};

class FrameNamer {
 public:
  explicit FrameNamer(std::vector<symbolizer::Mapping> maps) : maps_(std::move(maps)) {}
  // For return addresses (all but the innermost) the call, one byte before, is named.
  FrameName name(uint64_t address, bool is_return_address);
  std::vector<FrameName> names(const std::vector<uint64_t>& ips);

 private:
  struct Symbols {
    std::map<uint64_t, std::pair<uint64_t, std::string>> by_start;  // start -> (size, name)
    std::vector<std::pair<uint64_t, uint64_t>> load_offsets;         // (offset, vaddr)
  };
  const Symbols& symbols_for(const std::string& path);

  std::vector<symbolizer::Mapping> maps_;
  std::map<std::string, Symbols> cache_;
};

// "module:function" per frame, for failure messages.
std::string describe(const std::vector<FrameName>& frames);

}  // namespace stackwatch::unwinder::testing
