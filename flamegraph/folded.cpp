// Folded stack writer and parser (see folded.h).
#include "flamegraph/folded.h"

#include <charconv>
#include <istream>
#include <ostream>
#include <sstream>

#include "recording/error.h"

namespace stackwatch::flamegraph {

std::string escape_frame(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c == ';') c = ':';
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  // A name of nothing but blanks would leave a line the parser cannot split.
  if (out.find_first_not_of(' ') == std::string::npos) out = "[unknown]";
  return out;
}

void write_folded(std::ostream& out, const std::vector<FoldedStack>& stacks) {
  for (const FoldedStack& s : stacks) {
    if (s.weight == 0 || s.frames.empty()) continue;
    // A line that starts with '#' is a comment to every reader: a first
    // frame named "#..." is written after a blank (readers trim it).
    if (escape_frame(s.frames[0])[0] == '#') out << ' ';
    for (size_t i = 0; i < s.frames.size(); ++i) {
      if (i) out << ';';
      out << escape_frame(s.frames[i]);
    }
    out << ' ' << s.weight << '\n';
  }
}

std::string folded_to_string(const std::vector<FoldedStack>& stacks) {
  std::ostringstream os;
  write_folded(os, stacks);
  return os.str();
}

std::vector<FoldedStack> parse_folded(std::istream& in) {
  std::vector<FoldedStack> out;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // Comments start at the first column (flamegraph.pl's convention): an
    // indented '#' is a frame name.
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[0] == '#') continue;
    size_t end = line.find_last_not_of(" \t");
    size_t sp = line.find_last_of(" \t", end);
    if (sp == std::string::npos || sp < first)
      throw Error("line " + std::to_string(lineno) + ": no weight after the stack");
    std::string_view num(line.data() + sp + 1, end - sp);
    FoldedStack s;
    // Weights may be fractional in some tools' output; round down.
    double w = 0;
    auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), s.weight);
    if (ec != std::errc() || ptr != num.data() + num.size()) {
      auto [p2, ec2] = std::from_chars(num.data(), num.data() + num.size(), w);
      // The range check also keeps NaN, infinities and 1e30 away from the
      // cast below, which would be undefined for them.
      if (ec2 != std::errc() || p2 != num.data() + num.size() || !(w >= 0 && w < 18446744073709551616.0))
        throw Error("line " + std::to_string(lineno) + ": bad weight \"" + std::string(num) + "\"");
      s.weight = static_cast<uint64_t>(w);
    }
    std::string_view stack(line.data() + first, sp - first);
    while (!stack.empty() && (stack.back() == ' ' || stack.back() == '\t')) stack.remove_suffix(1);
    size_t pos = 0;
    while (pos <= stack.size()) {
      size_t semi = stack.find(';', pos);
      if (semi == std::string_view::npos) semi = stack.size();
      if (semi > pos) s.frames.emplace_back(stack.substr(pos, semi - pos));
      pos = semi + 1;
    }
    if (!s.frames.empty()) out.push_back(std::move(s));
  }
  return out;
}

}  // namespace stackwatch::flamegraph
