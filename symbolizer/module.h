// One parsed ELF module (executable, shared object or vDSO image): its symbol
// table, its DWARF index (from the binary itself or its separate debug file)
// and its .eh_frame. Works in the module's own virtual addresses; callers
// normalize runtime addresses to file offsets and convert with
// offset_to_vaddr(). Parsed once and shared by every process mapping it.
#pragma once

#include <elfutils/libdw.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "recording/recording.h"
#include "symbolizer/dwarf_index.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/frame_list.h"
#include "symbolizer/symbol_table.h"

namespace stackwatch::symbolizer {

struct LookupOptions {
  bool inlines = true;
  bool demangle = true;
  bool line_info = true;
};

class Module {
 public:
  // Throws stackwatch::Error only for libdw failures that make the module
  // unusable. image_cache: where inflated DWARF images are kept across runs.
  static std::shared_ptr<Module> load(std::unique_ptr<ElfFile> main, const std::string& debug_root,
                                      const ImageCacheOptions& image_cache = {});
  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& build_id() const { return main_->build_id(); }
  const std::string& path() const { return main_->path(); }
  // "embedded", "build-id", "debuglink" or "none": where the DWARF came from.
  const std::string& debug_source() const { return debug_source_; }
  std::optional<uint64_t> offset_to_vaddr(uint64_t offset) const;
  std::optional<uint64_t> vaddr_to_offset(uint64_t vaddr) const;

  // Appends the frames of vaddr to out (innermost first), filling function,
  // file, line, column, inlined and unknown_reason. Always appends at least one.
  // Names are cached per module, so every call must pass the same options
  // (they are fixed per Symbolizer, which owns its modules).
  void symbolize(uint64_t vaddr, const LookupOptions& options, FrameList& out);

  // Opens the DWARF index now rather than on first lookup (its units are
  // still read on demand).
  void prepare();

 private:
  Module() = default;
  const std::string& name_of(const char* raw, bool demangle);
  // Bounds of the .eh_frame FDE covering vaddr; false when none does.
  bool fde_bounds(uint64_t vaddr, uint64_t& start, uint64_t& end);
  void symbolize_from_symbols(uint64_t vaddr, const LookupOptions& options, FrameList& out);

  std::unique_ptr<ElfFile> main_;
  std::unique_ptr<ElfFile> debug_;
  std::unique_ptr<ElfFile> dwarf_view_;  // what libdw reads (see ElfFile::open_for_dwarf)
  std::string debug_source_ = "none";
  SymbolTable symbols_;         // every function symbol known, for addresses DWARF does not cover
  SymbolTable public_symbols_;  // a stripped binary's own .dynsym (empty otherwise)
  const SymbolTable* naming_symbols_ = &symbols_;  // names the containing function
  Elf* dwarf_elf_ = nullptr;  // the ELF file libdw reads (owned by debug_, main_ or dwarf_view_)
  bool index_built_ = false;
  std::unique_ptr<DwarfIndex> index_;
  Dwarf_CFI* cfi_ = nullptr;
  bool cfi_loaded_ = false;
  std::unordered_map<const char*, std::string> names_;  // raw name -> display name
  // Per DWARF function node, its display name in names_ once resolved: an
  // array index per frame instead of a hash lookup.
  std::vector<const std::string*> node_names_;
  size_t naming_hint_ = 0;  // where the last lookup's naming symbol was found: the next one looks there first
  std::vector<const std::string*> symbol_names_;  // the same per naming symbol
  const std::string& node_name(uint32_t node, bool demangle);
  const std::string& symbol_name(const ElfSymbol* symbol, bool demangle);
  std::vector<uint32_t> chain_;                        // scratch, reused per lookup
};

}  // namespace stackwatch::symbolizer
