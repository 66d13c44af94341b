// Building a ModuleCfi: .eh_frame first (what the C++ runtime itself trusts),
// .debug_frame only for the addresses .eh_frame does not describe.
#include "unwinder/module_cfi.h"

#include <fcntl.h>

#include <elfutils/libdw.h>

#include "unwinder/eh_frame_hdr.h"

namespace stackwatch::unwinder {
namespace {

struct DwarfDeleter {
  void operator()(Dwarf* dwarf) const { dwarf_end(dwarf); }
};
struct CfiDeleter {
  void operator()(Dwarf_CFI* cfi) const { dwarf_cfi_end(cfi); }
};

std::vector<CfiRow> eh_frame_rows(const ElfFile& file, CompileStats& stats) {
  std::vector<CfiRow> rows;
  std::optional<ByteRange> hdr = file.eh_frame_hdr();
  if (!hdr) return rows;
  std::vector<uint64_t> starts = eh_frame_hdr_fde_starts(hdr->bytes, hdr->vaddr);
  if (starts.empty()) return rows;
  std::unique_ptr<Dwarf_CFI, CfiDeleter> cfi(dwarf_getcfi_elf(file.elf()));
  if (!cfi) return rows;
  compile_cfi(cfi.get(), std::move(starts), rows, stats);
  return rows;
}

std::vector<CfiRow> debug_frame_rows(const ElfFile& file, CompileStats& stats) {
  std::vector<CfiRow> rows;
  std::optional<ByteRange> section = file.section(".debug_frame");
  if (!section) return rows;
  std::vector<uint64_t> starts = debug_frame_fde_starts(section->bytes);
  if (starts.empty()) return rows;
  std::unique_ptr<Dwarf, DwarfDeleter> dwarf(dwarf_begin_elf(file.elf(), DWARF_C_READ, nullptr));
  if (!dwarf) return rows;
  Dwarf_CFI* cfi = dwarf_getcfi(dwarf.get());  // owned by dwarf
  if (cfi == nullptr) return rows;
  compile_cfi(cfi, std::move(starts), rows, stats);
  return rows;
}

}  // namespace

std::shared_ptr<const ModuleCfi> ModuleCfi::build(const ElfFile& file, const std::string& debug_root) {
  auto module = std::make_shared<ModuleCfi>();
  module->build_id_ = file.build_id();
  module->loads_ = file.load_segments();
  std::vector<CfiRow> primary = eh_frame_rows(file, module->stats_);
  std::vector<CfiRow> secondary = debug_frame_rows(file, module->stats_);
  if (secondary.empty() && !debug_root.empty() && module->build_id_.size() > 2) {
    std::string path = debug_root + "/.build-id/" + module->build_id_.substr(0, 2) + "/" +
                       module->build_id_.substr(2) + ".debug";
    if (auto debug_file = ElfFile::from_fd(open(path.c_str(), O_RDONLY | O_CLOEXEC))) {
      secondary = debug_frame_rows(*debug_file, module->stats_);
    }
  }
  module->used_debug_frame_ = !secondary.empty();
  module->table_ = CfiTable(std::move(primary), std::move(secondary));
  return module;
}

std::shared_ptr<const ModuleCfi> ModuleCfi::build_lazy(std::unique_ptr<ElfFile> file,
                                                       const std::string& debug_root) {
  auto module = std::make_shared<ModuleCfi>();
  module->build_id_ = file->build_id();
  module->loads_ = file->load_segments();
  module->lazy_ = std::make_unique<LazyCfi>();
  std::shared_ptr<ElfFile> shared(std::move(file));
  module->lazy_->add_eh_frame(shared);
  if (module->lazy_->add_debug_frame(shared)) {
    module->used_debug_frame_ = true;
  } else if (!debug_root.empty() && module->build_id_.size() > 2) {
    std::string path = debug_root + "/.build-id/" + module->build_id_.substr(0, 2) + "/" +
                       module->build_id_.substr(2) + ".debug";
    std::shared_ptr<ElfFile> debug_file = ElfFile::from_fd(open(path.c_str(), O_RDONLY | O_CLOEXEC), false);
    if (debug_file && module->lazy_->add_debug_frame(debug_file)) {
      module->used_debug_frame_ = true;
      debug_file->release_fd();
    }
  }
  // Everything later lookups need is in memory now.
  shared->release_fd();
  module->stats_.fdes = module->lazy_->fdes();
  return module;
}

std::optional<uint64_t> ModuleCfi::load_bias(uint64_t map_start, uint64_t map_offset) const {
  // The kernel maps each PT_LOAD from its page-aligned file offset; pick the
  // segment whose file bytes contain the mapping's first byte (executable
  // ones first, they are the ones whose addresses we look up).
  const LoadSegment* best = nullptr;
  for (const LoadSegment& load : loads_) {
    uint64_t aligned = load.offset & ~uint64_t{0xfff};
    if (map_offset < aligned || map_offset >= load.offset + load.filesz) continue;
    if (best == nullptr || (load.executable && !best->executable)) best = &load;
  }
  if (best == nullptr) return std::nullopt;
  return map_start - map_offset + best->offset - best->vaddr;
}

}  // namespace stackwatch::unwinder
