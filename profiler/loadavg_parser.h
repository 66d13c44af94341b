// /proc/loadavg: "0.23 0.19 0.09 1/90 6101" -> the 1, 5 and 15 minute load
// averages (runnable + uninterruptible tasks, exponentially averaged), the
// runnable/total scheduling entities now, and the last pid handed out.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace stackwatch::load {

struct LoadAvg {
  double load1 = 0;
  double load5 = 0;
  double load15 = 0;
  uint64_t runnable = 0;  // includes the reader itself
  uint64_t entities = 0;  // threads on the machine
  uint64_t last_pid = 0;
};

// nullopt when the text is not a loadavg line; never throws.
std::optional<LoadAvg> parse_loadavg(std::string_view text);

}  // namespace stackwatch::load
