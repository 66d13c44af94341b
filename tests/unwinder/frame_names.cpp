// .symtab / .dynsym lookup for FrameNamer.
#include "tests/unwinder/frame_names.h"

#include <fcntl.h>
#include <gelf.h>
#include <unistd.h>

#include <sstream>

#include "unwinder/elf_file.h"

namespace stackwatch::unwinder::testing {
namespace {

void add_symbols(const ElfFile& file, uint32_t section_type,
                 std::map<uint64_t, std::pair<uint64_t, std::string>>& out) {
  Elf* elf = file.elf();
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != section_type) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr || shdr.sh_entsize == 0) continue;
    size_t count = shdr.sh_size / shdr.sh_entsize;
    for (size_t i = 0; i < count; ++i) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
      if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_value == 0) continue;
      const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (name == nullptr) continue;
      std::string clean(name);
      if (size_t at = clean.find('@'); at != std::string::npos) clean.resize(at);
      out.emplace(sym.st_value, std::pair{sym.st_size, clean});
    }
  }
}

}  // namespace

const FrameNamer::Symbols& FrameNamer::symbols_for(const std::string& path) {
  auto it = cache_.find(path);
  if (it != cache_.end()) return it->second;
  Symbols& symbols = cache_[path];
  auto file = ElfFile::from_fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file) return symbols;
  for (const LoadSegment& load : file->load_segments()) {
    symbols.load_offsets.emplace_back(load.offset, load.vaddr);
  }
  add_symbols(*file, SHT_SYMTAB, symbols.by_start);
  std::string build_id = file->build_id();
  if (symbols.by_start.empty() && build_id.size() > 2) {
    std::string debug = "/usr/lib/debug/.build-id/" + build_id.substr(0, 2) + "/" + build_id.substr(2) + ".debug";
    if (auto debug_file = ElfFile::from_fd(open(debug.c_str(), O_RDONLY | O_CLOEXEC))) {
      add_symbols(*debug_file, SHT_SYMTAB, symbols.by_start);
    }
  }
  add_symbols(*file, SHT_DYNSYM, symbols.by_start);  // emplace keeps .symtab's names
  return symbols;
}

FrameName FrameNamer::name(uint64_t address, bool is_return_address) {
  uint64_t lookup = is_return_address ? address - 1 : address;
  for (const symbolizer::Mapping& m : maps_) {
    if (lookup < m.start || lookup >= m.end) continue;
    FrameName frame;
    std::string path = m.path;
    frame.module = path.substr(path.rfind('/') + 1);
    if (path.empty() || path[0] == '[') return frame;
    const Symbols& symbols = symbols_for(path);
    uint64_t file_offset = m.file_offset_of(lookup);
    uint64_t vaddr = 0;
    bool found = false;
    for (auto [offset, seg_vaddr] : symbols.load_offsets) {
      if ((offset & ~uint64_t{0xfff}) <= m.file_offset) {
        vaddr = file_offset - offset + seg_vaddr;
        found = true;
      }
    }
    if (!found) return frame;
    auto sym = symbols.by_start.upper_bound(vaddr);
    if (sym == symbols.by_start.begin()) return frame;
    --sym;
    if (vaddr < sym->first + std::max<uint64_t>(sym->second.first, 1)) frame.function = sym->second.second;
    return frame;
  }
  return {};
}

std::vector<FrameName> FrameNamer::names(const std::vector<uint64_t>& ips) {
  std::vector<FrameName> out;
  for (size_t i = 0; i < ips.size(); ++i) out.push_back(name(ips[i], i > 0));
  return out;
}

std::string describe(const std::vector<FrameName>& frames) {
  std::ostringstream out;
  for (const FrameName& f : frames) out << "\n  " << f.module << ":" << (f.function.empty() ? "?" : f.function);
  return out.str();
}

}  // namespace stackwatch::unwinder::testing
