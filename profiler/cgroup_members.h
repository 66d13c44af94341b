// CgroupMembers: which processes and threads are in a cgroup, including its
// child cgroups, so `record --cgroup` can keep its BPF pid filter in sync
// (the record loop calls list() every ~100 ms; it reads two small files per
// cgroup: about 250 us for a cgroup of 230 threads on a 2-CPU VM).
//
// The cgroup is given as
//   an absolute directory   /sys/fs/cgroup/blkio/mygroup, /sys/fs/cgroup/unified/app
//   a path under the root   blkio/mygroup (root is /sys/fs/cgroup)
//   a path in a hierarchy   mygroup, when exactly one hierarchy under the root has it
// and must be a cgroup directory (it has cgroup.procs). On cgroup v2 it also
// has an id, the inode number of its directory, which is what BPF's
// bpf_get_current_cgroup_id() returns for tasks in it, so BPF can filter by
// cgroup there instead of by pid. v1 hierarchies have no such id.
//
// It only reads; it never creates, moves or removes cgroups.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stackwatch::load {

struct CgroupRoots {
  std::string cgroup = "/sys/fs/cgroup";  // where relative cgroup paths are looked up
  std::string proc = "/proc";             // for the threads of a process, when cgroup.threads fails
};

class CgroupMembers {
 public:
  enum class Version { kV1, kV2 };

  struct Members {
    std::vector<uint32_t> tgids;  // sorted, unique
    std::vector<uint32_t> tids;   // sorted, unique; every thread of every member process
    bool present = true;          // false when the cgroup has been removed since
  };

  // Resolves and validates the path. Throws stackwatch::Error when it does not
  // exist, is ambiguous, or is not a cgroup directory.
  explicit CgroupMembers(std::string_view cgroup, CgroupRoots roots = {});

  // Members of the cgroup and of all cgroups below it, now. Never throws: a
  // cgroup removed meanwhile gives present=false, a child removed mid-walk is
  // skipped (this runs every ~100 ms in the record loop).
  Members list() const;

  const std::string& path() const { return path_; }  // resolved directory
  Version version() const { return version_; }
  // The cgroup v2 id (directory inode); nullopt on v1.
  std::optional<uint64_t> v2_id() const { return v2_id_; }

 private:
  std::string path_;
  CgroupRoots roots_;
  Version version_ = Version::kV1;
  std::optional<uint64_t> v2_id_;
};

// What changed between two sorted id lists (two list() calls), so the pid
// filter map gets only the updates: ids to insert and ids to delete.
struct IdChanges {
  std::vector<uint32_t> added;
  std::vector<uint32_t> removed;
};
IdChanges id_changes(const std::vector<uint32_t>& before, const std::vector<uint32_t>& after);

}  // namespace stackwatch::load
