// Atomic writes: the target is replaced whole, permissions are safe, a planted
// symlink is replaced rather than followed, and failure leaves the old file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "recording/atomic_file.h"
#include "recording/error.h"

namespace fs = std::filesystem;

namespace stackwatch {
namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sw_atomic_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(AtomicFile, ReplacesContentsAndLeavesNoTemporaries) {
  auto p = dir_ / "stacks.json";
  write_file_atomically(p, "first");
  write_file_atomically(p, "second");
  EXPECT_EQ(slurp(p), "second");
  int files = 0;
  for (auto& e : fs::directory_iterator(dir_)) (void)e, ++files;
  EXPECT_EQ(files, 1);
  struct stat st{};
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(AtomicFile, DoesNotFollowAPlantedSymlink) {
  auto victim = dir_ / "victim";
  { std::ofstream(victim) << "precious"; }
  auto p = dir_ / "oncpu.folded";
  fs::create_symlink(victim, p);
  write_file_atomically(p, "data");
  EXPECT_EQ(slurp(victim), "precious");
  EXPECT_FALSE(fs::is_symlink(p));
  EXPECT_EQ(slurp(p), "data");
}

TEST_F(AtomicFile, FailureNamesThePathAndKeepsTheOldFile) {
  auto p = dir_ / "missing_dir" / "x";
  try {
    write_file_atomically(p, "data");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing_dir"), std::string::npos);
  }
}

TEST_F(AtomicFile, StreamedPiecesReplaceTheFileOnlyOnCommit) {
  auto p = dir_ / "stacks.json";
  write_file_atomically(p, "old");
  std::string big(200 * 1024, 'x');  // larger than the writer's buffer
  {
    AtomicFileWriter file(p);
    file.write("{");
    file.put('[');
    file.write(big);
    file.write("]}");
    EXPECT_EQ(slurp(p), "old");  // nothing visible before commit
    file.commit();
  }
  EXPECT_EQ(slurp(p), "{[" + big + "]}");
  {
    AtomicFileWriter abandoned(p);
    abandoned.write(big);  // then an exception, say: never committed
  }
  EXPECT_EQ(slurp(p), "{[" + big + "]}");
  int files = 0;
  for (auto& e : fs::directory_iterator(dir_)) (void)e, ++files;
  EXPECT_EQ(files, 1);  // the abandoned temporary file is gone
}

}  // namespace
}  // namespace stackwatch
