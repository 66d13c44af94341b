// Inflated DWARF images kept across runs. Inflating libc's compressed debug
// file (libc6-dbg) costs every recording ~12 ms of libdeflate plus the
// zeroing of 8.6 MB of fresh pages (1 to 28 ms in this VM, where a guest
// page's first touch can fault to the host): the largest part of a 49 Hz
// recording's own CPU. The image depends only on the file, so the first
// recording that inflates it writes it to the cache directory and later
// ones map it: page-cache pages, shared, read from disk at most once, and
// only the pages lookups touch become resident.
//
// A cached image answers only for the same file: its device, inode, size
// and modification time are in the image's header (a package upgrade
// writes a new file). The directory and its files must be this user's
// alone (0700 and 0600), or they are not used, as with the kernel symbol
// cache. Past max_bytes the least recently used images are deleted.
#pragma once

#include <cstdint>
#include <string>

#include "symbolizer/inflated_image.h"

namespace stackwatch::symbolizer {

struct ImageCacheOptions {
  std::string dir;                        // "" = no cache
  uint64_t max_bytes = uint64_t{512} << 20;  // all images in dir together
};

// The image cached for the file open at source_fd, mapped; an empty one when
// there is none (or it is not ours, not this file's, or damaged).
InflatedImage find_cached_image(const ImageCacheOptions& cache, int source_fd);

// Writes image to the cache for the file open at source_fd (written to a
// temporary name and renamed: readers see a whole file or none), first
// deleting the least recently used images past max_bytes. Failures leave
// no cache and are not errors.
void cache_image(const ImageCacheOptions& cache, int source_fd, const InflatedImage& image);

}  // namespace stackwatch::symbolizer
