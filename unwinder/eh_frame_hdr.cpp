// Reader for the .eh_frame_hdr binary search table (LSB "Exception Frame
// Header"): version, three encodings, eh_frame_ptr, fde_count, then
// fde_count pairs (initial location, FDE address).
#include "unwinder/eh_frame_hdr.h"

#include <dwarf.h>

#include <cstring>
#include <optional>

namespace stackwatch::unwinder {
namespace {

class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, uint64_t vaddr) : bytes_(bytes), vaddr_(vaddr) {}

  // One pointer in encoding enc; datarel is relative to the header's start.
  std::optional<uint64_t> pointer(uint8_t enc) {
    if (enc == DW_EH_PE_omit) return std::nullopt;
    uint64_t field_vaddr = vaddr_ + pos_;
    uint64_t value = 0;
    switch (enc & 0x0f) {
      case DW_EH_PE_udata4: value = fixed<uint32_t>(); break;
      case DW_EH_PE_sdata4: value = static_cast<uint64_t>(static_cast<int64_t>(fixed<int32_t>())); break;
      case DW_EH_PE_udata8:
      case DW_EH_PE_sdata8:
      case DW_EH_PE_absptr: value = fixed<uint64_t>(); break;
      case DW_EH_PE_udata2: value = fixed<uint16_t>(); break;
      case DW_EH_PE_sdata2: value = static_cast<uint64_t>(static_cast<int64_t>(fixed<int16_t>())); break;
      default: return std::nullopt;  // leb128 is not used in headers
    }
    if (!ok_) return std::nullopt;
    switch (enc & 0x70) {
      case DW_EH_PE_absptr: return value;
      case DW_EH_PE_pcrel: return value + field_vaddr;
      case DW_EH_PE_datarel: return value + vaddr_;
      default: return std::nullopt;
    }
  }

  uint8_t byte() { return fixed<uint8_t>(); }
  bool ok() const { return ok_; }

 private:
  template <typename T>
  T fixed() {
    T v{};
    if (pos_ + sizeof(T) > bytes_.size()) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::span<const uint8_t> bytes_;
  uint64_t vaddr_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

std::vector<uint64_t> eh_frame_hdr_fde_starts(std::span<const uint8_t> hdr, uint64_t hdr_vaddr) {
  std::vector<uint64_t> starts;
  Reader reader(hdr, hdr_vaddr);
  uint8_t version = reader.byte();
  uint8_t eh_frame_ptr_enc = reader.byte();
  uint8_t fde_count_enc = reader.byte();
  uint8_t table_enc = reader.byte();
  if (!reader.ok() || version != 1) return starts;
  if (!reader.pointer(eh_frame_ptr_enc)) return starts;
  std::optional<uint64_t> count = reader.pointer(fde_count_enc);
  if (!count || table_enc == DW_EH_PE_omit) return starts;
  // Each entry is at least 2 * 2 bytes: bound the count by the header size.
  if (*count > hdr.size() / 4) return starts;
  starts.reserve(*count);
  for (uint64_t i = 0; i < *count; ++i) {
    std::optional<uint64_t> location = reader.pointer(table_enc);
    std::optional<uint64_t> fde = reader.pointer(table_enc);
    if (!location || !fde) break;
    starts.push_back(*location);
  }
  return starts;
}

}  // namespace stackwatch::unwinder
