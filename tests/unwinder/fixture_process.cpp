// Fork/exec of the fixture with a pipe on each of stdin (held open to keep it
// alive) and stdout (its "ready" line), then parsing of its capture file.
#include "tests/unwinder/fixture_process.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "tests/fixtures/unwinder/capture_format.h"

namespace stackwatch::unwinder::testing {
namespace {

Capture read_capture(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  unw_capture_header header;
  if (bytes.size() < sizeof header) throw std::runtime_error("short capture file " + path);
  std::memcpy(&header, bytes.data(), sizeof header);
  if (std::memcmp(header.magic, UNW_CAPTURE_MAGIC, sizeof header.magic) != 0 ||
      bytes.size() != sizeof header + header.stack_size + header.maps_size) {
    throw std::runtime_error("malformed capture file " + path);
  }
  Capture capture;
  const uint64_t* r = header.regs;
  capture.regs = UserRegs{r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]};
  const char* stack = bytes.data() + sizeof header;
  capture.stack.assign(stack, stack + header.stack_size);
  capture.maps_text.assign(stack + header.stack_size, header.maps_size);
  capture.maps = symbolizer::parse_proc_maps(capture.maps_text);
  return capture;
}

}  // namespace

FixtureProcess::FixtureProcess(const std::string& exe, const std::string& mode) {
  char dir_template[] = "/tmp/unw-fixture-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) throw std::runtime_error("mkdtemp");
  capture_path_ = std::string(dir_template) + "/capture.bin";
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) throw std::runtime_error("pipe");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    close(to_child[0]);
    close(to_child[1]);
    close(from_child[0]);
    close(from_child[1]);
    execl(exe.c_str(), exe.c_str(), capture_path_.c_str(), mode.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  stdin_fd_ = to_child[1];
  std::string line;
  char c;
  while (read(from_child[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  close(from_child[0]);
  if (line != "ready") {
    finish();
    throw std::runtime_error("fixture " + exe + " " + mode + " did not get ready");
  }
  capture_ = read_capture(capture_path_);
}

int FixtureProcess::finish() {
  if (pid_ <= 0) return -1;
  if (stdin_fd_ >= 0) close(stdin_fd_);
  stdin_fd_ = -1;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  unlink(capture_path_.c_str());
  rmdir(capture_path_.substr(0, capture_path_.rfind('/')).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

FixtureProcess::~FixtureProcess() { finish(); }

}  // namespace stackwatch::unwinder::testing
