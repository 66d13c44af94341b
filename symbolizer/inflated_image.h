// An in-memory copy of an ELF file for libdw in which the compressed
// sections (SHF_COMPRESSED, zlib: how Debian ships every -dbg file) are
// already inflated, by libdeflate rather than zlib. libdw inflates every
// DWARF section it knows through libelf's elf_compress when it opens a file;
// for libc's debug file that is ~9 MB of output and a fifth of the cold
// symbolizer's time, and libdeflate does the same work ~3x faster. libdw
// then finds plain sections and inflates nothing.
//
// The copy holds only what libdw may read: the ELF header, the contents of
// the DWARF sections (inflated where compressed) but the ones listed as
// unread, of the section names and of the other small sections (the large
// others and the unread ones become SHT_NOBITS), and the section header
// table. No program headers: libdw does not need them to read DWARF (the
// module keeps the original file for segments and .eh_frame).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

namespace stackwatch::symbolizer {

// The image's bytes, in an anonymous mapping of their own: from 4 MiB on
// asked to be backed by huge pages (where transparent huge pages are on
// "madvise"), so writing libc's ~9 MB of DWARF costs a few page faults, not
// thousands (the tail past the last whole huge page: ordinary pages).
struct UnmapImage {
  size_t length = 0;
  void operator()(char* p) const;
};

class InflatedImage {
 public:
  InflatedImage() = default;
  explicit InflatedImage(size_t size);  // zero-filled; empty if the mapping fails
  // size bytes of the file open at fd from offset (page-aligned), mapped
  // private and writable (libelf may write; nothing reaches the file); empty
  // if the mapping fails. The mapping outlives fd.
  static InflatedImage map_file(int fd, uint64_t offset, size_t size);
  char* data() const { return bytes_.get(); }
  size_t size() const { return size_; }
  explicit operator bool() const { return bytes_ != nullptr; }

 private:
  std::unique_ptr<char, UnmapImage> bytes_;
  size_t size_ = 0;
};

// The image, or an empty one (bytes null) when file is not a 64-bit ELF file
// of this machine's byte order, uses a compression other than zlib, holds no
// compressed section (nothing to gain: libdw reads the file as it is), or a
// section does not inflate to its stated size. unread: names of sections to
// turn into SHT_NOBITS.
InflatedImage inflate_elf_image(std::span<const char> file, std::span<const std::string_view> unread);

}  // namespace stackwatch::symbolizer
