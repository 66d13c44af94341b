// Resolving functions to uprobe file offsets: C and C++ names (mangled,
// demangled, with or without parameters), addresses, and the errors for
// unknown, ambiguous and unprobeable functions.
#include "profiler/uprobe_target.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "recording/error.h"

namespace stackwatch::profiler {
namespace {

// `nm` gives a symbol's virtual address independently of our libelf code.
uint64_t nm_address(const std::string& file, const std::string& symbol) {
  std::string cmd = "nm " + file;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return 0;
  char line[1024];
  uint64_t found = 0;
  while (fgets(line, sizeof line, p)) {
    std::istringstream in(line);
    std::string addr, type, name;
    if (in >> addr >> type >> name && name == symbol) found = std::stoull(addr, nullptr, 16);
  }
  pclose(p);
  return found;
}

std::string error_of(const std::string& func, int pid, const std::string& binary) {
  try {
    resolve_probe_target(func, pid, binary);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(UprobeTarget, CppNamesMangledAndDemangledResolveToTheSameEntry) {
  const std::string f = CPP_NAMES_FIXTURE;
  ProbeTarget by_mangled = resolve_probe_target("_ZN3app7Handler10on_requestEi", -1, f);
  ProbeTarget by_name = resolve_probe_target("app::Handler::on_request", -1, f);
  ProbeTarget by_signature = resolve_probe_target("app::Handler::on_request(int)", -1, f);
  EXPECT_EQ(by_mangled.file_offset, by_name.file_offset);
  EXPECT_EQ(by_signature.file_offset, by_name.file_offset);
  EXPECT_EQ(by_name.function, "app::Handler::on_request(int)");
  EXPECT_EQ(by_name.symbol, "_ZN3app7Handler10on_requestEi");
  EXPECT_EQ(by_name.binary_path, f);
  EXPECT_GT(by_name.size, 0u);
  // A PIE's text segment maps file offsets 1:1 to virtual addresses here
  // (gcc/ld defaults), so nm's address is the offset.
  EXPECT_EQ(by_name.file_offset, nm_address(f, "_ZN3app7Handler10on_requestEi"));
}

TEST(UprobeTarget, OverloadsAreAmbiguousUnlessTheSignatureIsGiven) {
  const std::string f = CPP_NAMES_FIXTURE;
  std::string err = error_of("app::work", -1, f);
  EXPECT_NE(err.find("\"app::work\" is ambiguous"), std::string::npos) << err;
  EXPECT_NE(err.find("_ZN3app4workEi"), std::string::npos) << err;
  ProbeTarget d = resolve_probe_target("app::work(double)", -1, f);
  EXPECT_EQ(d.symbol, "_ZN3app4workEd");
  EXPECT_EQ(d.file_offset, nm_address(f, "_ZN3app4workEd"));
}

TEST(UprobeTarget, AnAddressInsideAFunctionNamesItsEntry) {
  const std::string f = LATENCY_SWITCH_FIXTURE;
  uint64_t entry = nm_address(f, "handle_request");
  ASSERT_NE(entry, 0u);
  char addr[32];
  std::snprintf(addr, sizeof addr, "0x%llx", static_cast<unsigned long long>(entry + 4));
  ProbeTarget t = resolve_probe_target(addr, -1, f);
  EXPECT_EQ(t.function, "handle_request");
  EXPECT_EQ(t.file_offset, entry);
  EXPECT_EQ(t.requested, addr);
}

TEST(UprobeTarget, InAProcessTheProgramAndItsLibrariesAreSearched) {
  // This test process: a function of libc (fdatasync) and one of gtest.
  ProbeTarget libc = resolve_probe_target("fdatasync", getpid(), "");
  EXPECT_NE(libc.binary_path.find("libc.so"), std::string::npos) << libc.binary_path;
  EXPECT_EQ(libc.function, "fdatasync");
  std::string err = error_of("no_such_function_xyz", getpid(), "");
  EXPECT_EQ(err.rfind("no function \"no_such_function_xyz\" in process " + std::to_string(getpid()), 0), 0u) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos);
}

TEST(UprobeTarget, UnprobeableAndBadInputGiveClearErrors) {
  EXPECT_NE(error_of("0xffffffff81000000", getpid(), "").find("kernel address"), std::string::npos);
  EXPECT_NE(error_of("handle_request", -1, "/etc/hostname").find("not an ELF file"), std::string::npos);
  EXPECT_NE(error_of("handle_request", -1, "").find("give a process"), std::string::npos);
  EXPECT_NE(error_of("nope", -1, LATENCY_SWITCH_FIXTURE).find("no function \"nope\" in"), std::string::npos);
  // The vDSO is code but not a file a uprobe can be placed in.
  std::ifstream maps("/proc/self/maps");
  std::string line, vdso;
  while (std::getline(maps, line))
    if (line.find("[vdso]") != std::string::npos) vdso = "0x" + line.substr(0, line.find('-'));
  if (!vdso.empty()) {
    EXPECT_NE(error_of(vdso, getpid(), "").find("only functions of ELF files"), std::string::npos);
  }
}

TEST(UprobeTarget, WithoutParameters) {
  EXPECT_EQ(without_parameters("ns::f(int)"), "ns::f");
  EXPECT_EQ(without_parameters("f<int (*)(int)>(int)"), "f<int (*)(int)>");
  EXPECT_EQ(without_parameters("Foo::operator()(int) const"), "Foo::operator()");
  EXPECT_EQ(without_parameters("plain"), "plain");
}

}  // namespace
}  // namespace stackwatch::profiler
