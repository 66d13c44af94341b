// Helpers for the symbolizer tests: fixture paths, marker line numbers read
// from the fixture sources, ELF symbols read straight with libelf (so test
// inputs do not come from the code under test), and a child process runner.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace stackwatch::symbolizer::testing {

std::string fixture_bin(const std::string& name);  // built fixture
std::string fixture_src(const std::string& name);  // fixture source or text

// 1-based line of the only line of fixture source file that contains marker.
uint32_t marker_line(const std::string& source, const std::string& marker);

struct SymbolRange {
  uint64_t vaddr = 0;
  uint64_t size = 0;
};
// .symtab (else .dynsym) symbol of an ELF file; throws if missing.
SymbolRange elf_symbol(const std::string& path, const std::string& name);
// Raw p_vaddr/p_offset of the executable PT_LOAD of an ELF file.
struct ExecSegment {
  uint64_t vaddr = 0;
  uint64_t offset = 0;
};
ExecSegment exec_segment(const std::string& path);

// Runs a program with a pipe on stdin and stdout; kill() ends and reaps it.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  std::string read_line();
  void kill_and_reap();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
};

// stdout of a shell command.
std::string run_command(const std::string& command);

}  // namespace stackwatch::symbolizer::testing
