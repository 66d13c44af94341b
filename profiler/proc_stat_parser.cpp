// /proc/stat parser (see proc_stat_parser.h).
#include "profiler/proc_stat_parser.h"

#include <charconv>

#include "profiler/text_fields.h"

namespace stackwatch::load {
namespace {

// "cpu  7879 0 2862 92424 346 0 69 16 0 0": fills as many fields as given.
bool parse_cpu_times(std::string_view rest, CpuTimes& out) {
  uint64_t* fields[] = {&out.user, &out.nice,    &out.system, &out.idle,  &out.iowait,
                        &out.irq,  &out.softirq, &out.steal,  &out.guest, &out.guest_nice};
  size_t parsed = 0;
  for (std::string_view word : split_words(rest)) {
    if (parsed == std::size(fields)) break;  // a future kernel's extra column
    auto value = parse_u64(word);
    if (!value) return false;
    *fields[parsed++] = *value;
  }
  // user nice system idle are in every kernel since 2.4; fewer is garbage.
  return parsed >= 4;
}

}  // namespace

ProcStat parse_proc_stat(std::string_view text) {
  ProcStat stat;
  for (std::string_view line : split_lines(text)) {
    auto [key, rest] = split_key(line);
    if (key.starts_with("cpu")) {
      CpuTimes times;
      if (!parse_cpu_times(rest, times)) continue;
      if (key == "cpu") {
        stat.total = times;
        continue;
      }
      int cpu = 0;
      std::string_view number = key.substr(3);
      auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), cpu);
      if (ec != std::errc() || end != number.data() + number.size() || cpu < 0) continue;
      stat.cpus.push_back({cpu, times});
      continue;
    }
    std::optional<uint64_t>* target = nullptr;
    if (key == "ctxt") target = &stat.ctxt;
    else if (key == "processes") target = &stat.processes;
    else if (key == "procs_running") target = &stat.procs_running;
    else if (key == "procs_blocked") target = &stat.procs_blocked;
    if (target == nullptr) continue;
    auto words = split_words(rest);
    if (!words.empty()) *target = parse_u64(words.front());
  }
  return stat;
}

}  // namespace stackwatch::load
