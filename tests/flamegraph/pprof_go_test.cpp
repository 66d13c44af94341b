// The real reader: `go tool pprof -top` opens a profile we wrote, and its
// totals and per-function flat and cumulative weights are the ones we
// compute from the same stacks.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "flamegraph/flamegraph.h"

#ifndef STACKWATCH_GO
#define STACKWATCH_GO "go"
#endif

namespace stackwatch::flamegraph {
namespace {

namespace fs = std::filesystem;

struct Weights {
  uint64_t flat = 0, cum = 0;
};

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  EXPECT_EQ(status, 0) << cmd << "\n" << out;
  return out;
}

TEST(PprofWithGo, TopMatchesOurWeights) {
  // Seeded synthetic stacks: C++-ish names with spaces, kernel frames, recursion.
  std::mt19937 rng(20261123);
  std::vector<std::string> names;
  for (int i = 0; i < 40; ++i)
    names.push_back("ns" + std::to_string(i % 5) + "::Widget" + std::to_string(i) + "::run(int, char const*)");
  std::vector<FoldedStack> stacks;
  for (int s = 0; s < 300; ++s) {
    FoldedStack f;
    f.frames.push_back("server");
    int depth = 3 + static_cast<int>(rng() % 12);
    for (int d = 0; d < depth; ++d) f.frames.push_back(names[rng() % names.size()]);
    if (rng() % 3 == 0) f.frames.push_back("do_syscall_64_[k]");
    f.weight = 1 + rng() % 200;
    stacks.push_back(std::move(f));
  }
  std::map<std::string, Weights> ours;
  uint64_t total = 0;
  for (const auto& s : stacks) {
    total += s.weight;
    ours[std::string(strip_annotation(s.frames.back()))].flat += s.weight;
    std::set<std::string> seen;  // recursion counts once in cum, as pprof does
    for (const auto& f : s.frames) seen.insert(std::string(strip_annotation(f)));
    for (const auto& n : seen) ours[n].cum += s.weight;
  }

  fs::path dir = fs::temp_directory_path() / ("stackwatch-pprof-go-" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::path file = dir / "profile.pb.gz";
  write_pprof(file.string(), stacks, {});
  // pprof wants a writable home for its settings; CI may have none.
  setenv("HOME", dir.c_str(), 1);
  setenv("PPROF_TMPDIR", dir.c_str(), 1);
  std::string out = run(std::string(STACKWATCH_GO) + " tool pprof -symbolize=none -top -nodecount=100000 " +
                        file.string() + " 2>&1");
  fs::remove_all(dir);

  EXPECT_NE(out.find("Showing nodes accounting for " + std::to_string(total) + ", 100% of " +
                     std::to_string(total) + " total"),
            std::string::npos)
      << out;
  std::map<std::string, Weights> theirs;
  std::istringstream in(out);
  bool table = false;
  for (std::string line; std::getline(in, line);) {
    if (line.find("flat%") != std::string::npos) {
      table = true;
      continue;
    }
    if (!table) continue;
    std::istringstream ls(line);
    std::string flat, flat_pct, sum_pct, cum, cum_pct;
    ls >> flat >> flat_pct >> sum_pct >> cum >> cum_pct >> std::ws;
    std::string name;
    std::getline(ls, name);
    theirs[name] = {std::stoull(flat), std::stoull(cum)};
  }
  ASSERT_EQ(theirs.size(), ours.size()) << out;
  for (const auto& [name, w] : ours) {
    auto it = theirs.find(name);
    ASSERT_NE(it, theirs.end()) << "pprof does not list " << name << "\n" << out;
    EXPECT_EQ(it->second.flat, w.flat) << name;
    EXPECT_EQ(it->second.cum, w.cum) << name;
  }
}

// Resolved samples: pprof shows our file:line per inlined level and the
// off-CPU time as its own sample type.
TEST(PprofWithGo, ResolvedSamplesShowFilesLinesAndOffCpuTime) {
  auto frame = [](const char* fn, const char* file, uint32_t line, bool inlined) {
    Frame f;
    f.address = 0x401000;
    f.function = fn;
    f.module = "/usr/bin/server";
    f.file = file;
    f.line = line;
    f.inlined = inlined;
    return f;
  };
  StackSample on;
  on.tgid = on.tid = 7;
  on.process_name = "server";
  on.count = 30;
  on.frames = {frame("parse_header", "http.cc", 88, true), frame("handle", "server.cc", 120, false)};
  StackSample off = on;
  off.kind = StackKind::kOffCpu;
  off.count = 4;
  off.off_ns = 2'000'000'000;  // 2 s blocked
  off.frames = {frame("wait_for_disk", "io.cc", 17, false), frame("handle", "server.cc", 130, false)};

  fs::path dir = fs::temp_directory_path() / ("stackwatch-pprof-go2-" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::path file = dir / "samples.pb.gz";
  write_pprof(file.string(), std::vector<StackSample>{on, off}, {});
  setenv("HOME", dir.c_str(), 1);
  setenv("PPROF_TMPDIR", dir.c_str(), 1);
  const std::string base = std::string(STACKWATCH_GO) + " tool pprof -symbolize=none ";
  std::string lines = run(base + "-top -lines -sample_index=samples " + file.string() + " 2>&1");
  std::string off_cpu = run(base + "-top -sample_index=off_cpu -unit=ms " + file.string() + " 2>&1");
  fs::remove_all(dir);

  EXPECT_NE(lines.find("Showing nodes accounting for 34, 100% of 34 total"), std::string::npos) << lines;
  EXPECT_NE(lines.find("parse_header http.cc:88"), std::string::npos) << lines;
  EXPECT_NE(lines.find("handle server.cc:120"), std::string::npos) << lines;
  EXPECT_NE(lines.find("wait_for_disk io.cc:17"), std::string::npos) << lines;
  // 2 s of blocking, all of it in wait_for_disk.
  EXPECT_NE(off_cpu.find("Type: off_cpu"), std::string::npos) << off_cpu;
  EXPECT_NE(off_cpu.find("Showing nodes accounting for 2000ms, 100% of 2000ms total"), std::string::npos) << off_cpu;
  EXPECT_NE(off_cpu.find("2000ms   100%   100%     2000ms   100%  wait_for_disk"), std::string::npos) << off_cpu;
}

}  // namespace
}  // namespace stackwatch::flamegraph
