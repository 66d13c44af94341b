// Processes whose exit event was handled, and when their mappings snapshot
// may be forgotten.
//
// An exit event arrives when the process starts to exit, not when it is
// gone: until its parent reaps it, the zombie can still be read from the
// BPF maps. stackwatch's own COMMAND is such a zombie until the record loop
// reaps it, and its outstanding memory (record --memory) is read once more
// by the final drain after that. Forgetting the snapshot at the first drain
// after the exit event left those last reads without names (the final
// stacks.json lost the leaking function when the COMMAND exited just before
// a drain). So a process is forgotten at the first drain after which it no
// longer exists (kill(pid, 0) says ESRCH); a tgid seen alive again (fork or
// exec of a reused pid) is taken off the list.
//
// Single-threaded (the record loop).
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <vector>

namespace stackwatch::profiler {

class ExitedProcesses {
 public:
  // exists(tgid): the process is still there, zombie included.
  explicit ExitedProcesses(std::function<bool(uint32_t)> exists) : exists_(std::move(exists)) {}

  void exited(uint32_t tgid) { exited_.insert(tgid); }
  // A fork, exec or first sighting: the tgid names a live process.
  void alive(uint32_t tgid) { exited_.erase(tgid); }

  // After a drain: the exited processes that are gone now, taken off the
  // list. Their samples have all been drained and symbolized.
  std::vector<uint32_t> take_gone();

  size_t size() const { return exited_.size(); }

 private:
  std::function<bool(uint32_t)> exists_;
  std::set<uint32_t> exited_;
};

}  // namespace stackwatch::profiler
