// CgroupMembers: path resolution and validation messages, members of a fake
// v1 and v2 tree (recursive, deduplicated, sorted), a removed cgroup, and
// (as root) real v1 and v2 cgroups with real processes moved into them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "load_temp_dir.h"
#include "profiler/cgroup_members.h"
#include "recording/error.h"

namespace stackwatch::load {
namespace {

using testing::TempDir;
using Version = CgroupMembers::Version;
using Ids = std::vector<uint32_t>;

std::string error_of(std::string_view cgroup, const CgroupRoots& roots) {
  try {
    CgroupMembers members(cgroup, roots);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A v1 machine in miniature: blkio/mygroup with a child and a grandchild,
// cpu/ and pids/ both holding "shared", and a directory that is no cgroup.
class FakeCgroupTree : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_.write("cg/blkio/cgroup.procs", "1\n100\n200\n300\n");
    tree_.write("cg/blkio/tasks", "1\n100\n101\n200\n300\n301\n");
    tree_.write("cg/blkio/mygroup/cgroup.procs", "100\n200\n100\n");  // v1 may repeat
    tree_.write("cg/blkio/mygroup/tasks", "200\n100\n101\n");
    tree_.write("cg/blkio/mygroup/blkio.throttle.write_iops_device", "254:0 20\n");
    tree_.write("cg/blkio/mygroup/child/cgroup.procs", "300\n");
    tree_.write("cg/blkio/mygroup/child/tasks", "300\n301\n");
    tree_.write("cg/blkio/mygroup/child/grand/cgroup.procs", "");
    tree_.write("cg/blkio/mygroup/child/grand/tasks", "");
    tree_.write("cg/cpu/shared/cgroup.procs", "");
    tree_.write("cg/cpu/shared/tasks", "");
    tree_.write("cg/pids/shared/cgroup.procs", "");
    tree_.write("cg/pids/shared/tasks", "");
    tree_.write("cg/pids/notacgroup/readme", "x");
    roots_.cgroup = tree_.str() + "/cg";
    roots_.proc = tree_.str() + "/proc";
  }
  TempDir tree_;
  CgroupRoots roots_;
};

TEST_F(FakeCgroupTree, ListsMembersRecursivelySortedAndUnique) {
  CgroupMembers cg(roots_.cgroup + "/blkio/mygroup", roots_);
  EXPECT_EQ(cg.version(), Version::kV1);
  EXPECT_FALSE(cg.v2_id());
  auto m = cg.list();
  EXPECT_TRUE(m.present);
  EXPECT_EQ(m.tgids, (Ids{100, 200, 300}));
  EXPECT_EQ(m.tids, (Ids{100, 101, 200, 300, 301}));
  CgroupMembers child(roots_.cgroup + "/blkio/mygroup/child", roots_);
  EXPECT_EQ(child.list().tgids, (Ids{300}));
  EXPECT_EQ(child.list().tids, (Ids{300, 301}));
}

TEST_F(FakeCgroupTree, FollowsMembershipChanges) {
  CgroupMembers cg("blkio/mygroup", roots_);
  tree_.write("cg/blkio/mygroup/child/grand/cgroup.procs", "400\n");
  tree_.write("cg/blkio/mygroup/child/grand/tasks", "400\n");
  tree_.write("cg/blkio/mygroup/cgroup.procs", "200\n");
  tree_.write("cg/blkio/mygroup/tasks", "200\n");
  auto m = cg.list();
  EXPECT_EQ(m.tgids, (Ids{200, 300, 400}));
  EXPECT_EQ(m.tids, (Ids{200, 300, 301, 400}));
}

TEST_F(FakeCgroupTree, ResolvesAbsoluteRelativeAndBareNames) {
  std::string expected = roots_.cgroup + "/blkio/mygroup";
  EXPECT_EQ(CgroupMembers(expected, roots_).path(), expected);
  EXPECT_EQ(CgroupMembers(expected + "/", roots_).path(), expected + "/");
  EXPECT_EQ(CgroupMembers("blkio/mygroup", roots_).path(), expected);
  EXPECT_EQ(CgroupMembers("mygroup", roots_).path(), expected);  // only blkio has it
  EXPECT_EQ(CgroupMembers("mygroup/child", roots_).path(), expected + "/child");
}

TEST_F(FakeCgroupTree, SaysWhatIsWrongWithABadPath) {
  EXPECT_EQ(error_of(roots_.cgroup + "/blkio/nosuch", roots_),
            "cgroup " + roots_.cgroup + "/blkio/nosuch does not exist");
  EXPECT_EQ(error_of("nosuch", roots_),
            "no cgroup 'nosuch' under " + roots_.cgroup + ": create it or give its full path");
  EXPECT_EQ(error_of("shared", roots_), "cgroup 'shared' is in several hierarchies (" + roots_.cgroup +
                                            "/cpu/shared, " + roots_.cgroup + "/pids/shared): give the full path");
  EXPECT_EQ(error_of("pids/notacgroup", roots_),
            roots_.cgroup + "/pids/notacgroup is not a cgroup (no cgroup.procs in it); give a cgroup directory such as " +
                roots_.cgroup + "/pids/NAME");
  EXPECT_EQ(error_of("blkio/mygroup/blkio.throttle.write_iops_device", roots_),
            "cgroup " + roots_.cgroup + "/blkio/mygroup/blkio.throttle.write_iops_device is not a directory");
  EXPECT_EQ(error_of("", roots_), "--cgroup needs a cgroup path, e.g. /sys/fs/cgroup/pids/mygroup");
}

TEST_F(FakeCgroupTree, RemovedCgroupIsNotPresentAndNotAnError) {
  CgroupMembers cg("blkio/mygroup/child", roots_);
  std::filesystem::remove_all(tree_.path() / "cg/blkio/mygroup/child");
  auto m = cg.list();
  EXPECT_FALSE(m.present);
  EXPECT_TRUE(m.tgids.empty());
  EXPECT_TRUE(m.tids.empty());
}

TEST(FakeCgroupV2, ThreadsFromCgroupThreadsAndIdIsTheDirectoryInode) {
  TempDir tree;
  tree.write("cg/unified/app/cgroup.controllers", "");
  tree.write("cg/unified/app/cgroup.procs", "500\n");
  tree.write("cg/unified/app/cgroup.threads", "500\n501\n");
  tree.write("cg/unified/app/worker/cgroup.controllers", "");
  tree.write("cg/unified/app/worker/cgroup.procs", "600\n");
  tree.write("cg/unified/app/worker/cgroup.threads", "600\n");
  CgroupRoots roots{tree.str() + "/cg", tree.str() + "/proc"};
  CgroupMembers cg("unified/app", roots);
  EXPECT_EQ(cg.version(), Version::kV2);
  struct stat st{};
  ASSERT_EQ(::stat((tree.path() / "cg/unified/app").c_str(), &st), 0);
  ASSERT_TRUE(cg.v2_id());
  EXPECT_EQ(*cg.v2_id(), static_cast<uint64_t>(st.st_ino));
  auto m = cg.list();
  EXPECT_EQ(m.tgids, (Ids{500, 600}));
  EXPECT_EQ(m.tids, (Ids{500, 501, 600}));
}

TEST(FakeCgroupV2, ThreadsFromProcWhenCgroupThreadsIsUnreadable) {
  TempDir tree;
  tree.write("cg/unified/app/cgroup.controllers", "");
  tree.write("cg/unified/app/cgroup.procs", "700\n");
  tree.write("proc/700/task/700/stat", "");
  tree.write("proc/700/task/702/stat", "");
  tree.write("proc/700/task/701/stat", "");
  CgroupMembers cg("unified/app", {tree.str() + "/cg", tree.str() + "/proc"});
  auto m = cg.list();
  EXPECT_EQ(m.tgids, (Ids{700}));
  EXPECT_EQ(m.tids, (Ids{700, 701, 702}));
}

TEST(IdChanges, AddedAndRemovedBetweenTwoLists) {
  auto c = id_changes(Ids{1, 2, 5, 9}, Ids{2, 3, 9, 10});
  EXPECT_EQ(c.added, (Ids{3, 10}));
  EXPECT_EQ(c.removed, (Ids{1, 5}));
  EXPECT_TRUE(id_changes(Ids{4}, Ids{4}).added.empty());
  EXPECT_EQ(id_changes(Ids{}, Ids{7}).added, (Ids{7}));
}

// A child process with two threads, parked until killed; killed and reaped
// (so its cgroup can be removed) when this goes out of scope.
class ParkedChild {
 public:
  ParkedChild() {
    int ready[2];
    if (pipe(ready) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(ready[0]);
      std::thread second([] { pause(); });
      second.detach();
      // Wait until the second thread exists in /proc before saying ready.
      while (std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                           std::filesystem::directory_iterator()) < 2)
        usleep(1000);
      char c = 'r';
      (void)!write(ready[1], &c, 1);
      for (;;) pause();
    }
    close(ready[1]);
    char c = 0;
    (void)!read(ready[0], &c, 1);
    close(ready[0]);
  }
  ~ParkedChild() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  Ids tids() const {
    Ids ids;
    for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task"))
      ids.push_back(static_cast<uint32_t>(std::stoul(e.path().filename().string())));
    std::sort(ids.begin(), ids.end());
    return ids;
  }

 private:
  pid_t pid_ = -1;
};

// Makes a real cgroup directory and removes it (and its children) after.
class RealCgroup {
 public:
  explicit RealCgroup(std::filesystem::path path) : path_(std::move(path)) { made_ = ::mkdir(path_.c_str(), 0755) == 0; }
  ~RealCgroup() {
    if (made_) ::rmdir(path_.c_str());
  }
  bool made() const { return made_; }
  const std::filesystem::path& path() const { return path_; }
  bool move_in(pid_t pid) const {
    int fd = ::open((path_ / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    std::string text = std::to_string(pid);
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    return ok;
  }

 private:
  std::filesystem::path path_;
  bool made_ = false;
};

TEST(RealCgroupV1, ListsProcessesMovedIntoItAndItsChild) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
  std::string name = "sw_test_" + std::to_string(getpid());
  // The children live in an inner scope: they are killed and reaped before
  // the cgroups are removed (a cgroup with members cannot be), and inner
  // goes before top (declared after it).
  RealCgroup top("/sys/fs/cgroup/pids/" + name);
  ASSERT_TRUE(top.made()) << "cannot create " << top.path() << ": " << strerror(errno);
  RealCgroup inner(top.path() / "inner");
  ASSERT_TRUE(inner.made());
  {
    ParkedChild a, b;
    ASSERT_GT(a.pid(), 0);
    ASSERT_GT(b.pid(), 0);
    ASSERT_TRUE(top.move_in(a.pid()));
    ASSERT_TRUE(inner.move_in(b.pid()));

    CgroupMembers cg("pids/" + name);
    EXPECT_EQ(cg.path(), top.path().string());
    EXPECT_EQ(cg.version(), Version::kV1);
    EXPECT_FALSE(cg.v2_id());
    auto m = cg.list();
    EXPECT_TRUE(m.present);
    Ids tgids{static_cast<uint32_t>(a.pid()), static_cast<uint32_t>(b.pid())};
    std::sort(tgids.begin(), tgids.end());
    EXPECT_EQ(m.tgids, tgids);
    Ids tids = a.tids();
    for (uint32_t t : b.tids()) tids.push_back(t);
    std::sort(tids.begin(), tids.end());
    EXPECT_EQ(tids.size(), 4u);  // two threads each
    EXPECT_EQ(m.tids, tids);
    EXPECT_EQ(std::count(m.tgids.begin(), m.tgids.end(), static_cast<uint32_t>(getpid())), 0);
  }
  // Both children are reaped: the cgroup is empty again.
  CgroupMembers cg(top.path().string());
  EXPECT_TRUE(cg.list().tgids.empty());
}

TEST(RealCgroupV2, IdIsTheDirectoryInodeAndMembersAreListed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
  std::filesystem::path unified = "/sys/fs/cgroup/unified";
  if (!std::filesystem::exists(unified / "cgroup.procs")) GTEST_SKIP() << "no cgroup v2 hierarchy at " << unified;
  RealCgroup cgroup(unified / ("sw_test_" + std::to_string(getpid())));
  ASSERT_TRUE(cgroup.made()) << strerror(errno);
  ParkedChild child;
  ASSERT_TRUE(cgroup.move_in(child.pid()));
  CgroupMembers cg(cgroup.path().string());
  EXPECT_EQ(cg.version(), Version::kV2);
  // The kernel's cgroup id, as bpf_get_current_cgroup_id() returns it, is
  // what name_to_handle_at gives for a cgroup2 directory.
  alignas(file_handle) unsigned char buffer[sizeof(file_handle) + sizeof(uint64_t)] = {};
  auto* handle = reinterpret_cast<file_handle*>(buffer);
  handle->handle_bytes = sizeof(uint64_t);
  int mount_id = 0;
  ASSERT_EQ(name_to_handle_at(AT_FDCWD, cgroup.path().c_str(), handle, &mount_id, 0), 0) << strerror(errno);
  uint64_t kernel_id = 0;
  std::memcpy(&kernel_id, handle->f_handle, sizeof kernel_id);
  ASSERT_TRUE(cg.v2_id());
  EXPECT_EQ(*cg.v2_id(), kernel_id);
  auto m = cg.list();
  EXPECT_EQ(m.tgids, (Ids{static_cast<uint32_t>(child.pid())}));
  EXPECT_EQ(m.tids, child.tids());
}

}  // namespace
}  // namespace stackwatch::load
