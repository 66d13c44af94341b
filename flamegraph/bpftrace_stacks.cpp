// Parsing bpftrace's printed stack maps, and reading stack files of any
// supported kind (see bpftrace_stacks.h).
#include "flamegraph/bpftrace_stacks.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "recording/error.h"

namespace stackwatch::flamegraph {
namespace {

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// "do_syscall_64+56" -> "do_syscall_64": offsets would split one function
// into as many frames as it has sampled instructions.
std::string without_offset(std::string_view frame) {
  size_t plus = frame.rfind('+');
  if (plus != std::string_view::npos && plus > 0 && plus + 1 < frame.size()) {
    std::string_view off = frame.substr(plus + 1);
    bool numeric = std::all_of(off.begin(), off.end(), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == 'x';
    });
    if (numeric) frame = frame.substr(0, plus);
  }
  return escape_frame(frame);
}

// Scalar keys between stacks, e.g. ", myprog" or ", 1234, myprog".
void add_scalars(std::string_view text, std::vector<std::string>& scalars) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view part = trim(text.substr(pos, comma - pos));
    if (!part.empty()) scalars.push_back(escape_frame(part));
    pos = comma + 1;
  }
}

}  // namespace

std::vector<FoldedStack> parse_bpftrace_stacks(std::istream& in) {
  std::vector<FoldedStack> out;
  std::string line;
  size_t lineno = 0;
  bool in_key = false;
  std::vector<std::string> frames;   // innermost first, across the key's stacks
  std::vector<std::string> scalars;  // in key order
  auto finish = [&](std::string_view tail) {
    // tail is what follows the last '[' or stack: "..., comm]: 17"
    size_t close = tail.rfind("]:");
    if (close == std::string_view::npos) throw Error("line " + std::to_string(lineno) + ": no \"]: COUNT\"");
    add_scalars(tail.substr(0, close), scalars);
    std::string_view num = trim(tail.substr(close + 2));
    FoldedStack s;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), s.weight);
    if (ec != std::errc() || p != num.data() + num.size())
      throw Error("line " + std::to_string(lineno) + ": bad count \"" + std::string(num) + "\"");
    s.frames = scalars;
    s.frames.insert(s.frames.end(), frames.rbegin(), frames.rend());
    if (!s.frames.empty() && s.weight) out.push_back(std::move(s));
    frames.clear();
    scalars.clear();
    in_key = false;
  };
  while (std::getline(in, line)) {
    ++lineno;
    std::string_view t = trim(line);
    if (!in_key) {
      if (t.empty() || t[0] != '@') continue;  // "Attaching 1 probe...", blank lines
      size_t open = t.find('[');
      if (open == std::string_view::npos) continue;  // a scalar map "@x: 3"
      std::string_view rest = t.substr(open + 1);
      in_key = true;
      if (rest.find("]:") != std::string_view::npos) finish(rest);  // one-line key
      else add_scalars(rest, scalars);
      continue;
    }
    if (t.empty()) continue;
    if (t[0] == ',' || t[0] == ']') {
      if (t.find("]:") != std::string_view::npos) finish(t[0] == ',' ? t.substr(1) : t);
      else add_scalars(t.substr(1), scalars);
      continue;
    }
    frames.push_back(without_offset(t));
  }
  if (in_key) throw Error("line " + std::to_string(lineno) + ": the last stack has no \"]: COUNT\"");
  return out;
}

std::vector<FoldedStack> read_stacks_file(const std::string& path) {
  std::string text;
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    text = ss.str();
  } else {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("cannot open " + path + ": no such file or not readable");
    std::ostringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  // The first meaningful line tells the format.
  bool bpftrace = false;
  std::istringstream probe(text);
  for (std::string line; std::getline(probe, line);) {
    std::string_view t = trim(line);
    if (t.empty() || t.starts_with("Attaching ")) continue;
    bpftrace = t[0] == '@';
    break;
  }
  std::istringstream in(std::move(text));
  try {
    return bpftrace ? parse_bpftrace_stacks(in) : parse_folded(in);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

}  // namespace stackwatch::flamegraph
