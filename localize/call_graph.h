// The call graph of one process over a set of intervals (Boost.Graph).
//
// Nodes are functions, identified by module basename + function name (the
// identity DESIGN.md gives a function across intervals and processes;
// unnamed frames by "module+0xoffset"); edges go caller -> callee. Each node
// and edge carries self and inclusive weights, separately for on-CPU
// samples and for off-CPU blocked nanoseconds per task state. Recursion is
// counted once per stack: a function twice on a stack adds its inclusive
// weight once.
//
// Two views of the same stacks:
//   kFunctions    every frame is a node (kernel, libc, inlined, unnamed).
//   kProbeTargets only functions a uprobe can be attached to are nodes
//                 (user space, named, out-of-line, not in libc/ld.so/vdso);
//                 the time spent below them in libc, the kernel, inlined or
//                 unnamed code is their self time. This is the view the
//                 ranking reads: "the deepest function that accounts for the
//                 growth" must be one that can be probed. libc functions are
//                 nodes only when no probeable caller is on the stack (a
//                 thread that runs libc code alone), so that time still has
//                 an owner.
//
// Off-CPU nodes also keep the kernel path their blocked time sits under
// (innermost user frame + kernel frames), which is the evidence a hint's
// category comes from.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include "recording/recording.h"

namespace stackwatch::localize {

// OffCpuState values index these arrays (kNone .. kOther).
constexpr size_t kOffStates = 5;
using StateArray = std::array<double, kOffStates>;

double sum(const StateArray& by_state);

struct FunctionId {
  std::string module;  // basename ("app", "libc.so.6", "[kernel]")
  std::string name;    // demangled name, or "module+0xoffset" when unnamed

  std::string key() const { return module + "!" + name; }
  bool operator==(const FunctionId& o) const { return module == o.module && name == o.name; }
};

struct Weights {
  double on_self = 0;       // on-CPU samples with this function innermost
  double on_inclusive = 0;  // on-CPU samples with this function on the stack
  StateArray off_self{};    // blocked ns with this function innermost, by state
  StateArray off_inclusive{};
};

// Blocked time under one kernel path, by state.
struct KernelPath {
  std::string user_frame;                  // innermost user frame ("fdatasync")
  std::vector<std::string> kernel_frames;  // outermost first, plumbing included
  StateArray off_ns{};
  double events = 0;
};

struct FunctionNode {
  FunctionId id;
  std::string module_path;  // full path as sampled (a basename offline)
  bool kernel = false;
  bool named = false;    // has a symbol name
  bool inlined = false;  // every occurrence was an inlined frame
  bool libc = false;     // libc, ld.so, vdso, libpthread and friends
  Weights weights;
  // Blocked time of the off-CPU stacks through this function, keyed by
  // user_frame + kernel path.
  std::map<std::string, KernelPath> blocked_under;

  // A uprobe can be attached: user space, named, out of line, in a file.
  bool probeable() const;
};

struct CallEdge {
  double on = 0;       // on-CPU samples through caller -> callee
  StateArray off{};    // blocked ns through caller -> callee, by state
};

using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, FunctionNode, CallEdge>;
using Vertex = boost::graph_traits<Graph>::vertex_descriptor;

enum class GraphView { kFunctions, kProbeTargets };

// Which samples belong to the process: tgid 0 = any, empty name = any.
struct ProcessFilter {
  uint32_t tgid = 0;
  std::string name;
  bool matches(const StackSample& s) const;
};

class CallGraph {
 public:
  explicit CallGraph(GraphView view = GraphView::kFunctions) : view_(view) {}

  void add(const StackSample& sample);

  GraphView view() const { return view_; }
  const Graph& graph() const { return graph_; }
  std::optional<Vertex> find(const FunctionId& id) const;
  std::optional<Vertex> find(const std::string& key) const;
  const FunctionNode& node(Vertex v) const { return graph_[v]; }
  size_t size() const { return boost::num_vertices(graph_); }

  // Totals over every sample added.
  double on_samples() const { return on_samples_; }
  const StateArray& off_ns() const { return off_ns_; }
  uint64_t stacks() const { return stacks_; }

 private:
  Vertex vertex_for(const Frame& frame);

  GraphView view_;
  Graph graph_;
  std::unordered_map<std::string, Vertex> index_;
  double on_samples_ = 0;
  StateArray off_ns_{};
  uint64_t stacks_ = 0;
};

CallGraph build_call_graph(const std::vector<StackSample>& stacks, const ProcessFilter& filter,
                           GraphView view = GraphView::kFunctions);

// Module basename, "[kernel]" for kernel frames.
std::string module_basename(const Frame& frame);
// True for the language runtimes and the loader (libc, libm, libpthread,
// ld-linux, vdso, libstdc++, libgcc_s): code a slow function calls into,
// rarely the code that changed.
bool is_libc_module(const std::string& basename);
// The function identity of a frame.
FunctionId function_id(const Frame& frame);

}  // namespace stackwatch::localize
