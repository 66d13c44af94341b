// Cgroup membership (see cgroup_members.h).
#include "profiler/cgroup_members.h"

#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <filesystem>
#include <iterator>

#include "profiler/proc_reader.h"
#include "profiler/text_fields.h"
#include "recording/error.h"

namespace fs = std::filesystem;

namespace stackwatch::load {
namespace {

// linux/magic.h; spelled out so a fake tree in a temporary directory (tmpfs,
// ext4) is told apart from the real thing.
constexpr long kCgroupV1Magic = 0x27e0eb;
constexpr long kCgroupV2Magic = 0x63677270;

bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// Calls fn(entry) for each entry of dir; never throws, a directory that
// vanishes midway just ends the walk (cgroups and tasks come and go).
template <typename Fn>
void for_each_entry(const fs::path& dir, Fn fn) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) fn(*it);
}

fs::path resolve(std::string_view cgroup, const std::string& root) {
  if (cgroup.empty()) throw Error("--cgroup needs a cgroup path, e.g. /sys/fs/cgroup/pids/mygroup");
  fs::path given(cgroup);
  if (given.is_absolute()) {
    if (!path_exists(given)) throw Error("cgroup " + given.string() + " does not exist");
    return given.lexically_normal();
  }
  fs::path under_root = fs::path(root) / given;
  if (path_exists(under_root)) return under_root.lexically_normal();
  // "mygroup": look in every hierarchy (blkio, cpu, ..., unified).
  std::vector<fs::path> found;
  for_each_entry(root, [&](const fs::directory_entry& entry) {
    fs::path candidate = entry.path() / given;
    if (is_dir(candidate)) found.push_back(candidate.lexically_normal());
  });
  if (found.empty())
    throw Error("no cgroup '" + given.string() + "' under " + root + ": create it or give its full path");
  if (found.size() > 1) {
    std::sort(found.begin(), found.end());
    std::string list;
    for (const auto& f : found) list += (list.empty() ? "" : ", ") + f.string();
    throw Error("cgroup '" + given.string() + "' is in several hierarchies (" + list + "): give the full path");
  }
  return found.front();
}

void add_numbers(const std::optional<std::string>& text, std::vector<uint32_t>& out) {
  if (!text) return;
  for (std::string_view word : split_words(*text))
    if (auto n = parse_u64(word); n && *n <= UINT32_MAX) out.push_back(static_cast<uint32_t>(*n));
}

void sort_unique(std::vector<uint32_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

CgroupMembers::CgroupMembers(std::string_view cgroup, CgroupRoots roots) : roots_(std::move(roots)) {
  fs::path dir = resolve(cgroup, roots_.cgroup);
  path_ = dir.string();
  if (!is_dir(dir)) throw Error("cgroup " + path_ + " is not a directory");
  if (!path_exists(dir / "cgroup.procs"))
    throw Error(path_ + " is not a cgroup (no cgroup.procs in it); give a cgroup directory such as " +
                roots_.cgroup + "/pids/NAME");
  struct statfs fs_info{};
  bool known_fs = ::statfs(path_.c_str(), &fs_info) == 0 &&
                  (fs_info.f_type == kCgroupV1Magic || fs_info.f_type == kCgroupV2Magic);
  if (known_fs) {
    version_ = fs_info.f_type == kCgroupV2Magic ? Version::kV2 : Version::kV1;
  } else {
    // Not on a cgroup file system: a copy of a cgroup tree (the tests make
    // one). v1 directories have "tasks", v2 ones never do.
    version_ = path_exists(dir / "tasks") ? Version::kV1 : Version::kV2;
  }
  if (version_ == Version::kV2) {
    struct stat st{};
    if (::stat(path_.c_str(), &st) != 0) throw Error("cannot stat cgroup " + path_);
    v2_id_ = static_cast<uint64_t>(st.st_ino);
  }
}

CgroupMembers::Members CgroupMembers::list() const {
  Members members;
  ProcReader proc(roots_.proc);
  // Iterative walk: cgroup trees are shallow, but a stack of directories
  // keeps a deep one from costing recursion depth.
  std::vector<fs::path> pending{fs::path(path_)};
  bool top = true;
  while (!pending.empty()) {
    fs::path dir = std::move(pending.back());
    pending.pop_back();
    ProcReader files(dir.string());
    auto procs = files.read("cgroup.procs");
    if (!procs) {
      // Removed (top: the whole cgroup) or not a cgroup after all: skip.
      if (top) members.present = false;
      top = false;
      continue;
    }
    top = false;
    size_t first_new = members.tgids.size();
    add_numbers(procs, members.tgids);
    auto threads = files.read(version_ == Version::kV1 ? "tasks" : "cgroup.threads");
    if (threads) {
      add_numbers(threads, members.tids);
    } else {
      // v2 cgroup.threads can refuse reads (a "domain invalid" cgroup):
      // list each member process's threads from /proc instead.
      for (size_t i = first_new; i < members.tgids.size(); ++i) {
        fs::path task_dir = fs::path(proc.path_of(std::to_string(members.tgids[i]))) / "task";
        for_each_entry(task_dir, [&](const fs::directory_entry& entry) {
          if (auto tid = parse_u64(entry.path().filename().string()); tid && *tid <= UINT32_MAX)
            members.tids.push_back(static_cast<uint32_t>(*tid));
        });
      }
    }
    for_each_entry(dir, [&](const fs::directory_entry& entry) {
      std::error_code ec;
      if (!entry.is_symlink(ec) && entry.is_directory(ec)) pending.push_back(entry.path());
    });
  }
  sort_unique(members.tgids);
  sort_unique(members.tids);
  return members;
}

IdChanges id_changes(const std::vector<uint32_t>& before, const std::vector<uint32_t>& after) {
  IdChanges changes;
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(changes.added));
  std::set_difference(before.begin(), before.end(), after.begin(), after.end(), std::back_inserter(changes.removed));
  return changes;
}

}  // namespace stackwatch::load
