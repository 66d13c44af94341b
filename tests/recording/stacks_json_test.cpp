// stacks.json: exact stack_count shape, and a round trip through nlohmann-json.
#include <gtest/gtest.h>

#include <algorithm>

#include "recording/error.h"
#include "recording/stacks_json.h"

namespace stackwatch {
namespace {

StackSample make_sample() {
  StackSample s;
  s.tgid = 1234;
  s.tid = 1240;
  s.process_name = "redis-server";
  s.thread_name = "bio_aof";
  s.count = 7;
  Frame k;
  k.address = 0xffffffff81000010ULL;
  k.function = "do_syscall_64";
  k.module = "[kernel]";
  k.kernel = true;
  Frame u;
  u.address = 0x7fab3b4dd97b;
  u.function = "__clock_gettime";
  u.module = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  u.module_offset = 0xd97b;
  u.file = "clock_gettime.c";
  u.line = 42;
  Frame unknown;
  unknown.address = 0x55550000abcd;
  unknown.module = "/usr/bin/redis-server";
  unknown.module_offset = 0x1a2b;
  unknown.unknown_reason = "no symbol";
  s.frames = {k, u, unknown};
  return s;
}

TEST(StacksJson, HasTheExactStackCountShape) {
  StacksFileMeta meta;
  nlohmann::json doc = stacks_to_json({make_sample()}, meta);
  ASSERT_TRUE(doc.contains("1234"));
  const auto& proc = doc["1234"];
  EXPECT_EQ(proc["name"], "redis-server");
  const auto& entry = proc["pids"]["1240"]["0"];
  ASSERT_TRUE(entry["trace"].is_array());
  EXPECT_EQ(entry["trace"][0], "0xffffffff81000010:do_syscall_64");
  EXPECT_EQ(entry["trace"][1], "0x7fab3b4dd97b:__clock_gettime");
  // An unnamed frame says module+offset, never a bare address.
  EXPECT_EQ(entry["trace"][2], "0x55550000abcd:redis-server+0x1a2b");
  EXPECT_EQ(entry["count"], 7);
  EXPECT_TRUE(entry["label"].is_null());
  EXPECT_EQ(entry["kind"], "on");
}

TEST(StacksJson, RoundTripsThroughText) {
  StackSample on = make_sample();
  StackSample off = make_sample();
  off.kind = StackKind::kOffCpu;
  off.off_ns = 123456789;
  off.label = "anomaly@3";
  StacksFileMeta meta;
  meta.drops.user_stack_errors = 3;
  meta.drops.counts_map_full = 2;
  meta.drops.copy_ring_full = 4;
  std::string text = stacks_to_json({on, off}, meta).dump(2);
  StacksFileMeta back_meta;
  auto back = stacks_from_json(nlohmann::json::parse(text), &back_meta);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back_meta.drops.user_stack_errors, 3u);
  EXPECT_EQ(back_meta.drops.counts_map_full, 2u);
  EXPECT_EQ(back_meta.drops.copy_ring_full, 4u);
  EXPECT_EQ(back_meta.drops.total(), 5u) << "events counted without a copy are kept, not dropped";
  const StackSample* b_off = back[0].kind == StackKind::kOffCpu ? &back[0] : &back[1];
  EXPECT_EQ(b_off->off_ns, 123456789u);
  ASSERT_TRUE(b_off->label.has_value());
  EXPECT_EQ(*b_off->label, "anomaly@3");
  EXPECT_EQ(b_off->tgid, 1234u);
  EXPECT_EQ(b_off->tid, 1240u);
  ASSERT_EQ(b_off->frames.size(), 3u);
  EXPECT_EQ(b_off->frames[1].function, "__clock_gettime");
  EXPECT_EQ(b_off->frames[1].line, 42u);
  EXPECT_TRUE(b_off->frames[0].kernel);
  EXPECT_EQ(b_off->frames[2].display_name(), "redis-server+0x1a2b");
}

TEST(StacksJson, ReadsPlainStackCountFiles) {
  auto doc = nlohmann::json::parse(R"({"42": {"name": "a.out", "pids": {"43": {"9": {
      "trace": ["0x401000:main", "0x401100:_start"], "count": 5, "label": null}}}}})");
  auto back = stacks_from_json(doc);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].count, 5u);
  ASSERT_EQ(back[0].frames.size(), 2u);
  EXPECT_EQ(back[0].frames[0].function, "main");
  EXPECT_EQ(back[0].frames[0].address, 0x401000u);
}

TEST(StacksJson, RejectsMalformedFilesWithAMessage) {
  EXPECT_THROW(stacks_from_json(nlohmann::json::array()), Error);
  EXPECT_THROW(stacks_from_json(nlohmann::json::parse(R"({"1": {"name": "x"}})")), Error);
  EXPECT_THROW(stacks_from_json(nlohmann::json::parse(R"({"1": {"pids": {"2": {"0": {"trace": []}}}}})")),
               Error);
}

}  // namespace
}  // namespace stackwatch

namespace stackwatch {
namespace {

TEST(StacksJson, MemoryAndIoEntriesRoundTripWithTheirKindAndAmounts) {
  StackSample mem = make_sample();
  mem.kind = StackKind::kMemory;
  mem.count = 10;
  mem.bytes = 10u << 20;
  StackSample bad = make_sample();
  bad.tid = 1241;
  bad.kind = StackKind::kMemory;
  bad.count = 2;
  bad.detail = "double-free";
  StackSample io = make_sample();
  io.tid = 1242;
  io.kind = StackKind::kIo;
  io.count = 100;
  io.bytes = 100u << 20;
  io.latency_ns = 123456789;
  io.detail = "write file";
  nlohmann::json doc = stacks_to_json({mem, bad, io}, StacksFileMeta{});
  const nlohmann::json& m = doc["1234"]["pids"]["1240"]["0"];
  EXPECT_EQ(m["kind"], "memory");
  EXPECT_EQ(m["bytes"], 10u << 20);
  EXPECT_EQ(m["detail"], "");
  EXPECT_FALSE(m.contains("off_ns"));
  EXPECT_FALSE(m.contains("latency_ns"));  // not a memory amount
  const nlohmann::json& i = doc["1234"]["pids"]["1242"]["2"];
  EXPECT_EQ(i["kind"], "io");
  EXPECT_EQ(i["latency_ns"], 123456789u);
  EXPECT_EQ(i["detail"], "write file");

  std::vector<StackSample> back = stacks_from_json(nlohmann::json::parse(doc.dump()));
  ASSERT_EQ(back.size(), 3u);
  std::sort(back.begin(), back.end(), [](const StackSample& a, const StackSample& b) { return a.tid < b.tid; });
  EXPECT_EQ(back[0].kind, StackKind::kMemory);
  EXPECT_EQ(back[0].bytes, 10u << 20);
  EXPECT_EQ(back[1].detail, "double-free");
  EXPECT_EQ(back[1].count, 2u);
  EXPECT_EQ(back[2].kind, StackKind::kIo);
  EXPECT_EQ(back[2].bytes, 100u << 20);
  EXPECT_EQ(back[2].latency_ns, 123456789u);
  EXPECT_EQ(back[2].detail, "write file");
}

TEST(StacksJson, AnUnknownKindIsAnErrorNotAnOnCpuStack) {
  nlohmann::json doc = stacks_to_json({make_sample()}, StacksFileMeta{});
  doc["1234"]["pids"]["1240"]["0"]["kind"] = "gpu";
  EXPECT_THROW(stacks_from_json(doc), Error);
}

}  // namespace
}  // namespace stackwatch
