// Starts the COMMAND of `stackwatch record -- COMMAND ARGS...` held at a gate,
// so its pid can be made a target before it runs its first instruction, and
// reports a failed exec as a one-line error instead of a silent exit.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace stackwatch::profiler {

class CommandLauncher {
 public:
  // Forks; the child waits at the gate. Throws stackwatch::Error when the
  // program cannot be found or is not executable.
  explicit CommandLauncher(const std::vector<std::string>& argv);
  ~CommandLauncher();
  CommandLauncher(const CommandLauncher&) = delete;
  CommandLauncher& operator=(const CommandLauncher&) = delete;

  pid_t pid() const { return pid_; }
  // Opens the gate: the child execs. Throws if the exec failed.
  void start();
  // Non-blocking: true once the child has exited (reaped); sets exit_status.
  bool reap();
  int exit_status() const { return exit_status_; }
  bool exited() const { return exited_; }

 private:
  pid_t pid_ = -1;
  int gate_fd_ = -1;   // parent's write end: closing it releases the child
  int error_fd_ = -1;  // parent's read end: the child writes errno if exec fails
  bool exited_ = false;
  int exit_status_ = 0;
};

// The path execvp would run for `program`, or "" if none.
std::string find_in_path(const std::string& program);

}  // namespace stackwatch::profiler
