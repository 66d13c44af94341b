// Where a module's separate debug info lives: under DEBUG_ROOT/.build-id/xx/
// rest.debug (by build-id), or the file named by .gnu_debuglink next to the
// binary, in its .debug/ directory, or under DEBUG_ROOT/<binary's directory>.
// A candidate whose build-id differs from the binary's is rejected.
#pragma once

#include <memory>
#include <string>

#include "symbolizer/elf_file.h"

namespace stackwatch::symbolizer {

// The debug file of main, or nullptr. how is set to "build-id" or "debuglink".
std::unique_ptr<ElfFile> find_debug_file(const ElfFile& main, const std::string& debug_root, std::string& how);

}  // namespace stackwatch::symbolizer
