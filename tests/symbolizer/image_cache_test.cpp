// The inflated-image cache (image_cache.h): a later run maps the image an
// earlier one inflated, answers exactly as inflating would, and only for the
// same file; damaged, foreign or others' images are not used; past its
// bound the least recently used images go.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "symbolizer/elf_file.h"
#include "symbolizer/image_cache.h"
#include "symbolizer/symbolizer.h"
#include "same_frames.h"
#include "test_support.h"

namespace stackwatch::symbolizer {
namespace {

namespace fs = std::filesystem;

class ImageCache : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("image-cache-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    cache_.dir = (dir_ / "cache").string();
    // A copy of the -gz fixture: a file of the test's own to change.
    source_ = (dir_ / "symfix_compressed").string();
    fs::copy_file(testing::fixture_bin("symfix_compressed"), source_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<fs::path> images() const {
    std::vector<fs::path> found;
    if (fs::exists(cache_.dir))
      for (const auto& e : fs::directory_iterator(cache_.dir))
        if (e.path().filename().string().starts_with("dwarf-")) found.push_back(e.path());
    return found;
  }
  bool opens_from_cache(const std::string& path) const {
    auto view = ElfFile::open_path(path)->open_for_dwarf(cache_);
    return view != nullptr && view->image_from_cache();
  }

  fs::path dir_;
  std::string source_;
  ImageCacheOptions cache_;
};

TEST_F(ImageCache, ALaterOpenMapsTheImageAndAnswersAsInflatingDoes) {
  EXPECT_FALSE(opens_from_cache(source_));  // inflated, and kept
  ASSERT_EQ(images().size(), 1u);
  struct stat st{};
  ASSERT_EQ(stat(images()[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(cache_.dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(opens_from_cache(source_));

  Options cached, uncached;
  cached.image_cache_dir = cache_.dir;
  uncached.image_cache_dir = "";
  Symbolizer a(cached), b(uncached);
  auto compared = testing::expect_same_frames(a, source_, b, source_, {"outer_entry", "shared_work", "main"});
  EXPECT_GT(compared.addresses, 50u);
  EXPECT_GT(compared.inlined, 0u);
  EXPECT_EQ(images().size(), 1u);  // the uncached one wrote nothing
}

// Pages of [base, base + size) mapped in this process now (pagemap's
// present bit), and a checksum of the bytes.
size_t present_pages(const char* base, size_t size) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  int fd = open("/proc/self/pagemap", O_RDONLY);
  if (fd < 0) return 0;
  size_t present = 0;
  for (uintptr_t at = reinterpret_cast<uintptr_t>(base) & ~(page - 1); at < reinterpret_cast<uintptr_t>(base) + size;
       at += page) {
    uint64_t entry = 0;
    if (pread(fd, &entry, 8, static_cast<off_t>(at / page * 8)) == 8 && (entry >> 63) != 0) ++present;
  }
  close(fd);
  return present;
}

uint64_t checksum(const char* base, size_t size) {
  uint64_t sum = 0;
  for (size_t i = 0; i < size; ++i) sum = sum * 31 + static_cast<unsigned char>(base[i]);
  return sum;
}

// After the DWARF index lists an image's units, its pages leave the
// resident set (they stay in the page cache) and read back the same; an
// image of this process's own (inflated on the heap: nothing to read them
// back from) is kept whole.
TEST_F(ImageCache, AMappedImagesPagesLeaveTheResidentSetAndReadBackTheSame) {
  EXPECT_FALSE(opens_from_cache(source_));
  auto file = ElfFile::open_path(source_);
  auto view = file->open_for_dwarf(cache_);
  ASSERT_TRUE(view && view->image_from_cache());
  size_t size = 0;
  const char* base = elf_rawfile(view->elf(), &size);
  ASSERT_NE(base, nullptr);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  ASSERT_GT(size, 4 * page) << "a fixture of a few pages at least";
  uint64_t before = checksum(base, size);  // every page read: resident
  size_t resident = present_pages(base, size);
  EXPECT_GE(resident, size / page);
  size_t released = release_file_pages(view->elf());
  EXPECT_GE(released, (size / page - 2) * page) << "all but the partial first and last pages";
  EXPECT_LE(present_pages(base, size), 2u);
  EXPECT_EQ(checksum(base, size), before);

  ImageCacheOptions none;
  none.dir = "";
  auto heap = file->open_for_dwarf(none);
  ASSERT_TRUE(heap && !heap->image_from_cache());
  base = elf_rawfile(heap->elf(), &size);
  ASSERT_NE(base, nullptr);
  before = checksum(base, size);
  EXPECT_EQ(release_file_pages(heap->elf()), 0u);
  EXPECT_GE(present_pages(base, size), size / page) << "still all there";
  EXPECT_EQ(checksum(base, size), before);
}

TEST_F(ImageCache, AChangedFileIsNotServedAnOldImage) {
  EXPECT_FALSE(opens_from_cache(source_));
  EXPECT_TRUE(opens_from_cache(source_));
  timespec times[2] = {{0, UTIME_OMIT}, {1234567, 0}};  // a new modification time
  ASSERT_EQ(utimensat(AT_FDCWD, source_.c_str(), times, 0), 0);
  EXPECT_FALSE(opens_from_cache(source_));
  EXPECT_TRUE(opens_from_cache(source_));  // its own image now
}

TEST_F(ImageCache, ADamagedOrSharedImageIsNotUsedAndIsWrittenAfresh) {
  EXPECT_FALSE(opens_from_cache(source_));
  fs::path image = images().at(0);
  ASSERT_EQ(chmod(image.c_str(), 0644), 0);  // others could read it
  EXPECT_FALSE(opens_from_cache(source_));
  EXPECT_TRUE(opens_from_cache(source_));
  fs::resize_file(image, fs::file_size(image) - 1);  // truncated
  EXPECT_FALSE(opens_from_cache(source_));
  EXPECT_TRUE(opens_from_cache(source_));
  {
    std::fstream f(image, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);
    f.write("\xff\xff\xff\xff", 4);  // another file's identity
  }
  EXPECT_FALSE(opens_from_cache(source_));
  EXPECT_TRUE(opens_from_cache(source_));
  // A directory others can write to is neither used nor written.
  ASSERT_EQ(chmod(cache_.dir.c_str(), 0777), 0);
  EXPECT_FALSE(opens_from_cache(source_));
  fs::remove(image);
  EXPECT_FALSE(opens_from_cache(source_));
  EXPECT_TRUE(images().empty());
}

TEST_F(ImageCache, PastItsBoundTheLeastRecentlyUsedImageGoes) {
  std::string other = (dir_ / "other").string(), third = (dir_ / "third").string();
  fs::copy_file(source_, other);
  fs::copy_file(source_, third);
  EXPECT_FALSE(opens_from_cache(source_));
  const uint64_t one = fs::file_size(images().at(0));
  cache_.max_bytes = 2 * one + one / 2;  // room for two
  usleep(20000);  // distinct modification times
  EXPECT_FALSE(opens_from_cache(other));
  usleep(20000);
  EXPECT_TRUE(opens_from_cache(source_));  // used again: other is now the older
  usleep(20000);
  EXPECT_FALSE(opens_from_cache(third));
  EXPECT_EQ(images().size(), 2u);
  EXPECT_TRUE(opens_from_cache(source_));
  EXPECT_TRUE(opens_from_cache(third));
  EXPECT_FALSE(opens_from_cache(other));  // the one that went
  // An image larger than the whole bound is not kept at all.
  cache_.max_bytes = one / 2;
  fs::remove_all(cache_.dir);
  EXPECT_FALSE(opens_from_cache(source_));
  EXPECT_TRUE(images().empty());
}

}  // namespace
}  // namespace stackwatch::symbolizer
