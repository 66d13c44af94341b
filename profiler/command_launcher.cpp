// Launching the profiled COMMAND (see command_launcher.h).
#include "profiler/command_launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "recording/error.h"

namespace stackwatch::profiler {

static bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string find_in_path(const std::string& program) {
  if (program.find('/') != std::string::npos) return is_executable_file(program) ? program : "";
  const char* env = std::getenv("PATH");
  std::stringstream ss(env ? env : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (is_executable_file(candidate)) return candidate;
  }
  return "";
}

// As root, COMMAND runs as root: refuse one that another user could have
// replaced, i.e. writable by group or others, or reached through such a
// directory without the sticky bit (the check of sudo and sshd's StrictModes).
static void check_replaceable_by_others(const std::string& program) {
  std::error_code ec;
  std::filesystem::path path = std::filesystem::weakly_canonical(program, ec);
  if (ec) path = program;
  for (std::filesystem::path p = path;; p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      bool writable = st.st_mode & (S_IWGRP | S_IWOTH);
      bool sticky_dir = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX);
      if ((writable && !sticky_dir) || (st.st_uid != 0 && p == path))
        throw Error("refusing to run " + program + " as root: " + p.string() +
                    (st.st_uid != 0 && p == path ? " is owned by another user" : " is writable by other users"));
    }
    if (p == p.parent_path() || p.empty()) break;
  }
}

CommandLauncher::CommandLauncher(const std::vector<std::string>& argv) {
  if (argv.empty()) throw Error("no COMMAND given after --");
  std::string program = find_in_path(argv[0]);
  if (program.empty()) throw Error("cannot run '" + argv[0] + "': no such executable file (not found in PATH)");
  if (geteuid() == 0) check_replaceable_by_others(program);
  int gate[2], err[2];
  if (pipe2(gate, O_CLOEXEC) != 0) throw Error(std::string("cannot create a pipe: ") + std::strerror(errno));
  if (pipe2(err, O_CLOEXEC) != 0) {
    ::close(gate[0]);
    ::close(gate[1]);
    throw Error(std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw Error(std::string("cannot fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    ::close(gate[1]);
    ::close(err[0]);
    // The parent blocks these signals to read them from a signalfd; the
    // command must get the ordinary behaviour back.
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    char c;
    while (::read(gate[0], &c, 1) < 0 && errno == EINTR) {
    }
    execvp(args[0], args.data());
    int e = errno;
    (void)!::write(err[1], &e, sizeof e);
    _exit(127);
  }
  ::close(gate[0]);
  ::close(err[1]);
  gate_fd_ = gate[1];
  error_fd_ = err[0];
}

CommandLauncher::~CommandLauncher() {
  if (gate_fd_ >= 0) {
    // Never started (set-up failed): do not let the command run unprofiled.
    ::kill(pid_, SIGKILL);
    ::close(gate_fd_);
  }
  if (error_fd_ >= 0) ::close(error_fd_);
  if (pid_ > 0 && !exited_) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      // Still running: it is the user's program; leave it alone.
    }
  }
}

void CommandLauncher::start() {
  ::close(gate_fd_);
  gate_fd_ = -1;
  int e = 0;
  ssize_t n;
  while ((n = ::read(error_fd_, &e, sizeof e)) < 0 && errno == EINTR) {
  }
  ::close(error_fd_);
  error_fd_ = -1;
  if (n == static_cast<ssize_t>(sizeof e)) {
    int status;
    waitpid(pid_, &status, 0);
    exited_ = true;
    throw Error("cannot run the COMMAND: " + std::string(std::strerror(e)));
  }
}

bool CommandLauncher::reap() {
  if (exited_) return true;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return exited_;
}

}  // namespace stackwatch::profiler
