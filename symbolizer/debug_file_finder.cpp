// Separate debug file lookup, in the order gdb and elfutils use.
#include "symbolizer/debug_file_finder.h"

#include <unistd.h>

#include <vector>

namespace stackwatch::symbolizer {
namespace {

std::unique_ptr<ElfFile> try_candidate(const std::string& path, const ElfFile& main) {
  if (::access(path.c_str(), R_OK) != 0) return nullptr;
  auto f = ElfFile::try_open_path(path);
  if (!f) return nullptr;
  if (!main.build_id().empty() && !f->build_id().empty() && f->build_id() != main.build_id()) return nullptr;
  if (!f->has_dwarf() && !f->has_symtab()) return nullptr;
  return f;
}

}  // namespace

std::unique_ptr<ElfFile> find_debug_file(const ElfFile& main, const std::string& debug_root, std::string& how) {
  const std::string& id = main.build_id();
  if (id.size() > 2) {
    std::string path = debug_root + "/.build-id/" + id.substr(0, 2) + "/" + id.substr(2) + ".debug";
    if (auto f = try_candidate(path, main)) {
      how = "build-id";
      return f;
    }
  }
  if (main.debuglink() && !main.debuglink()->empty()) {
    const std::string& link = *main.debuglink();
    std::string dir = main.path();
    size_t slash = dir.rfind('/');
    dir = slash == std::string::npos ? "." : dir.substr(0, slash);
    std::vector<std::string> candidates = {dir + "/" + link, dir + "/.debug/" + link, debug_root + dir + "/" + link};
    for (const std::string& path : candidates) {
      if (path == main.path()) continue;
      if (auto f = try_candidate(path, main)) {
        how = "debuglink";
        return f;
      }
    }
  }
  return nullptr;
}

}  // namespace stackwatch::symbolizer
