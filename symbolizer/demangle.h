// C++ (Itanium ABI) demangling of symbol and DWARF linkage names.
#pragma once

#include <string>

namespace stackwatch::symbolizer {

// The demangled form of name, or name itself when it is not a mangled C++ name.
std::string demangle(const char* name);

}  // namespace stackwatch::symbolizer
