// One open ELF image (a file on disk, or bytes in memory for the vDSO) and the
// facts about it the symbolizer needs: build-id, loadable segments (for the
// file offset <-> virtual address arithmetic), .gnu_debuglink, and whether it
// carries DWARF or a full symbol table. Owns its fd and its Elf handle.
#pragma once

#include <libelf.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "symbolizer/image_cache.h"
#include "symbolizer/inflated_image.h"

namespace stackwatch::symbolizer {

struct LoadSegment {
  uint64_t vaddr = 0;
  uint64_t memsz = 0;
  uint64_t offset = 0;
  uint64_t filesz = 0;
  bool executable = false;
};

// File offset -> virtual address of the ELF file, through the PT_LOAD segment
// holding that offset (executable segments first). Free so tests can check the
// arithmetic on synthetic segments where p_vaddr != p_offset.
std::optional<uint64_t> offset_to_vaddr(const std::vector<LoadSegment>& segments, uint64_t offset);
std::optional<uint64_t> vaddr_to_offset(const std::vector<LoadSegment>& segments, uint64_t vaddr);

// Takes the pages of elf's image that are a file's (libelf's mapping of a
// file, or an image mapped from the image cache) out of this process's
// resident set (MADV_DONTNEED): they stay in the page cache, and what is
// read again faults back in. Pages that are this process's own (an image
// inflated on the heap, a page written since it was mapped) are kept:
// /proc/self/pagemap tells them apart. For after a one-time scan of a
// whole file (the DWARF index's listing of its units) that left most of it
// resident when later lookups read a few pages of it. Returns the bytes
// released from the mapping (0 when pagemap cannot be read).
size_t release_file_pages(Elf* elf);

class ElfFile {
 public:
  // Takes ownership of fd. Throws stackwatch::Error when it is not ELF.
  static std::unique_ptr<ElfFile> open_fd(int fd, const std::string& display_path);
  // Throws stackwatch::Error when the file is missing or not ELF.
  static std::unique_ptr<ElfFile> open_path(const std::string& path);
  // A copy of an in-memory image (the vDSO).
  static std::unique_ptr<ElfFile> from_memory(std::vector<char> image, const std::string& name);
  // A second, private view of an on-disk file for libdw, with the DWARF
  // sections the symbolizer never reads (location lists, macros, pubnames,
  // aranges)
  // hidden as SHT_NOBITS: libdw decompresses every DWARF section it knows
  // when it opens a file, and in Debian's compressed debug files location
  // lists are a sixth to a quarter of the bytes. When the file has
  // compressed sections the view is an in-memory copy with them already
  // inflated (inflated_image.h), found in or added to cache when it names
  // a directory (image_cache.h). nullptr if not possible.
  std::unique_ptr<ElfFile> open_for_dwarf(const ImageCacheOptions& cache = {}) const;
  // This view's image was mapped from the image cache (statistics, tests).
  bool image_from_cache() const { return image_from_cache_; }
  // As open_path but returns nullptr instead of throwing.
  static std::unique_ptr<ElfFile> try_open_path(const std::string& path);
  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  Elf* elf() const { return elf_; }
  const std::string& path() const { return path_; }
  const std::string& build_id() const { return build_id_; }  // lowercase hex or empty
  const std::vector<LoadSegment>& segments() const { return segments_; }
  bool has_dwarf() const { return has_dwarf_; }    // .debug_info with contents
  bool has_symtab() const { return has_symtab_; }  // .symtab (not only .dynsym)
  const std::optional<std::string>& debuglink() const { return debuglink_; }

 private:
  ElfFile() = default;
  void inspect();
  // Drops the pages of this file's bytes at raw (libelf's view of it) from
  // the process's memory.
  void release_file_pages(const char* raw, size_t size) const;

  int fd_ = -1;
  std::vector<char> image_;
  InflatedImage inflated_;  // open_for_dwarf's copy with inflated sections
  Elf* elf_ = nullptr;
  std::string path_;
  std::string build_id_;
  std::vector<LoadSegment> segments_;
  bool has_dwarf_ = false;
  bool has_symtab_ = false;
  bool image_from_cache_ = false;
  std::optional<std::string> debuglink_;
};

// Reads only the build-id of the ELF file at fd (cheap: notes only). Empty
// when there is none or the file is not ELF. Does not take ownership.
std::string read_build_id(int fd);

}  // namespace stackwatch::symbolizer
