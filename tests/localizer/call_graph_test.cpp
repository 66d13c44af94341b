// Call graph construction: exact self/inclusive/edge weights on small stacks,
// both views, recursion, inlined and libc frames, process filtering.
#include "localize/call_graph.h"

#include <gtest/gtest.h>

#include "synthetic_stacks.h"

namespace stackwatch::localize {
namespace {

using namespace testing;
constexpr size_t kUnint = static_cast<size_t>(OffCpuState::kUninterruptible);

const FunctionNode& node(const CallGraph& g, const std::string& module, const std::string& name) {
  auto v = g.find(FunctionId{module, name});
  EXPECT_TRUE(v.has_value()) << module << "!" << name;
  if (!v) throw std::runtime_error("missing node " + name);
  return g.node(*v);
}

const CallEdge& edge(const CallGraph& g, const std::string& from, const std::string& to) {
  auto a = g.find(from), b = g.find(to);
  if (!a || !b) throw std::runtime_error("missing node for edge " + from + " -> " + to);
  auto [e, ok] = boost::edge(*a, *b, g.graph());
  if (!ok) throw std::runtime_error("missing edge " + from + " -> " + to);
  return g.graph()[e];
}

bool has_edge(const CallGraph& g, const std::string& from, const std::string& to) {
  auto a = g.find(from), b = g.find(to);
  return a && b && boost::edge(*a, *b, g.graph()).second;
}

std::vector<StackSample> sample_stacks() {
  return {
      on_cpu(path({user("main"), user("loop"), user("handler"), user("slow_fn")}), 10),
      on_cpu(path({user("main"), user("loop"), user("handler")}), 5),
      on_cpu(path({user("main"), user("loop"), user("handler"), user("slow_fn"), libc("memcpy")}), 3),
      off_cpu(with_kernel({user("main"), user("loop"), user("handler"), libc("fdatasync")}, fdatasync_kernel_path()),
              1000, OffCpuState::kUninterruptible, 2),
      on_cpu(path({user("main"), user("rec"), user("rec"), user("rec")}), 4),
      on_cpu(path({user("main"), user("handler"), inlined("helper")}), 6),
      on_cpu(path({user("main")}), 7, "other", 200),  // another process
  };
}

TEST(CallGraph, FunctionViewHasExactSelfInclusiveAndEdgeWeights) {
  CallGraph g = build_call_graph(sample_stacks(), ProcessFilter{100, ""});
  EXPECT_EQ(g.on_samples(), 10 + 5 + 3 + 4 + 6);
  EXPECT_EQ(g.off_ns()[kUnint], 1000);

  const FunctionNode& main_fn = node(g, "app", "main");
  EXPECT_EQ(main_fn.weights.on_inclusive, 28);
  EXPECT_EQ(main_fn.weights.on_self, 0);
  EXPECT_EQ(main_fn.weights.off_inclusive[kUnint], 1000);

  const FunctionNode& handler = node(g, "app", "handler");
  EXPECT_EQ(handler.weights.on_inclusive, 10 + 5 + 3 + 6);
  EXPECT_EQ(handler.weights.on_self, 5);
  EXPECT_EQ(handler.weights.off_self[kUnint], 0);  // the blocked time is fdatasync's, then the kernel's

  const FunctionNode& slow = node(g, "app", "slow_fn");
  EXPECT_EQ(slow.weights.on_inclusive, 13);
  EXPECT_EQ(slow.weights.on_self, 10);
  EXPECT_TRUE(slow.probeable());

  const FunctionNode& memcpy_fn = node(g, "libc.so.6", "memcpy");
  EXPECT_EQ(memcpy_fn.weights.on_self, 3);
  EXPECT_TRUE(memcpy_fn.libc);
  EXPECT_FALSE(memcpy_fn.probeable());

  const FunctionNode& sched = node(g, "[kernel]", "__schedule");
  EXPECT_TRUE(sched.kernel);
  EXPECT_EQ(sched.weights.off_self[kUnint], 1000);

  // Recursion counts once per stack, and adds no self-loop.
  const FunctionNode& rec = node(g, "app", "rec");
  EXPECT_EQ(rec.weights.on_inclusive, 4);
  EXPECT_EQ(rec.weights.on_self, 4);
  EXPECT_FALSE(has_edge(g, "app!rec", "app!rec"));

  EXPECT_EQ(edge(g, "app!main", "app!loop").on, 18);
  EXPECT_EQ(edge(g, "app!loop", "app!handler").on, 18);
  EXPECT_EQ(edge(g, "app!handler", "app!slow_fn").on, 13);
  EXPECT_EQ(edge(g, "app!main", "app!handler").on, 6);
  EXPECT_EQ(edge(g, "app!handler", "libc.so.6!fdatasync").off[kUnint], 1000);
  EXPECT_EQ(edge(g, "libc.so.6!fdatasync", "[kernel]!entry_SYSCALL_64_after_hwframe").off[kUnint], 1000);

  // The inlined helper is a node of its own, not probeable.
  const FunctionNode& helper = node(g, "app", "helper");
  EXPECT_EQ(helper.weights.on_self, 6);
  EXPECT_FALSE(helper.probeable());

  // The other process is not in the graph.
  EXPECT_EQ(g.stacks(), 6u);
}

TEST(CallGraph, BlockedTimeKeepsItsKernelPath) {
  CallGraph g = build_call_graph(sample_stacks(), ProcessFilter{100, ""});
  const FunctionNode& handler = node(g, "app", "handler");
  ASSERT_EQ(handler.blocked_under.size(), 1u);
  const KernelPath& kp = handler.blocked_under.begin()->second;
  EXPECT_EQ(kp.user_frame, "fdatasync");
  ASSERT_EQ(kp.kernel_frames.size(), 10u);
  EXPECT_EQ(kp.kernel_frames.front(), "entry_SYSCALL_64_after_hwframe");
  EXPECT_EQ(kp.kernel_frames[7], "jbd2_log_wait_commit");
  EXPECT_EQ(kp.off_ns[kUnint], 1000);
  EXPECT_EQ(kp.events, 2);
  EXPECT_TRUE(node(g, "app", "slow_fn").blocked_under.empty());
}

TEST(CallGraph, ProbeTargetViewChargesLibcKernelAndInlinedCodeToTheirCaller) {
  CallGraph g = build_call_graph(sample_stacks(), ProcessFilter{0, "app"}, GraphView::kProbeTargets);
  EXPECT_FALSE(g.find("libc.so.6!memcpy"));
  EXPECT_FALSE(g.find("libc.so.6!fdatasync"));
  EXPECT_FALSE(g.find("[kernel]!__schedule"));
  EXPECT_FALSE(g.find("app!helper"));

  const FunctionNode& slow = node(g, "app", "slow_fn");
  EXPECT_EQ(slow.weights.on_self, 13);  // its own 10 + memcpy's 3
  const FunctionNode& handler = node(g, "app", "handler");
  EXPECT_EQ(handler.weights.on_self, 5 + 6);        // + the inlined helper
  EXPECT_EQ(handler.weights.off_self[kUnint], 1000);  // fdatasync and the kernel below it
  EXPECT_EQ(handler.weights.on_inclusive, 24);
  EXPECT_EQ(edge(g, "app!handler", "app!slow_fn").on, 13);
  for (auto [v, end] = boost::vertices(g.graph()); v != end; ++v) EXPECT_TRUE(g.node(*v).probeable()) << g.node(*v).id.key();
}

TEST(CallGraph, ProbeTargetViewKeepsLibcWhenNothingElseOwnsTheTime) {
  // A thread that runs libc code only (no frame of the program): libc
  // functions are the nodes, the kernel is still charged to them.
  std::vector<StackSample> stacks = {
      off_cpu(with_kernel({libc("clone3"), libc("start_thread"), libc("__futex_abstimed_wait_common")},
                          {kern("do_syscall_64"), kern("futex_wait"), kern("schedule")}),
              500, OffCpuState::kInterruptible)};
  CallGraph g = build_call_graph(stacks, ProcessFilter{}, GraphView::kProbeTargets);
  EXPECT_EQ(g.size(), 3u);
  const FunctionNode& wait = node(g, "libc.so.6", "__futex_abstimed_wait_common");
  EXPECT_EQ(wait.weights.off_self[static_cast<size_t>(OffCpuState::kInterruptible)], 500);
  EXPECT_FALSE(wait.probeable());  // libc: a fallback owner, not a preferred probe
}

TEST(CallGraph, UnnamedFramesAreIdentifiedByModuleAndOffset) {
  Frame unnamed;
  unnamed.module = "/usr/bin/redis-server";
  unnamed.module_offset = 0x4a10;
  std::vector<StackSample> stacks = {on_cpu(path({user("main", "/usr/bin/redis-server"), unnamed}), 3)};
  CallGraph g = build_call_graph(stacks, ProcessFilter{});
  const FunctionNode& n = node(g, "redis-server", "redis-server+0x4a10");
  EXPECT_FALSE(n.named);
  EXPECT_FALSE(n.probeable());
  CallGraph t = build_call_graph(stacks, ProcessFilter{}, GraphView::kProbeTargets);
  EXPECT_EQ(node(t, "redis-server", "main").weights.on_self, 3);
}

}  // namespace
}  // namespace stackwatch::localize
