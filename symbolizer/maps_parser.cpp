// Parses /proc/PID/maps text into Mappings. Kept free of I/O so tests can feed
// fixture text; a malformed line is skipped so one odd entry never loses the
// whole snapshot.
#include <charconv>

#include "symbolizer/symbolizer.h"

namespace stackwatch::symbolizer {
namespace {

bool parse_hex(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Next space-separated field; advances text past it and the spaces after it.
std::string_view next_field(std::string_view& text) {
  size_t end = text.find(' ');
  std::string_view field = text.substr(0, end);
  text = end == std::string_view::npos ? std::string_view() : text.substr(end);
  size_t start = text.find_first_not_of(' ');
  text = start == std::string_view::npos ? std::string_view() : text.substr(start);
  return field;
}

bool parse_line(std::string_view line, Mapping& m) {
  std::string_view range = next_field(line);
  std::string_view perms = next_field(line);
  std::string_view offset = next_field(line);
  std::string_view dev = next_field(line);
  std::string_view inode = next_field(line);
  size_t dash = range.find('-');
  size_t colon = dev.find(':');
  if (dash == std::string_view::npos || colon == std::string_view::npos || perms.size() != 4) return false;
  uint64_t major = 0, minor = 0;
  if (!parse_hex(range.substr(0, dash), m.start) || !parse_hex(range.substr(dash + 1), m.end) ||
      !parse_hex(offset, m.file_offset) || !parse_hex(dev.substr(0, colon), major) ||
      !parse_hex(dev.substr(colon + 1), minor) || m.end < m.start)
    return false;
  auto [ptr, ec] = std::from_chars(inode.data(), inode.data() + inode.size(), m.inode, 10);
  if (ec != std::errc() || ptr != inode.data() + inode.size()) return false;
  m.dev_major = static_cast<uint32_t>(major);
  m.dev_minor = static_cast<uint32_t>(minor);
  m.perms = std::string(perms);
  // The path is the rest of the line: it may contain spaces.
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
  m.path = std::string(line);
  return true;
}

}  // namespace

std::vector<Mapping> parse_proc_maps(std::string_view text) {
  std::vector<Mapping> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    Mapping m;
    if (parse_line(line, m)) out.push_back(std::move(m));
  }
  return out;
}

}  // namespace stackwatch::symbolizer
