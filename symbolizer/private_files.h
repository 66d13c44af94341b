// The files the symbolizer keeps outside the output directory (the kernel
// symbol cache, the DWARF image cache): in a directory that is this user's
// alone, each file this user's alone, or not used at all
// (docs/threat-model.md: a file anyone else could write would let them
// choose the names in our stacks).
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace stackwatch::symbolizer {

// st is of type (S_IFREG, S_IFDIR), this user's, with no group or other access.
bool private_to_us(const struct stat& st, mode_t type);
// dir is a directory private_to_us (not a symlink to one); with make, it is
// made 0700 first when missing.
bool private_directory(const std::string& dir, bool make);
// All n bytes, through EINTR and short writes / reads; false on any error
// (or, reading, the end of the file).
bool write_exact(int fd, const void* data, size_t n);
bool pread_exact(int fd, void* out, size_t n, uint64_t offset);

}  // namespace stackwatch::symbolizer
