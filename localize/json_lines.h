// JsonLinesWriter: appends one JSON object per line to a file (JSON Lines),
// for logs that grow while a recording runs (intervals.jsonl, anomalies.jsonl).
//
// Each line goes out in one write(2) on an O_APPEND descriptor, so a reader
// sees whole lines; a crash can at worst leave a torn last line, which the
// readers here skip. (Whole-file outputs use write_file_atomically instead.)
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace stackwatch::localize {

class JsonLinesWriter {
 public:
  // Creates or truncates `path`; throws stackwatch::Error naming it on failure.
  explicit JsonLinesWriter(const std::string& path);
  ~JsonLinesWriter();
  JsonLinesWriter(const JsonLinesWriter&) = delete;
  JsonLinesWriter& operator=(const JsonLinesWriter&) = delete;

  // Throws stackwatch::Error if the line cannot be written (disk full).
  void append(const nlohmann::json& object);

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t complete_bytes_ = 0;  // the file's size up to its last complete line
};

// Reads a JSON Lines file: calls `each(line_number, object)` per non-empty
// line. A last line without its newline that does not parse is a torn write
// and is skipped; any other bad line throws stackwatch::Error naming the line.
template <typename Each>
void read_json_lines(const std::string& path, Each each);

// Non-template part: the file's lines, with whether the last one was complete.
struct JsonLinesFile {
  std::vector<std::string> lines;
  bool last_complete = true;
};
JsonLinesFile read_lines(const std::string& path);
[[noreturn]] void throw_bad_line(const std::string& path, size_t line, const std::string& what);

template <typename Each>
void read_json_lines(const std::string& path, Each each) {
  JsonLinesFile file = read_lines(path);
  for (size_t i = 0; i < file.lines.size(); ++i) {
    const std::string& line = file.lines[i];
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json object = nlohmann::json::parse(line, nullptr, false);
    if (object.is_discarded() || !object.is_object()) {
      if (i + 1 == file.lines.size() && !file.last_complete) break;  // torn write
      throw_bad_line(path, i + 1, "not a JSON object");
    }
    each(i + 1, object);
  }
}

}  // namespace stackwatch::localize
