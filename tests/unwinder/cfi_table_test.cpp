// CfiTable lookups and merging on synthetic rows; the .eh_frame_hdr reader on
// a hand-built header; and the compiled rows of real modules: the fixture's
// PLT expression and glibc's signal trampoline.
#include <fcntl.h>

#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "unwinder/cfi_table.h"
#include "unwinder/eh_frame_hdr.h"
#include "unwinder/elf_file.h"
#include "unwinder/module_cfi.h"

namespace stackwatch::unwinder {
namespace {

CfiRow row(uint64_t start, uint32_t length, int32_t cfa_offset) {
  CfiRow r;
  r.start = start;
  r.length = length;
  r.cfa_rule = CfaRule::kRegOffset;
  r.cfa_reg = kDwarfRsp;
  r.cfa_offset = cfa_offset;
  r.ra_rule = RegRule::kAtCfa;
  r.ra_offset = -8;
  return r;
}

TEST(UnwinderCfiTable, FindsCoveringRowAndNothingInGaps) {
  CfiTable table({row(0x1010, 0x10, 16), row(0x1000, 0x10, 8), row(0x1040, 4, 8)}, {});
  ASSERT_EQ(table.size(), 3u);
  EXPECT_EQ(table.find(0xfff), nullptr);
  EXPECT_EQ(table.find(0x1000)->cfa_offset, 8);
  EXPECT_EQ(table.find(0x100f)->cfa_offset, 8);
  EXPECT_EQ(table.find(0x1010)->cfa_offset, 16);
  EXPECT_EQ(table.find(0x101f)->cfa_offset, 16);
  EXPECT_EQ(table.find(0x1020), nullptr);  // gap between FDEs
  EXPECT_EQ(table.find(0x1043)->start, 0x1040u);
  EXPECT_EQ(table.find(0x1044), nullptr);
}

TEST(UnwinderCfiTable, MergesAdjacentEqualRows) {
  CfiTable table({row(0x1000, 4, 8), row(0x1004, 4, 8), row(0x1008, 4, 16)}, {});
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table.rows()[0].start, 0x1000u);
  EXPECT_EQ(table.rows()[0].length, 8u);
}

TEST(UnwinderCfiTable, SecondarySourceOnlyFillsGaps) {
  // .debug_frame describes 0x1000 differently (ignored: .eh_frame wins), and
  // 0x2000 which .eh_frame lacks (taken).
  CfiTable table({row(0x1000, 0x20, 8)}, {row(0x1010, 0x20, 24), row(0x2000, 0x10, 24)});
  EXPECT_EQ(table.find(0x1018)->cfa_offset, 8);
  EXPECT_EQ(table.find(0x1028), nullptr);
  ASSERT_NE(table.find(0x2008), nullptr);
  EXPECT_EQ(table.find(0x2008)->cfa_offset, 24);
}

TEST(UnwinderCfiTable, OverlappingRowsAreTrimmed) {
  CfiTable table({row(0x1000, 0x20, 8), row(0x1010, 0x20, 16)}, {});
  EXPECT_EQ(table.find(0x101f)->cfa_offset, 8);
  EXPECT_EQ(table.find(0x1020)->cfa_offset, 16);
  EXPECT_EQ(table.find(0x1030), nullptr);
}

TEST(UnwinderEhFrameHdr, ReadsDatarelSdata4Table) {
  // version 1, eh_frame_ptr pcrel|sdata4, fde_count udata4, table datarel|sdata4.
  std::vector<uint8_t> hdr = {1, 0x1b, 0x03, 0x3b};
  auto put = [&](int32_t v) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    hdr.insert(hdr.end(), b, b + 4);
  };
  put(0x100);  // eh_frame_ptr
  put(2);      // fde_count
  put(-0x800); put(0x200);  // (initial location, fde) relative to the header
  put(-0x700); put(0x240);
  std::vector<uint64_t> starts = eh_frame_hdr_fde_starts(hdr, 0x5000);
  EXPECT_EQ(starts, (std::vector<uint64_t>{0x4800, 0x4900}));
  hdr[0] = 2;  // unknown version
  EXPECT_TRUE(eh_frame_hdr_fde_starts(hdr, 0x5000).empty());
}

std::shared_ptr<const ModuleCfi> compile(const char* path) {
  auto file = ElfFile::from_fd(open(path, O_RDONLY | O_CLOEXEC));
  if (!file) return nullptr;
  return ModuleCfi::build(*file, "");
}

TEST(UnwinderModuleCfi, FixturePltUsesThePltExpression) {
  auto module = compile(UNW_FIXTURE_NOFP);
  ASSERT_NE(module, nullptr);
  EXPECT_GT(module->table().size(), 10u);
  size_t plt_rows = 0;
  for (const CfiRow& r : module->table().rows()) {
    if (r.cfa_rule != CfaRule::kPlt) continue;
    ++plt_rows;
    EXPECT_EQ(r.cfa_offset, 8);
    EXPECT_TRUE(r.plt_threshold == 10 || r.plt_threshold == 11) << int(r.plt_threshold);
  }
  EXPECT_GE(plt_rows, 1u);
  EXPECT_EQ(module->stats().unsupported_cfa, 0u);
}

TEST(UnwinderModuleCfi, LibcSignalTrampolineIsASignalFrame) {
  std::shared_ptr<const ModuleCfi> module;
  for (const char* path : {"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"}) {
    if ((module = compile(path))) break;
  }
  ASSERT_NE(module, nullptr);
  EXPECT_GT(module->table().size(), 1000u);
  size_t signal_rows = 0;
  for (const CfiRow& r : module->table().rows()) {
    if ((r.flags & kRowSignalFrame) == 0) continue;
    ++signal_rows;
    // glibc's __restore_rt: CFA = *(rsp + 160) (uc_mcontext.rsp), rip and
    // rbp in the saved mcontext at rsp + 168 and rsp + 120.
    EXPECT_EQ(r.cfa_rule, CfaRule::kDerefRegOffset);
    EXPECT_EQ(r.cfa_reg, kDwarfRsp);
    EXPECT_EQ(r.cfa_offset, 160);
    EXPECT_EQ(r.ra_rule, RegRule::kAtRsp);
    EXPECT_EQ(r.ra_offset, 168);
    EXPECT_EQ(r.bp_rule, RegRule::kAtRsp);
    EXPECT_EQ(r.bp_offset, 120);
  }
  EXPECT_EQ(signal_rows, 1u);
}

TEST(UnwinderModuleCfi, LazyRowsEqualEagerRowsAndCompileOnlyWhatIsAsked) {
  const char* libc = "/lib/x86_64-linux-gnu/libc.so.6";
  auto eager = compile(libc);
  ASSERT_NE(eager, nullptr);
  auto lazy = ModuleCfi::build_lazy(ElfFile::from_fd(open(libc, O_RDONLY | O_CLOEXEC), false), "");
  ASSERT_TRUE(lazy->lazy());
  const std::vector<CfiRow>& rows = eager->table().rows();
  ASSERT_GT(rows.size(), 1000u);
  std::mt19937_64 rng(7);
  constexpr int kLookups = 200;
  for (int i = 0; i < kLookups; ++i) {
    const CfiRow& expected = rows[rng() % rows.size()];
    uint64_t address = expected.start + rng() % expected.length;
    const CfiRow* got = lazy->find(address);
    ASSERT_NE(got, nullptr) << std::hex << address;
    EXPECT_TRUE(got->same_rules(expected)) << std::hex << address << " lazy [" << got->start << "," << got->end()
                                           << ") cfa " << int(got->cfa_rule) << "/" << int(got->cfa_reg) << "+"
                                           << got->cfa_offset << " bp " << int(got->bp_rule) << " eager ["
                                           << expected.start << "," << expected.end() << ") cfa "
                                           << int(expected.cfa_rule) << "/" << int(expected.cfa_reg) << "+"
                                           << expected.cfa_offset << " bp " << int(expected.bp_rule);
    EXPECT_TRUE(got->start <= address && address < got->end());
    // Just past a row whose end is a gap in the eager table: a gap lazily too.
    uint64_t after = expected.end();
    if (eager->find(after) == nullptr) {
      EXPECT_EQ(lazy->find(after), nullptr) << std::hex << after;
    }
  }
  ASSERT_NE(lazy->lazy_stats(), nullptr);
  EXPECT_EQ(lazy->lazy_stats()->fdes(), eager->stats().fdes);
  EXPECT_LE(lazy->lazy_stats()->compiled_fdes(), static_cast<size_t>(2 * kLookups));
  EXPECT_LT(lazy->lazy_stats()->compiled_fdes(), eager->stats().fdes / 4);
}

// Every row of libc, asked from the last to the first: each later row of an
// FDE is compiled before the earlier ones, which is where libdw reports a
// wrong start after DW_CFA_restore_state (an epilogue's remembered state).
TEST(UnwinderModuleCfi, LazyRowsAskedBackwardsEqualEagerRows) {
  const char* libc = "/lib/x86_64-linux-gnu/libc.so.6";
  auto eager = compile(libc);
  ASSERT_NE(eager, nullptr);
  auto lazy = ModuleCfi::build_lazy(ElfFile::from_fd(open(libc, O_RDONLY | O_CLOEXEC), false), "");
  const std::vector<CfiRow>& rows = eager->table().rows();
  size_t wrong = 0;
  for (size_t i = rows.size(); i-- > 0;) {
    for (uint64_t address : {rows[i].end() - 1, rows[i].start}) {
      const CfiRow* got = lazy->find(address);
      if (got == nullptr || !got->same_rules(rows[i]) || address < got->start || address >= got->end()) {
        if (wrong++ < 5) ADD_FAILURE() << std::hex << address;
      }
    }
  }
  EXPECT_EQ(wrong, 0u) << "of " << 2 * rows.size() << " lookups";
}

}  // namespace
}  // namespace stackwatch::unwinder
