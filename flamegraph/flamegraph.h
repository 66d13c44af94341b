// flamegraph: folded stacks in and out, SVG flame graphs (plain, icicle and
// differential) and pprof profiles. Reads and writes files; knows nothing of
// BPF, /proc or symbolization.
//
//   auto svg = flamegraph::render_svg(stacks, {.title = "On-CPU", .units = "samples"});
//   stackwatch::write_file_atomically(dir + "/oncpu.svg", svg);
//   flamegraph::write_pprof(dir + "/oncpu.pb.gz", samples, {});
//
// The SVG is self-contained: click to zoom, Reset Zoom, Ctrl-F regex search
// with the matched share, tooltips with name, weight and share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flamegraph/folded.h"
#include "flamegraph/frame_tree.h"
#include "flamegraph/palette.h"
#include "flamegraph/pprof_writer.h"
#include "recording/recording.h"

namespace stackwatch::flamegraph {

struct SvgOptions {
  std::string title;     // empty: "Flame Graph", "Icicle Graph" or "Differential Flame Graph"
  std::string subtitle;  // what was recorded: "on-CPU, 49 Hz, pid 1234, 60 s"
  std::string units = "samples";  // weight unit in tooltips: "samples", "us", "bytes"
  Palette palette = Palette::kHot;
  bool inverted = false;      // icicle: the root at the top, stacks growing down
  // Frames narrower than this are not drawn (their weight stays in the
  // parent's width). flamegraph.pl's default; it is what keeps 100,000
  // distinct stacks to an SVG of a few megabytes.
  double min_width_px = 0.1;
  // At most this many frames are drawn (the narrowest go first, into their
  // parents' width). Chromium opens 25,000 frames (about 5 MB) in about a
  // second and stays responsive on zoom and search; 90,000 take several.
  size_t max_frames = 25000;
  int width_px = 1200;
  int frame_height_px = 16;
  int font_size_px = 12;
  // Differential only: scale the base profile to the current one's total, so
  // a longer or busier base recording does not paint everything blue.
  bool normalize_diff = true;
};

// Plain flame graph of folded stacks (outermost frame first).
std::string render_svg(const std::vector<FoldedStack>& stacks, const SvgOptions& options = {});

// Differential flame graph: widths from `current`, colour from the change
// from `base` (red: grew, blue: shrank, intensity: size of the change).
std::string render_diff_svg(const std::vector<FoldedStack>& base, const std::vector<FoldedStack>& current,
                            const SvgOptions& options = {});

// From a tree built elsewhere (plain, or differential when it holds base weights
// and `differential` is set).
std::string render_svg(const FrameTree& tree, const SvgOptions& options, bool differential = false);

// How resolved samples become stacks for graphs and folded files.
struct SampleFolding {
  bool process_name_root = true;  // the comm as the outermost frame, as our folded files have
  bool annotate = true;           // `_[k]` kernel, `_[i]` inlined, `_[j]` JIT suffixes
};

// Weight of a sample: samples for on-CPU, blocked microseconds for off-CPU
// (the unit of our off-CPU folded files).
uint64_t sample_weight(const StackSample& sample);

// Resolved samples as folded stacks, outermost first; equal stacks are not
// merged (the tree merges them).
std::vector<FoldedStack> fold_samples(const std::vector<StackSample>& samples, const SampleFolding& folding = {});

// Adds resolved samples to a call tree, with frame kinds taken from their
// modules (so shared-library frames are told apart, which names alone cannot do).
void add_samples(FrameTree& tree, const std::vector<StackSample>& samples, Profile profile = Profile::kCurrent,
                 const SampleFolding& folding = {});
FrameTree tree_from_samples(const std::vector<StackSample>& samples, const SampleFolding& folding = {});

// Same graphs from resolved samples.
std::string render_svg(const std::vector<StackSample>& samples, const SvgOptions& options,
                       const SampleFolding& folding = {});
std::string render_diff_svg(const std::vector<StackSample>& base, const std::vector<StackSample>& current,
                            const SvgOptions& options, const SampleFolding& folding = {});

}  // namespace stackwatch::flamegraph
