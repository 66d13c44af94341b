// Parsed modules, shared by every process that maps them, with an LRU bound.
// A module is found by any of its keys: "b:<build-id>" and the identity keys
// "f:<path>:<dev>:<inode>:<size>:<mtime>" of the files it was seen as (so a
// second process mapping libc finds it without re-reading the build-id).
#pragma once

#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "symbolizer/module.h"

namespace stackwatch::symbolizer {

class ModuleCache {
 public:
  explicit ModuleCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // The module under key (and marks it most recently used), or nullptr.
  std::shared_ptr<Module> find(const std::string& key);
  // Adds module under keys, evicting the least recently used modules beyond capacity.
  void insert(std::shared_ptr<Module> module, const std::vector<std::string>& keys);
  // Marks module most recently used, without a key lookup; false if it is
  // no longer cached.
  bool touch(const Module* module);
  // Adds one more key to a cached module (no-op if module is not cached).
  void add_key(const std::shared_ptr<Module>& module, const std::string& key);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::shared_ptr<Module> module;
    std::vector<std::string> keys;
  };
  size_t capacity_;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> by_key_;
  std::unordered_map<const Module*, std::list<Entry>::iterator> by_module_;
};

}  // namespace stackwatch::symbolizer
