// A list of Frames that keeps its Frame objects, and their strings' buffers,
// when cleared: a batch of lookups then assigns each frame's function, file,
// module and build-id into buffers it already has, instead of allocating
// and freeing four strings per frame (a tenth of a cold batch over libc).
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "recording/recording.h"

namespace stackwatch::symbolizer {

class FrameList {
 public:
  // A frame equal to Frame{} but for the capacity of its strings.
  Frame& append() {
    if (size_ == frames_.size()) {
      ++size_;
      return frames_.emplace_back();
    }
    Frame& f = frames_[size_++];
    reset(f);
    return f;
  }
  void clear() { size_ = 0; }
  size_t size() const { return size_; }
  Frame& operator[](size_t i) { return frames_[i]; }
  std::span<const Frame> frames() const { return {frames_.data(), size_}; }
  // Appends the frames to out, moving them (for callers that return vectors:
  // the buffers go with them, so the moved-from frames are dropped rather
  // than reset).
  void move_to(std::vector<Frame>& out) {
    out.reserve(out.size() + size_);
    for (size_t i = 0; i < size_; ++i) out.push_back(std::move(frames_[i]));
    frames_.clear();
    size_ = 0;
  }

 private:
  // Through Frame{}, so a field added to Frame is reset too; the strings
  // Frame has today keep their buffers.
  static void reset(Frame& f) {
    std::string function = std::move(f.function), module = std::move(f.module), build_id = std::move(f.build_id),
                file = std::move(f.file), reason = std::move(f.unknown_reason);
    f = Frame{};
    function.clear();
    module.clear();
    build_id.clear();
    file.clear();
    reason.clear();
    f.function = std::move(function);
    f.module = std::move(module);
    f.build_id = std::move(build_id);
    f.file = std::move(file);
    f.unknown_reason = std::move(reason);
  }

  std::vector<Frame> frames_;
  size_t size_ = 0;
};

}  // namespace stackwatch::symbolizer
