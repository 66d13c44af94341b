// Resolving a function name or address to an ELF file offset for a uprobe
// (see uprobe_target.h). libelf, .symtab and .dynsym.
#include "profiler/uprobe_target.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "recording/error.h"
#include "symbolizer/demangle.h"
#include "symbolizer/symbolizer.h"

namespace stackwatch::profiler {

namespace {

namespace fs = std::filesystem;

// User space ends below the kernel half on x86_64 and arm64.
constexpr uint64_t kKernelSpaceStart = 0xffff800000000000ULL;

struct ElfSymbol {
  std::string name;
  uint64_t value = 0;
  uint64_t size = 0;
  unsigned type = 0;
};

class ElfFile {
 public:
  explicit ElfFile(const std::string& path) : path_(path) {
    elf_version(EV_CURRENT);
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
    elf_ = elf_begin(fd_, ELF_C_READ, nullptr);
    if (!elf_ || elf_kind(elf_) != ELF_K_ELF) {
      close();
      throw Error(path + " is not an ELF file: cannot place a uprobe in it");
    }
  }
  ~ElfFile() { close(); }
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  // Defined functions of .symtab and .dynsym (IFUNCs included, marked by type).
  std::vector<ElfSymbol> functions() const {
    std::vector<ElfSymbol> out;
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
      GElf_Shdr shdr;
      if (!gelf_getshdr(scn, &shdr) || (shdr.sh_type != SHT_SYMTAB && shdr.sh_type != SHT_DYNSYM)) continue;
      if (shdr.sh_entsize == 0) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data) continue;
      size_t n = shdr.sh_size / shdr.sh_entsize;
      for (size_t i = 0; i < n; ++i) {
        GElf_Sym sym;
        if (!gelf_getsym(data, static_cast<int>(i), &sym)) continue;
        unsigned type = GELF_ST_TYPE(sym.st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
        const char* name = elf_strptr(elf_, shdr.sh_link, sym.st_name);
        if (!name || !*name) continue;
        out.push_back({name, sym.st_value, sym.st_size, type});
      }
    }
    return out;
  }

  // File offset of a virtual address in an executable segment.
  std::optional<uint64_t> file_offset_of(uint64_t vaddr) const {
    size_t n = 0;
    if (elf_getphdrnum(elf_, &n) != 0) return std::nullopt;
    for (size_t i = 0; i < n; ++i) {
      GElf_Phdr ph;
      if (!gelf_getphdr(elf_, static_cast<int>(i), &ph)) continue;
      if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
      if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz) return vaddr - ph.p_vaddr + ph.p_offset;
    }
    return std::nullopt;
  }

  // Virtual address of a file offset in a loadable segment.
  std::optional<uint64_t> vaddr_of(uint64_t offset) const {
    size_t n = 0;
    if (elf_getphdrnum(elf_, &n) != 0) return std::nullopt;
    for (size_t i = 0; i < n; ++i) {
      GElf_Phdr ph;
      if (!gelf_getphdr(elf_, static_cast<int>(i), &ph)) continue;
      if (ph.p_type != PT_LOAD) continue;
      if (offset >= ph.p_offset && offset < ph.p_offset + ph.p_filesz) return offset - ph.p_offset + ph.p_vaddr;
    }
    return std::nullopt;
  }

 private:
  void close() {
    if (elf_) elf_end(elf_);
    elf_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  std::string path_;
  int fd_ = -1;
  Elf* elf_ = nullptr;
};

std::string base_name(const std::string& symbol) { return symbol.substr(0, symbol.find('@')); }

bool name_matches(const std::string& symbol, const std::string& func) {
  std::string base = base_name(symbol);
  if (base == func) return true;
  std::string demangled = symbolizer::demangle(base.c_str());
  return demangled == func || without_parameters(demangled) == func;
}

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

ProbeTarget make_target(const ElfFile& elf, const std::string& path, const ElfSymbol& s, const std::string& requested) {
  if (s.type == STT_GNU_IFUNC)
    throw Error("\"" + requested + "\" in " + path +
                " is an IFUNC resolver, which runs once at load: probe the implementation it selects instead");
  auto offset = elf.file_offset_of(s.value);
  if (!offset)
    throw Error("\"" + requested + "\" in " + path + " is not in an executable segment: it cannot be probed");
  ProbeTarget t;
  t.requested = requested;
  t.symbol = base_name(s.name);
  t.function = symbolizer::demangle(t.symbol.c_str());
  t.binary_path = path;
  t.file_offset = *offset;
  t.size = s.size;
  return t;
}

std::optional<uint64_t> parse_address(const std::string& func) {
  if (func.size() < 3 || func[0] != '0' || (func[1] != 'x' && func[1] != 'X')) return std::nullopt;
  try {
    size_t used = 0;
    uint64_t v = std::stoull(func, &used, 16);
    if (used != func.size()) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool runtime_library(const std::string& path) {
  std::string base = fs::path(path).filename().string();
  for (const char* p : {"libc.so", "libc-", "ld-linux", "libm.so", "libpthread", "libstdc++", "libgcc_s"})
    if (base.rfind(p, 0) == 0) return true;
  return false;
}

// The path to open for a file mapped by pid: its own path if visible here,
// else through the process's root (another mount namespace).
std::string visible_path(int pid, const std::string& path) {
  if (fs::exists(path)) return path;
  return "/proc/" + std::to_string(pid) + "/root" + path;
}

std::vector<symbolizer::Mapping> read_maps(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  if (!in) throw Error("cannot read /proc/" + std::to_string(pid) + "/maps: no process " + std::to_string(pid));
  std::stringstream ss;
  ss << in.rdbuf();
  return symbolizer::parse_proc_maps(ss.str());
}

std::vector<ProbeTarget> unique_by_offset(std::vector<ProbeTarget> v) {
  std::vector<ProbeTarget> out;
  for (auto& t : v)
    if (std::none_of(out.begin(), out.end(), [&](const ProbeTarget& o) { return o.file_offset == t.file_offset; }))
      out.push_back(std::move(t));
  return out;
}

ProbeTarget one_of(std::vector<ProbeTarget> matches, const std::string& func, const std::string& where) {
  if (matches.size() == 1) return matches[0];
  std::string list;
  for (size_t i = 0; i < matches.size() && i < 5; ++i) list += (i ? ", " : "") + matches[i].symbol;
  throw Error("\"" + func + "\" is ambiguous in " + where + ": " + std::to_string(matches.size()) +
              " functions match (" + list + "); give the mangled name or an address");
}

}  // namespace

std::string without_parameters(const std::string& d) {
  size_t from = 0;
  if (auto op = d.find("operator()"); op != std::string::npos) from = op + 10;
  int depth = 0;
  for (size_t i = from; i < d.size(); ++i) {
    char c = d[i];
    if (c == '<') ++depth;
    else if (c == '>' && depth > 0) --depth;
    else if (c == '(' && depth == 0) return d.substr(0, i);
  }
  return d;
}

std::vector<ProbeTarget> find_functions_in_elf(const std::string& path, const std::string& func) {
  ElfFile elf(path);
  std::vector<ProbeTarget> out;
  for (const ElfSymbol& s : elf.functions())
    if (name_matches(s.name, func)) out.push_back(make_target(elf, path, s, func));
  return unique_by_offset(std::move(out));
}

ProbeTarget function_at_vaddr(const std::string& path, uint64_t vaddr) {
  ElfFile elf(path);
  auto all = elf.functions();
  const ElfSymbol* best = nullptr;
  for (const ElfSymbol& s : all) {
    bool inside = vaddr == s.value || (vaddr > s.value && vaddr < s.value + s.size);
    if (inside && (!best || s.value > best->value)) best = &s;
  }
  if (!best)
    throw Error("address " + hex(vaddr) + " of " + path +
                " is in no known function (stripped?): a uretprobe needs a function's entry");
  return make_target(elf, path, *best, hex(vaddr));
}

ProbeTarget resolve_probe_target(const std::string& func, int pid, const std::string& binary) {
  if (func.empty()) throw Error("empty function name");
  auto address = parse_address(func);
  if (address && *address >= kKernelSpaceStart)
    throw Error(func + " is a kernel address: uprobes probe user-space functions only");

  if (!binary.empty()) {
    if (address) {
      ProbeTarget t = function_at_vaddr(binary, *address);
      t.requested = func;
      return t;
    }
    auto matches = find_functions_in_elf(binary, func);
    if (matches.empty())
      throw Error("no function \"" + func + "\" in " + binary +
                  " (not in .symtab or .dynsym; a stripped binary lists only its exported functions)");
    return one_of(std::move(matches), func, binary);
  }

  if (pid <= 0) throw Error("give a process (-p PID) or a binary (-e FILE) to find \"" + func + "\" in");
  std::vector<symbolizer::Mapping> maps = read_maps(pid);

  if (address) {
    for (const auto& m : maps) {
      if (*address < m.start || *address >= m.end) continue;
      if (m.path.empty() || m.path.front() == '[')
        throw Error(func + " is in " + (m.path.empty() ? std::string("anonymous memory (JIT?)") : m.path) + " of process " +
                    std::to_string(pid) + ": only functions of ELF files can be probed");
      if (!m.executable()) throw Error(func + " is not code (" + m.path + " mapped " + m.perms + ")");
      std::string path = visible_path(pid, m.path);
      ElfFile elf(path);
      auto vaddr = elf.vaddr_of(m.file_offset_of(*address));
      if (!vaddr) throw Error(func + " is outside the loadable segments of " + m.path);
      ProbeTarget t = function_at_vaddr(path, *vaddr);
      t.requested = func;
      return t;
    }
    throw Error(func + " is not mapped in process " + std::to_string(pid));
  }

  // Files to search: the program, its libraries, the C runtime last.
  std::vector<std::string> files;
  std::error_code ec;
  std::string exe = fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec).string();
  for (const auto& m : maps) {
    if (!m.executable() || m.path.empty() || m.path.front() == '[') continue;
    std::string p = m.path;
    if (p.size() > 10 && p.compare(p.size() - 10, 10, " (deleted)") == 0) continue;
    if (std::find(files.begin(), files.end(), p) == files.end()) files.push_back(p);
  }
  std::stable_sort(files.begin(), files.end(), [&](const std::string& a, const std::string& b) {
    auto rank = [&](const std::string& p) { return p == exe ? 0 : runtime_library(p) ? 2 : 1; };
    return rank(a) < rank(b);
  });
  for (const std::string& f : files) {
    std::vector<ProbeTarget> matches;
    try {
      matches = find_functions_in_elf(visible_path(pid, f), func);
    } catch (const Error&) {
      continue;  // a mapped file we cannot read is not where the function is
    }
    if (matches.empty()) continue;
    return one_of(std::move(matches), func, f);
  }
  throw Error("no function \"" + func + "\" in process " + std::to_string(pid) + " (searched " +
              std::to_string(files.size()) +
              " mapped files' .symtab and .dynsym; give the mangled name, an address, or -e BINARY)");
}

}  // namespace stackwatch::profiler
