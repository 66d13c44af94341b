// Module: frames for one virtual address, from DWARF when it covers the
// address, else from the symbol table, bounded by .eh_frame so a stripped
// binary's static functions are reported unnamed rather than misnamed.
#include "symbolizer/module.h"

#include <cinttypes>
#include <cstdio>

#include "symbolizer/debug_file_finder.h"
#include "symbolizer/demangle.h"

namespace stackwatch::symbolizer {

std::shared_ptr<Module> Module::load(std::unique_ptr<ElfFile> main, const std::string& debug_root,
                                     const ImageCacheOptions& image_cache) {
  std::shared_ptr<Module> m(new Module());
  m->main_ = std::move(main);
  const ElfFile* dwarf_file = nullptr;
  if (m->main_->has_dwarf()) {
    dwarf_file = m->main_.get();
    m->debug_source_ = "embedded";
  } else {
    std::string how;
    m->debug_ = find_debug_file(*m->main_, debug_root, how);
    if (m->debug_) {
      m->debug_source_ = how;
      if (m->debug_->has_dwarf()) dwarf_file = m->debug_.get();
    }
  }
  // The binary's own symbol table names the containing function (as in
  // llvm-symbolizer): for a stripped binary that is .dynsym, whose exported
  // names are the public ones (fflush_unlocked, not glibc's internal alias
  // __GI___fflush_unlocked that DWARF and the debug file's .symtab carry).
  // For addresses DWARF does not cover, every symbol known is used.
  if (m->main_->has_symtab()) {
    m->symbols_.add(*m->main_, SHT_SYMTAB);
  } else {
    if (m->debug_ && m->debug_->has_symtab()) m->symbols_.add(*m->debug_, SHT_SYMTAB);
    m->symbols_.add(*m->main_, SHT_DYNSYM);
    m->public_symbols_.add(*m->main_, SHT_DYNSYM);
    m->public_symbols_.finish();
    m->naming_symbols_ = &m->public_symbols_;
  }
  m->symbols_.finish();
  // The symbol tables are read once, into symbols_ (names still point into
  // the file, and fault back in when used).
  release_file_pages(m->main_->elf());
  if (m->debug_) release_file_pages(m->debug_->elf());
  if (dwarf_file != nullptr) {
    m->dwarf_view_ = dwarf_file->open_for_dwarf(image_cache);
    m->dwarf_elf_ = m->dwarf_view_ ? m->dwarf_view_->elf() : dwarf_file->elf();
  }
  return m;
}

Module::~Module() {
  if (cfi_ != nullptr) dwarf_cfi_end(cfi_);
  index_.reset();  // before the ElfFiles it reads
}

std::optional<uint64_t> Module::offset_to_vaddr(uint64_t offset) const {
  return symbolizer::offset_to_vaddr(main_->segments(), offset);
}

std::optional<uint64_t> Module::vaddr_to_offset(uint64_t vaddr) const {
  return symbolizer::vaddr_to_offset(main_->segments(), vaddr);
}

void Module::prepare() {
  if (index_built_) return;
  index_built_ = true;
  if (dwarf_elf_ == nullptr) return;
  index_ = DwarfIndex::build(dwarf_elf_);
  // Listing the units touched every page of .debug_info (and a 64 KB
  // fault-around each time): libc's whole 8.4 MB image stayed resident,
  // when a lookup reads a unit or two of it.
  release_file_pages(dwarf_elf_);
}

const std::string& Module::name_of(const char* raw, bool demangle_names) {
  auto [it, inserted] = names_.try_emplace(raw);
  if (inserted) {
    // Symbol versions ("memcpy@GLIBC_2.2.5", "_ZNSi6ignoreEv@@GLIBCXX_3.4")
    // are not part of the function's name, and stop demangling.
    std::string& name = it->second;
    name = raw;  // the one copy a plain C name needs (most of libc's)
    if (size_t at = name.find('@'); at != std::string::npos && at > 0) name.resize(at);
    if (demangle_names && name.starts_with("_Z")) name = demangle(name.c_str());
  }
  return it->second;
}

const std::string& Module::node_name(uint32_t node, bool demangle_names) {
  // Nodes are added as the index reads more units.
  if (node >= node_names_.size()) node_names_.resize(index_->function_count(), nullptr);
  const std::string*& name = node_names_[node];
  if (name == nullptr) name = &name_of(index_->raw_name(node), demangle_names);
  return *name;
}

const std::string& Module::symbol_name(const ElfSymbol* symbol, bool demangle_names) {
  if (symbol_names_.empty()) symbol_names_.assign(naming_symbols_->size(), nullptr);
  const std::string*& name = symbol_names_[naming_symbols_->index_of(symbol)];
  if (name == nullptr) {
    name = &name_of(symbol->name, demangle_names);
    // A mangled name the demangler cannot read (GCC 12 emits some template
    // aliases in an older, malformed mangling: "constructIS3_IRNS0_..."
    // beside "constructIS3_JRNS0_..."): an alias at the same address that
    // reads, if there is one.
    if (demangle_names && name->starts_with("_Z"))
      for (const ElfSymbol& alias : naming_symbols_->aliases_of(symbol)) {
        const std::string& readable = name_of(alias.name, true);
        if (!readable.starts_with("_Z")) {
          name = &readable;
          break;
        }
      }
  }
  return *name;
}

bool Module::fde_bounds(uint64_t vaddr, uint64_t& start, uint64_t& end) {
  if (!cfi_loaded_) {
    cfi_loaded_ = true;
    cfi_ = dwarf_getcfi_elf(main_->elf());
  }
  if (cfi_ == nullptr) return false;
  Dwarf_Frame* frame = nullptr;
  if (dwarf_cfi_addrframe(cfi_, vaddr, &frame) != 0 || frame == nullptr) return false;
  Dwarf_Addr s = 0, e = 0;
  bool signal = false;
  bool ok = dwarf_frame_info(frame, &s, &e, &signal) >= 0;
  free(frame);
  if (!ok) return false;
  start = s;
  end = e;
  return true;
}

void Module::symbolize(uint64_t vaddr, const LookupOptions& options, FrameList& out) {
  prepare();
  SourceLocation location;
  if (index_ && index_->lookup(vaddr, chain_, options.line_info ? &location : nullptr) &&
      *index_->raw_name(chain_.front()) != '\0') {
    // The containing function takes its name from the symbol table when a
    // symbol covers the address, as llvm-symbolizer and perf do: DWARF may
    // name an internal alias (glibc's __GI_ names), the symbol the public one,
    // and clones keep their suffix (foo.constprop.0, foo.cold).
    const ElfSymbol* sym = naming_symbols_->find_sized_near(vaddr, naming_hint_);
    static const std::string kNone;
    auto emit = [&](uint32_t node, const SourceLocation& at, bool inlined) {
      Frame& f = out.append_reusing();
      size_t slot = out.size() - 1;
      const std::string* name = nullptr;
      if (!inlined && sym != nullptr) {
        name = &symbol_name(sym, options.demangle);
        // Neither the symbol nor an alias of it demangles: DWARF's name, if it reads.
        if (options.demangle && name->starts_with("_Z")) {
          const std::string& dwarf_name = node_name(node, true);
          if (!dwarf_name.empty() && !dwarf_name.starts_with("_Z")) name = &dwarf_name;
        }
      } else {
        name = &node_name(node, options.demangle);
      }
      out.assign(slot, FrameList::kFunction, *name);
      if (name->empty()) f.unknown_reason = "DWARF names no function here";
      out.assign(slot, FrameList::kFile, options.line_info && at.file != 0 ? index_->file_name(at.file) : kNone);
      if (options.line_info) {
        f.line = at.line;
        f.column = at.column;
      }
      f.inlined = inlined;
      // The caller assigns the module and build-id (Symbolizer::Impl::symbolize_in_file).
    };
    if (!options.inlines) {
      emit(chain_.front(), location, false);
    } else {
      for (size_t i = chain_.size(); i-- > 0;) {
        emit(chain_[i], location, i != 0);
        location = index_->call_site(chain_[i]);
      }
    }
    return;
  }
  symbolize_from_symbols(vaddr, options, out);
}

void Module::symbolize_from_symbols(uint64_t vaddr, const LookupOptions& options, FrameList& out) {
  Frame& f = out.append();
  const ElfSymbol* sym = symbols_.find(vaddr);
  uint64_t fde_start = 0, fde_end = 0;
  bool have_fde = false;
  if (sym != nullptr && sym->size == 0) {
    // A sizeless symbol only names the address if .eh_frame says the function
    // containing it starts there (or there is no .eh_frame to ask).
    have_fde = fde_bounds(vaddr, fde_start, fde_end);
    if (have_fde && fde_start != sym->start) sym = nullptr;
  }
  if (sym != nullptr) {
    f.function = naming_symbols_ == &symbols_ ? symbol_name(sym, options.demangle) : name_of(sym->name, options.demangle);
  } else {
    char reason[160];
    if (!have_fde) have_fde = fde_bounds(vaddr, fde_start, fde_end);
    if (have_fde)
      std::snprintf(reason, sizeof reason,
                    "no symbol for the function at 0x%" PRIx64 "-0x%" PRIx64 " (from .eh_frame; stripped binary)",
                    fde_start, fde_end);
    else
      std::snprintf(reason, sizeof reason, "no symbol covers this address%s",
                    symbols_.size() == 0 ? " (the binary has no symbols)" : "");
    f.unknown_reason = reason;
  }
  if (options.line_info && index_) {
    SourceLocation location;
    if (index_->line_at(vaddr, location)) {
      if (location.file != 0) f.file = index_->file_name(location.file);
      f.line = location.line;
      f.column = location.column;
    }
  }
}

}  // namespace stackwatch::symbolizer
