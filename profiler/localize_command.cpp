// stackwatch localize DIR: ranks suspect functions and prints root-cause
// hints for the anomalies of a recording (localize/localize_pipeline.h),
// and writes DIR/hints.json and DIR/hints.txt.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "profiler/commands.h"
#include "recording/error.h"

#include "localize/localize_pipeline.h"

namespace stackwatch::cli {

namespace {

struct LocalizeCommandOptions {
  std::string dir;
  size_t top = 5;
  std::string process;
  std::string anomaly;
  std::string baseline;
  double hz = 0;
  bool no_write = false;
};

void run_localize(const LocalizeCommandOptions& o) {
  localize::LocalizeOptions options;
  options.top = o.top;
  options.process = o.process;
  options.sample_hz = o.hz;
  if (!o.anomaly.empty()) options.anomaly = localize::parse_interval_ranges(o.anomaly);
  if (!o.baseline.empty()) options.baseline = localize::parse_interval_ranges(o.baseline);
  localize::LocalizeResult result = localize::localize_recording(o.dir, options);
  std::cout << localize::format_hints(result);
  if (!o.no_write)
    for (const std::string& path : localize::write_hints(o.dir, result)) std::cerr << "wrote " << path << "\n";
}

}  // namespace

void register_localize_command(CLI::App& app) {
  auto o = std::make_shared<LocalizeCommandOptions>();
  auto* cmd = app.add_subcommand(
      "localize",
      "Rank the functions that explain the anomalies of a recording (call graph of the anomalous intervals vs a "
      "baseline before them) and print a root-cause hint for each; writes DIR/hints.json and DIR/hints.txt");
  cmd->add_option("DIR", o->dir, "Recording directory (stackwatch record -o DIR)")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--top", o->top, "Suspects per process")->capture_default_str();
  cmd->add_option("--process", o->process, "Only this process name (default: the processes the detector flagged)");
  cmd->add_option("--anomaly", o->anomaly, "Anomalous intervals, e.g. 12-15 (default: from anomalies.jsonl or a replay of the detector)");
  cmd->add_option("--baseline", o->baseline, "Baseline intervals, e.g. 0-11 (default: the normal intervals before the anomaly)");
  cmd->add_option("--hz", o->hz, "On-CPU sample rate of the recording (default: from stacks.json, else 49)");
  cmd->add_flag("--no-write", o->no_write, "Print only; do not write hints.json and hints.txt");
  cmd->callback([o] { run_localize(*o); });
}

}  // namespace stackwatch::cli
