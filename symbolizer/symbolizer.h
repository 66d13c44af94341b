// symbolizer: addresses -> frames (function, inlined chain, file:line, module,
// build-id, offset). libdw/libelf for user code, /proc/kallsyms for the
// kernel. No BPF here: usable and testable without privileges. It does not
// unwind stacks and does not decide which addresses are return addresses.
//
// Two phases, as in blazesym: normalize (pid, address -> module file, file
// offset, build-id, using the mappings captured when the pid was first seen)
// then symbolize (module, offset -> frames). Modules are parsed once and
// cached per build-id (or path+dev+inode+size+mtime), shared by every process
// that maps them, with an LRU bound. Two files with one build-id are taken
// to be the same code: the first one parsed answers for both.
//
// Where names and lines come from, per module: DWARF (in the binary, else the
// debug file under debug_root/.build-id/xx/rest.debug, else the one named by
// .gnu_debuglink) through a per-module index of address ranges, filled one
// compile unit at a time as addresses first fall in each (dwarf_index.h);
// the containing function's name from the binary's own symbol table when a
// symbol covers the address (as llvm-symbolizer does); without DWARF, the
// symbol tables, bounded by .eh_frame so a stripped binary's static function
// is reported unnamed rather than as its exported neighbour. The vDSO is read
// from the process's memory; JIT code from /tmp/perf-PID.map.
//
// Thread safety: none. A Symbolizer (and everything it returns references
// to) must be used by one thread at a time; use one per thread, or a lock.
// Distinct Symbolizers share nothing and may run in parallel.
//
// Memory: a remembered process keeps its snapshot (mappings, an fd per
// mapped executable file, its vDSO image) until forget_process().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "recording/recording.h"

namespace stackwatch::symbolizer {

// One line of /proc/PID/maps.
struct Mapping {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t file_offset = 0;
  std::string perms;  // "r-xp"
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  std::string path;  // may be empty, "[vdso]", "[heap]", or end in " (deleted)"

  bool executable() const { return perms.size() > 2 && perms[2] == 'x'; }
  // ELF file offset of a runtime address inside this mapping.
  uint64_t file_offset_of(uint64_t address) const { return address - start + file_offset; }
};

// Parses /proc/PID/maps text; malformed lines are skipped, never fatal.
std::vector<Mapping> parse_proc_maps(std::string_view text);

struct KernelSymbol {
  uint64_t address = 0;
  std::string name;
  std::string module;  // empty for vmlinux, else the module name ("ext4")
};

// /proc/kallsyms, sorted for lookup. Only text symbols (t/T/w/W) are kept,
// compactly: one sorted array of (address, offset into one name arena,
// module number), ~16 bytes a symbol plus its name, instead of a
// KernelSymbol with two std::strings each (a kernel has ~100,000 of them).
// The KernelSymbols find() hands out are made on demand and kept.
// Not safe for concurrent use, even through const: find() fills that cache.
//
// Module extents (from /proc/modules) bound each module's symbols: an
// address past its module's end is unknown, not the module's last function
// (a freed module, or BPF programs, whose JIT images sit among the modules).
//
// load_cached keeps the table in a per-boot cache file (see KallsymsSources):
// reading /proc/kallsyms costs ~40 ms of kernel time formatting ~200,000
// lines plus their parsing, the largest part of a short recording's start.
// The cache is read, not mapped: opening it keeps the address of every
// kCacheBlock-th entry (~5 KB), and a lookup reads the one block of entries
// and the one name it needs (pread, ~2 us), so a recording holds the
// symbols its kernel stacks name and nothing of the table. (Mapped, it held
// most of the 3.4 MB file after a few dozen lookups: every fault maps 64 KB
// of the file's neighbouring pages too, the kernel's fault-around.) It
// is valid for the boot (boot_id in its name) and the set of loaded modules
// (a hash of /proc/modules, addresses included). BPF programs' and ftrace
// trampolines' symbols come and go, so they are not cached: on a cache hit
// the BPF programs loaded now are listed from the kernel (bpf(2), as root),
// and ftrace trampolines are unknown (module extents keep them from
// borrowing a module function's name).
struct KallsymsSources {
  std::string kallsyms = "/proc/kallsyms";
  std::string modules = "/proc/modules";
  std::string boot_id = "/proc/sys/kernel/random/boot_id";
  // Where the cache lives ("" = no cache). /run is emptied at boot (a tmpfs
  // on most systems); the boot id in the file's name covers the others.
  // The directory is made 0700 and must belong to this user with no group or
  // other access, and so must the file, or the cache is not used.
  std::string cache_dir = "/run/stackwatch";
  // On a cache hit, the BPF programs loaded now (from bpf(2)).
  bool bpf_programs = true;
};

class Kallsyms {
 public:
  static Kallsyms parse(std::string_view text);
  static Kallsyms load(const std::string& path = "/proc/kallsyms");
  static Kallsyms load_cached(const KallsymsSources& sources = {});
  // Bounds each module's symbols by its extent in /proc/modules text
  // ("ext4 1040384 2 - Live 0xffffffffc0a1c000"); lines for modules without
  // symbols here, and malformed lines, are ignored.
  void set_module_extents(std::string_view proc_modules);
  // Whether load_cached answered from its cache (statistics, tests).
  bool from_cache() const { return from_cache_; }
  // The symbol containing address (nearest preceding; of several names at
  // one address the first listed), or nullptr before the first symbol, when
  // addresses are hidden, or 1 MiB or more past the nearest symbol. The
  // pointer stays valid as long as this Kallsyms.
  const KernelSymbol* find(uint64_t address) const;
  size_t size() const { return entries_.size() + cache_.count; }
  // False when kptr_restrict hides addresses (all zero).
  bool has_addresses() const { return has_addresses_; }
  // Heap bytes held (for statistics).
  size_t memory_bytes() const;
  // Entries of the cache file per block a lookup reads (4 KiB).
  static constexpr size_t kCacheBlock = 256;

 private:
  struct Entry {
    uint64_t address = 0;
    uint32_t name = 0;    // offset of the NUL-terminated name in names_
    uint32_t module = 0;  // index in modules_; 0 is vmlinux
  };
  struct Extent {
    uint64_t base = 0, size = 0;  // size 0: not known
  };
  // The cache file's table, read as lookups need it: the file is never
  // rewritten in place (a new one is renamed over it), so the open file
  // stays whole for as long as it is held.
  struct CacheTable {
    std::shared_ptr<const int> fd;  // closed with the last copy
    uint64_t entries_at = 0;        // file offsets and sizes
    uint64_t count = 0;
    uint64_t names_at = 0;
    uint64_t names_size = 0;
    std::vector<uint64_t> block_first;  // the address of entry k * kCacheBlock
  };
  // The cache's entry nearest before address (the first listed of several
  // at its address) and its index; false if none or the file cannot be read.
  bool cached_entry_before(uint64_t address, Entry& entry, size_t& index) const;
  bool read_cached_entries(size_t first, size_t count, Entry* out) const;
  bool read_cached_name(uint32_t offset, std::string& name) const;
  void add_line(std::string_view line);
  void finish();
  // Opens the cache file; false (nothing changed) when it is not ours, not
  // for this key, or any size in it does not check out.
  bool read_cache(const std::string& path, uint64_t key);
  void add_bpf_programs();
  void write_cache(const std::string& dir, const std::string& path, uint64_t key) const;

  // Read here (all of them without a cache; with one, the BPF programs
  // listed since), sorted by address; names_ holds their names.
  std::vector<Entry> entries_;
  std::string names_;
  CacheTable cache_;  // entry names and modules are checked on use
  std::vector<std::string> modules_;
  std::vector<Extent> extents_;  // per module index, when known
  uint32_t last_module_ = 0;  // while parsing: the module of the previous line
  uint32_t padding_name_ = UINT32_MAX;  // offset of "__pfx" in names_, once used
  mutable std::unordered_map<uint64_t, KernelSymbol> resolved_;  // table << 32 | entry index -> symbol
  bool has_addresses_ = false;
  bool from_cache_ = false;
};

struct Options {
  size_t max_cached_modules = 512;  // LRU bound over parsed modules
  bool inlines = true;              // expand inlined frames
  bool demangle = true;
  bool line_info = true;            // file:line from DWARF
  std::string proc_root = "/proc";  // overridable for tests
  std::string kallsyms_path = "/proc/kallsyms";
  std::string modules_path = "/proc/modules";         // module extents (and the kallsyms cache's key)
  std::string kallsyms_cache_dir = "/run/stackwatch";  // "" = no kallsyms cache (KallsymsSources)
  // Inflated DWARF images of compressed debug files, kept across runs
  // (image_cache.h); "" = none. Bounded by image_cache_max_bytes.
  std::string image_cache_dir = "/var/cache/stackwatch";
  uint64_t image_cache_max_bytes = uint64_t{512} << 20;
  std::string debug_root = "/usr/lib/debug";  // build-id and debuglink search
  std::string perf_map_dir = "/tmp";          // where JITs write perf-PID.map
};

class Symbolizer {
 public:
  explicit Symbolizer(Options options = {});
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // Captures the mappings of pid now (and keeps what is needed to open its
  // files later), so its addresses can be symbolized after it exits. Returns
  // false if the process is already gone. Calling it again refreshes the
  // snapshot (after exec, or when an address falls outside every mapping).
  bool remember_process(uint32_t pid);
  void forget_process(uint32_t pid);
  bool knows_process(uint32_t pid) const;
  // The mappings captured by the last remember_process(pid) (empty if none),
  // for the stack unwinder, which needs the same view of the process.
  std::vector<Mapping> mappings(uint32_t pid) const;

  // Frames for one user address of pid, innermost (inlined) first, the
  // containing function last. Never empty: an address that cannot be named
  // yields one frame with unknown_reason set and module+offset when known.
  // For return addresses (every user frame but the innermost) pass
  // is_return_address so the call site, not the next instruction, is looked up.
  std::vector<Frame> symbolize_user(uint32_t pid, uint64_t address, bool is_return_address);

  // One kernel address (kallsyms, modules included). Never empty.
  std::vector<Frame> symbolize_kernel(uint64_t address);

  // An address in an ELF file as addr2line takes it (a virtual address of
  // the file, e.g. from nm or objdump). Never empty. Throws stackwatch::Error
  // when the file cannot be opened or is not ELF (bad input, not a per-sample
  // failure). The file is assumed unchanged while this Symbolizer lives.
  std::vector<Frame> symbolize_file(const std::string& path, uint64_t address);
  // The same for many addresses of one file at once: calls visit(i, frames)
  // once per address, frames being what symbolize_file(path, addresses[i])
  // returns (valid only during the call: their buffers are reused for the
  // next address), in address order, not i's.
  // Faster than one call per address: neighbouring lookups share cache
  // lines, most of all on a cold module. Nothing is kept for all addresses
  // at once: the caller keeps what it needs (a whole recording's frames as
  // Frame values would cost more than looking them up).
  using FramesVisitor = std::function<void(size_t index, std::span<const Frame> frames)>;
  void symbolize_file(const std::string& path, std::span<const uint64_t> addresses, const FramesVisitor& visit);

  // Parsed modules currently cached (for statistics and tests).
  size_t cached_modules() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stackwatch::symbolizer
