// `stackwatch symbolize`: addr2line -a -f -i -C's output format, addresses
// from arguments or stdin, -e and -p, and one clear line for bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>

#include "symbolizer/symbolizer.h"
#include "test_support.h"

namespace stackwatch::symbolizer {
namespace {

using testing::fixture_bin;
using testing::fixture_src;
using testing::marker_line;

struct Result {
  int status = -1;
  std::string out;
};

Result run(const std::string& args) {
  Result r;
  std::string cmd = std::string(SYMBOLIZE_CLI) + " symbolize " + args + " 2>&1; echo \"exit=$?\"";
  r.out = testing::run_command(cmd);
  size_t pos = r.out.rfind("exit=");
  r.status = std::stoi(r.out.substr(pos + 5));
  r.out.resize(pos);
  return r;
}

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

// The expected text for one address, from the library.
std::string expected(const std::string& binary, uint64_t address) {
  Options o;
  Symbolizer sym(o);
  char line[32];
  std::snprintf(line, sizeof line, "0x%016" PRIx64 "\n", address);
  std::string out = line;
  for (const Frame& f : sym.symbolize_file(binary, address)) {
    out += (f.function.empty() ? "??" : f.function) + "\n";
    out += f.file.empty() ? "??:0\n" : f.file + ":" + std::to_string(f.line) + "\n";
  }
  return out;
}

TEST(SymbolizeCommand, PrintsAddr2lineFormat) {
  std::string bin = fixture_bin("symfix_pie");
  auto fn = testing::elf_symbol(bin, "_ZNK8geometry6ScalerIlE5scaleEl");
  Result r = run("-e " + bin + " " + hex(fn.vaddr) + " 10");
  EXPECT_EQ(r.status, 0) << r.out;
  char head[32];
  std::snprintf(head, sizeof head, "0x%016" PRIx64 "\n", fn.vaddr);
  std::string src = fixture_src("inline_fixture.cpp");
  EXPECT_EQ(r.out, std::string(head) + "geometry::Scaler<long>::scale(long) const\n" + src + ":" +
                       std::to_string(marker_line(src, "MARK:scale")) + "\n" +
                       "0x0000000000000010\n??\n??:0\n");
}

TEST(SymbolizeCommand, InlineChainsFromStdinMatchTheLibrary) {
  std::string bin = fixture_bin("symfix_pie");
  auto fn = testing::elf_symbol(bin, "outer_entry");
  std::string input, want;
  for (uint64_t a = fn.vaddr; a < fn.vaddr + fn.size; a += 3) {
    input += hex(a) + "\n";
    want += expected(bin, a);
  }
  std::string path = "/tmp/symbolize-cli-" + std::to_string(getpid());
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs(input.c_str(), f);
  std::fclose(f);
  Result r = run("-e " + bin + " < " + path);
  std::remove(path.c_str());
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, want);
  EXPECT_NE(r.out.find("inner_step\n"), std::string::npos);  // the inlined frames are there
}

TEST(SymbolizeCommand, ByPid) {
  testing::Child child({fixture_bin("symfix_pie"), "--wait"});
  unsigned long long outer = 0, shared = 0;
  ASSERT_EQ(std::sscanf(child.read_line().c_str(), "ready %llx %llx", &outer, &shared), 2);
  Result r = run("-p " + std::to_string(child.pid()) + " " + hex(shared));
  EXPECT_EQ(r.status, 0) << r.out;
  std::string src = fixture_src("shared_lib.cpp");
  EXPECT_NE(r.out.find("\nshared_work\n" + src + ":"), std::string::npos) << r.out;
}

TEST(SymbolizeCommand, BadInputIsOneClearLine) {
  Result r = run("-e /nonexistent/file 0x10");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "stackwatch: cannot open /nonexistent/file: No such file or directory\n");
  r = run("-e " + fixture_src("maps.txt") + " 0x10");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "stackwatch: " + fixture_src("maps.txt") + " is not an ELF file\n");
  r = run("-e " + fixture_bin("symfix_pie") + " 0x10 0xzz");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "stackwatch: malformed address '0xzz' (expected hex, e.g. 0x4005d0)\n");
  r = run("-p 2147483632 0x10");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "stackwatch: no process with pid 2147483632 (or its maps are not readable)\n");
  r = run("0x10");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "stackwatch: symbolize needs exactly one of -e FILE or -p PID\n");
}

}  // namespace
}  // namespace stackwatch::symbolizer
