// /proc/kallsyms: the kernel's text symbols (vmlinux and modules), sorted by
// address for nearest-preceding lookup. Data symbols are dropped so a kernel
// address is never named after a variable.
#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "recording/error.h"
#include "symbolizer/symbolizer.h"

namespace stackwatch::symbolizer {

Kallsyms Kallsyms::parse(std::string_view text) {
  Kallsyms k;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    // "ffffffff81000000 T _stext" or "ffffffffc0a01000 t ext4_foo\t[ext4]"
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 + 3 > line.size() || line[sp1 + 2] != ' ') continue;
    char type = line[sp1 + 1];
    if (type != 't' && type != 'T' && type != 'w' && type != 'W') continue;
    uint64_t address = 0;
    auto [ptr, ec] = std::from_chars(line.data(), line.data() + sp1, address, 16);
    if (ec != std::errc() || ptr != line.data() + sp1) continue;
    std::string_view rest = line.substr(sp1 + 3);
    KernelSymbol sym;
    sym.address = address;
    size_t tab = rest.find_first_of("\t ");
    sym.name = std::string(rest.substr(0, tab));
    if (tab != std::string_view::npos) {
      std::string_view mod = rest.substr(tab + 1);
      size_t open = mod.find('['), close = mod.find(']');
      if (open != std::string_view::npos && close != std::string_view::npos && close > open)
        sym.module = std::string(mod.substr(open + 1, close - open - 1));
    }
    if (sym.name.empty()) continue;
    if (address != 0) k.has_addresses_ = true;
    k.symbols_.push_back(std::move(sym));
  }
  std::stable_sort(k.symbols_.begin(), k.symbols_.end(),
                   [](const KernelSymbol& a, const KernelSymbol& b) { return a.address < b.address; });
  return k;
}

Kallsyms Kallsyms::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path + ": kernel symbols are unavailable");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str());
}

const KernelSymbol* Kallsyms::find(uint64_t address) const {
  if (!has_addresses_ || symbols_.empty()) return nullptr;
  auto it = std::upper_bound(symbols_.begin(), symbols_.end(), address,
                             [](uint64_t a, const KernelSymbol& s) { return a < s.address; });
  if (it == symbols_.begin()) return nullptr;
  --it;
  // kallsyms has no sizes. No kernel function is anywhere near this long, so
  // an address this far past the last symbol (the gap between vmlinux and the
  // modules, a freed module) is unknown rather than that symbol's.
  constexpr uint64_t kMaxFunctionSize = 1 << 20;
  if (address - it->address >= kMaxFunctionSize) return nullptr;
  // Of several names at one address, the first listed is the kernel's own
  // (_text before its __pi__text alias); the sort kept file order.
  while (it != symbols_.begin() && std::prev(it)->address == it->address) --it;
  return &*it;
}

}  // namespace stackwatch::symbolizer
