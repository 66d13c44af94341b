// /proc/kallsyms: the kernel's text symbols (vmlinux and modules), sorted by
// address for nearest-preceding lookup. Data symbols are dropped so a kernel
// address is never named after a variable. Read line by line: the file is
// ~5 MB of text that is never held whole.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <memory>

#include "recording/error.h"
#include "symbolizer/symbolizer.h"

namespace stackwatch::symbolizer {

void Kallsyms::add_line(std::string_view line) {
  // "ffffffff81000000 T _stext" or "ffffffffc0a01000 t ext4_foo\t[ext4]"
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 + 3 > line.size() || line[sp1 + 2] != ' ') return;
  char type = line[sp1 + 1];
  if (type != 't' && type != 'T' && type != 'w' && type != 'W') return;
  uint64_t address = 0;
  auto [ptr, ec] = std::from_chars(line.data(), line.data() + sp1, address, 16);
  if (ec != std::errc() || ptr != line.data() + sp1) return;
  std::string_view rest = line.substr(sp1 + 3);
  size_t tab = rest.find_first_of("\t ");
  std::string_view name = rest.substr(0, tab);
  if (name.empty()) return;
  Entry e;
  e.address = address;
  e.name = static_cast<uint32_t>(names_.size());
  if (tab != std::string_view::npos) {
    std::string_view mod = rest.substr(tab + 1);
    size_t open = mod.find('['), close = mod.find(']');
    if (open != std::string_view::npos && close != std::string_view::npos && close > open) {
      std::string_view m = mod.substr(open + 1, close - open - 1);
      // Modules' symbols come grouped: the last module seen is almost always it.
      if (modules_[last_module_] != m) {
        auto it = std::find(modules_.begin(), modules_.end(), m);
        if (it == modules_.end()) it = modules_.insert(modules_.end(), std::string(m));
        last_module_ = static_cast<uint32_t>(it - modules_.begin());
      }
      e.module = last_module_;
    }
  }
  // Kernels built with call padding (6.2+ on x86) list a "__pfx_<f>" before
  // every function <f>: the 16 bytes of padding in front of it, never run
  // but for call-depth accounting thunks. They are half of the text symbols;
  // kept as boundaries (an address there is not <f>'s predecessor) under
  // one shared name, so the table holds half the names.
  if (name.starts_with("__pfx_")) {
    if (padding_name_ == UINT32_MAX) {
      padding_name_ = static_cast<uint32_t>(names_.size());
      names_.append("__pfx");
      names_.push_back('\0');
    }
    e.name = padding_name_;
  } else {
    names_.append(name);
    names_.push_back('\0');
  }
  if (address != 0) has_addresses_ = true;
  entries_.push_back(e);
}

void Kallsyms::finish() {
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.address < b.address; });
  entries_.shrink_to_fit();
  names_.shrink_to_fit();
}

Kallsyms Kallsyms::parse(std::string_view text) {
  Kallsyms k;
  k.modules_.emplace_back();  // 0: vmlinux
  while (!text.empty()) {
    size_t nl = text.find('\n');
    k.add_line(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  }
  k.finish();
  return k;
}

Kallsyms Kallsyms::load(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(path.c_str(), "re"), &std::fclose);
  if (!in) throw Error("cannot read " + path + ": kernel symbols are unavailable");
  Kallsyms k;
  k.modules_.emplace_back();  // 0: vmlinux
  k.entries_.reserve(1 << 17);  // a typical kernel's text symbols, without regrowth
  // Large reads: each read(2) of /proc/kallsyms formats symbols until the
  // buffer is full, so stdio's default 4 KiB would mean ~1,500 of them.
  std::setvbuf(in.get(), nullptr, _IOFBF, 256 * 1024);
  char* line = nullptr;
  size_t capacity = 0;
  ssize_t n;
  while ((n = ::getline(&line, &capacity, in.get())) > 0) {
    size_t len = static_cast<size_t>(n);
    if (line[len - 1] == '\n') --len;
    k.add_line(std::string_view(line, len));
  }
  std::free(line);
  k.finish();
  return k;
}

void Kallsyms::set_module_extents(std::string_view text) {
  extents_.assign(modules_.size(), Extent{});
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    // name size refcount deps state address [taints]
    std::string_view fields[6];
    size_t n = 0;
    while (n < 6 && !line.empty()) {
      size_t sp = line.find(' ');
      fields[n++] = line.substr(0, sp);
      line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    }
    if (n < 6 || !fields[5].starts_with("0x")) continue;
    uint64_t size = 0, base = 0;
    auto [p1, e1] = std::from_chars(fields[1].data(), fields[1].data() + fields[1].size(), size);
    auto [p2, e2] = std::from_chars(fields[5].data() + 2, fields[5].data() + fields[5].size(), base, 16);
    if (e1 != std::errc() || e2 != std::errc() || base == 0 || size == 0) continue;
    auto it = std::find(modules_.begin() + 1, modules_.end(), fields[0]);
    if (it != modules_.end()) extents_[static_cast<size_t>(it - modules_.begin())] = {base, size};
  }
}

const KernelSymbol* Kallsyms::find(uint64_t address) const {
  if (!has_addresses_) return nullptr;
  // The nearest preceding entry of each table (the cache file's and the one
  // read here); the nearer of the two, the cache's on a tie.
  Entry best;
  size_t best_table = 0, best_index = 0;
  bool found = cache_.count > 0 && cached_entry_before(address, best, best_index);
  auto it = std::upper_bound(entries_.begin(), entries_.end(), address,
                             [](uint64_t a, const Entry& e) { return a < e.address; });
  if (it != entries_.begin()) {
    --it;
    // Of several names at one address, the first listed is the kernel's own
    // (_text before its __pi__text alias); the sort kept file order.
    while (it != entries_.begin() && std::prev(it)->address == it->address) --it;
    if (!found || it->address > best.address) {
      best = *it;
      best_table = 1;
      best_index = static_cast<size_t>(it - entries_.begin());
      found = true;
    }
  }
  if (!found) return nullptr;
  // kallsyms has no sizes. No kernel function is anywhere near this long, so
  // an address this far past the last symbol (the gap between vmlinux and the
  // modules, a freed module) is unknown rather than that symbol's.
  constexpr uint64_t kMaxFunctionSize = 1 << 20;
  if (address - best.address >= kMaxFunctionSize) return nullptr;
  // The cache's entries are checked here, as they are used, rather than all
  // of them when it is opened: a damaged one names nothing. The names end in
  // a NUL (read_cache checked), so an offset inside them is a whole string.
  const uint64_t names_size = best_table == 0 ? cache_.names_size : names_.size();
  if (best.name >= names_size || best.module >= modules_.size()) return nullptr;
  // Past the end of the symbol's module: a freed module's memory, or a BPF
  // program's image among the modules.
  if (best.module != 0 && best.module < extents_.size()) {
    const Extent& x = extents_[best.module];
    if (x.size != 0 && (address < x.base || address - x.base >= x.size)) return nullptr;
  }
  uint64_t key = (uint64_t{best_table} << 32) | static_cast<uint64_t>(best_index);
  auto [slot, fresh] = resolved_.try_emplace(key);
  if (fresh) {
    slot->second.address = best.address;
    if (best_table == 0) {
      if (!read_cached_name(best.name, slot->second.name)) {
        resolved_.erase(slot);
        return nullptr;
      }
    } else {
      slot->second.name = names_.data() + best.name;
    }
    slot->second.module = modules_[best.module];
  }
  return &slot->second;
}

size_t Kallsyms::memory_bytes() const {
  size_t bytes = entries_.capacity() * sizeof(Entry) + names_.capacity() + extents_.capacity() * sizeof(Extent) +
                 cache_.block_first.capacity() * sizeof(uint64_t);
  for (const std::string& m : modules_) bytes += sizeof m + m.capacity();
  bytes += resolved_.size() * (sizeof(KernelSymbol) + 48);
  return bytes;
}

}  // namespace stackwatch::symbolizer
