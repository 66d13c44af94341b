// Palettes and differential colours (see palette.h).
#include "flamegraph/palette.h"

#include <algorithm>
#include <cmath>

#include "recording/error.h"

namespace stackwatch::flamegraph {
namespace {

// A shade in [0, 1) from the name, weighted to its first characters like
// flamegraph.pl's --hash, so related names (same namespace) get close shades.
// Annotations and offsets are ignored so "foo_[k]" and "foo" look alike.
double name_shade(std::string_view name, bool reverse) {
  name = strip_annotation(name);
  if (auto colon = name.rfind("::"); !reverse && colon != std::string_view::npos) {
    // Shade C++ names by the function, not by the namespace every frame shares.
    name = name.substr(colon + 2);
  }
  double vector = 0, weight = 1, max = 1, mod = 10;
  size_t n = std::min<size_t>(name.size(), 8);
  for (size_t k = 0; k < n; ++k) {
    unsigned char c = static_cast<unsigned char>(reverse ? name[name.size() - 1 - k] : name[k]);
    double i = std::fmod(static_cast<double>(c), mod);
    vector += (i / (mod - 1)) * weight;
    mod += 1;
    max += weight;
    weight *= 0.70;
  }
  return 1.0 - vector / max;
}

uint8_t channel(double base, double span, double v) {
  return static_cast<uint8_t>(std::clamp(base + span * v, 0.0, 255.0));
}

}  // namespace

Palette parse_palette(std::string_view name) {
  if (name == "hot" || name == "on-cpu") return Palette::kHot;
  if (name == "cool" || name == "off-cpu" || name == "blue") return Palette::kCool;
  if (name == "mem") return Palette::kMem;
  if (name == "io") return Palette::kIo;
  throw Error("unknown colour palette \"" + std::string(name) + "\" (use hot, cool, mem or io)");
}

const char* to_string(Palette palette) {
  switch (palette) {
    case Palette::kHot: return "hot";
    case Palette::kCool: return "cool";
    case Palette::kMem: return "mem";
    case Palette::kIo: return "io";
  }
  return "hot";
}

std::string to_css(Rgb c) {
  return "rgb(" + std::to_string(c.r) + "," + std::to_string(c.g) + "," + std::to_string(c.b) + ")";
}

Rgb frame_color(Palette palette, FrameKind kind, std::string_view name) {
  const double v1 = name_shade(name, false), v2 = name_shade(name, true);
  if (kind == FrameKind::kUnknown) {  // grey in every palette: nothing is known
    uint8_t g = channel(170, 40, v1);
    return {g, g, g};
  }
  switch (palette) {
    case Palette::kHot:
      switch (kind) {
        case FrameKind::kKernel: return {channel(190, 65, v1), channel(90, 65, v1), 0};         // orange
        case FrameKind::kLibrary: return {channel(205, 50, v1), channel(175, 55, v2), 50};    // yellow
        case FrameKind::kInlined: return {channel(50, 60, v1), channel(165, 55, v1), channel(165, 55, v1)};  // aqua
        case FrameKind::kJit: return {channel(0, 60, v2), channel(190, 50, v1), channel(0, 60, v2)};  // green
        default: return {channel(205, 50, v1), channel(0, 120, v2), channel(0, 55, v2)};      // red
      }
    case Palette::kCool:
      switch (kind) {
        case FrameKind::kKernel: return {channel(0, 60, v2), channel(150, 60, v1), channel(110, 50, v1)};   // teal
        case FrameKind::kLibrary: return {channel(110, 50, v1), channel(110, 50, v1), channel(200, 55, v2)};  // lavender
        case FrameKind::kInlined: return {channel(120, 50, v1), channel(200, 55, v1), channel(215, 40, v2)};  // pale cyan
        case FrameKind::kJit: return {channel(60, 60, v2), channel(185, 55, v1), channel(60, 40, v2)};     // green
        default: return {channel(0, 70, v2), channel(90, 100, v1), channel(200, 55, v1)};                  // blue
      }
    case Palette::kMem:
      switch (kind) {
        case FrameKind::kKernel: return {channel(120, 60, v1), channel(150, 50, v1), 0};  // olive
        case FrameKind::kLibrary: return {channel(130, 60, v2), channel(210, 45, v1), channel(100, 50, v2)};
        case FrameKind::kInlined: return {0, channel(190, 50, v1), channel(150, 60, v2)};
        case FrameKind::kJit: return {channel(170, 60, v1), channel(210, 45, v1), 0};
        default: return {0, channel(150, 90, v1), 0};  // green
      }
    case Palette::kIo:
      switch (kind) {
        case FrameKind::kKernel: return {channel(130, 60, v1), channel(80, 50, v1), channel(190, 55, v2)};  // purple
        case FrameKind::kLibrary: return {channel(120, 60, v1), channel(150, 60, v1), channel(210, 45, v2)};
        case FrameKind::kInlined: return {channel(60, 50, v1), channel(170, 55, v1), channel(200, 55, v2)};
        case FrameKind::kJit: return {channel(60, 60, v2), channel(170, 60, v1), channel(100, 50, v2)};
        default: {  // flamegraph.pl's io blue
          uint8_t c = channel(80, 60, v1);
          return {c, c, channel(190, 55, v2)};
        }
      }
  }
  return {200, 200, 200};
}

Rgb diff_color(double change) {
  change = std::clamp(change, -1.0, 1.0);
  // 210 rather than 255 for "no change" keeps faint changes visibly tinted,
  // as flamegraph.pl does; exactly zero is a neutral near-white.
  if (change == 0) return {250, 250, 250};
  auto fade = static_cast<uint8_t>(std::lround(210.0 * (1.0 - std::abs(change))));
  if (change > 0) return {255, fade, fade};
  return {fade, fade, 255};
}

}  // namespace stackwatch::flamegraph
