// Atomic file replacement: write to a temporary file in the same directory,
// fsync, then rename over the target, so a crash, a kill or a full disk leaves
// either the previous complete file or the new complete one, never a torn one.
#pragma once

#include <string>
#include <string_view>

namespace stackwatch {

// Throws stackwatch::Error with a message naming the path on failure; the
// previous file (if any) is untouched in that case.
void write_file_atomically(const std::string& path, std::string_view contents);

// The same, for contents produced piece by piece (stacks.json of a long
// recording is tens of megabytes: it is streamed, never held whole in
// memory). Writes go through a small buffer to a temporary file beside
// `path`; commit() syncs it and renames it over `path`. Destroyed without a
// successful commit() (an exception while writing), the temporary file is
// removed and `path` is untouched. Errors throw stackwatch::Error naming
// `path`.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(std::string_view data);
  void put(char c) {
    if (buffer_.size() == buffer_.capacity()) flush();
    buffer_.push_back(c);
  }
  void commit();
  const std::string& path() const { return path_; }

 private:
  // Enough to make write(2) calls rare, small enough to be nothing next to
  // the file.
  static constexpr size_t kBufferBytes = 64 * 1024;
  void flush();
  void write_fd(const char* p, size_t n);
  [[noreturn]] void fail(const char* what);

  std::string path_;
  std::string tmp_;
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace stackwatch
