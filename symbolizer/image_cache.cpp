// The inflated-image cache (see image_cache.h).
//
// File: a 4 KiB header (magic, the source file's identity, the image's
// size), then the image, page-aligned so it is mapped as it lies.
#include "symbolizer/image_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "symbolizer/private_files.h"

namespace stackwatch::symbolizer {
namespace {

// The image's layout is this program's (which sections, how placed): a new
// layout takes a new magic, and old images are simply not found.
constexpr char kMagic[8] = {'S', 'W', 'D', 'W', 'I', 'M', 'G', '1'};
constexpr size_t kHeaderBytes = 4096;

struct Header {
  char magic[8];
  uint64_t device;
  uint64_t inode;
  uint64_t size;
  int64_t mtime_s;
  int64_t mtime_ns;
  uint64_t image_bytes;
};

bool identify(int fd, Header& h) {
  struct stat st{};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.device = st.st_dev;
  h.inode = st.st_ino;
  h.size = static_cast<uint64_t>(st.st_size);
  h.mtime_s = st.st_mtim.tv_sec;
  h.mtime_ns = st.st_mtim.tv_nsec;
  h.image_bytes = 0;
  return true;
}

std::string path_for(const std::string& dir, const Header& h) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (uint64_t v : {h.device, h.inode, h.size, static_cast<uint64_t>(h.mtime_s), static_cast<uint64_t>(h.mtime_ns)})
    for (int i = 0; i < 8; ++i) hash = (hash ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ull;
  char name[40];
  std::snprintf(name, sizeof name, "/dwarf-%016llx.img", static_cast<unsigned long long>(hash));
  return dir + name;
}

// Deletes the least recently used images (by modification time: a hit
// touches its file) until those left and incoming bytes fit in max_bytes.
void make_room(const std::string& dir, uint64_t max_bytes, uint64_t incoming) {
  struct Entry {
    std::string path;
    uint64_t bytes;
    timespec used;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (!name.starts_with("dwarf-") || !name.ends_with(".img")) continue;
      std::string path = dir + "/" + e->d_name;
      struct stat st{};
      if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      entries.push_back({path, static_cast<uint64_t>(st.st_size), st.st_mtim});
      total += static_cast<uint64_t>(st.st_size);
    }
    ::closedir(d);
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.used.tv_sec != b.used.tv_sec ? a.used.tv_sec < b.used.tv_sec : a.used.tv_nsec < b.used.tv_nsec;
  });
  for (const Entry& e : entries) {
    if (total + incoming <= max_bytes) break;
    if (::unlink(e.path.c_str()) == 0) total -= e.bytes;
  }
}

}  // namespace

InflatedImage find_cached_image(const ImageCacheOptions& cache, int source_fd) {
  Header want{};
  if (cache.dir.empty() || !identify(source_fd, want) || !private_directory(cache.dir, false)) return {};
  int fd = ::open(path_for(cache.dir, want).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return {};
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st{};
  Header h{};
  if (fstat(fd, &st) != 0 || !private_to_us(st, S_IFREG) || static_cast<uint64_t>(st.st_size) < kHeaderBytes ||
      ::pread(fd, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h))
    return {};
  want.image_bytes = h.image_bytes;
  if (std::memcmp(&h, &want, sizeof h) != 0 || h.image_bytes == 0 ||
      h.image_bytes != static_cast<uint64_t>(st.st_size) - kHeaderBytes)
    return {};
  InflatedImage image = InflatedImage::map_file(fd, kHeaderBytes, h.image_bytes);
  if (image) ::futimens(fd, nullptr);  // used now: the last to go
  return image;
}

void cache_image(const ImageCacheOptions& cache, int source_fd, const InflatedImage& image) {
  Header h{};
  if (cache.dir.empty() || !image || image.size() + kHeaderBytes > cache.max_bytes || !identify(source_fd, h)) return;
  if (!private_directory(cache.dir, true)) return;
  h.image_bytes = image.size();
  make_room(cache.dir, cache.max_bytes, kHeaderBytes + image.size());
  std::string path = path_for(cache.dir, h);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return;
  std::vector<char> header(kHeaderBytes, 0);
  std::memcpy(header.data(), &h, sizeof h);
  bool ok = write_exact(fd, header.data(), header.size()) && write_exact(fd, image.data(), image.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) ::unlink(tmp.c_str());
}

}  // namespace stackwatch::symbolizer
