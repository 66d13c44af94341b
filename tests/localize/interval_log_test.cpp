// intervals.jsonl: identities, merging of threads, exact round trip, errors
// that name the line, torn last line.
#include "localize/interval_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "localize/json_lines.h"
#include "recording/error.h"

namespace stackwatch::localize {
namespace {

StackSample sample(uint32_t tid, StackKind kind, uint64_t count, uint64_t off_ns) {
  StackSample s;
  s.tgid = 10;
  s.tid = tid;
  s.process_name = "redis-server";
  s.kind = kind;
  s.count = count;
  s.off_ns = off_ns;
  Frame inner;
  inner.function = "__fdatasync";
  inner.module = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  Frame outer;  // unnamed: display name module+offset
  outer.module = "/usr/bin/redis-server";
  outer.module_offset = 0x1234;
  s.frames = {inner, outer};
  return s;
}

std::string temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("stackwatch-" + std::to_string(::getpid()) + "-" + name);
}

TEST(IntervalLog, IdentityIsProcessKindAndFramesOutermostFirst) {
  EXPECT_EQ(stack_identity(sample(1, StackKind::kOffCpu, 1, 0)), "off:redis-server;redis-server+0x1234;__fdatasync");
}

TEST(IntervalLog, SummaryMergesThreadsAndWeighsOffCpuInMicroseconds) {
  Interval in;
  in.index = 4;
  in.stacks = {sample(1, StackKind::kOffCpu, 3, 150'000'000), sample(2, StackKind::kOnCpu, 5, 0),
               sample(2, StackKind::kOffCpu, 2, 50'000'000)};
  std::vector<uint32_t> to_stack;
  IntervalRecord r = summarize_interval(in, {{"io_pressure", 0.25}}, &to_stack);
  ASSERT_EQ(r.stacks.size(), 2u);
  EXPECT_EQ(to_stack, (std::vector<uint32_t>{0, 1, 0}));
  EXPECT_EQ(r.stacks[0].weight, 200'000u);  // us
  EXPECT_EQ(r.stacks[0].samples, 5u);
  EXPECT_EQ(r.stacks[1].weight, 5u);
  EXPECT_EQ(r.stacks[0].frames, (std::vector<std::string>{"redis-server+0x1234", "__fdatasync"}));
  EXPECT_EQ(r.stacks[0].modules, (std::vector<std::string>{"redis-server", "libc.so.6"}));
}

TEST(IntervalLog, RoundTripsExactly) {
  Interval in;
  in.index = 9;
  in.start_unix_ns = 1'700'000'000'123'456'789;
  in.end_unix_ns = in.start_unix_ns + 5'000'000'000;
  in.stacks = {sample(1, StackKind::kOnCpu, 7, 0)};
  IntervalRecord r = summarize_interval(in, {{"cpu_util", 0.1 + 0.2}, {"load1", 1e-17}});
  std::string path = temp_path("roundtrip.jsonl");
  {
    JsonLinesWriter w(path);
    w.append(interval_to_json(r));
    w.append(interval_to_json(r));
  }
  std::vector<IntervalRecord> back = read_interval_log(path);
  std::filesystem::remove(path);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].index, 9u);
  EXPECT_EQ(back[1].start_unix_ns, in.start_unix_ns);
  EXPECT_EQ(back[1].load.at("cpu_util"), 0.1 + 0.2);  // bit-exact
  EXPECT_EQ(back[1].load.at("load1"), 1e-17);
  EXPECT_EQ(back[1].stacks[0].id, r.stacks[0].id);
  EXPECT_EQ(back[1].stacks[0].weight, 7u);
}

TEST(IntervalLog, WriterKeysStacksAfterTheirFirstAppearance) {
  Interval in;
  in.stacks = {sample(1, StackKind::kOnCpu, 7, 0), sample(1, StackKind::kOffCpu, 1, 4000)};
  IntervalRecord r = summarize_interval(in, {});
  std::string path = temp_path("keyed.jsonl");
  {
    IntervalLogWriter w(path);
    w.append(r);
    r.index = 1;
    r.stacks[0].weight = 9;
    r.stacks[0].frames.clear();  // as the monitor hands them out: known stack
    w.append(r);
  }
  JsonLinesFile file = read_lines(path);
  ASSERT_EQ(file.lines.size(), 2u);
  EXPECT_NE(file.lines[0].find("\"frames\""), std::string::npos);
  EXPECT_EQ(file.lines[1].find("\"frames\""), std::string::npos);
  EXPECT_NE(file.lines[1].find(R"({"key":0,"samples":7,"weight":9})"), std::string::npos) << file.lines[1];
  std::vector<IntervalRecord> back = read_interval_log(path);
  std::filesystem::remove(path);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].stacks[0].id, "on:redis-server;redis-server+0x1234;__fdatasync");
  EXPECT_EQ(back[1].stacks[0].frames, (std::vector<std::string>{"redis-server+0x1234", "__fdatasync"}));
  EXPECT_EQ(back[1].stacks[0].weight, 9u);
  EXPECT_EQ(back[1].stacks[1].kind, StackKind::kOffCpu);
  EXPECT_EQ(back[1].stacks[1].weight, 4u);
}

TEST(IntervalLog, UndefinedKeyIsAnError) {
  std::string path = temp_path("undefined.jsonl");
  {
    std::ofstream f(path);
    f << R"({"index":0,"stacks":[{"key":3,"weight":1}]})" << "\n";
  }
  try {
    read_interval_log(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ":1: stack key 3 was never defined");
  }
  std::filesystem::remove(path);
}

TEST(IntervalLog, BadLineIsNamedAndTornLastLineIsSkipped) {
  std::string path = temp_path("bad.jsonl");
  {
    std::ofstream f(path);
    f << R"({"index":0,"stacks":[]})" << "\n\n" << R"({"index":1,"stacks":[{"id":"x","weight":"many"}]})" << "\n";
  }
  try {
    read_interval_log(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":3: "), std::string::npos) << e.what();
  }
  {
    std::ofstream f(path);
    f << R"({"index":0,"stacks":[]})" << "\n" << R"({"index":1,"sta)";
  }
  EXPECT_EQ(read_interval_log(path).size(), 1u);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace stackwatch::localize

namespace stackwatch::localize {
namespace {

StackTotal total(const std::string& leaf, uint64_t weight) {
  StackTotal t;
  t.id = "on:app;main;" + leaf;
  t.process = "app";
  t.frames = {"main", leaf};
  t.modules = {"app", "app"};
  t.weight = t.samples = weight;
  return t;
}

TEST(IntervalLog, WriterForgetsStacksGoneForLongAndWritesThemInFullWhenTheyReturn) {
  std::string path = temp_path("forget.jsonl");
  const uint64_t kRecords = 300;
  size_t most_keys = 0;
  {
    IntervalLogWriter w(path);
    for (uint64_t i = 0; i < kRecords; ++i) {
      IntervalRecord r;
      r.index = i;
      r.stacks.push_back(total("steady", 10));
      if (i == 0 || i == 100) r.stacks.push_back(total("rare", 5));  // gone 99 records
      if (i == 101) {
        StackTotal rare = total("rare", 6);
        rare.frames.clear();  // known: the writer still has its key
        rare.modules.clear();
        r.stacks.push_back(rare);
      }
      for (int k = 0; k < 100; ++k) r.stacks.push_back(total("churn" + std::to_string(i) + "_" + std::to_string(k), 1));
      w.append(r);
      most_keys = std::max(most_keys, w.key_count());
    }
  }
  // Every stack ever: 30,002 keys. Kept: those of the last kForgetAfter
  // records, plus at most kForgetEvery records between passes.
  EXPECT_LE(most_keys, 2 + 100 * (IntervalLogWriter::kForgetAfter + IntervalLogWriter::kForgetEvery));
  EXPECT_LT(most_keys, 10000u);
  JsonLinesFile file = read_lines(path);
  ASSERT_EQ(file.lines.size(), kRecords);
  // "rare" in full at 0 (key 1) and again at 100, under a new key; key-only at 101.
  EXPECT_NE(file.lines[0].find(R"("id":"on:app;main;rare","key":1,)"), std::string::npos) << file.lines[0];
  EXPECT_NE(file.lines[100].find(R"("id":"on:app;main;rare")"), std::string::npos);
  EXPECT_EQ(file.lines[100].find(R"("id":"on:app;main;rare","key":1,)"), std::string::npos);
  EXPECT_EQ(file.lines[101].find(R"("id":"on:app;main;rare")"), std::string::npos);
  // "steady" is defined once, on the first line.
  EXPECT_EQ(file.lines[299].find(R"("id":"on:app;main;steady")"), std::string::npos);
  std::vector<IntervalRecord> back = read_interval_log(path);
  std::filesystem::remove(path);
  ASSERT_EQ(back.size(), kRecords);
  ASSERT_EQ(back[101].stacks.size(), 102u);
  EXPECT_EQ(back[101].stacks[1].id, "on:app;main;rare");
  EXPECT_EQ(back[101].stacks[1].frames, (std::vector<std::string>{"main", "rare"}));
  EXPECT_EQ(back[101].stacks[1].weight, 6u);
  EXPECT_EQ(back[299].stacks[0].id, "on:app;main;steady");
  EXPECT_EQ(back[299].stacks[100].id, "on:app;main;churn299_99");
}

}  // namespace
}  // namespace stackwatch::localize
