// Shared helpers of the end-to-end tests: where the binaries are, a fresh
// output directory per test, and readers for what record wrote.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "flamegraph/folded.h"
#include "run_process.h"

namespace stackwatch::testing {

inline std::string stackwatch_bin() { return STACKWATCH_BIN; }
inline std::string fixture(const std::string& name) { return std::string(E2E_FIXTURE_DIR) + "/" + name; }

inline std::string fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("sw_e2e_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<flamegraph::FoldedStack> read_folded(const std::string& path) {
  std::ifstream in(path);
  return flamegraph::parse_folded(in);
}

inline nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(slurp(path)); }

inline bool has_frame(const flamegraph::FoldedStack& s, const std::string& name) {
  for (const auto& f : s.frames)
    if (f == name) return true;
  return false;
}

// Index of the first frame equal to name, or -1.
inline int frame_index(const flamegraph::FoldedStack& s, const std::string& name) {
  for (size_t i = 0; i < s.frames.size(); ++i)
    if (s.frames[i] == name) return static_cast<int>(i);
  return -1;
}

// The weight of the folded stacks holding `function`, split by whether
// `caller` is above it (outer): whole stacks against truncated ones.
struct CallerSplit {
  uint64_t with = 0, without = 0;
};
inline CallerSplit split_by_caller(const std::vector<flamegraph::FoldedStack>& folded, const std::string& function,
                                   const std::string& caller) {
  CallerSplit split;
  for (const auto& s : folded) {
    int at = frame_index(s, function);
    if (at < 0) continue;
    int caller_at = frame_index(s, caller);
    (caller_at >= 0 && caller_at < at ? split.with : split.without) += s.weight;
  }
  return split;
}

// Skips the test with a clear reason when not root: e2e tests load BPF. CI
// runs them as root, where this never skips.
#define REQUIRE_ROOT()                                                     \
  do {                                                                     \
    if (geteuid() != 0) GTEST_SKIP() << "end-to-end tests need root (BPF)"; \
  } while (0)

}  // namespace stackwatch::testing
