// Agreement with elfutils: for every byte of the fixture functions, our
// function names and file:line equal `eu-addr2line -f -i -C`'s, frame by
// frame. Where they must differ, the test says why: eu-addr2line loses the
// inlined frames of LTO code (DESIGN.md), so there only the outermost
// function must agree and our chain must be at least as long; the full LTO
// chains are checked against llvm-symbolizer instead, which keeps them.
#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <sstream>

#include "symbolizer/symbolizer.h"
#include "test_support.h"

namespace stackwatch::symbolizer {
namespace {

using testing::elf_symbol;
using testing::fixture_bin;

struct ToolFrame {
  std::string function;
  std::string location;  // "file:line"
};

// Frames per address from one eu-addr2line run over all addresses.
std::vector<std::vector<ToolFrame>> eu_addr2line(const std::string& binary, const std::vector<uint64_t>& addresses) {
  std::string cmd = std::string(EU_ADDR2LINE) + " -a -f -i -C -e '" + binary + "'";
  for (uint64_t a : addresses) {
    char buf[24];
    std::snprintf(buf, sizeof buf, " 0x%" PRIx64, a);
    cmd += buf;
  }
  std::istringstream out(testing::run_command(cmd));
  std::vector<std::vector<ToolFrame>> result;
  std::string line;
  while (std::getline(out, line)) {
    if (line.starts_with("0x")) {
      result.emplace_back();
      continue;
    }
    ToolFrame f;
    // "inner_step inlined at /x.cpp:31:10 in outer_entry" -> "inner_step"
    f.function = line.substr(0, line.find(" inlined at "));
    std::string location;
    std::getline(out, location);
    // "/x.cpp:27:24" -> "/x.cpp:27"; "??:0" stays.
    size_t last = location.rfind(':');
    if (last != std::string::npos && location.find(':') != last) location.resize(last);
    f.location = location;
    if (!result.empty()) result.back().push_back(f);
  }
  return result;
}

// The same from llvm-symbolizer --inlining: name / file:line:col pairs, a
// blank line after each address.
std::vector<std::vector<ToolFrame>> llvm_symbolizer(const std::string& binary, const std::vector<uint64_t>& addresses) {
  std::string cmd = std::string(LLVM_SYMBOLIZER) + " --inlining --demangle --obj='" + binary + "'";
  for (uint64_t a : addresses) {
    char buf[24];
    std::snprintf(buf, sizeof buf, " 0x%" PRIx64, a);
    cmd += buf;
  }
  std::istringstream out(testing::run_command(cmd));
  std::vector<std::vector<ToolFrame>> result(1);
  std::string line;
  while (std::getline(out, line)) {
    if (line.empty()) {
      result.emplace_back();
      continue;
    }
    ToolFrame f;
    f.function = line;
    std::string location;
    std::getline(out, location);
    size_t last = location.rfind(':');
    if (last != std::string::npos && location.find(':') != last) location.resize(last);
    f.location = location;  // "??:0:0" became "??:0" above
    result.back().push_back(f);
  }
  while (!result.empty() && result.back().empty()) result.pop_back();
  return result;
}

std::vector<ToolFrame> ours(Symbolizer& sym, const std::string& binary, uint64_t address) {
  std::vector<ToolFrame> out;
  for (const Frame& f : sym.symbolize_file(binary, address))
    out.push_back({f.function.empty() ? "??" : f.function,
                   f.file.empty() ? "??:0" : f.file + ":" + std::to_string(f.line)});
  return out;
}

std::string str(const std::vector<ToolFrame>& frames) {
  std::string s;
  for (const ToolFrame& f : frames) s += f.function + " @ " + f.location + "; ";
  return s;
}

std::vector<uint64_t> every_byte(const std::string& binary, const std::string& symbol) {
  auto fn = elf_symbol(binary, symbol);
  std::vector<uint64_t> out;
  for (uint64_t a = fn.vaddr; a < fn.vaddr + fn.size; ++a) out.push_back(a);
  return out;
}

void expect_agreement(const std::string& binary, const std::vector<std::string>& symbols) {
  Options o;
  o.debug_root = "/nonexistent";
  Symbolizer sym(o);
  for (const std::string& symbol : symbols) {
    auto addresses = every_byte(binary, symbol);
    auto tool = eu_addr2line(binary, addresses);
    ASSERT_EQ(tool.size(), addresses.size());
    size_t inlined = 0;
    for (size_t i = 0; i < addresses.size(); ++i) {
      auto mine = ours(sym, binary, addresses[i]);
      EXPECT_EQ(str(mine), str(tool[i])) << symbol << " at 0x" << std::hex << addresses[i];
      inlined += mine.size() > 1;
    }
    if (symbol == "outer_entry") {
      EXPECT_GT(inlined, 0u) << "the fixture lost its inlining";
    }
  }
}

TEST(AgreesWithEuAddr2line, InlineFixturePie) {
  expect_agreement(fixture_bin("symfix_pie"), {"outer_entry", "main", "_ZNK8geometry6ScalerIlE5scaleEl"});
}

TEST(AgreesWithEuAddr2line, InlineFixtureNonPie) { expect_agreement(fixture_bin("symfix_nopie"), {"outer_entry", "main"}); }

TEST(AgreesWithEuAddr2line, SharedLibrary) { expect_agreement(fixture_bin("libsymfix_shared.so"), {"shared_work"}); }

TEST(AgreesWithEuAddr2line, LtoOutermostFunctionOnlyBecauseEuAddr2lineLosesInlines) {
  std::string binary = fixture_bin("symfix_lto");
  Options o;
  o.debug_root = "/nonexistent";
  Symbolizer sym(o);
  auto addresses = every_byte(binary, "lto_outer");
  auto tool = eu_addr2line(binary, addresses);
  ASSERT_EQ(tool.size(), addresses.size());
  size_t longer = 0;
  for (size_t i = 0; i < addresses.size(); ++i) {
    auto mine = ours(sym, binary, addresses[i]);
    ASSERT_FALSE(tool[i].empty());
    EXPECT_EQ(mine.back().function, tool[i].back().function) << "at 0x" << std::hex << addresses[i];
    EXPECT_GE(mine.size(), tool[i].size());
    longer += mine.size() > tool[i].size();
  }
  // The point of the fixture: we keep inline chains that eu-addr2line drops.
  EXPECT_GT(longer, 0u);
}

TEST(AgreesWithLlvmSymbolizer, LtoInlineChains) {
  std::string binary = fixture_bin("symfix_lto");
  Options o;
  o.debug_root = "/nonexistent";
  Symbolizer sym(o);
  auto addresses = every_byte(binary, "lto_outer");
  auto tool = llvm_symbolizer(binary, addresses);
  ASSERT_EQ(tool.size(), addresses.size());
  size_t inlined = 0;
  for (size_t i = 0; i < addresses.size(); ++i) {
    auto mine = ours(sym, binary, addresses[i]);
    EXPECT_EQ(str(mine), str(tool[i])) << "at 0x" << std::hex << addresses[i];
    inlined += mine.size() > 2;
  }
  EXPECT_GT(inlined, 0u) << "the fixture lost its cross-unit inlining";
}

}  // namespace
}  // namespace stackwatch::symbolizer
