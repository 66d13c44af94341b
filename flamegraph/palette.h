// Frame colours. Each palette gives every frame kind its own hue family so
// kernel, program, library, inlined and JIT code read apart at a glance; the
// shade within a family comes from a hash of the name, so a function keeps its
// colour across graphs and runs. Differential colours encode the change.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "flamegraph/frame_kind.h"

namespace stackwatch::flamegraph {

enum class Palette {
  kHot,   // on-CPU: reds, oranges, yellows
  kCool,  // off-CPU: blues and greens
  kMem,   // memory: greens
  kIo,    // I/O: blues and purples
};

// "hot", "cool" (also "off-cpu", "blue"), "mem", "io"; throws stackwatch::Error otherwise.
Palette parse_palette(std::string_view name);
const char* to_string(Palette palette);

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

std::string to_css(Rgb c);  // "rgb(r,g,b)"

Rgb frame_color(Palette palette, FrameKind kind, std::string_view name);

// Differential colour: change is the frame's growth (positive) or shrinkage
// (negative) as a fraction of the largest change in the graph, in [-1, 1].
// Growth is red, shrinkage blue, no change near-white; stronger for larger |change|.
Rgb diff_color(double change);

// Search matches are painted with this colour (also used by the embedded script).
inline constexpr Rgb kSearchColor{230, 0, 230};

}  // namespace stackwatch::flamegraph
