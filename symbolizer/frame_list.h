// A list of Frames that keeps its Frame objects, and their strings' buffers,
// when cleared: a batch of lookups then assigns each frame's function, file,
// module and build-id into buffers it already has, instead of allocating
// and freeing four strings per frame (a tenth of a cold batch over libc).
//
// Frames appended with append_reusing() go further: their four strings are
// assigned through assign(), which copies only when the source string is
// not the one the slot copied last time. A batch looks addresses up in
// ascending order, so consecutive lookups mostly repeat the same function,
// file, module and build-id (27 addresses per function in the libc
// benchmark). Sources must outlive the FrameList or its next move_to()
// (module names, file names and paths do: they live in the Module the
// caller holds).
#pragma once

#include <array>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "recording/recording.h"

namespace stackwatch::symbolizer {

class FrameList {
 public:
  enum Field { kFunction, kFile, kModule, kBuildId, kFields };

  // A frame equal to Frame{} but for the capacity of its strings.
  Frame& append() {
    if (size_ == frames_.size()) {
      ++size_;
      sources_.emplace_back();
      return frames_.emplace_back();
    }
    sources_[size_] = {};
    Frame& f = frames_[size_++];
    reset(f);
    return f;
  }
  // A frame equal to Frame{} but for its function, file, module and
  // build-id, which still hold what the slot held: the caller assigns each
  // of them with assign().
  Frame& append_reusing() {
    if (size_ == frames_.size()) return append();
    Frame& f = frames_[size_++];
    reset_all_but_sourced(f);
    return f;
  }
  // frames[i]'s field = source, copied only if the slot did not copy that
  // very string last.
  void assign(size_t i, Field field, const std::string& source) {
    const std::string*& last = sources_[i][field];
    if (last == &source) return;
    Frame& f = frames_[i];
    std::string& target = field == kFunction ? f.function : field == kFile ? f.file : field == kModule ? f.module : f.build_id;
    target = source;
    last = &source;
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
    sources_.clear();
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

  // Every field but the four sourced strings, as Frame{} has them. A field
  // added to Frame fails the size check below until it is reset here too.
  static void reset_all_but_sourced(Frame& f) {
    static_assert(sizeof(Frame) == 8 + 4 * sizeof(std::string) + 8 + 4 + 4 + 8 + sizeof(std::string),
                  "Frame changed: reset its new field in reset_all_but_sourced");
    f.address = 0;
    f.module_offset = 0;
    f.line = 0;
    f.column = 0;
    f.inlined = false;
    f.kernel = false;
    f.unknown_reason.clear();
  }

  std::vector<Frame> frames_;
  std::vector<std::array<const std::string*, kFields>> sources_;  // per slot: what each field last copied
  size_t size_ = 0;
};

}  // namespace stackwatch::symbolizer
