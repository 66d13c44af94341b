// Where to attach a uprobe: a function given by name (mangled or demangled)
// or by address, resolved to an ELF file and the file offset of its entry.
//
// With a pid, the process's mapped executable files are searched (the main
// program first, then its libraries, the C runtime last); with a binary, that
// file only. Addresses are runtime addresses with a pid, ELF virtual
// addresses with a binary, and name the function that contains them (a
// uretprobe must sit at a function's entry). Unknown, ambiguous and
// unprobeable functions (kernel, vDSO, an IFUNC resolver, no code) are a
// stackwatch::Error whose message says what to do instead.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stackwatch::profiler {

struct ProbeTarget {
  std::string requested;    // as the user gave it
  std::string function;     // demangled name of the function probed
  std::string symbol;       // its ELF symbol (mangled)
  std::string binary_path;  // the ELF file to attach to
  uint64_t file_offset = 0; // of the function's entry
  uint64_t size = 0;        // bytes of code (0: unknown)
};

// Resolves FUNC in process pid (binary empty) or in binary (pid may be -1 or
// a process that maps it; the path is used as given). Throws stackwatch::Error.
ProbeTarget resolve_probe_target(const std::string& func, int pid, const std::string& binary);

// The functions named `func` in one ELF file (every match, deduplicated by
// address); empty when there is none. Throws stackwatch::Error when the
// file cannot be read as ELF.
std::vector<ProbeTarget> find_functions_in_elf(const std::string& path, const std::string& func);

// The function containing ELF virtual address `vaddr` of path; throws when none does.
ProbeTarget function_at_vaddr(const std::string& path, uint64_t vaddr);

// "ns::f(int)" -> "ns::f": the name without its parameter list.
std::string without_parameters(const std::string& demangled);

}  // namespace stackwatch::profiler
