// ModuleCache: a list ordered by use plus a key index into it.
#include "symbolizer/module_cache.h"

namespace stackwatch::symbolizer {

std::shared_ptr<Module> ModuleCache::find(const std::string& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  entries_.splice(entries_.begin(), entries_, it->second);
  return it->second->module;
}

bool ModuleCache::touch(const Module* module) {
  auto it = by_module_.find(module);
  if (it == by_module_.end()) return false;
  entries_.splice(entries_.begin(), entries_, it->second);
  return true;
}

void ModuleCache::insert(std::shared_ptr<Module> module, const std::vector<std::string>& keys) {
  entries_.push_front({std::move(module), {}});
  by_module_[entries_.front().module.get()] = entries_.begin();
  for (const std::string& key : keys) add_key(entries_.front().module, key);
  while (entries_.size() > capacity_) {
    for (const std::string& key : entries_.back().keys) by_key_.erase(key);
    by_module_.erase(entries_.back().module.get());
    entries_.pop_back();
  }
}

void ModuleCache::add_key(const std::shared_ptr<Module>& module, const std::string& key) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->module != module) continue;
    auto [pos, inserted] = by_key_.try_emplace(key, it);
    if (!inserted) {
      if (pos->second == it) return;
      auto& old_keys = pos->second->keys;
      std::erase(old_keys, key);
      pos->second = it;
    }
    it->keys.push_back(key);
    return;
  }
}

}  // namespace stackwatch::symbolizer
