// Sorting, de-overlapping and merging of compiled CFI rows.
#include "unwinder/cfi_table.h"

#include <algorithm>

namespace stackwatch::unwinder {
namespace {

void sort_by_start(std::vector<CfiRow>& rows) {
  std::sort(rows.begin(), rows.end(),
            [](const CfiRow& a, const CfiRow& b) { return a.start < b.start; });
}

// Drops empty rows and trims overlaps (broken or duplicated FDEs exist in
// the wild); the earlier row keeps the contested bytes.
std::vector<CfiRow> without_overlaps(std::vector<CfiRow> rows) {
  sort_by_start(rows);
  std::vector<CfiRow> out;
  out.reserve(rows.size());
  for (CfiRow row : rows) {
    if (row.length == 0) continue;
    if (!out.empty() && row.start < out.back().end()) {
      uint64_t covered = out.back().end();
      if (row.end() <= covered) continue;
      row.length = static_cast<uint32_t>(row.end() - covered);
      row.start = covered;
    }
    out.push_back(row);
  }
  return out;
}

}  // namespace

CfiTable::CfiTable(std::vector<CfiRow> primary, std::vector<CfiRow> secondary) {
  std::vector<CfiRow> rows = without_overlaps(std::move(primary));
  if (!secondary.empty()) {
    CfiTable first;
    first.rows_ = rows;
    for (const CfiRow& row : without_overlaps(std::move(secondary))) {
      // Keep a secondary row only where the primary says nothing at all: a
      // partial overlap means both describe the same function, and mixing
      // two descriptions of one function is worse than using one.
      auto it = std::lower_bound(first.rows_.begin(), first.rows_.end(), row.end(),
                                 [](const CfiRow& r, uint64_t end) { return r.start < end; });
      bool overlaps = it != first.rows_.begin() && std::prev(it)->end() > row.start;
      if (!overlaps) rows.push_back(row);
    }
    sort_by_start(rows);
  }
  // Merge adjacent rows with the same rules: fewer rows, shorter searches.
  rows_.reserve(rows.size());
  for (const CfiRow& row : rows) {
    if (!rows_.empty()) {
      CfiRow& last = rows_.back();
      uint64_t merged = row.end() - last.start;
      if (last.end() == row.start && last.same_rules(row) && merged <= UINT32_MAX) {
        last.length = static_cast<uint32_t>(merged);
        continue;
      }
    }
    rows_.push_back(row);
  }
  rows_.shrink_to_fit();
}

const CfiRow* CfiTable::find(uint64_t vaddr) const {
  auto it = std::upper_bound(rows_.begin(), rows_.end(), vaddr,
                             [](uint64_t a, const CfiRow& r) { return a < r.start; });
  if (it == rows_.begin()) return nullptr;
  --it;
  return vaddr < it->end() ? &*it : nullptr;
}

}  // namespace stackwatch::unwinder
