// stackwatch symbolize: addresses of a file (-e) or a live process (-p) to
// function, inline chain and file:line, printed like `addr2line -a -f -i -C`
// so existing scripts and eyes can read it.
#include <CLI/CLI.hpp>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "profiler/commands.h"
#include "recording/error.h"
#include "symbolizer/symbolizer.h"

namespace stackwatch::cli {
namespace {

// Addresses at or above this are kernel addresses on x86-64 and arm64.
constexpr uint64_t kKernelSpaceStart = 0xffff800000000000ULL;

struct SymbolizeArgs {
  std::string file;
  int64_t pid = -1;
  std::vector<std::string> addresses;
  bool no_inlines = false;
  bool no_demangle = false;
  std::string debug_root = "/usr/lib/debug";
};

uint64_t parse_address(std::string_view text) {
  std::string_view s = text;
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  if (s.starts_with("0x") || s.starts_with("0X")) s.remove_prefix(2);
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value, 16);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size())
    throw Error("malformed address '" + std::string(text) + "' (expected hex, e.g. 0x4005d0)");
  return value;
}

void print_frames(uint64_t address, const std::vector<Frame>& frames) {
  std::printf("0x%016" PRIx64 "\n", address);
  for (const Frame& f : frames) {
    std::printf("%s\n", f.function.empty() ? "??" : f.function.c_str());
    if (f.file.empty())
      std::printf("??:0\n");
    else
      std::printf("%s:%u\n", f.file.c_str(), f.line);
  }
}

void run(const SymbolizeArgs& args) {
  if (args.file.empty() == (args.pid < 0)) throw Error("symbolize needs exactly one of -e FILE or -p PID");
  symbolizer::Options options;
  options.inlines = !args.no_inlines;
  options.demangle = !args.no_demangle;
  options.debug_root = args.debug_root;
  symbolizer::Symbolizer sym(options);
  auto pid = static_cast<uint32_t>(args.pid);
  if (args.pid >= 0) {
    if (!sym.remember_process(pid)) throw Error("no process with pid " + std::to_string(args.pid) + " (or its maps are not readable)");
  } else {
    sym.symbolize_file(args.file, 0);  // fails early on a missing or non-ELF file
  }
  auto one = [&](uint64_t address) {
    std::vector<Frame> frames;
    if (!args.file.empty())
      frames = sym.symbolize_file(args.file, address);
    else if (address >= kKernelSpaceStart)
      frames = sym.symbolize_kernel(address);
    else
      frames = sym.symbolize_user(pid, address, false);
    print_frames(address, frames);
  };
  if (!args.addresses.empty()) {
    std::vector<uint64_t> parsed;
    for (const std::string& a : args.addresses) parsed.push_back(parse_address(a));
    for (uint64_t a : parsed) one(a);
    return;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    one(parse_address(line));
    std::fflush(stdout);  // answer each line at once, so it works as a coprocess
  }
}

}  // namespace

void register_symbolize_command(CLI::App& app) {
  auto args = std::make_shared<SymbolizeArgs>();
  auto* cmd = app.add_subcommand(
      "symbolize", "Resolve addresses of an ELF file (-e) or a process (-p) to functions, inline chains and "
                   "file:line, printed like addr2line -a -f -i -C; addresses are read from stdin if none are given");
  auto* file = cmd->add_option("-e,--exe", args->file, "ELF file; addresses are its virtual addresses (as nm shows)");
  auto* pid = cmd->add_option("-p,--pid", args->pid, "process; addresses are runtime addresses in it (kernel ones too)");
  file->excludes(pid);
  cmd->add_option("addresses", args->addresses, "hex addresses (0x optional)");
  cmd->add_flag("--no-inlines", args->no_inlines, "print only the containing function, not the inlined chain");
  cmd->add_flag("--no-demangle", args->no_demangle, "print C++ names mangled");
  cmd->add_option("--debug-root", args->debug_root, "where separate debug files live (.build-id/xx/rest.debug)")
      ->capture_default_str();
  cmd->callback([args] { run(*args); });
}

}  // namespace stackwatch::cli
