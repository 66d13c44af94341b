// Resolved samples to stacks: folded lines and call trees (see flamegraph.h).
#include <string_view>

#include "flamegraph/flamegraph.h"

namespace stackwatch::flamegraph {
namespace {

// Samples' frames are innermost first; graphs want outermost first.
template <typename Fn>
void for_each_outermost_first(const StackSample& s, const SampleFolding& folding, Fn&& fn) {
  if (folding.process_name_root) {
    const std::string& comm = s.process_name.empty() ? s.thread_name : s.process_name;
    fn(comm.empty() ? std::string("[unknown]") : comm, FrameKind::kUser);
  }
  for (auto it = s.frames.rbegin(); it != s.frames.rend(); ++it) {
    FrameKind kind = classify_frame(*it);
    std::string name = escape_frame(it->display_name());
    if (folding.annotate) {
      if (kind == FrameKind::kKernel) name += "_[k]";
      else if (kind == FrameKind::kInlined) name += "_[i]";
      else if (kind == FrameKind::kJit) name += "_[j]";
    }
    fn(std::move(name), kind);
  }
}

}  // namespace

uint64_t sample_weight(const StackSample& sample) {
  // Off-CPU weights are microseconds; round so 1.6 us of blocking is not 1.
  return sample.kind == StackKind::kOffCpu ? (sample.off_ns + 500) / 1000 : sample.count;
}

std::vector<FoldedStack> fold_samples(const std::vector<StackSample>& samples, const SampleFolding& folding) {
  std::vector<FoldedStack> out;
  out.reserve(samples.size());
  for (const StackSample& s : samples) {
    FoldedStack f;
    f.weight = sample_weight(s);
    if (f.weight == 0) continue;
    for_each_outermost_first(s, folding, [&](std::string name, FrameKind) { f.frames.push_back(std::move(name)); });
    out.push_back(std::move(f));
  }
  return out;
}

void add_samples(FrameTree& tree, const std::vector<StackSample>& samples, Profile profile,
                 const SampleFolding& folding) {
  std::vector<std::string> names;
  std::vector<std::string_view> views;
  std::vector<FrameKind> kinds;
  for (const StackSample& s : samples) {
    uint64_t weight = sample_weight(s);
    if (weight == 0) continue;
    names.clear();
    kinds.clear();
    for_each_outermost_first(s, folding, [&](std::string name, FrameKind kind) {
      names.push_back(std::move(name));
      kinds.push_back(kind);
    });
    views.assign(names.begin(), names.end());
    tree.add(views, kinds, weight, profile);
  }
}

FrameTree tree_from_samples(const std::vector<StackSample>& samples, const SampleFolding& folding) {
  FrameTree tree;
  add_samples(tree, samples, Profile::kCurrent, folding);
  return tree;
}

std::string render_svg(const std::vector<StackSample>& samples, const SvgOptions& options,
                       const SampleFolding& folding) {
  return render_svg(tree_from_samples(samples, folding), options, false);
}

std::string render_diff_svg(const std::vector<StackSample>& base, const std::vector<StackSample>& current,
                            const SvgOptions& options, const SampleFolding& folding) {
  FrameTree tree;
  add_samples(tree, current, Profile::kCurrent, folding);
  add_samples(tree, base, Profile::kBase, folding);
  return render_svg(tree, options, true);
}

}  // namespace stackwatch::flamegraph
