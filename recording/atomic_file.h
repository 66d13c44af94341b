// Atomic file replacement: write to a temporary file in the same directory,
// fsync, then rename over the target, so a crash, a kill or a full disk leaves
// either the previous complete file or the new complete one, never a torn one.
#pragma once

#include <string>
#include <string_view>

namespace stackwatch {

// Throws stackwatch::Error with a message naming the path on failure; the
// previous file (if any) is untouched in that case.
void write_file_atomically(const std::string& path, std::string_view contents);

}  // namespace stackwatch
