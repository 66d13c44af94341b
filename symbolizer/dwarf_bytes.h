// Bounds-checked reads of DWARF's encodings from section bytes, shared by
// the line-table decoder (line_program.cpp) and the DIE reader
// (die_reader.cpp). Each advances p past what it read and returns false,
// leaving out unspecified, when the bytes end first. Fixed-size values are
// read in the host's byte order: both readers take only files of this
// machine's byte order.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

namespace stackwatch::symbolizer::dwarf_bytes {

// The two readers of nearly every byte are always inlined: GCC made them
// calls in the large loops that use them (the line-table decoder, the
// abbreviation parser).
// size bytes (1 to 8).
[[gnu::always_inline]] inline bool read_fixed(const uint8_t*& p, const uint8_t* end, unsigned size, uint64_t& out) {
  if (static_cast<size_t>(end - p) < size) return false;
  uint64_t value = 0;
  std::memcpy(&value, p, size);
  p += size;
  out = value;
  return true;
}

inline bool read_uleb_slow(const uint8_t*& p, const uint8_t* end, uint64_t& out) {
  uint64_t value = 0;
  unsigned shift = 0;
  while (p < end) {
    uint8_t byte = *p++;
    if (shift < 64) value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    shift += 7;
    if ((byte & 0x80) == 0) {
      out = value;
      return true;
    }
  }
  return false;
}

// Most values (codes, attribute names, forms, small constants) fit in one byte.
[[gnu::always_inline]] inline bool read_uleb(const uint8_t*& p, const uint8_t* end, uint64_t& out) {
  if (p < end && *p < 0x80) {
    out = *p++;
    return true;
  }
  return read_uleb_slow(p, end, out);
}

inline bool read_sleb(const uint8_t*& p, const uint8_t* end, int64_t& out) {
  uint64_t value = 0;
  unsigned shift = 0;
  while (p < end) {
    uint8_t byte = *p++;
    if (shift < 64) value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    shift += 7;
    if ((byte & 0x80) == 0) {
      if (shift < 64 && (byte & 0x40) != 0) value |= ~uint64_t{0} << shift;
      out = static_cast<int64_t>(value);
      return true;
    }
  }
  return false;
}

// A unit's (or set's) initial length: 4 bytes, or 0xffffffff and 8 for
// 64-bit DWARF (offset_size says which); the reserved values 0xfffffff0 to
// 0xfffffffe are refused. The length is not checked against end.
inline bool read_initial_length(const uint8_t*& p, const uint8_t* end, uint64_t& length, unsigned& offset_size) {
  if (!read_fixed(p, end, 4, length)) return false;
  offset_size = 4;
  if (length == 0xffffffff) {
    offset_size = 8;
    return read_fixed(p, end, 8, length);
  }
  return length < 0xfffffff0;
}

// The NUL-terminated string at offset in a string section (.debug_str,
// .debug_line_str). A section that ends in NUL (every one a linker wrote)
// terminates every string in it: no search then (a memchr per file name
// and per name was 1% of a cold libc batch).
inline bool string_at(std::span<const uint8_t> section, uint64_t offset, const char*& out) {
  if (offset >= section.size()) return false;
  const uint8_t* p = section.data() + offset;
  if (section.back() != 0 && std::memchr(p, 0, section.size() - offset) == nullptr) return false;
  out = reinterpret_cast<const char*>(p);
  return true;
}

inline bool read_cstring(const uint8_t*& p, const uint8_t* end, const char*& out) {
  const void* nul = std::memchr(p, 0, static_cast<size_t>(end - p));
  if (nul == nullptr) return false;
  out = reinterpret_cast<const char*>(p);
  p = static_cast<const uint8_t*>(nul) + 1;
  return true;
}

}  // namespace stackwatch::symbolizer::dwarf_bytes
