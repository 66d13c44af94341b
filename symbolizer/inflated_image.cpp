// inflate_elf_image: lays the sections out one after another in a fresh
// buffer, inflating the compressed ones with libdeflate.
#include "symbolizer/inflated_image.h"

#include <elf.h>
#include <libdeflate.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace stackwatch::symbolizer {
namespace {

struct Placement {
  size_t offset = 0;      // in the image
  size_t size = 0;        // in the image (inflated size when compressed)
  bool compressed = false;
  bool copy = false;      // has contents in the image
};

// Bounds that keep the layout arithmetic far from overflow on damaged files
// (those go to libelf's path, which reports them).
constexpr uint64_t kMaxDeflateRatio = 1032;
constexpr uint64_t kMaxAlignment = 4096;
// Sections that are not DWARF are copied up to this size (notes, small
// tables: cheap, and kept in case a libdw path looks at them).
constexpr uint64_t kLargeSection = 64 * 1024;

size_t align_up(size_t value, size_t alignment) {
  if (alignment <= 1) return value;
  return (value + alignment - 1) / alignment * alignment;
}

bool host_little_endian() {
  const uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

struct DecompressorDeleter {
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};

}  // namespace

// Transparent huge pages come only to 2 MiB-aligned ranges: map 2 MiB more
// and give back the unaligned head and tail. Only the whole huge pages of
// the image are asked for: the tail, less than one, stays in ordinary pages
// rather than take a huge page it would leave partly unused and resident
// (libc: 8.8 MB of image would hold 10 MB). Below kHugePageMinimum, ordinary
// pages only.
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugePageMinimum = size_t{4} << 20;

InflatedImage::InflatedImage(size_t size) {
  if (size == 0) return;
  if (size < kHugePageMinimum) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    bytes_ = std::unique_ptr<char, UnmapImage>(static_cast<char*>(p), UnmapImage{size});
    size_ = size;
    return;
  }
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t length = align_up(size, page);
  void* p = mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  auto start = reinterpret_cast<uintptr_t>(p);
  uintptr_t aligned = align_up(start, kHugePage);
  if (aligned > start) munmap(p, aligned - start);
  if (uintptr_t tail = start + length + kHugePage - (aligned + length); tail > 0)
    munmap(reinterpret_cast<void*>(aligned + length), tail);
  madvise(reinterpret_cast<void*>(aligned), length / kHugePage * kHugePage, MADV_HUGEPAGE);  // a hint
  bytes_ = std::unique_ptr<char, UnmapImage>(reinterpret_cast<char*>(aligned), UnmapImage{length});
  size_ = size;
}

InflatedImage InflatedImage::map_file(int fd, uint64_t offset, size_t size) {
  InflatedImage image;
  if (size == 0) return image;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) return image;
  image.bytes_ = std::unique_ptr<char, UnmapImage>(static_cast<char*>(p), UnmapImage{size});
  image.size_ = size;
  return image;
}

void UnmapImage::operator()(char* p) const { munmap(p, length); }

InflatedImage inflate_elf_image(std::span<const char> file, std::span<const std::string_view> unread) {
  if (file.size() < sizeof(Elf64_Ehdr)) return {};
  Elf64_Ehdr ehdr;
  std::memcpy(&ehdr, file.data(), sizeof ehdr);
  if (std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0 || ehdr.e_ident[EI_CLASS] != ELFCLASS64 ||
      ehdr.e_ident[EI_DATA] != (host_little_endian() ? ELFDATA2LSB : ELFDATA2MSB))
    return {};
  // Relocatable files need libdw to apply relocations to the sections it
  // reads; extended section numbering is rare: both keep libelf's path.
  if (ehdr.e_type == ET_REL || ehdr.e_shnum == 0 || ehdr.e_shstrndx >= ehdr.e_shnum ||
      ehdr.e_shentsize != sizeof(Elf64_Shdr))
    return {};
  size_t table_bytes = static_cast<size_t>(ehdr.e_shnum) * sizeof(Elf64_Shdr);
  if (ehdr.e_shoff > file.size() || file.size() - ehdr.e_shoff < table_bytes) return {};
  std::vector<Elf64_Shdr> shdrs(ehdr.e_shnum);
  std::memcpy(shdrs.data(), file.data() + ehdr.e_shoff, table_bytes);
  const Elf64_Shdr& names = shdrs[ehdr.e_shstrndx];
  if (names.sh_type == SHT_NOBITS || names.sh_offset > file.size() || file.size() - names.sh_offset < names.sh_size ||
      (names.sh_flags & SHF_COMPRESSED) != 0)
    return {};
  auto name_of = [&](const Elf64_Shdr& s) -> std::string_view {
    if (s.sh_name >= names.sh_size) return {};
    const char* p = file.data() + names.sh_offset + s.sh_name;
    return {p, strnlen(p, names.sh_size - s.sh_name)};
  };

  std::vector<Placement> placements(shdrs.size());
  size_t offset = sizeof(Elf64_Ehdr);
  bool any_compressed = false;
  for (size_t i = 1; i < shdrs.size(); ++i) {
    Elf64_Shdr& s = shdrs[i];
    Placement& p = placements[i];
    if (s.sh_type == SHT_NOBITS || s.sh_size == 0) continue;
    std::string_view name = name_of(s);
    // libdw reads the DWARF sections, found by name, and the section names;
    // the large others (.symtab and .strtab of a debug file, the code and
    // data of a binary built with -gz) are left out.
    bool dwarf = name.starts_with(".debug_") || name.starts_with(".zdebug_") || name.starts_with(".gnu_debug");
    bool large_other = !dwarf && i != ehdr.e_shstrndx && s.sh_size > kLargeSection;
    if (large_other || std::find(unread.begin(), unread.end(), name) != unread.end()) {
      s.sh_type = SHT_NOBITS;
      s.sh_flags &= ~static_cast<uint64_t>(SHF_COMPRESSED);  // no contents, compressed or not
      continue;
    }
    if (s.sh_offset > file.size() || file.size() - s.sh_offset < s.sh_size) return {};
    size_t alignment = std::max<uint64_t>(s.sh_addralign, 1);
    if (alignment > kMaxAlignment) return {};
    p.size = s.sh_size;
    if ((s.sh_flags & SHF_COMPRESSED) != 0) {
      Elf64_Chdr chdr;
      if (s.sh_size < sizeof chdr) return {};
      std::memcpy(&chdr, file.data() + s.sh_offset, sizeof chdr);
      if (chdr.ch_type != ELFCOMPRESS_ZLIB) return {};
      // Deflate expands at most ~1032:1; a larger claim is a damaged file.
      if (chdr.ch_size / kMaxDeflateRatio > s.sh_size) return {};
      p.compressed = true;
      p.size = chdr.ch_size;
      alignment = std::max<uint64_t>(chdr.ch_addralign, 1);
      if (alignment > kMaxAlignment) return {};
      any_compressed = true;
    }
    p.copy = true;
    offset = align_up(offset, alignment);
    p.offset = offset;
    offset += p.size;
  }
  if (!any_compressed) return {};
  size_t table_offset = align_up(offset, alignof(Elf64_Shdr));
  InflatedImage image(table_offset + table_bytes);
  if (!image) return {};

  std::unique_ptr<libdeflate_decompressor, DecompressorDeleter> inflater(libdeflate_alloc_decompressor());
  if (!inflater) return {};
  for (size_t i = 1; i < shdrs.size(); ++i) {
    Elf64_Shdr& s = shdrs[i];
    const Placement& p = placements[i];
    if (!p.copy) {
      s.sh_offset = 0;
      continue;
    }
    const char* source = file.data() + s.sh_offset;
    if (p.compressed) {
      size_t inflated = 0;
      // The zlib stream follows the compression header (ELF gABI).
      if (libdeflate_zlib_decompress(inflater.get(), source + sizeof(Elf64_Chdr), s.sh_size - sizeof(Elf64_Chdr),
                                     image.data() + p.offset, p.size, &inflated) != LIBDEFLATE_SUCCESS ||
          inflated != p.size)
        return {};
      Elf64_Chdr chdr;
      std::memcpy(&chdr, source, sizeof chdr);
      s.sh_flags &= ~static_cast<uint64_t>(SHF_COMPRESSED);
      s.sh_addralign = chdr.ch_addralign;
      s.sh_size = p.size;
    } else {
      std::memcpy(image.data() + p.offset, source, p.size);
    }
    s.sh_offset = p.offset;
  }
  ehdr.e_phoff = 0;
  ehdr.e_phnum = 0;
  ehdr.e_shoff = table_offset;
  std::memcpy(image.data(), &ehdr, sizeof ehdr);
  std::memcpy(image.data() + table_offset, shdrs.data(), table_bytes);
  return image;
}

}  // namespace stackwatch::symbolizer
