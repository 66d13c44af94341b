// CfiTable: one module's CFI compiled into sorted, non-overlapping CfiRows
// (cfi_row.h), looked up by binary search on the per-frame path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "unwinder/cfi_row.h"

namespace stackwatch::unwinder {

class CfiTable {
 public:
  CfiTable() = default;
  // Rows from the primary source (.eh_frame). May be unsorted.
  // Rows from a secondary source (.debug_frame) fill only the gaps the primary
  // leaves: where both describe an address, the primary wins.
  CfiTable(std::vector<CfiRow> primary, std::vector<CfiRow> secondary);

  // The row covering vaddr, or nullptr when the module has no CFI there.
  const CfiRow* find(uint64_t vaddr) const;

  const std::vector<CfiRow>& rows() const { return rows_; }
  size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<CfiRow> rows_;
};

}  // namespace stackwatch::unwinder
