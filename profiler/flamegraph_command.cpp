// stackwatch flamegraph: draws a flame graph (or writes a pprof profile) from
// any stacks file: our folded files, stackcollapse-perf.pl's, bpftrace's map
// output. With --diff, a differential graph against a base file.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "flamegraph/bpftrace_stacks.h"
#include "flamegraph/flamegraph.h"
#include "profiler/commands.h"
#include "recording/atomic_file.h"
#include "recording/error.h"

namespace stackwatch::cli {
namespace {

struct FlamegraphArgs {
  std::string input;
  std::string base;
  std::string output;
  std::string title;
  std::string subtitle;
  std::string colors = "hot";
  std::string units;
  std::string format = "svg";
  bool inverted = false;
  double min_width = 0.1;
  size_t max_frames = 25000;
  int width = 1200;
};

void run(const FlamegraphArgs& a) {
  flamegraph::Palette palette = flamegraph::parse_palette(a.colors);
  auto stacks = flamegraph::read_stacks_file(a.input);
  std::string units = a.units;
  // Off-CPU folded files are in microseconds (DESIGN.md); the palette says which.
  if (units.empty()) units = palette == flamegraph::Palette::kCool ? "us" : palette == flamegraph::Palette::kMem ? "bytes" : "samples";

  std::string out;
  if (a.format == "pprof") {
    if (!a.base.empty()) throw Error("--diff draws SVGs only; drop --diff or use --format svg");
    flamegraph::PprofOptions po;
    if (units == "us") po.sample_type = "off_cpu", po.sample_unit = "microseconds";
    else if (units == "bytes") po.sample_type = "space", po.sample_unit = "bytes";
    po.comments.push_back("stackwatch flamegraph " + a.input);
    out = flamegraph::pprof_profile(stacks, po);
  } else {
    flamegraph::SvgOptions so;
    so.title = a.title;
    so.subtitle = a.subtitle.empty() ? (a.base.empty() ? a.input : a.base + " -> " + a.input) : a.subtitle;
    so.units = units;
    so.palette = palette;
    so.inverted = a.inverted;
    so.min_width_px = a.min_width;
    so.max_frames = a.max_frames;
    so.width_px = a.width;
    if (a.base.empty()) {
      out = flamegraph::render_svg(stacks, so);
    } else {
      auto base = flamegraph::read_stacks_file(a.base);
      if (!a.subtitle.empty()) so.subtitle = a.subtitle;
      else so.subtitle = "red: grew, blue: shrank from " + a.base + " to " + a.input + " (width: " + a.input + ")";
      out = flamegraph::render_diff_svg(base, stacks, so);
    }
  }
  if (a.output.empty() || a.output == "-") {
    std::fwrite(out.data(), 1, out.size(), stdout);
    if (std::fflush(stdout) != 0) throw Error("cannot write the graph to stdout");
  } else {
    write_file_atomically(a.output, out);
  }
}

}  // namespace

void register_flamegraph_command(CLI::App& app) {
  auto args = std::make_shared<FlamegraphArgs>();
  auto* cmd = app.add_subcommand(
      "flamegraph", "Draw an interactive SVG flame graph (or write pprof) from a folded or bpftrace stacks file");
  cmd->add_option("input", args->input, "Stacks file: folded (ours, stackcollapse-*.pl) or bpftrace map output; - for stdin")
      ->required();
  cmd->add_option("--diff", args->base, "Base stacks file: draw a differential graph (red grew, blue shrank)");
  cmd->add_option("-o,--output", args->output, "Output file (default: stdout)");
  cmd->add_option("--title", args->title, "Title (default: Flame Graph / Icicle Graph / Differential Flame Graph)");
  cmd->add_option("--subtitle", args->subtitle, "Subtitle (default: the input file names)");
  cmd->add_flag("--inverted,--icicle", args->inverted, "Icicle layout: root at the top");
  cmd->add_option("--colors", args->colors, "Palette: hot (on-CPU), cool (off-CPU), mem, io")
      ->check(CLI::IsMember({"hot", "cool", "off-cpu", "blue", "mem", "io"}))
      ->capture_default_str();
  cmd->add_option("--units", args->units, "Weight unit shown in tooltips (default: samples; us with cool; bytes with mem)");
  cmd->add_option("--format", args->format, "Output format")
      ->check(CLI::IsMember({"svg", "pprof"}))
      ->capture_default_str();
  cmd->add_option("--min-width", args->min_width, "Hide frames narrower than this many pixels")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--max-frames", args->max_frames,
                  "Draw at most this many frames, hiding the narrowest (keeps large graphs fast in a browser)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--width", args->width, "Image width in pixels")->check(CLI::Range(100, 100000))->capture_default_str();
  cmd->callback([args] { run(*args); });
}

}  // namespace stackwatch::cli
