// Two files holding the same code at the same addresses (a fixture and its
// -gz twin, a file and its cached image) symbolize alike: every address of
// each named function, every frame's function, file, line and column.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "symbolizer/symbolizer.h"
#include "test_support.h"

namespace stackwatch::symbolizer::testing {

struct Compared {
  size_t addresses = 0;
  size_t inlined = 0;  // inlined frames among them: the chains were compared too
};

inline Compared expect_same_frames(Symbolizer& a, const std::string& path_a, Symbolizer& b, const std::string& path_b,
                                   const std::vector<std::string>& functions) {
  Compared c;
  for (const std::string& function : functions) {
    auto range = elf_symbol(path_a, function);
    for (uint64_t addr = range.vaddr; addr < range.vaddr + range.size; ++addr) {
      auto x = a.symbolize_file(path_a, addr);
      auto y = b.symbolize_file(path_b, addr);
      EXPECT_EQ(x.size(), y.size()) << std::hex << addr;
      if (x.size() != y.size()) return c;
      for (size_t i = 0; i < x.size(); ++i) {
        EXPECT_EQ(x[i].function, y[i].function) << std::hex << addr;
        EXPECT_EQ(x[i].file, y[i].file) << std::hex << addr;
        EXPECT_EQ(x[i].line, y[i].line) << std::hex << addr;
        EXPECT_EQ(x[i].column, y[i].column) << std::hex << addr;
        EXPECT_FALSE(x[i].file.empty()) << std::hex << addr;
        c.inlined += x[i].inlined;
      }
      ++c.addresses;
    }
  }
  return c;
}

}  // namespace stackwatch::symbolizer::testing
