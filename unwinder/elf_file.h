// ElfFile: an open ELF image (file descriptor or bytes in memory) with the few
// header reads the unwinder needs: build-id, PT_LOAD segments, the
// .eh_frame_hdr segment and named sections. Owns the fd / image and the Elf*.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <libelf.h>

namespace stackwatch::unwinder {

struct LoadSegment {
  uint64_t vaddr = 0;
  uint64_t offset = 0;
  uint64_t filesz = 0;
  bool executable = false;
};

struct ByteRange {
  std::span<const uint8_t> bytes;
  uint64_t vaddr = 0;  // where bytes[0] is loaded
};

class ElfFile {
 public:
  // Takes ownership of fd. nullptr if it is not an ELF file libelf can read.
  // map_file: mmap the whole file (fast, for short-lived use); else only
  // the parts asked for are read into memory, so a long-lived ElfFile can
  // let go of its fd (release_fd) and never fault on a file truncated
  // under it.
  static std::unique_ptr<ElfFile> from_fd(int fd, bool map_file = true);
  static std::unique_ptr<ElfFile> from_image(std::vector<uint8_t> image);
  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  Elf* elf() const { return elf_; }
  // Tells libelf the file will not be read any more and closes the fd.
  // Data already read (sections, chunks) stays valid.
  void release_fd();
  // Lower-case hex of NT_GNU_BUILD_ID, or empty.
  std::string build_id() const;
  std::vector<LoadSegment> load_segments() const;
  // The PT_GNU_EH_FRAME segment (.eh_frame_hdr), if any.
  std::optional<ByteRange> eh_frame_hdr() const;
  // The raw bytes of a section by name (e.g. ".debug_frame"), if present.
  std::optional<ByteRange> section(const char* name) const;

 private:
  ElfFile(int fd, std::vector<uint8_t> image, Elf* elf);
  std::span<const uint8_t> raw(uint64_t offset, uint64_t size) const;

  int fd_ = -1;
  std::vector<uint8_t> image_;
  Elf* elf_ = nullptr;
};

}  // namespace stackwatch::unwinder
