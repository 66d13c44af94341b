// /proc/loadavg parser (see loadavg_parser.h).
#include "profiler/loadavg_parser.h"

#include "profiler/text_fields.h"

namespace stackwatch::load {

std::optional<LoadAvg> parse_loadavg(std::string_view text) {
  auto words = split_words(text);
  if (words.size() < 5) return std::nullopt;
  auto load1 = parse_double(words[0]);
  auto load5 = parse_double(words[1]);
  auto load15 = parse_double(words[2]);
  size_t slash = words[3].find('/');
  if (!load1 || !load5 || !load15 || slash == std::string_view::npos) return std::nullopt;
  auto runnable = parse_u64(words[3].substr(0, slash));
  auto entities = parse_u64(words[3].substr(slash + 1));
  auto last_pid = parse_u64(words[4]);
  if (!runnable || !entities || !last_pid) return std::nullopt;
  return LoadAvg{*load1, *load5, *load15, *runnable, *entities, *last_pid};
}

}  // namespace stackwatch::load
