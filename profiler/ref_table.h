// RefTable: interned values with reference counts. Equal values share one
// small integer id; a value is freed (and its id reused) when its last
// reference is released. Used by BaselineHistory to share strings, frames
// and stacks between the intervals it keeps.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace stackwatch::profiler {

template <typename T, typename Hash = std::hash<T>>
class RefTable {
 public:
  // The id of `value`, taking one reference: a new id when it was not
  // there (then *inserted is set, if given).
  uint32_t acquire(const T& value, bool* inserted = nullptr) {
    auto it = index_.find(value);
    if (inserted) *inserted = it == index_.end();
    if (it != index_.end()) {
      ++refs_[it->second];
      return it->second;
    }
    uint32_t id;
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
    } else {
      id = static_cast<uint32_t>(values_.size());
      values_.push_back(nullptr);
      refs_.push_back(0);
    }
    it = index_.emplace(value, id).first;
    values_[id] = &it->first;  // node-based map: the key does not move
    refs_[id] = 1;
    return id;
  }

  // Drops one reference. When it was the last, the value is removed and,
  // if `freed` is given, moved there (to release what it refers to).
  bool release(uint32_t id, T* freed = nullptr) {
    if (--refs_[id] != 0) return false;
    auto node = index_.extract(index_.find(*values_[id]));
    if (freed) *freed = std::move(node.key());
    values_[id] = nullptr;
    free_.push_back(id);
    return true;
  }

  const T& at(uint32_t id) const { return *values_[id]; }
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (const auto& entry : index_) fn(entry.first);
  }
  size_t size() const { return index_.size(); }
  // Ids handed out so far, live or free: the extent of the id arrays.
  size_t capacity() const { return values_.size(); }
  size_t bucket_count() const { return index_.bucket_count(); }

 private:
  std::unordered_map<T, uint32_t, Hash> index_;
  std::vector<const T*> values_;  // id -> its key in index_, null when free
  std::vector<uint32_t> refs_;
  std::vector<uint32_t> free_;
};

}  // namespace stackwatch::profiler
