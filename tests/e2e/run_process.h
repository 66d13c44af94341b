// Runs a program for a test, with a timeout, capturing stdout and stderr.
#pragma once

#include <string>
#include <vector>

namespace stackwatch::testing {

struct ProcessResult {
  int exit_code = -1;    // exit status, or -1 if killed by a signal
  int signal = 0;        // the signal that ended it, 0 if it exited
  bool timed_out = false;
  std::string out;
  std::string err;
  long max_rss_kb = 0;  // peak RSS of the process (ru_maxrss; with its children's when they were larger)
};

// Runs argv (argv[0] is a path), kills it after timeout_s.
ProcessResult run_process(const std::vector<std::string>& argv, double timeout_s);

// Starts argv in the background; returns its pid (stdout/stderr to /dev/null).
int start_background(const std::vector<std::string>& argv);

}  // namespace stackwatch::testing
