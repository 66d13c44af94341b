// stackwatch detect: the streaming anomaly detector, offline.
//   detect FILE.csv  -> per row, score and 0/1 label per series (CSV)
//   detect DIR       -> replays DIR/intervals.jsonl through the same
//                       IntervalMonitor as `record`, prints the anomalies,
//                       and checks the labels against DIR/stacks.json.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "localize/localize.h"
#include "profiler/commands.h"
#include "recording/atomic_file.h"
#include "recording/error.h"
#include "recording/stacks_json.h"

namespace stackwatch::cli {

namespace {

struct DetectOptions {
  std::string input;
  std::string output;
  std::vector<std::string> columns;
  double risk = 1e-4;
  bool quiet = false;
};

void detect_csv(const DetectOptions& o) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (o.input != "-") {
    file.open(o.input);
    if (!file) throw Error("cannot open " + o.input);
    in = &file;
  }
  localize::SeriesCsvReader reader(*in, o.input == "-" ? "stdin" : o.input, o.columns);
  if (o.output.empty() || o.output == "-") {
    localize::detect_series_csv(reader, std::cout, o.risk);
    std::cout.flush();
    return;
  }
  std::ostringstream out;
  localize::DetectCsvSummary s = localize::detect_series_csv(reader, out, o.risk);
  write_file_atomically(o.output, out.str());
  if (!o.quiet) {
    for (size_t i = 0; i < reader.columns().size(); ++i)
      std::cerr << reader.columns()[i] << ": " << s.anomalies[i] << " anomalous rows of " << s.rows << "\n";
  }
}

// The label stacks.json should carry per stack identity, from the replay.
void detect_dir(const DetectOptions& o) {
  namespace fs = std::filesystem;
  fs::path dir = o.input;
  fs::path log = dir / "intervals.jsonl";
  if (!fs::exists(log))
    throw Error(dir.string() + " has no intervals.jsonl: not a recording directory written by stackwatch record");
  std::vector<localize::IntervalRecord> records = localize::read_interval_log(log.string());

  localize::IntervalMonitor monitor(localize::MonitorConfig{o.risk, 5});
  std::map<std::string, std::optional<std::string>> labels;  // stack identity -> labels
  std::unique_ptr<localize::JsonLinesWriter> writer;
  if (!o.output.empty()) writer = std::make_unique<localize::JsonLinesWriter>(o.output);
  size_t anomalies = 0;
  for (const localize::IntervalRecord& r : records) {
    std::vector<std::string> stack_labels;
    for (const localize::Anomaly& a : monitor.observe(r, &stack_labels)) {
      ++anomalies;
      if (!o.quiet) std::cout << a.description << "\n";
      if (writer) writer->append(localize::anomaly_to_json(a));
    }
    for (size_t i = 0; i < r.stacks.size(); ++i) {
      if (stack_labels[i].empty()) continue;
      localize::add_label(labels[r.stacks[i].id], stack_labels[i]);
    }
  }
  std::cout << records.size() << " intervals, " << anomalies << " anomalies, " << labels.size()
            << " stacks labelled\n";

  fs::path stacks_path = dir / "stacks.json";
  if (!fs::exists(stacks_path)) return;
  std::ifstream in(stacks_path);
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded()) throw Error(stacks_path.string() + ": not valid JSON");
  // Per stack identity, the set of labels: stacks.json has one entry per
  // thread and stack, each with the labels of the intervals it ran in.
  auto entries = [](const std::string& label) {
    std::set<std::string> out;
    for (size_t from = 0; from < label.size();) {
      size_t to = label.find("; ", from);
      if (to == std::string::npos) to = label.size();
      if (to > from) out.insert(label.substr(from, to - from));
      from = to + 2;
    }
    return out;
  };
  std::map<std::string, std::set<std::string>> have;
  for (const StackSample& s : stacks_from_json(doc)) {
    std::set<std::string>& h = have[localize::stack_identity(s)];
    if (s.label) h.merge(entries(*s.label));
  }
  size_t checked = 0, differ = 0;
  for (const auto& [id, got] : have) {
    auto it = labels.find(id);
    std::set<std::string> want = it != labels.end() && it->second ? entries(*it->second) : std::set<std::string>();
    ++checked;
    if (want == got) continue;
    auto join = [](const std::set<std::string>& s) {
      std::string out;
      for (const std::string& e : s) out += (out.empty() ? "" : "; ") + e;
      return out;
    };
    if (++differ <= 10)
      std::cout << "label differs for " << id << ": stacks.json has \"" << join(got) << "\", replay gives \""
                << join(want) << "\"\n";
  }
  if (differ) throw Error("replay labels differ from " + stacks_path.string() + " on " + std::to_string(differ) + " of " + std::to_string(checked) + " stacks");
  std::cout << "stacks.json labels: replay agrees on all " << checked << " stacks\n";
}

}  // namespace

void register_detect_command(CLI::App& app) {
  auto opts = std::make_shared<DetectOptions>();
  auto* cmd = app.add_subcommand(
      "detect",
      "Run the anomaly detector offline: on a series CSV (timestamp + numeric columns; writes per row a score and "
      "a 0/1 label per column) or on a recording directory (replays intervals.jsonl, prints the anomalies and "
      "checks stacks.json's labels)");
  cmd->add_option("input", opts->input, "SERIES.csv (or - for stdin) or a recording directory")->required();
  cmd->add_option("-o,--output", opts->output,
                  "CSV: write the labelled CSV here instead of stdout; DIR: write the anomalies here as JSON Lines");
  cmd->add_option("-c,--column", opts->columns,
                  "CSV: series column to use (repeatable); default: all but the timestamp and label columns")
      ->allow_extra_args(false);
  cmd->add_option("--risk", opts->risk,
                  "probability that a normal point is flagged, per score (SPOT's q); lower flags less")
      ->check(CLI::Range(1e-12, 0.01));
  cmd->add_flag("-q,--quiet", opts->quiet, "print no per-anomaly lines or summaries");
  cmd->callback([opts] {
    if (opts->input != "-" && std::filesystem::is_directory(opts->input))
      detect_dir(*opts);
    else
      detect_csv(*opts);
  });
}

}  // namespace stackwatch::cli
