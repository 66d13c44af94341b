// symbolizer_bench: addresses/second of stackwatch's symbolizer (cold: a new
// Symbolizer, so the module is parsed and indexed inside the timing; warm:
// the same addresses again) against addr2line -f -i -C, eu-addr2line -f -i -C
// (on a subset, extrapolated: it is ~1000x slower) and llvm-symbolizer
// --inlining, all on the same addresses, and how often stackwatch agrees with
// llvm-symbolizer and addr2line on the function names. stackwatch is timed
// twice: one symbolize_file call per address (in the addresses' random
// order, as the profiler calls it) and one batch call for all of them (the
// way the tools are run: every address in one process, one input). Both
// build full Frames and inline chains; single-threaded. The page cache is
// warm for every tool alike (each runs several times; the best run counts).
//
// Usage: symbolizer_bench [BINARY [COUNT [EU_SUBSET]]]
// Every timing is CPU time (user + system) of the best of
// SYMBOLIZER_BENCH_REPEAT runs (default 3); a tool's includes its start-up.
// Without BINARY: Debian's libc (stripped; DWARF from libc6-dbg through
// /usr/lib/debug/.build-id, zlib-compressed), the debug build of libstdc++
// (libstdc++6-12-dbg; DWARF in the file) and Debian's LTO-built python3.11
// (DWARF from python3.11-dbg).
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "symbolizer/demangle.h"
#include "symbolizer/elf_file.h"
#include "symbolizer/symbolizer.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using stackwatch::Frame;
namespace sym = stackwatch::symbolizer;

constexpr uint32_t kSeed = 20261123;  // fixed: the same addresses every run

struct Func {
  uint64_t start, size;
};

// Sized function symbols of the ELF file holding the full symbol table
// (the binary, else its .build-id debug file).
std::vector<Func> functions_of(const std::string& path) {
  std::vector<Func> out;
  auto scan = [&](const std::string& file) {
    int fd = open(file.c_str(), O_RDONLY);
    if (fd < 0) return;
    Elf* elf = elf_begin(fd, ELF_C_READ, nullptr);
    Elf_Scn* scn = nullptr;
    while (elf != nullptr && (scn = elf_nextscn(elf, scn)) != nullptr) {
      GElf_Shdr shdr;
      gelf_getshdr(scn, &shdr);
      if (shdr.sh_type != SHT_SYMTAB) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      for (size_t i = 0; i < shdr.sh_size / shdr.sh_entsize; ++i) {
        GElf_Sym s;
        gelf_getsym(data, static_cast<int>(i), &s);
        if (GELF_ST_TYPE(s.st_info) == STT_FUNC && s.st_size > 0 && s.st_shndx != SHN_UNDEF)
          out.push_back({s.st_value, s.st_size});
      }
    }
    if (elf) elf_end(elf);
    close(fd);
  };
  scan(path);
  if (out.empty()) {
    auto f = sym::ElfFile::open_path(path);
    std::string id = f->build_id();
    if (id.size() > 2) scan("/usr/lib/debug/.build-id/" + id.substr(0, 2) + "/" + id.substr(2) + ".debug");
  }
  std::sort(out.begin(), out.end(), [](const Func& a, const Func& b) { return a.start < b.start; });
  out.erase(std::unique(out.begin(), out.end(), [](const Func& a, const Func& b) { return a.start == b.start; }),
            out.end());
  return out;
}

// count addresses inside functions: a function drawn uniformly, then an offset in it.
std::vector<uint64_t> pick_addresses(const std::vector<Func>& funcs, size_t count) {
  std::mt19937_64 rng(kSeed);
  std::vector<uint64_t> out;
  out.reserve(count);
  std::uniform_int_distribution<size_t> pick(0, funcs.size() - 1);
  while (out.size() < count) {
    const Func& f = funcs[pick(rng)];
    out.push_back(f.start + std::uniform_int_distribution<uint64_t>(0, f.size - 1)(rng));
  }
  return out;
}

int repeats() {
  static const int n = std::getenv("SYMBOLIZER_BENCH_REPEAT") ? std::max(1, std::atoi(std::getenv("SYMBOLIZER_BENCH_REPEAT"))) : 3;
  return n;
}

// Timings are CPU seconds (user + system), not wall time: the machine is
// shared, and CPU time is what a symbolizer costs whoever runs it.
double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs argv with stdin from in_path and stdout to out_path; returns seconds.
double run_tool_once(const std::vector<std::string>& argv, const std::string& in_path, const std::string& out_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  if (posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) {
    posix_spawn_file_actions_destroy(&actions);
    return -1;
  }
  int status;
  rusage usage;
  wait4(pid, &status, 0, &usage);
  double s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
             static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
  posix_spawn_file_actions_destroy(&actions);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? s : -1;
}

// Best of repeats() runs; -1 if the tool is missing or fails.
double run_tool(const std::vector<std::string>& argv, const std::string& in_path, const std::string& out_path) {
  double best = -1;
  for (int r = 0; r < repeats(); ++r) {
    double s = run_tool_once(argv, in_path, out_path);
    if (s < 0) return -1;
    best = best < 0 ? s : std::min(best, s);
  }
  return best;
}

void write_addresses(const std::string& path, const std::vector<uint64_t>& addresses, size_t count) {
  std::ofstream out(path);
  for (size_t i = 0; i < count; ++i) out << "0x" << std::hex << addresses[i] << "\n";
}

// Function names per address from addr2line-style output (-a -f -i): an
// "0x..." line, then name / location line pairs.
std::vector<std::vector<std::string>> parse_addr2line(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("0x")) {
      out.emplace_back();
      continue;
    }
    std::string location;
    std::getline(in, location);
    if (!out.empty()) out.back().push_back(line);
  }
  return out;
}

// llvm-symbolizer: per address, name / location pairs, then a blank line.
std::vector<std::vector<std::string>> parse_llvm(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> out(1);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) {
      out.emplace_back();
      continue;
    }
    std::string location;
    std::getline(in, location);
    out.back().push_back(line);
  }
  while (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

// Names LLVM 14's demangler left mangled ("_ZSt4swapIPcE...",
// "_ZNSi6ignoreEv@GLIBCXX_3.4"), demangled by the C++ runtime: the same
// function named the same way. Returns how many it rewrote.
size_t redemangle(std::vector<std::vector<std::string>>& names) {
  size_t n = 0;
  for (auto& chain : names)
    for (std::string& name : chain) {
      if (!name.starts_with("_Z")) continue;
      std::string bare = name.substr(0, name.find('@'));
      std::string d = sym::demangle(bare.c_str());
      if (d != name) name = d, ++n;
    }
  return n;
}

struct Agreement {
  size_t outer = 0, chain = 0, compared = 0;
  size_t only_ours = 0;  // the tool printed ?? where stackwatch named the function
  size_t both_named = 0, outer_both_named = 0;  // addresses both named, and agreed on
  std::vector<size_t> only_ours_at;  // which addresses those were
};

// SYMBOLIZER_BENCH_DIFFS=N prints the first N disagreements.
Agreement agree(const std::vector<std::vector<std::string>>& ours, const std::vector<std::vector<std::string>>& theirs,
                const std::vector<uint64_t>& addresses, const char* tool) {
  static const long show = std::getenv("SYMBOLIZER_BENCH_DIFFS") ? std::atol(std::getenv("SYMBOLIZER_BENCH_DIFFS")) : 0;
  long shown = 0;
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : " > ") + x;
    return s;
  };
  Agreement a;
  a.compared = std::min(ours.size(), theirs.size());
  for (size_t i = 0; i < a.compared; ++i) {
    if (ours[i].empty() || theirs[i].empty()) continue;
    a.outer += ours[i].back() == theirs[i].back();
    a.chain += ours[i] == theirs[i];
    if (theirs[i].back() == "??" && ours[i].back() != "??") {
      ++a.only_ours;
      a.only_ours_at.push_back(i);
    }
    if (theirs[i].back() != "??" && ours[i].back() != "??") {
      ++a.both_named;
      a.outer_both_named += ours[i].back() == theirs[i].back();
    }
    if (ours[i] != theirs[i] && shown++ < show)
      std::printf("     0x%" PRIx64 " stackwatch: %s\n     %*s %s: %s\n", addresses[i], join(ours[i]).c_str(), 18, "",
                  tool, join(theirs[i]).c_str());
  }
  return a;
}

void bench(const std::string& binary, size_t count, size_t eu_subset) {
  std::string real = fs::canonical(binary).string();
  std::printf("== %s (%.1f MB)\n", real.c_str(), static_cast<double>(fs::file_size(real)) / 1e6);
  auto funcs = functions_of(real);
  if (funcs.empty()) {
    std::printf("   no function symbols (is its debug package installed?)\n");
    return;
  }
  auto addresses = pick_addresses(funcs, count);
  std::printf("   %zu addresses in %zu functions, seed %u; addresses per CPU-second, best of %d; page cache warm "
              "for every tool; cold = a fresh Symbolizer (file opened, DWARF inflated and indexed in the timing)\n",
              addresses.size(), funcs.size(), kSeed, repeats());

  // Each timing is the best of kRepeats runs: the machine is shared, and the
  // best run is the one least disturbed by others.
  std::vector<std::vector<std::string>> ours(addresses.size());
  double cold_s = 1e9, warm_s = 1e9, batch_cold_s = 1e9, batch_warm_s = 1e9;
  double batch_cold_wall = 1e9, batch_cached_s = 1e9;
  size_t frames = 0, batch_differs = 0, cached_differs = 0;
  // Cold means cold: no image cache (image_cache.h). The cached batch is a
  // later run's, with an image cache of the bench's own, filled first.
  sym::Options uncached;
  uncached.image_cache_dir = "";
  sym::Options cached = uncached;
  fs::path image_dir = fs::temp_directory_path() / ("symbolizer-bench-images-" + std::to_string(getpid()));
  cached.image_cache_dir = image_dir.string();
  sym::Symbolizer(cached).symbolize_file(real, addresses.front());
  // SYMBOLIZER_BENCH_ONLY_BATCH: the batch timings alone (for profiling them).
  static const bool only_batch = std::getenv("SYMBOLIZER_BENCH_ONLY_BATCH") != nullptr;
  for (int r = 0; r < repeats(); ++r) {
    double t = cpu_now();
    sym::Symbolizer cold(uncached);
    for (size_t i = 0; i < addresses.size() && !only_batch; ++i) {
      auto f = cold.symbolize_file(real, addresses[i]);
      frames += f.size();
      if (r == 0)
        for (const Frame& fr : f) ours[i].push_back(fr.function.empty() ? "??" : fr.function);
    }
    cold_s = std::min(cold_s, cpu_now() - t);
    t = cpu_now();
    if (!only_batch)
      for (uint64_t a : addresses) frames += cold.symbolize_file(real, a).size();
    warm_s = std::min(warm_s, cpu_now() - t);

    // The batch call: all addresses in one symbolize_file (as a recording's
    // are symbolized), again on a fresh Symbolizer.
    auto wall = std::chrono::steady_clock::now();
    t = cpu_now();
    sym::Symbolizer batch(uncached);
    // Counts the frames, and in the first round the addresses named
    // differently from one call each.
    std::vector<std::string> names;
    auto checking = [&](size_t& differs) {
      return [&](size_t i, std::span<const Frame> f) {
        frames += f.size();
        if (r != 0) return;
        names.clear();
        for (const Frame& fr : f) names.push_back(fr.function.empty() ? "??" : fr.function);
        differs += names != ours[i];
      };
    };
    batch.symbolize_file(real, std::span<const uint64_t>(addresses), checking(batch_differs));
    batch_cold_s = std::min(batch_cold_s, cpu_now() - t);
    batch_cold_wall =
        std::min(batch_cold_wall, std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count());
    t = cpu_now();
    batch.symbolize_file(real, std::span<const uint64_t>(addresses),
                         [&](size_t, std::span<const Frame> f) { frames += f.size(); });
    batch_warm_s = std::min(batch_warm_s, cpu_now() - t);

    t = cpu_now();
    sym::Symbolizer later(cached);
    later.symbolize_file(real, std::span<const uint64_t>(addresses), checking(cached_differs));
    batch_cached_s = std::min(batch_cached_s, cpu_now() - t);
  }
  std::error_code ignored;
  fs::remove_all(image_dir, ignored);
  std::printf("   stackwatch cold      %10.0f addresses/s  (%.4f s, module parse+index included; one call per address)\n",
              addresses.size() / cold_s, cold_s);
  std::printf("   stackwatch warm      %10.0f addresses/s  (%.4f s)\n", addresses.size() / warm_s, warm_s);
  std::printf("   stackwatch batch cold %9.0f addresses/s  (%.4f s CPU, %.4f s wall; one call for all; "
              "%zu addresses named differently from one call each)\n",
              addresses.size() / batch_cold_s, batch_cold_s, batch_cold_wall, batch_differs);
  std::printf("   stackwatch batch warm %9.0f addresses/s  (%.4f s)\n", addresses.size() / batch_warm_s, batch_warm_s);
  std::printf("   stackwatch batch, image cached %9.0f addresses/s  (%.4f s CPU; a later run: the inflated DWARF "
              "mapped from the image cache; %zu addresses named differently)\n",
              addresses.size() / batch_cached_s, batch_cached_s, cached_differs);

  if (std::getenv("SYMBOLIZER_BENCH_ONLY_STACKWATCH")) return;  // for profiling stackwatch alone
  fs::path dir = fs::temp_directory_path() / ("symbolizer-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string in = (dir / "addresses").string(), out = (dir / "out").string();
  write_addresses(in, addresses, addresses.size());

  double a2l_s = run_tool({"addr2line", "-a", "-f", "-i", "-C", "-e", real}, in, out);
  Agreement a2l;
  std::vector<std::vector<std::string>> a2l_names;
  if (a2l_s > 0) {
    std::printf("   addr2line -f -i -C   %10.0f addresses/s  (%.3f s)\n", addresses.size() / a2l_s, a2l_s);
    a2l_names = parse_addr2line(out);
    a2l = agree(ours, a2l_names, addresses, "addr2line");
  }
  double llvm_s = -1;
  for (const char* tool : {"llvm-symbolizer", "llvm-symbolizer-14"}) {
    llvm_s = run_tool({tool, "--inlining", "--demangle", "--obj=" + real}, in, out);
    if (llvm_s > 0) break;
  }
  Agreement llvm, llvm_mangled;
  if (llvm_s > 0) {
    std::printf("   llvm-symbolizer      %10.0f addresses/s  (%.3f s)\n", addresses.size() / llvm_s, llvm_s);
    auto llvm_names = parse_llvm(out);
    size_t redemangled = redemangle(llvm_names);
    if (redemangled)
      std::printf("   (%zu of llvm-symbolizer's names were left mangled by its demangler; compared demangled by the "
                  "C++ runtime's)\n",
                  redemangled);
    llvm = agree(ours, llvm_names, addresses, "llvm-symbolizer");
    // Again without demangling (untimed): the two demanglers spell some
    // names differently ("{lambda(int)#1}" / "'lambda'(int)"), and LLVM 14's
    // gives up on some; mangled names compare the functions themselves.
    sym::Options raw;
    raw.demangle = false;
    sym::Symbolizer mangled(raw);
    std::vector<std::vector<std::string>> ours_mangled(addresses.size());
    for (size_t i = 0; i < addresses.size(); ++i)
      for (const Frame& fr : mangled.symbolize_file(real, addresses[i]))
        ours_mangled[i].push_back(fr.function.empty() ? "??" : fr.function);
    for (const char* tool : {"llvm-symbolizer", "llvm-symbolizer-14"})
      if (run_tool_once({tool, "--inlining", "--no-demangle", "--obj=" + real}, in, out) > 0) break;
    llvm_mangled = agree(ours_mangled, parse_llvm(out), addresses, "llvm-symbolizer --no-demangle");
  }
  std::string eu_in = (dir / "eu-addresses").string();
  size_t subset = std::min(eu_subset, addresses.size());
  write_addresses(eu_in, addresses, subset);
  double s = run_tool({"eu-addr2line", "-a", "-f", "-i", "-C", "-e", real}, eu_in, out);
  if (s > 0)
    std::printf("   eu-addr2line -f -i -C %9.0f addresses/s  (%.3f s for the first %zu addresses only; "
                "extrapolated %.0f s for all)\n",
                subset / s, s, subset, s / subset * addresses.size());
  if (a2l_s > 0 && llvm_s > 0) {
    std::printf("   stackwatch cold is %.1fx addr2line and %.1fx llvm-symbolizer\n", a2l_s / cold_s, llvm_s / cold_s);
    std::printf("   stackwatch batch cold is %.1fx addr2line and %.1fx llvm-symbolizer\n", a2l_s / batch_cold_s,
                llvm_s / batch_cold_s);
    std::printf("   stackwatch warm is %.1fx llvm-symbolizer\n", llvm_s / warm_s);
  }
  if (llvm.compared)
    std::printf("   agreement with llvm-symbolizer: function %.2f%%, whole inline chain %.2f%% (of %zu; "
                "llvm-symbolizer says ?? where stackwatch names it: %.2f%%)\n",
                100.0 * llvm.outer / llvm.compared, 100.0 * llvm.chain / llvm.compared, llvm.compared,
                100.0 * llvm.only_ours / llvm.compared);
  if (llvm.compared) {
    // Where llvm-symbolizer prints ?? there is no name to disagree with;
    // addr2line says whether stackwatch's name there is right.
    size_t a2l_confirms = 0, a2l_checked = 0;
    for (size_t i : llvm.only_ours_at) {
      if (i >= a2l_names.size() || a2l_names[i].empty() || a2l_names[i].back() == "??") continue;
      ++a2l_checked;
      a2l_confirms += a2l_names[i].back() == ours[i].back();
    }
    std::printf("   ... where both name a function: function %.2f%% (of %zu); where only stackwatch does, "
                "addr2line agrees with stackwatch on %zu of %zu\n",
                llvm.both_named ? 100.0 * llvm.outer_both_named / llvm.both_named : 0.0, llvm.both_named, a2l_confirms,
                a2l_checked);
  }
  if (llvm_mangled.compared)
    std::printf("   ... mangled names:              function %.2f%%, whole inline chain %.2f%% (of %zu)\n",
                100.0 * llvm_mangled.outer / llvm_mangled.compared, 100.0 * llvm_mangled.chain / llvm_mangled.compared,
                llvm_mangled.compared);
  if (a2l.compared)
    std::printf("   agreement with addr2line:       function %.2f%%, whole inline chain %.2f%% (of %zu; "
                "addr2line says ?? where stackwatch names it: %.2f%%)\n",
                100.0 * a2l.outer / a2l.compared, 100.0 * a2l.chain / a2l.compared, a2l.compared,
                100.0 * a2l.only_ours / a2l.compared);
  fs::remove_all(dir);
  (void)frames;
}

}  // namespace

int main(int argc, char** argv) {
  elf_version(EV_CURRENT);
  size_t count = argc > 2 ? std::stoul(argv[2]) : 100000;
  size_t eu_subset = argc > 3 ? std::stoul(argv[3]) : 200;
  std::vector<std::string> binaries;
  if (argc > 1)
    binaries.push_back(argv[1]);
  else
    binaries = {"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/debug/libstdc++.so.6",
                "/usr/bin/python3.11"};
  for (const std::string& b : binaries) {
    try {
      bench(b, count, eu_subset);
    } catch (const std::exception& e) {
      std::printf("   %s: %s\n", b.c_str(), e.what());
    }
  }
  return 0;
}
