// Frame kinds: what a frame name says about where the code lives (kernel,
// main program, shared library, inlined, JIT), so the palette can tell them
// apart. Folded files carry no module column, so this reads the annotations
// stackcollapse-perf.pl and stackwatch append (`_[k]` kernel, `_[i]` inlined,
// `_[j]` JIT) and falls back to well-known kernel entry points and library
// file names.
#pragma once

#include <string_view>

#include "recording/recording.h"

namespace stackwatch::flamegraph {

enum class FrameKind { kUser, kLibrary, kKernel, kInlined, kJit, kUnknown };

const char* to_string(FrameKind kind);  // "user", "library", "kernel", ...

// Kind of a frame name as found in a folded file.
FrameKind classify_frame(std::string_view name);

// Kind of a resolved frame: uses its module, not guesses from the name.
FrameKind classify_frame(const Frame& frame);

// The name without a trailing `_[k]`, `_[i]`, `_[j]` or `_[w]` annotation.
std::string_view strip_annotation(std::string_view name);

}  // namespace stackwatch::flamegraph
