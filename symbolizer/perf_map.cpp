// PerfMap parsing and lookup.
#include "symbolizer/perf_map.h"

#include <algorithm>
#include <charconv>

namespace stackwatch::symbolizer {
namespace {

bool parse_hex(std::string_view s, uint64_t& out) {
  if (s.starts_with("0x") || s.starts_with("0X")) s.remove_prefix(2);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

}  // namespace

PerfMap PerfMap::parse(std::string_view text) {
  PerfMap map;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) continue;
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) continue;
    JitSymbol sym;
    if (!parse_hex(line.substr(0, sp1), sym.start) || !parse_hex(line.substr(sp1 + 1, sp2 - sp1 - 1), sym.size))
      continue;
    std::string_view name = line.substr(sp2 + 1);
    while (!name.empty() && (name.back() == '\r' || name.back() == ' ')) name.remove_suffix(1);
    sym.name = std::string(name);
    map.symbols_.push_back(std::move(sym));
  }
  // Stable: among equal starts the later line stays later, and find() takes the last.
  std::stable_sort(map.symbols_.begin(), map.symbols_.end(),
                   [](const JitSymbol& a, const JitSymbol& b) { return a.start < b.start; });
  return map;
}

const JitSymbol* PerfMap::find(uint64_t address) const {
  auto it = std::upper_bound(symbols_.begin(), symbols_.end(), address,
                             [](uint64_t a, const JitSymbol& s) { return a < s.start; });
  // A few back: a later, shorter entry may precede a longer one that covers.
  constexpr int kLookBack = 8;
  for (int i = 0; i < kLookBack && it != symbols_.begin(); ++i) {
    --it;
    if (address < it->start + std::max<uint64_t>(it->size, 1)) return &*it;
  }
  return nullptr;
}

}  // namespace stackwatch::symbolizer
