// Demangling through the C++ runtime's own demangler, so names match what
// addr2line -C and llvm-symbolizer print.
#include "symbolizer/demangle.h"

#include <cxxabi.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace stackwatch::symbolizer {

std::string demangle(const char* name) {
  if (name == nullptr) return {};
  if (std::strncmp(name, "_Z", 2) != 0) return name;
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                                  &std::free);
  if (status != 0 || !out) return name;
  return out.get();
}

}  // namespace stackwatch::symbolizer
