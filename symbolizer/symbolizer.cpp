// Symbolizer: normalizes (pid, address) to (module file, file offset) through
// the process snapshot, then asks the cached Module for the frames.
#include "symbolizer/symbolizer.h"

#include <unistd.h>

#include <optional>
#include <unordered_map>

#include "recording/error.h"
#include "symbolizer/address_order.h"
#include "symbolizer/module.h"
#include "symbolizer/module_cache.h"
#include "symbolizer/process_snapshot.h"

namespace stackwatch::symbolizer {
namespace {

// A snapshot that misses an address is re-read at most this often, so a
// burst of garbage addresses does not re-read /proc/PID/maps every time.
constexpr auto kRefreshInterval = std::chrono::milliseconds(200);

Frame unknown_frame(uint64_t address, std::string module, uint64_t offset, std::string reason) {
  Frame f;
  f.address = address;
  f.module = std::move(module);
  f.module_offset = offset;
  f.unknown_reason = std::move(reason);
  return f;
}

}  // namespace

struct Symbolizer::Impl {
  Options options;
  LookupOptions lookup;
  ModuleCache cache;
  FileRegistry files;
  std::unordered_map<uint32_t, ProcessSnapshot> processes;
  std::unordered_map<std::string, std::shared_ptr<MappedFile>> files_by_path;  // symbolize_file
  std::unordered_map<std::string, std::string> unusable_files;                  // identity -> why
  FrameList scratch;  // one lookup's frames before they are moved to the caller's vector
  std::optional<Kallsyms> kallsyms;
  std::string kallsyms_error;

  ImageCacheOptions image_cache() const { return {options.image_cache_dir, options.image_cache_max_bytes}; }

  explicit Impl(Options o)
      : options(std::move(o)),
        lookup{options.inlines, options.demangle, options.line_info},
        cache(options.max_cached_modules) {}

  // The module of an open file, parsed on first use. nullptr with error set
  // when the file is not a usable ELF file.
  std::shared_ptr<Module> module_for(const MappedFile& file, std::string& error) {
    if (file.fd < 0) {
      error = file.error;
      return nullptr;
    }
    if (auto m = file.module.lock(); m && cache.touch(m.get())) return m;
    auto m = find_module(file, error);
    if (m) file.module = m;
    return m;
  }

  std::shared_ptr<Module> find_module(const MappedFile& file, std::string& error) {
    if (auto m = cache.find(file.identity)) return m;
    if (auto it = unusable_files.find(file.identity); it != unusable_files.end()) {
      error = it->second;
      return nullptr;
    }
    std::string build_id = read_build_id(file.fd);
    if (!build_id.empty()) {
      if (auto m = cache.find("b:" + build_id)) {
        cache.add_key(m, file.identity);
        return m;
      }
    }
    int fd = ::dup(file.fd);
    if (fd < 0) {
      error = "out of file descriptors";
      return nullptr;
    }
    std::shared_ptr<Module> m;
    try {
      m = Module::load(ElfFile::open_fd(fd, file.path), options.debug_root, image_cache());
    } catch (const Error& e) {
      error = e.what();
      // Remember the failure so the next sample in this file does not re-open
      // it; bounded like the module cache.
      if (unusable_files.size() >= options.max_cached_modules) unusable_files.clear();
      unusable_files.emplace(file.identity, error);
      return nullptr;
    }
    std::vector<std::string> keys = {file.identity};
    if (!build_id.empty()) keys.push_back("b:" + build_id);
    cache.insert(m, keys);
    return m;
  }

  std::shared_ptr<Module> vdso_module(const ProcessSnapshot& snap) {
    if (!snap.vdso_image) return nullptr;
    try {
      auto elf = ElfFile::from_memory(*snap.vdso_image, "[vdso]");
      std::string key = elf->build_id().empty() ? std::string() : "b:" + elf->build_id();
      if (!key.empty())
        if (auto m = cache.find(key)) return m;
      auto m = Module::load(std::move(elf), options.debug_root, image_cache());
      if (!key.empty()) cache.insert(m, {key});
      return m;
    } catch (const Error&) {
      return nullptr;
    }
  }

  void symbolize_in_module(Module& m, uint64_t address, uint64_t lookup_offset, uint64_t reported_offset,
                           const std::string& module_name, std::vector<Frame>& out) {
    size_t first = out.size();
    if (auto vaddr = m.offset_to_vaddr(lookup_offset)) {
      scratch.clear();
      m.symbolize(*vaddr, lookup, scratch);
      scratch.move_to(out);
    } else {
      out.push_back(unknown_frame(address, {}, 0, "the file offset is outside every loadable segment"));
    }
    for (size_t i = first; i < out.size(); ++i) {
      Frame& f = out[i];
      f.address = address;
      f.module = module_name;
      f.module_offset = reported_offset;
      f.build_id = m.build_id();
    }
  }

  ProcessSnapshot* snapshot(uint32_t pid) {
    auto it = processes.find(pid);
    if (it != processes.end()) return &it->second;
    auto snap = capture_process(pid, options, files);
    if (!snap) return nullptr;
    return &processes.insert_or_assign(pid, std::move(*snap)).first->second;
  }

  // Re-reads a live process whose snapshot does not explain an address.
  ProcessSnapshot* refresh(uint32_t pid, ProcessSnapshot* snap) {
    if (std::chrono::steady_clock::now() - snap->taken < kRefreshInterval) return snap;
    auto fresh = capture_process(pid, options, files);
    if (!fresh) {
      snap->taken = std::chrono::steady_clock::now();  // gone: keep the old one, stop retrying
      return snap;
    }
    *snap = std::move(*fresh);
    return snap;
  }

  void symbolize_user(uint32_t pid, uint64_t address, bool is_return_address, std::vector<Frame>& out) {
    ProcessSnapshot* snap = snapshot(pid);
    if (snap == nullptr) {
      out.push_back(unknown_frame(address, "[unknown]", address, "process " + std::to_string(pid) +
                                                                      " was not remembered and is gone"));
      return;
    }
    // A return address points after the call; the call itself is one byte back.
    uint64_t lookup_address = is_return_address && address > 0 ? address - 1 : address;
    const ProcessMapping* pm = snap->find(lookup_address);
    if (pm == nullptr || pm->kind == MappingKind::kAnonymous) {
      refresh_jit_map(*snap, options);
      if (const JitSymbol* jit = snap->jit.find(lookup_address)) {
        Frame f;
        f.address = address;
        f.function = jit->name;
        f.module = "[jit]";
        f.module_offset = address - jit->start;
        out.push_back(std::move(f));
        return;
      }
      if (pm == nullptr) {
        snap = refresh(pid, snap);
        pm = snap->find(lookup_address);
      }
    }
    if (pm == nullptr) {
      out.push_back(unknown_frame(address, "[unknown]", address, "the address is in no mapping of the process"));
      return;
    }
    const Mapping& m = pm->mapping;
    uint64_t offset = m.file_offset_of(address);
    uint64_t lookup_offset = m.file_offset_of(lookup_address);
    switch (pm->kind) {
      case MappingKind::kVdso: {
        uint64_t vdso_offset = address - m.start;
        if (auto module = vdso_module(*snap)) {
          symbolize_in_module(*module, address, lookup_address - m.start, vdso_offset, "[vdso]", out);
        } else {
          out.push_back(unknown_frame(address, "[vdso]", vdso_offset, "the vDSO image could not be read"));
        }
        return;
      }
      case MappingKind::kAnonymous:
        out.push_back(unknown_frame(address, "[anon]", address - m.start,
                                    "anonymous memory (JIT code without a perf map?)"));
        return;
      case MappingKind::kOther:
        out.push_back(unknown_frame(address, m.path, address - m.start, "not a file mapping"));
        return;
      case MappingKind::kFile:
        break;
    }
    if (!pm->file) {
      out.push_back(unknown_frame(address, m.path, offset, "the mapping is not executable"));
      return;
    }
    std::string error;
    auto module = module_for(*pm->file, error);
    if (!module) {
      out.push_back(unknown_frame(address, m.path, offset, error));
      return;
    }
    symbolize_in_module(*module, address, lookup_offset, offset, m.path, out);
  }

  void symbolize_kernel(uint64_t address, std::vector<Frame>& out) {
    if (!kallsyms && kallsyms_error.empty()) {
      try {
        kallsyms = Kallsyms::load_cached(
            {options.kallsyms_path, options.modules_path, "/proc/sys/kernel/random/boot_id", options.kallsyms_cache_dir});
        if (!kallsyms->has_addresses())
          kallsyms_error = "kallsyms hides addresses (kernel.kptr_restrict; run as root)";
      } catch (const Error& e) {
        kallsyms_error = e.what();
      }
    }
    Frame f;
    f.address = address;
    f.kernel = true;
    f.module = "[kernel]";
    f.module_offset = address;
    const KernelSymbol* sym = kallsyms && kallsyms_error.empty() ? kallsyms->find(address) : nullptr;
    if (sym != nullptr) {
      f.function = sym->name;
      if (!sym->module.empty()) f.module = sym->module;
    } else {
      f.unknown_reason = kallsyms_error.empty() ? "no kernel symbol precedes this address" : kallsyms_error;
    }
    out.push_back(std::move(f));
  }

  std::shared_ptr<Module> module_for_path(const std::string& path) {
    auto it = files_by_path.find(path);
    if (it == files_by_path.end()) it = files_by_path.emplace(path, files.open_path(path)).first;
    std::string error;
    auto module = module_for(*it->second, error);
    if (!module) throw Error(error);
    return module;
  }

  // Replaces out's frames with those of address.
  void symbolize_in_file(Module& module, const std::string& path, uint64_t address, FrameList& out) {
    out.clear();
    module.symbolize(address, lookup, out);
    uint64_t offset = module.vaddr_to_offset(address).value_or(address);
    for (size_t i = 0; i < out.size(); ++i) {
      out[i].address = address;
      out.assign(i, FrameList::kModule, path);
      out[i].module_offset = offset;
      out.assign(i, FrameList::kBuildId, module.build_id());
    }
  }

  void symbolize_file(const std::string& path, uint64_t address, std::vector<Frame>& out) {
    symbolize_in_file(*module_for_path(path), path, address, scratch);
    scratch.move_to(out);
  }

  void symbolize_file(const std::string& path, std::span<const uint64_t> addresses, const FramesVisitor& visit) {
    auto module = module_for_path(path);
    FrameList frames;  // its own: the visitor may call this Symbolizer again
    for (const OrderedAddress& a : address_order(addresses)) {
      symbolize_in_file(*module, path, a.address, frames);
      visit(a.index, frames.frames());
    }
  }
};

Symbolizer::Symbolizer(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Symbolizer::~Symbolizer() = default;

bool Symbolizer::remember_process(uint32_t pid) {
  auto snap = capture_process(pid, impl_->options, impl_->files);
  if (!snap) return false;
  impl_->processes.insert_or_assign(pid, std::move(*snap));
  return true;
}

void Symbolizer::forget_process(uint32_t pid) { impl_->processes.erase(pid); }

bool Symbolizer::knows_process(uint32_t pid) const { return impl_->processes.contains(pid); }

size_t Symbolizer::cached_modules() const { return impl_->cache.size(); }

std::vector<Mapping> Symbolizer::mappings(uint32_t pid) const {
  std::vector<Mapping> out;
  auto it = impl_->processes.find(pid);
  if (it == impl_->processes.end()) return out;
  out.reserve(it->second.mappings.size());
  for (const ProcessMapping& m : it->second.mappings) out.push_back(m.mapping);
  return out;
}

std::vector<Frame> Symbolizer::symbolize_user(uint32_t pid, uint64_t address, bool is_return_address) {
  std::vector<Frame> out;
  impl_->symbolize_user(pid, address, is_return_address, out);
  return out;
}

std::vector<Frame> Symbolizer::symbolize_kernel(uint64_t address) {
  std::vector<Frame> out;
  impl_->symbolize_kernel(address, out);
  return out;
}

std::vector<Frame> Symbolizer::symbolize_file(const std::string& path, uint64_t address) {
  std::vector<Frame> out;
  impl_->symbolize_file(path, address, out);
  return out;
}

void Symbolizer::symbolize_file(const std::string& path, std::span<const uint64_t> addresses,
                                const FramesVisitor& visit) {
  if (addresses.size() > UINT32_MAX) throw Error("symbolize_file: more than 2^32 - 1 addresses in one call; split them");
  impl_->symbolize_file(path, addresses, visit);
}

}  // namespace stackwatch::symbolizer
