// gzip compression (zlib), for pprof files, which are gzipped by convention.
#pragma once

#include <string>
#include <string_view>

namespace stackwatch::flamegraph {

// A complete gzip member (header, deflate data, CRC). Throws stackwatch::Error
// if zlib fails (out of memory).
std::string gzip_compress(std::string_view data);

// Inverse of gzip_compress, for tests and for reading pprof files back.
std::string gzip_decompress(std::string_view data);

}  // namespace stackwatch::flamegraph
