// Building the per-process call graph from stacks (see call_graph.h).
#include "localize/call_graph.h"

#include <algorithm>
#include <numeric>

namespace stackwatch::localize {

double sum(const StateArray& by_state) { return std::accumulate(by_state.begin(), by_state.end(), 0.0); }

std::string module_basename(const Frame& frame) {
  if (frame.module.empty()) return frame.kernel ? "[kernel]" : "[unknown]";
  auto slash = frame.module.rfind('/');
  return slash == std::string::npos ? frame.module : frame.module.substr(slash + 1);
}

bool is_libc_module(const std::string& base) {
  static const char* const kPrefixes[] = {"libc.so", "libc-", "libm.so", "libm-", "libpthread", "libdl.so",
                                          "libdl-", "librt.so", "librt-", "ld-linux", "ld.so", "ld64.so",
                                          "libstdc++", "libgcc_s", "libc++", "libc++abi"};
  if (base == "[vdso]" || base == "linux-vdso.so.1" || base == "[vsyscall]") return true;
  for (const char* p : kPrefixes)
    if (base.rfind(p, 0) == 0) return true;
  return false;
}

FunctionId function_id(const Frame& frame) { return {module_basename(frame), frame.display_name()}; }

bool FunctionNode::probeable() const {
  if (kernel || !named || inlined || libc) return false;
  if (module_path.empty() || module_path.front() == '[') return false;
  return true;
}

bool ProcessFilter::matches(const StackSample& s) const {
  return (tgid == 0 || s.tgid == tgid) && (name.empty() || s.process_name == name);
}

Vertex CallGraph::vertex_for(const Frame& frame) {
  FunctionId id = function_id(frame);
  std::string key = id.key();
  auto it = index_.find(key);
  if (it != index_.end()) {
    FunctionNode& n = graph_[it->second];
    if (!frame.inlined) n.inlined = false;
    return it->second;
  }
  FunctionNode node;
  node.module_path = frame.module;
  node.kernel = frame.kernel;
  node.named = !frame.function.empty();
  node.inlined = frame.inlined;
  node.libc = !frame.kernel && is_libc_module(id.module);
  node.id = std::move(id);
  Vertex v = boost::add_vertex(std::move(node), graph_);
  index_.emplace(std::move(key), v);
  return v;
}

std::optional<Vertex> CallGraph::find(const FunctionId& id) const { return find(id.key()); }

std::optional<Vertex> CallGraph::find(const std::string& key) const {
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

namespace {

bool probeable_frame(const Frame& f, bool allow_libc) {
  if (f.kernel || f.function.empty() || f.inlined) return false;
  if (f.module.empty() || f.module.front() == '[') return false;
  return allow_libc || !is_libc_module(module_basename(f));
}

}  // namespace

void CallGraph::add(const StackSample& sample) {
  // Memory and I/O stacks count other things than time: not this graph's.
  if (sample.kind != StackKind::kOnCpu && sample.kind != StackKind::kOffCpu) return;
  ++stacks_;
  const bool on = sample.kind == StackKind::kOnCpu;
  const size_t state = std::min<size_t>(static_cast<size_t>(sample.off_state), kOffStates - 1);
  const double samples = static_cast<double>(sample.count);
  const double ns = static_cast<double>(sample.off_ns);
  if (on)
    on_samples_ += samples;
  else
    off_ns_[state] += ns;

  // The stack as graph vertices, outermost first.
  std::vector<Vertex> path;
  path.reserve(sample.frames.size());
  if (view_ == GraphView::kFunctions) {
    for (auto f = sample.frames.rbegin(); f != sample.frames.rend(); ++f) path.push_back(vertex_for(*f));
  } else {
    bool allow_libc = std::none_of(sample.frames.begin(), sample.frames.end(),
                                   [](const Frame& f) { return probeable_frame(f, false); });
    for (auto f = sample.frames.rbegin(); f != sample.frames.rend(); ++f)
      if (probeable_frame(*f, allow_libc)) path.push_back(vertex_for(*f));
  }
  if (path.empty()) return;

  // The kernel path the blocked time sits under.
  KernelPath kp;
  std::string kp_key;
  if (!on) {
    for (const Frame& f : sample.frames) {
      if (f.kernel) continue;
      kp.user_frame = f.display_name();
      break;
    }
    for (auto f = sample.frames.rbegin(); f != sample.frames.rend(); ++f)
      if (f->kernel) kp.kernel_frames.push_back(f->display_name());
    kp_key = kp.user_frame;
    for (const auto& k : kp.kernel_frames) kp_key += ";" + k;
  }

  // Inclusive weights once per distinct function on the stack.
  std::vector<Vertex> seen;
  seen.reserve(path.size());
  for (Vertex v : path) {
    if (std::find(seen.begin(), seen.end(), v) != seen.end()) continue;
    seen.push_back(v);
    FunctionNode& n = graph_[v];
    if (on) {
      n.weights.on_inclusive += samples;
    } else {
      n.weights.off_inclusive[state] += ns;
      auto [it, inserted] = n.blocked_under.try_emplace(kp_key);
      if (inserted) {
        it->second.user_frame = kp.user_frame;
        it->second.kernel_frames = kp.kernel_frames;
      }
      it->second.off_ns[state] += ns;
      it->second.events += samples;
    }
  }
  FunctionNode& leaf = graph_[path.back()];
  if (on)
    leaf.weights.on_self += samples;
  else
    leaf.weights.off_self[state] += ns;

  // Edges once per distinct caller -> callee pair on the stack.
  std::vector<std::pair<Vertex, Vertex>> pairs;
  for (size_t i = 1; i < path.size(); ++i) {
    std::pair<Vertex, Vertex> e{path[i - 1], path[i]};
    if (e.first == e.second) continue;  // direct recursion: no self-loop
    if (std::find(pairs.begin(), pairs.end(), e) != pairs.end()) continue;
    pairs.push_back(e);
    auto [edge, exists] = boost::edge(e.first, e.second, graph_);
    if (!exists) edge = boost::add_edge(e.first, e.second, graph_).first;
    CallEdge& w = graph_[edge];
    if (on)
      w.on += samples;
    else
      w.off[state] += ns;
  }
}

CallGraph build_call_graph(const std::vector<StackSample>& stacks, const ProcessFilter& filter, GraphView view) {
  CallGraph g(view);
  for (const StackSample& s : stacks)
    if (filter.matches(s)) g.add(s);
  return g;
}

}  // namespace stackwatch::localize
