// See exited_processes.h.
#include "profiler/exited_processes.h"

namespace stackwatch::profiler {

std::vector<uint32_t> ExitedProcesses::take_gone() {
  std::vector<uint32_t> gone;
  for (auto it = exited_.begin(); it != exited_.end();) {
    if (exists_(*it)) {
      ++it;  // a zombie: a later drain may still read it
      continue;
    }
    gone.push_back(*it);
    it = exited_.erase(it);
  }
  return gone;
}

}  // namespace stackwatch::profiler
