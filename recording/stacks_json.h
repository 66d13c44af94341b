// stacks.json: the stack_count format of DESIGN.md, extended but never broken.
//
//   { "<tgid>": { "name": "<comm>", "pids": { "<tid>": { "<stack id>": {
//       "trace": ["0x7fab3b4dd97b:__clock_gettime", ...],   // innermost first
//       "count": 1, "label": null,
//       "kind": "on"|"off", "off_ns": N, "state": "uninterruptible",
//       "thread": "<comm>",
//       "frames": [ {"addr","function","module","offset","build_id",
//                    "file","line","column","inlined","kernel"}, ... ] }}}},
//     "_stackwatch": { "version": 1, "dropped": {...}, ... } }
//
// Keys that are not decimal numbers are metadata (only "_stackwatch" today);
// a stack_count consumer that skips non-numeric keys reads the file as is.
// Stack ids are assigned per file (0, 1, 2, ... in the order given), because
// BPF stack ids are recycled every interval.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "recording/recording.h"

namespace stackwatch {

struct StacksFileMeta {
  std::string started_at;        // ISO 8601, may be empty
  double duration_s = 0;
  uint64_t intervals = 0;
  uint32_t sample_hz = 0;
  std::string sampling_event;    // "cycles" / "cpu-clock"
  DropCounters drops;
  // Off-CPU map entries of threads that no longer exist, counted at the end
  // of the recording: a health check that exits clean up after themselves.
  uint64_t stale_thread_entries = 0;
  // More metadata, merged into "_stackwatch" as is (e.g. "unwind" figures).
  nlohmann::json extra = nlohmann::json::object();
};

nlohmann::json stacks_to_json(const std::vector<StackSample>& stacks, const StacksFileMeta& meta);

// Stacks handed out one at a time, so a table that stores them compactly
// (profiler/stack_totals.h interns frames) is written without first copying
// every stack out of it.
class StackSource {
 public:
  virtual ~StackSource() = default;
  virtual size_t size() const = 0;
  // Stack i without its frames, maybe (everything but the frames is there):
  // enough to order stacks or pick them by kind without building them.
  virtual const StackSample& header(size_t i) const = 0;
  // Stack i, built in `scratch` if need be: valid until the next call.
  virtual const StackSample& get(size_t i, StackSample& scratch) const = 0;
};

// A StackSource over samples held elsewhere (which must outlive it).
class StackPointers : public StackSource {
 public:
  StackPointers() = default;
  explicit StackPointers(const std::vector<StackSample>& stacks);
  void push_back(const StackSample* s) { stacks_.push_back(s); }
  size_t size() const override { return stacks_.size(); }
  const StackSample& header(size_t i) const override { return *stacks_[i]; }
  const StackSample& get(size_t i, StackSample&) const override { return *stacks_[i]; }

 private:
  std::vector<const StackSample*> stacks_;
};

// Writes stacks.json to `path` atomically (recording/atomic_file.h), straight
// from the stacks: the same text as stacks_to_json(stacks, meta).dump(1) plus
// a newline, byte for byte, without ever holding the document (a churning
// machine's is tens of megabytes of text and several times that as a json
// value): one stack's JSON at a time. Text that is not UTF-8 (a comm is any
// bytes) is written with U+FFFD in its place rather than failing the file.
// Throws stackwatch::Error naming the path when it cannot be written.
void write_stacks_json(const std::string& path, const StackSource& stacks, const StacksFileMeta& meta);
void write_stacks_json(const std::string& path, const std::vector<StackSample>& stacks, const StacksFileMeta& meta);

// Parses a stacks.json written by stackwatch (or by stack_count: "frames",
// "kind" and metadata are optional). Throws stackwatch::Error on malformed input.
std::vector<StackSample> stacks_from_json(const nlohmann::json& doc, StacksFileMeta* meta = nullptr);

// "0x7fab3b4dd97b:__clock_gettime"
std::string trace_entry(const Frame& frame);

}  // namespace stackwatch
