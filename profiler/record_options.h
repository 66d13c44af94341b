// The options of `stackwatch record`, and their validation (every bad value
// is a one-line stackwatch::Error before anything is loaded).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stackwatch::profiler {

struct RecordOptions {
  std::vector<uint32_t> pids;            // -p; empty = every process (or COMMAND)
  bool children = false;                 // follow children of -p processes
  unsigned hz = 49;                      // -F
  bool on_cpu = true;
  bool off_cpu = true;
  double interval_s = 5.0;               // -i
  double duration_s = 0;                 // -d; 0 = until Ctrl-C / COMMAND exit
  std::string output_dir = "stackwatch-out";
  unsigned top = 5;                      // stacks printed per interval
  uint32_t max_stacks = 0;               // per-buffer map size; 0 = from rate and interval
  uint64_t min_block_us = 1000;          // off-CPU: shorter blocks are ignored
  bool dwarf = true;                     // --call-graph dwarf (default) or fp
  std::string cgroup;                    // -G: record the processes of this cgroup
  std::string load_threshold;            // --load-threshold: keep the stacks of busy intervals
  bool detect = true;                    // anomaly detection and localization
  bool probes = true;                    // latency probes on suspects
  bool baseline_probes = false;          // --baseline-probes: probe busy functions in normal intervals too
  double probe_seconds = 10;             // how long probes stay attached at most
  bool memory = false;                   // --memory: outstanding allocations, bad frees, page faults per stack
  uint64_t memory_rate = 0;              // --memory-rate: allocator events per second per CPU (0 = no limit)
  bool io = false;                       // --io: I/O system calls and block I/O per stack
  bool quiet = false;
  std::vector<std::string> command;      // -- COMMAND ARGS...
};

// Throws stackwatch::Error naming the bad flag.
void validate(RecordOptions& options);

// Throws stackwatch::Error naming CAP_BPF and CAP_PERFMON when the process has
// neither root nor those capabilities.
void check_privileges();

// Creates the output directory if needed and proves it is writable.
void prepare_output_dir(const std::string& dir);

}  // namespace stackwatch::profiler
