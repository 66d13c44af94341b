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
  // Copy-assigned from a blank Frame, so a field added to Frame is reset
  // too; assigning an empty string keeps the target's buffer (libstdc++
  // reuses capacity), and costs a fifth of moving five strings out and back.
  static void reset(Frame& f) {
    static const Frame kBlank{};
    f = kBlank;
  }

  std::vector<Frame> frames_;
  size_t size_ = 0;
};

}  // namespace stackwatch::symbolizer
