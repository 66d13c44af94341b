// ElfFile: opening ELF images with libelf and reading the few facts the
// symbolizer needs before deciding where symbols and DWARF come from.
#include "symbolizer/elf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <gelf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "recording/error.h"
#include "symbolizer/private_files.h"
#include "symbolizer/inflated_image.h"

namespace stackwatch::symbolizer {

size_t release_file_pages(Elf* elf) {
  size_t size = 0;
  char* base = elf != nullptr ? elf_rawfile(elf, &size) : nullptr;
  if (base == nullptr || size == 0) return 0;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  // Whole pages inside the image only: its first and last may share a
  // page with another mapping's bytes (an in-memory vDSO copy).
  uintptr_t first = (reinterpret_cast<uintptr_t>(base) + page - 1) & ~(page - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(base) + size) & ~(page - 1);
  if (first >= end) return 0;
  int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  // pagemap: 8 bytes a page; bit 63 present, bit 61 a file page (or
  // shared anonymous memory: also kept by the kernel when dropped here).
  constexpr uint64_t kPresent = uint64_t{1} << 63, kFilePage = uint64_t{1} << 61;
  constexpr size_t kBatch = 512;
  uint64_t entries[kBatch];
  size_t released = 0;
  uintptr_t run_start = 0;  // a run of present file pages, dropped at its end
  auto drop = [&](uintptr_t run_end) {
    if (run_start != 0 && madvise(reinterpret_cast<void*>(run_start), run_end - run_start, MADV_DONTNEED) == 0)
      released += run_end - run_start;
    run_start = 0;
  };
  for (uintptr_t at = first; at < end;) {
    size_t n = std::min<size_t>(kBatch, (end - at) / page);
    if (!pread_exact(fd, entries, n * sizeof(uint64_t), static_cast<uint64_t>(at / page) * sizeof(uint64_t))) {
      run_start = 0;  // unknown: keep everything from here
      break;
    }
    for (size_t i = 0; i < n; ++i, at += page) {
      bool droppable = (entries[i] & kPresent) != 0 && (entries[i] & kFilePage) != 0;
      if (droppable && run_start == 0) run_start = at;
      if (!droppable) drop(at);
    }
  }
  drop(end);
  ::close(fd);
  return released;
}
namespace {

void ensure_libelf() {
  static const bool ok = elf_version(EV_CURRENT) != EV_NONE;
  if (!ok) throw Error("libelf is too old for this build");
}

std::string to_hex(const unsigned char* data, size_t size) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 15]);
  }
  return out;
}

// Build-id from the note sections (or PT_NOTE segments when sections are gone).
std::string find_build_id(Elf* elf) {
  auto scan = [](Elf_Data* data) -> std::string {
    if (data == nullptr) return {};
    size_t offset = 0, name_off = 0, desc_off = 0;
    GElf_Nhdr nhdr;
    while ((offset = gelf_getnote(data, offset, &nhdr, &name_off, &desc_off)) > 0) {
      if (nhdr.n_type == NT_GNU_BUILD_ID && nhdr.n_namesz == 4 &&
          std::memcmp(static_cast<char*>(data->d_buf) + name_off, "GNU", 4) == 0)
        return to_hex(static_cast<unsigned char*>(data->d_buf) + desc_off, nhdr.n_descsz);
    }
    return {};
  };
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != SHT_NOTE) continue;
    if (std::string id = scan(elf_getdata(scn, nullptr)); !id.empty()) return id;
  }
  size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) != 0) return {};
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr phdr;
    if (gelf_getphdr(elf, static_cast<int>(i), &phdr) == nullptr || phdr.p_type != PT_NOTE) continue;
    if (std::string id = scan(elf_getdata_rawchunk(elf, phdr.p_offset, phdr.p_filesz, ELF_T_NHDR)); !id.empty())
      return id;
  }
  return {};
}

}  // namespace

std::optional<uint64_t> offset_to_vaddr(const std::vector<LoadSegment>& segments, uint64_t offset) {
  for (int pass = 0; pass < 2; ++pass) {
    for (const LoadSegment& s : segments) {
      if ((pass == 0) != s.executable) continue;
      if (offset >= s.offset && offset < s.offset + s.filesz) return offset - s.offset + s.vaddr;
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> vaddr_to_offset(const std::vector<LoadSegment>& segments, uint64_t vaddr) {
  for (const LoadSegment& s : segments)
    if (vaddr >= s.vaddr && vaddr < s.vaddr + s.memsz) return vaddr - s.vaddr + s.offset;
  return std::nullopt;
}

std::unique_ptr<ElfFile> ElfFile::open_fd(int fd, const std::string& display_path) {
  ensure_libelf();
  std::unique_ptr<ElfFile> f(new ElfFile());
  f->fd_ = fd;
  f->path_ = display_path;
  f->elf_ = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (f->elf_ == nullptr || elf_kind(f->elf_) != ELF_K_ELF)
    throw Error(display_path + " is not an ELF file");
  f->inspect();
  return f;
}

std::unique_ptr<ElfFile> ElfFile::open_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
  return open_fd(fd, path);
}

// MADV_PAGEOUT (Linux 5.4); older kernels reject it with EINVAL, harmlessly.
#ifdef MADV_PAGEOUT
static constexpr int kMadvPageout = MADV_PAGEOUT;
#else
static constexpr int kMadvPageout = 21;
#endif

void ElfFile::release_file_pages(const char* raw, size_t size) const {
  auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  auto start = reinterpret_cast<uintptr_t>(raw);
  if (start % page != 0) return;  // not libelf's mapping of the file
  // MADV_DONTNEED only unmaps the pages, which stay in the page cache, but
  // would zero anonymous memory: only where the mapping is proven to be this
  // file's (libelf falls back to reading the file into memory when it
  // cannot map it). Else MADV_PAGEOUT, which reclaims clean file pages and
  // leaves anonymous memory as it is (no swap) or swaps it out, but evicts
  // the file from the page cache too: ~0.8 ms of a cold libc, and the next
  // Symbolizer reads it from the disk again.
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/map_files/%lx-%lx", static_cast<unsigned long>(start),
                static_cast<unsigned long>(start + (size + page - 1) / page * page));
  struct stat mapped, file;
  bool file_backed = ::stat(link, &mapped) == 0 && ::fstat(fd_, &file) == 0 && mapped.st_dev == file.st_dev &&
                     mapped.st_ino == file.st_ino;
  madvise(const_cast<char*>(raw), size, file_backed ? MADV_DONTNEED : kMadvPageout);
}

std::unique_ptr<ElfFile> ElfFile::open_for_dwarf(const ImageCacheOptions& cache) const {
  if (fd_ < 0) return nullptr;
  auto from_image = [this](InflatedImage image) -> std::unique_ptr<ElfFile> {
    std::unique_ptr<ElfFile> f(new ElfFile());
    f->path_ = path_;
    f->inflated_ = std::move(image);
    f->elf_ = elf_memory(f->inflated_.data(), f->inflated_.size());
    if (f->elf_ != nullptr && elf_kind(f->elf_) == ELF_K_ELF) return f;
    return nullptr;
  };
  // An earlier run's image of this file: nothing to inflate (image_cache.h).
  if (InflatedImage image = find_cached_image(cache, fd_)) {
    if (auto f = from_image(std::move(image))) {
      f->image_from_cache_ = true;
      return f;
    }
  }
  // (.debug_aranges is read: the index lists units' ranges from it.)
  static constexpr std::string_view kUnread[] = {".debug_loc",          ".debug_loclists",    ".debug_macro",
                                                 ".debug_macinfo",      ".debug_pubnames",    ".debug_pubtypes",
                                                 ".debug_gnu_pubnames", ".debug_gnu_pubtypes"};
  // Compressed sections: a copy with them inflated by libdeflate (see
  // inflated_image.h); the unread ones are left out of it.
  size_t file_size = 0;
  if (const char* raw = elf_rawfile(elf_, &file_size); raw != nullptr) {
    InflatedImage image = inflate_elf_image({raw, file_size}, kUnread);
    if (image) {
      // The compressed bytes were read once and are not needed again (the
      // symbol tables, which are, are read back from the file on use): out
      // of our RSS (3.5 MB for libc's debug file).
      release_file_pages(raw, file_size);
      cache_image(cache, fd_, image);
      if (auto f = from_image(std::move(image))) return f;
    }
  }
  int fd = ::dup(fd_);
  if (fd < 0) return nullptr;
  std::unique_ptr<ElfFile> f(new ElfFile());
  f->fd_ = fd;
  f->path_ = path_;
  f->elf_ = elf_begin(fd, ELF_C_READ_MMAP_PRIVATE, nullptr);
  if (f->elf_ == nullptr || elf_kind(f->elf_) != ELF_K_ELF) return nullptr;
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(f->elf_, &shstrndx) != 0) return nullptr;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(f->elf_, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    const char* name = elf_strptr(f->elf_, shstrndx, shdr.sh_name);
    if (name == nullptr) continue;
    for (std::string_view unread : kUnread) {
      if (name != unread) continue;
      shdr.sh_type = SHT_NOBITS;
      if (gelf_update_shdr(scn, &shdr) == 0) return nullptr;
    }
  }
  return f;
}

std::unique_ptr<ElfFile> ElfFile::try_open_path(const std::string& path) {
  try {
    return open_path(path);
  } catch (const Error&) {
    return nullptr;
  }
}

std::unique_ptr<ElfFile> ElfFile::from_memory(std::vector<char> image, const std::string& name) {
  ensure_libelf();
  std::unique_ptr<ElfFile> f(new ElfFile());
  f->image_ = std::move(image);
  f->path_ = name;
  f->elf_ = elf_memory(f->image_.data(), f->image_.size());
  if (f->elf_ == nullptr || elf_kind(f->elf_) != ELF_K_ELF) throw Error(name + " is not an ELF image");
  f->inspect();
  return f;
}

ElfFile::~ElfFile() {
  if (elf_ != nullptr) elf_end(elf_);
  if (fd_ >= 0) ::close(fd_);
}

void ElfFile::inspect() {
  build_id_ = find_build_id(elf_);
  size_t phnum = 0;
  if (elf_getphdrnum(elf_, &phnum) == 0) {
    for (size_t i = 0; i < phnum; ++i) {
      GElf_Phdr phdr;
      if (gelf_getphdr(elf_, static_cast<int>(i), &phdr) == nullptr || phdr.p_type != PT_LOAD) continue;
      segments_.push_back({phdr.p_vaddr, phdr.p_memsz, phdr.p_offset, phdr.p_filesz, (phdr.p_flags & PF_X) != 0});
    }
  }
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf_, &shstrndx) != 0) return;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    const char* name = elf_strptr(elf_, shstrndx, shdr.sh_name);
    if (name == nullptr) continue;
    if (shdr.sh_type == SHT_SYMTAB) has_symtab_ = true;
    if (shdr.sh_type == SHT_NOBITS) continue;
    if (std::strcmp(name, ".debug_info") == 0 || std::strcmp(name, ".zdebug_info") == 0) has_dwarf_ = true;
    if (std::strcmp(name, ".gnu_debuglink") == 0) {
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (data != nullptr && data->d_size > 0)
        debuglink_ = std::string(static_cast<const char*>(data->d_buf), strnlen(static_cast<const char*>(data->d_buf), data->d_size));
    }
  }
}

std::string read_build_id(int fd) {
  ensure_libelf();
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (elf == nullptr) return {};
  std::string id = elf_kind(elf) == ELF_K_ELF ? find_build_id(elf) : std::string();
  elf_end(elf);
  return id;
}

}  // namespace stackwatch::symbolizer
