// End to end: every bad input gets one line on stderr and a non-zero exit,
// never a crash or a hang.
#include <signal.h>

#include <algorithm>

#include "e2e_support.h"

namespace stackwatch::testing {
namespace {

void expect_one_line_error(const ProcessResult& r, const std::string& needle) {
  EXPECT_FALSE(r.timed_out) << "hung";
  EXPECT_EQ(r.signal, 0) << "crashed with signal " << r.signal;
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("stackwatch: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

int unused_pid() {
  for (int pid = 4000000; pid > 300000; pid -= 7919)
    if (kill(pid, 0) != 0 && errno == ESRCH) return pid;
  return 4194000;
}

TEST(BadInput, UnknownPid) {
  REQUIRE_ROOT();
  auto r = run_process({stackwatch_bin(), "record", "-p", std::to_string(unused_pid()), "-o", fresh_dir("bad")}, 30);
  expect_one_line_error(r, "no such process");
}

TEST(BadInput, MalformedPid) {
  auto r = run_process({stackwatch_bin(), "record", "-p", "12x", "-o", fresh_dir("bad")}, 30);
  expect_one_line_error(r, "not a process id");
}

TEST(BadInput, ZeroFrequency) {
  REQUIRE_ROOT();
  auto r = run_process({stackwatch_bin(), "record", "-F", "0", "-o", fresh_dir("bad")}, 30);
  expect_one_line_error(r, "-F 0");
}

TEST(BadInput, AbsurdFrequency) {
  REQUIRE_ROOT();
  auto r = run_process({stackwatch_bin(), "record", "-F", "50000000", "-o", fresh_dir("bad")}, 30);
  expect_one_line_error(r, "-F 50000000");
}

TEST(BadInput, UnwritableOutputDirectory) {
  REQUIRE_ROOT();
  // A directory cannot be created under a regular file, even by root.
  auto r = run_process({stackwatch_bin(), "record", "-d", "1", "-o", "/etc/hostname/out"}, 30);
  expect_one_line_error(r, "/etc/hostname/out");
}

TEST(BadInput, MissingCommand) {
  REQUIRE_ROOT();
  auto r = run_process({stackwatch_bin(), "record", "-o", fresh_dir("bad"), "--", "/nonexistent/program", "x"}, 30);
  expect_one_line_error(r, "/nonexistent/program");
}

TEST(BadInput, NoPrivilegeNamesTheCapabilities) {
  REQUIRE_ROOT();
  // Drop to nobody with no capabilities at all.
  auto r = run_process({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                        "--bounding-set=-all", stackwatch_bin(), "record", "-d", "1", "-o", "/tmp"},
                       30);
  expect_one_line_error(r, "CAP_BPF and CAP_PERFMON");
}

TEST(BadInput, BadInterval) {
  REQUIRE_ROOT();
  auto r = run_process({stackwatch_bin(), "record", "-i", "0", "-o", fresh_dir("bad")}, 30);
  expect_one_line_error(r, "-i");
}

}  // namespace
}  // namespace stackwatch::testing
