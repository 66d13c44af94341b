// Frameless system call sites (see syscall_sites.h).
#include "unwinder/syscall_sites.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "unwinder/cfi_row.h"
#include "unwinder/elf_file.h"
#include "unwinder/module_cfi.h"

namespace stackwatch::unwinder {

// A return address further than this above rsp is not a wrapper's frame
// (glibc's largest is 0x28 + 8): a row claiming it is taken as bad CFI.
static constexpr int32_t kMaxRaSpOffset = 4096;

// Where the return address is, relative to rsp, when the row says the CFA is
// rsp-based and the return address is saved relative to it; else -1.
static int64_t ra_sp_offset(const CfiRow& row) {
  if (row.cfa_rule != CfaRule::kRegOffset || row.cfa_reg != kDwarfRsp || row.ra_rule != RegRule::kAtCfa) return -1;
  int64_t offset = int64_t{row.cfa_offset} + row.ra_offset;
  if (offset < 0 || offset >= kMaxRaSpOffset || offset % 8 != 0) return -1;
  return offset;
}

std::vector<SyscallSite> frameless_syscall_sites(int fd, const std::string& debug_root) {
  std::vector<SyscallSite> sites;
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return sites;
  std::unique_ptr<ElfFile> file = ElfFile::from_fd(own);
  if (!file) return sites;
  std::vector<LoadSegment> segments = file->load_segments();
  std::shared_ptr<const ModuleCfi> cfi = ModuleCfi::build_lazy(std::move(file), debug_root);
  if (!cfi) return sites;
  std::vector<uint8_t> bytes;
  for (const LoadSegment& segment : segments) {
    if (!segment.executable || segment.filesz < 2) continue;
    bytes.resize(segment.filesz);
    ssize_t got = pread(fd, bytes.data(), bytes.size(), static_cast<off_t>(segment.offset));
    if (got < 2) continue;
    const uint8_t* begin = bytes.data();
    const uint8_t* end = begin + got;
    for (const uint8_t* p = begin; (p = static_cast<const uint8_t*>(std::memchr(p, 0x0f, end - p))) && p + 1 < end;
         ++p) {
      if (p[1] != 0x05) continue;
      uint64_t after = static_cast<uint64_t>(p - begin) + 2;
      const CfiRow* row = cfi->find(segment.vaddr + after);
      if (!row) continue;
      int64_t offset = ra_sp_offset(*row);
      if (offset < 0) continue;
      sites.push_back({segment.offset + after, static_cast<uint32_t>(offset)});
    }
  }
  return sites;
}

}  // namespace stackwatch::unwinder
