// pprof export: the gzipped profile.proto that go tool pprof, Parca,
// Pyroscope and Grafana read. From resolved samples it keeps what folded
// stacks lose: modules (as mappings, with build-ids), file and line, inlined
// chains (as several lines of one location), and pid/tid/comm as labels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flamegraph/folded.h"
#include "recording/recording.h"
#include "recording/stacks_json.h"

namespace stackwatch::flamegraph {

struct PprofOptions {
  // What the folded weights are, for folded input: ("samples", "count") for
  // on-CPU, ("off_cpu", "microseconds") for our off-CPU files, ("alloc", "bytes").
  // Resolved samples ignore these: they say "samples"/"count" and, when any
  // is off-CPU, "off_cpu"/"nanoseconds".
  std::string sample_type = "samples";
  std::string sample_unit = "count";
  // Sampling period, e.g. 20408163 ns at 49 Hz: lets pprof show CPU time.
  int64_t period = 0;
  std::string period_type = "cpu";
  std::string period_unit = "nanoseconds";
  int64_t time_nanos = 0;      // start of the recording, Unix ns; 0 if unknown
  int64_t duration_nanos = 0;
  std::vector<std::string> comments;
};

// The gzipped, serialized profile.
std::string pprof_profile(const std::vector<FoldedStack>& stacks, const PprofOptions& options = {});
std::string pprof_profile(const std::vector<StackSample>& samples, const PprofOptions& options = {});
// The same from stacks handed out one at a time (a recording's totals are
// not copied out whole to be written).
std::string pprof_profile(const StackSource& samples, const PprofOptions& options = {});

// Same, written atomically to path. Throws stackwatch::Error naming the path.
void write_pprof(const std::string& path, const std::vector<FoldedStack>& stacks, const PprofOptions& options = {});
void write_pprof(const std::string& path, const std::vector<StackSample>& samples, const PprofOptions& options = {});
void write_pprof(const std::string& path, const StackSource& samples, const PprofOptions& options = {});

}  // namespace stackwatch::flamegraph
