// Flame graph benchmark: render time and SVG size for 1,000, 10,000 and
// 100,000 distinct synthetic stacks (seeded; depth 10-40; C++-like names
// drawn from a call graph, so stacks share prefixes as real ones do), plus
// the pprof export of the same stacks. Prints one line per size.
//
// usage: flamegraph_bench [--out DIR] [SIZES...]   (default 1000 10000 100000)
// --out writes DIR/stacks-N.folded and DIR/stacks-N.svg, to open in a browser.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "flamegraph/flame_layout.h"
#include "flamegraph/flamegraph.h"

namespace fg = stackwatch::flamegraph;

namespace {

constexpr uint32_t kSeed = 42;
constexpr int kFunctions = 4000;  // distinct functions in the synthetic program
constexpr int kCallees = 6;       // callees per function: how bushy the call graph is
constexpr int kRepeats = 3;       // best of three, to keep the noise of a shared machine out

std::vector<std::string> make_names(std::mt19937& rng) {
  static const char* ns[] = {"std", "boost::asio", "app::net", "app::db", "app::http", "folly", "absl", "app::core"};
  static const char* cls[] = {"Connection", "Parser", "Handler", "Session", "Buffer", "Executor", "Table", "Index"};
  static const char* fn[] = {"run", "process", "operator()", "dispatch", "read_some", "write", "lookup", "~Session"};
  static const char* args[] = {"", "int", "std::string const&", "std::vector<char, std::allocator<char> >&",
                               "std::shared_ptr<app::Request>", "unsigned long, bool"};
  std::vector<std::string> names;
  for (int i = 0; i < kFunctions; ++i) {
    std::string n = std::string(ns[rng() % 8]) + "::" + cls[rng() % 8] + std::to_string(i) + "<int>::" + fn[rng() % 8] +
                    "(" + args[rng() % 6] + ")";
    if (rng() % 10 == 0) n += "_[k]";
    names.push_back(std::move(n));
  }
  return names;
}

std::vector<fg::FoldedStack> make_stacks(size_t count) {
  std::mt19937 rng(kSeed);
  auto names = make_names(rng);
  std::vector<std::vector<int>> callees(kFunctions);
  for (auto& c : callees)
    for (int k = 0; k < kCallees; ++k) c.push_back(static_cast<int>(rng() % kFunctions));
  std::geometric_distribution<int> pick(0.45);  // favourite callees get most calls, as in real programs
  std::uniform_int_distribution<int> depth_of(10, 40);
  std::geometric_distribution<uint64_t> weight_of(0.05);
  std::set<std::vector<int>> seen;
  std::vector<fg::FoldedStack> out;
  while (out.size() < count) {
    std::vector<int> path{static_cast<int>(rng() % 8)};
    int depth = depth_of(rng);
    while (static_cast<int>(path.size()) < depth)
      path.push_back(callees[path.back()][std::min(pick(rng), kCallees - 1)]);
    if (!seen.insert(path).second) continue;
    fg::FoldedStack s;
    s.frames.push_back("server");
    for (int f : path) s.frames.push_back(names[f]);
    s.weight = 1 + weight_of(rng);
    out.push_back(std::move(s));
  }
  return out;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// CPU time of this process: on a machine shared with builds, wall time
// also counts the time the scheduler gave to others.
double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> sizes;
  std::string out_dir;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--out") == 0 && i + 1 < argc) out_dir = argv[++i];
    else sizes.push_back(std::strtoull(argv[i], nullptr, 10));
  }
  if (sizes.empty()) sizes = {1000, 10000, 100000};
  std::printf("%9s %10s %10s %9s %9s %10s %10s %8s %9s %9s\n", "stacks", "frames", "tree_nodes", "drawn",
              "tree_ms", "render_ms", "render_cpu", "svg_MB", "pprof_ms", "pprof_KB");
  for (size_t n : sizes) {
    auto stacks = make_stacks(n);
    size_t frames = 0;
    for (const auto& s : stacks) frames += s.frames.size();
    double best_tree = 1e18, best_render = 1e18, best_render_cpu = 1e18, best_pprof = 1e18;
    size_t svg_bytes = 0, pprof_bytes = 0, nodes = 0;
    for (int r = 0; r < kRepeats; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      fg::FrameTree tree;
      tree.reserve(frames);
      for (const auto& s : stacks) tree.add(s);
      tree.children(fg::FrameTree::kRoot);  // the sort is part of building
      best_tree = std::min(best_tree, ms_since(t0));
      nodes = tree.size();
      // What `render_svg(stacks, options)` does end to end: tree + layout + SVG.
      t0 = std::chrono::steady_clock::now();
      double c0 = cpu_ms();
      std::string svg = fg::render_svg(stacks, {});
      best_render = std::min(best_render, ms_since(t0));
      best_render_cpu = std::min(best_render_cpu, cpu_ms() - c0);
      svg_bytes = svg.size();
      t0 = std::chrono::steady_clock::now();
      std::string pprof = fg::pprof_profile(stacks);
      best_pprof = std::min(best_pprof, ms_since(t0));
      pprof_bytes = pprof.size();
    }
    size_t drawn = 0;  // frames in the SVG, with the default min width and frame cap
    {
      double min_weight = 0;
      fg::FrameTree tree;
      for (const auto& s : stacks) tree.add(s);
      min_weight = 0.1 * static_cast<double>(tree.total()) / 1180.0;
      drawn = fg::layout_flame(tree, min_weight, fg::SvgOptions{}.max_frames).frames.size();
    }
    if (!out_dir.empty()) {
      std::ofstream(out_dir + "/stacks-" + std::to_string(n) + ".folded") << fg::folded_to_string(stacks);
      std::ofstream(out_dir + "/stacks-" + std::to_string(n) + ".svg") << fg::render_svg(stacks, {});
    }
    std::printf("%9zu %10zu %10zu %9zu %9.1f %10.1f %10.1f %8.2f %9.1f %9.1f\n", n, frames, nodes, drawn, best_tree,
                best_render, best_render_cpu, svg_bytes / 1e6, best_pprof, pprof_bytes / 1e3);
  }
  std::printf("render_ms: render_svg(stacks) end to end (merge, layout, SVG text), wall; render_cpu: its CPU\n"
              "time; tree_ms: merging alone; pprof_ms: pprof_profile(stacks). Best of %d.\n", kRepeats);
  return 0;
}
