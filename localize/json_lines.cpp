// JSON Lines append writer and line reader (see json_lines.h).
#include "localize/json_lines.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "recording/error.h"

namespace stackwatch::localize {

JsonLinesWriter::JsonLinesWriter(const std::string& path) : path_(path) {
  // A new file, never an existing one: whatever sits at the name (an old
  // log, or a symlink someone planted to make root truncate another file)
  // is unlinked, and O_EXCL | O_NOFOLLOW refuse anything planted meanwhile.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw Error("cannot replace " + path + ": " + std::strerror(errno));
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot create " + path + ": " + std::strerror(errno));
}

JsonLinesWriter::~JsonLinesWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void JsonLinesWriter::append(const nlohmann::json& object) {
  std::string line = object.dump();
  line += '\n';
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      // Cut the torn line off (disk full mid-line): the file stays a list
      // of complete lines, and the next append starts a fresh one.
      if (done > 0 && ::ftruncate(fd_, static_cast<off_t>(complete_bytes_)) != 0) {
        // Nothing more to do: the reader skips a torn last line anyway.
      }
      throw Error("cannot write " + path_ + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  complete_bytes_ += line.size();
}

JsonLinesFile read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path + ": " + std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  JsonLinesFile file;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      file.lines.push_back(text.substr(start));
      file.last_complete = false;
      break;
    }
    file.lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return file;
}

void throw_bad_line(const std::string& path, size_t line, const std::string& what) {
  throw Error(path + ":" + std::to_string(line) + ": " + what);
}

}  // namespace stackwatch::localize
