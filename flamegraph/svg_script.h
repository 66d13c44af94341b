// The JavaScript and CSS embedded in every SVG: click to zoom, reset zoom,
// regex search (Ctrl-F) with highlighted matches and the matched share,
// details of the frame under the mouse. No external resources: the graphs
// are opened from disk, often on machines with no network.
#pragma once

#include <string_view>

namespace stackwatch::flamegraph {

// Script body; expects a global `fg` config object defined before it
// (written by the renderer): {xpad, pw, fh, fs, fw, inv, h, ypad1, ypad2,
// search} (see svg_renderer.cpp).
std::string_view svg_script();

// Style sheet for the SVG.
std::string_view svg_style();

}  // namespace stackwatch::flamegraph
