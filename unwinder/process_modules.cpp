// Executable mappings of a process -> modules, resolved lazily.
#include "unwinder/process_modules.h"

#include <algorithm>
#include <utility>

namespace stackwatch::unwinder {
namespace {

bool same_mapping(const symbolizer::Mapping& a, const symbolizer::Mapping& b) {
  return a.start == b.start && a.end == b.end && a.file_offset == b.file_offset &&
         a.inode == b.inode && a.path == b.path;
}

}  // namespace

bool ProcessModules::update(const std::vector<symbolizer::Mapping>& maps) {
  // Cheap check first: the same executable mappings in the same order.
  size_t matched = 0;
  bool same = true;
  for (const symbolizer::Mapping& m : maps) {
    if (!m.executable()) continue;
    if (matched >= mappings_.size() || !same_mapping(m, mappings_[matched].mapping)) {
      same = false;
      break;
    }
    ++matched;
  }
  if (same && matched == mappings_.size()) return false;

  std::vector<ExecMapping> fresh;
  for (const symbolizer::Mapping& m : maps) {
    if (!m.executable() || m.end <= m.start) continue;
    ExecMapping exec;
    exec.mapping = m;
    // Keep what was already resolved for an unchanged mapping.
    const ExecMapping* old = find(m.start);
    if (old != nullptr && same_mapping(old->mapping, m)) exec = *old;
    fresh.push_back(std::move(exec));
  }
  std::sort(fresh.begin(), fresh.end(),
            [](const ExecMapping& a, const ExecMapping& b) { return a.mapping.start < b.mapping.start; });
  mappings_ = std::move(fresh);
  return true;
}

const ExecMapping* ProcessModules::find(uint64_t address) const {
  auto it = std::upper_bound(mappings_.begin(), mappings_.end(), address,
                             [](uint64_t a, const ExecMapping& m) { return a < m.mapping.start; });
  if (it == mappings_.begin()) return nullptr;
  --it;
  return address < it->mapping.end ? &*it : nullptr;
}

ExecMapping* ProcessModules::find(uint64_t address) {
  return const_cast<ExecMapping*>(std::as_const(*this).find(address));
}

const ExecMapping* ProcessModules::find_resolved(uint64_t address, uint32_t pid, ModuleCache& cache) {
  ExecMapping* exec = find(address);
  if (exec == nullptr || exec->resolved) return exec;
  exec->resolved = true;
  const symbolizer::Mapping& m = exec->mapping;
  bool file_backed = !m.path.empty() && (m.path[0] != '[' || m.path == "[vdso]");
  if (!file_backed) return exec;  // anonymous (JIT) code: no CFI
  exec->module = cache.module_for(pid, m);
  std::optional<uint64_t> bias = exec->module ? exec->module->load_bias(m.start, m.file_offset)
                                              : std::nullopt;
  if (!bias) {
    exec->module.reset();
    exec->unreadable = true;
    return exec;
  }
  exec->bias = *bias;
  return exec;
}

}  // namespace stackwatch::unwinder
