// Frameless system call sites: exact sites and return-address offsets on a
// fixture whose CFI is written by hand, and glibc's write() wrapper.
#include "unwinder/syscall_sites.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace stackwatch::unwinder {
namespace {

struct Symbol {
  uint64_t file_offset = 0;  // of its first byte
  uint64_t size = 0;
};

// Function symbols of an ELF file (.symtab, else .dynsym), by name, with file offsets.
std::map<std::string, Symbol> function_symbols(const std::string& path) {
  std::map<std::string, Symbol> out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  elf_version(EV_CURRENT);
  Elf* elf = elf_begin(fd, ELF_C_READ, nullptr);
  size_t phnum = 0;
  elf_getphdrnum(elf, &phnum);
  auto file_offset = [&](uint64_t vaddr) -> uint64_t {
    for (size_t i = 0; i < phnum; ++i) {
      GElf_Phdr ph;
      if (gelf_getphdr(elf, static_cast<int>(i), &ph) && ph.p_type == PT_LOAD && vaddr >= ph.p_vaddr &&
          vaddr < ph.p_vaddr + ph.p_filesz)
        return vaddr - ph.p_vaddr + ph.p_offset;
    }
    return 0;
  };
  for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(elf, scn));) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM)) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC) continue;
      out[elf_strptr(elf, sh.sh_link, sym.st_name)] = {file_offset(sym.st_value), sym.st_size};
    }
  }
  elf_end(elf);
  close(fd);
  return out;
}

std::vector<SyscallSite> sites_of(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  std::vector<SyscallSite> sites = frameless_syscall_sites(fd, "");
  close(fd);
  return sites;
}

std::vector<SyscallSite> sites_in(const std::vector<SyscallSite>& sites, const Symbol& function) {
  std::vector<SyscallSite> in;
  for (const SyscallSite& s : sites)
    if (s.file_offset > function.file_offset && s.file_offset <= function.file_offset + function.size) in.push_back(s);
  return in;
}

TEST(SyscallSites, FramelessAndPaddedWrappersAreSitesFramedOnesAreNot) {
  const std::string path = UNW_SYSCALL_SITES;
  auto symbols = function_symbols(path);
  ASSERT_TRUE(symbols.count("frameless_write") && symbols.count("padded_write") && symbols.count("framed_write"));
  std::vector<SyscallSite> sites = sites_of(path);

  // mov $1,%eax is 5 bytes, syscall 2: the ip after it is at +7.
  auto frameless = sites_in(sites, symbols["frameless_write"]);
  ASSERT_EQ(frameless.size(), 1u);
  EXPECT_EQ(frameless[0].file_offset, symbols["frameless_write"].file_offset + 7);
  EXPECT_EQ(frameless[0].ra_sp_offset, 0u);

  // sub $0x28,%rsp is 4 bytes more.
  auto padded = sites_in(sites, symbols["padded_write"]);
  ASSERT_EQ(padded.size(), 1u);
  EXPECT_EQ(padded[0].file_offset, symbols["padded_write"].file_offset + 11);
  EXPECT_EQ(padded[0].ra_sp_offset, 0x28u);

  EXPECT_TRUE(sites_in(sites, symbols["framed_write"]).empty()) << "rbp-based CFA: the frame-pointer walk is right";
}

TEST(SyscallSites, GlibcWriteHasBothOfItsPaths) {
  // Debian 12's libc: write() tests __libc_single_threaded; the
  // single-threaded path issues the call with nothing on the stack, the
  // other after sub $0x28,%rsp (to call the cancellation helpers).
  const std::string libc = "/lib/x86_64-linux-gnu/libc.so.6";
  auto symbols = function_symbols(libc);
  ASSERT_TRUE(symbols.count("write"));
  std::vector<SyscallSite> in_write = sites_in(sites_of(libc), symbols["write"]);
  std::vector<uint32_t> offsets;
  for (const SyscallSite& s : in_write) offsets.push_back(s.ra_sp_offset);
  EXPECT_EQ(offsets, (std::vector<uint32_t>{0, 0x28}));
}

TEST(SyscallSites, NotAnElfFileHasNone) {
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(frameless_syscall_sites(fd, "").empty());
  close(fd);
}

}  // namespace
}  // namespace stackwatch::unwinder
