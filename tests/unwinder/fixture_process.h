// Runs an unwinder fixture (tests/fixtures/unwinder/unw_fixture.c) and reads
// what it captured at the bottom of its call chain; the process stays alive
// (blocked) until the FixtureProcess is destroyed, so /proc/PID/map_files and
// /proc/PID/mem can still be used. Shared by the tests and the benchmark.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "symbolizer/symbolizer.h"
#include "unwinder/unwinder.h"

namespace stackwatch::unwinder::testing {

struct Capture {
  UserRegs regs;
  std::vector<uint8_t> stack;  // from regs.sp upwards
  std::string maps_text;
  std::vector<symbolizer::Mapping> maps;
};

class FixtureProcess {
 public:
  // Starts `exe capture_file mode` and waits until it has written its capture.
  // Throws std::runtime_error if the fixture fails.
  FixtureProcess(const std::string& exe, const std::string& mode);
  ~FixtureProcess();
  FixtureProcess(const FixtureProcess&) = delete;
  FixtureProcess& operator=(const FixtureProcess&) = delete;

  pid_t pid() const { return pid_; }
  const Capture& capture() const { return capture_; }
  // Lets the fixture exit; returns its exit status (0 expected).
  int finish();

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::string capture_path_;
  Capture capture_;
};

}  // namespace stackwatch::unwinder::testing
