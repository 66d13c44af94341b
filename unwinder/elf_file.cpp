// libelf plumbing behind ElfFile.
#include "unwinder/elf_file.h"

#include <gelf.h>
#include <unistd.h>

#include <cstring>

namespace stackwatch::unwinder {
namespace {

bool libelf_ready() {
  static const bool ready = elf_version(EV_CURRENT) != EV_NONE;
  return ready;
}

bool is_elf64(Elf* elf) { return elf_kind(elf) == ELF_K_ELF && gelf_getclass(elf) == ELFCLASS64; }

}  // namespace

ElfFile::ElfFile(int fd, std::vector<uint8_t> image, Elf* elf)
    : fd_(fd), image_(std::move(image)), elf_(elf) {}

ElfFile::~ElfFile() {
  if (elf_ != nullptr) elf_end(elf_);
  if (fd_ >= 0) close(fd_);
}

std::unique_ptr<ElfFile> ElfFile::from_fd(int fd, bool map_file) {
  if (fd < 0) return nullptr;
  if (!libelf_ready()) {
    close(fd);
    return nullptr;
  }
  Elf* elf = elf_begin(fd, map_file ? ELF_C_READ_MMAP : ELF_C_READ, nullptr);
  if (elf == nullptr || !is_elf64(elf)) {
    if (elf != nullptr) elf_end(elf);
    close(fd);
    return nullptr;
  }
  return std::unique_ptr<ElfFile>(new ElfFile(fd, {}, elf));
}

std::unique_ptr<ElfFile> ElfFile::from_image(std::vector<uint8_t> image) {
  if (!libelf_ready() || image.empty()) return nullptr;
  // The Elf* points into the vector's heap buffer, which a move keeps in place.
  Elf* elf = elf_memory(reinterpret_cast<char*>(image.data()), image.size());
  if (elf == nullptr || !is_elf64(elf)) {
    if (elf != nullptr) elf_end(elf);
    return nullptr;
  }
  return std::unique_ptr<ElfFile>(new ElfFile(-1, std::move(image), elf));
}

void ElfFile::release_fd() {
  if (fd_ < 0) return;
  elf_cntl(elf_, ELF_C_FDDONE);
  close(fd_);
  fd_ = -1;
}

std::span<const uint8_t> ElfFile::raw(uint64_t offset, uint64_t size) const {
  // A chunk, not elf_rawfile: without mmap the latter reads the whole file.
  Elf_Data* data = elf_getdata_rawchunk(elf_, static_cast<int64_t>(offset), size, ELF_T_BYTE);
  if (data == nullptr || data->d_buf == nullptr || data->d_size != size) return {};
  return {static_cast<const uint8_t*>(data->d_buf), size};
}

std::string ElfFile::build_id() const {
  size_t count = 0;
  if (elf_getphdrnum(elf_, &count) != 0) return {};
  for (size_t i = 0; i < count; ++i) {
    GElf_Phdr phdr;
    if (gelf_getphdr(elf_, static_cast<int>(i), &phdr) == nullptr || phdr.p_type != PT_NOTE) continue;
    Elf_Data* data = elf_getdata_rawchunk(elf_, phdr.p_offset, phdr.p_filesz, ELF_T_NHDR);
    if (data == nullptr) continue;
    size_t offset = 0;
    GElf_Nhdr nhdr;
    size_t name_offset = 0, desc_offset = 0;
    while ((offset = gelf_getnote(data, offset, &nhdr, &name_offset, &desc_offset)) > 0) {
      const char* name = static_cast<const char*>(data->d_buf) + name_offset;
      if (nhdr.n_type == NT_GNU_BUILD_ID && nhdr.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
        const auto* desc = static_cast<const uint8_t*>(data->d_buf) + desc_offset;
        static const char kHex[] = "0123456789abcdef";
        std::string hex;
        for (size_t j = 0; j < nhdr.n_descsz; ++j) {
          hex.push_back(kHex[desc[j] >> 4]);
          hex.push_back(kHex[desc[j] & 15]);
        }
        return hex;
      }
    }
  }
  return {};
}

std::vector<LoadSegment> ElfFile::load_segments() const {
  std::vector<LoadSegment> loads;
  size_t count = 0;
  if (elf_getphdrnum(elf_, &count) != 0) return loads;
  for (size_t i = 0; i < count; ++i) {
    GElf_Phdr phdr;
    if (gelf_getphdr(elf_, static_cast<int>(i), &phdr) == nullptr || phdr.p_type != PT_LOAD) continue;
    loads.push_back({phdr.p_vaddr, phdr.p_offset, phdr.p_filesz, (phdr.p_flags & PF_X) != 0});
  }
  return loads;
}

std::optional<ByteRange> ElfFile::eh_frame_hdr() const {
  size_t count = 0;
  if (elf_getphdrnum(elf_, &count) != 0) return std::nullopt;
  for (size_t i = 0; i < count; ++i) {
    GElf_Phdr phdr;
    if (gelf_getphdr(elf_, static_cast<int>(i), &phdr) == nullptr || phdr.p_type != PT_GNU_EH_FRAME) continue;
    std::span<const uint8_t> bytes = raw(phdr.p_offset, phdr.p_filesz);
    if (bytes.empty()) return std::nullopt;
    return ByteRange{bytes, phdr.p_vaddr};
  }
  return std::nullopt;
}

std::optional<ByteRange> ElfFile::section(const char* name) const {
  size_t strndx = 0;
  if (elf_getshdrstrndx(elf_, &strndx) != 0) return std::nullopt;
  for (Elf_Scn* scn = elf_nextscn(elf_, nullptr); scn != nullptr; scn = elf_nextscn(elf_, scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    const char* scn_name = elf_strptr(elf_, strndx, shdr.sh_name);
    if (scn_name == nullptr || std::strcmp(scn_name, name) != 0) continue;
    if (shdr.sh_type == SHT_NOBITS) return std::nullopt;
    // Compressed sections (SHF_COMPRESSED) are not inflated: skip them.
    if ((shdr.sh_flags & SHF_COMPRESSED) != 0) return std::nullopt;
    std::span<const uint8_t> bytes = raw(shdr.sh_offset, shdr.sh_size);
    if (bytes.empty()) return std::nullopt;
    return ByteRange{bytes, shdr.sh_addr};
  }
  return std::nullopt;
}

}  // namespace stackwatch::unwinder
