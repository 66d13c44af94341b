// pprof export read back with the same schema: samples, locations leaf
// first, functions, mappings, inlined chains as lines of one location, file
// and line, labels, and the gzip wrapping.
#include <gtest/gtest.h>

#include <map>

#include "flamegraph/flamegraph.h"
#include "flamegraph/gzip.h"
#include "profile.pb.h"

namespace stackwatch::flamegraph {
namespace {

namespace pb = perftools::profiles;

pb::Profile decode(const std::string& gz) {
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  pb::Profile p;
  EXPECT_TRUE(p.ParseFromString(gzip_decompress(gz)));
  return p;
}

// One sample's stack as function names, leaf first; inlined lines as "a<-b".
std::vector<std::string> stack_of(const pb::Profile& p, const pb::Sample& s) {
  std::map<uint64_t, const pb::Location*> locs;
  for (const auto& l : p.location()) locs[l.id()] = &l;
  std::map<uint64_t, std::string> funcs;
  for (const auto& f : p.function()) funcs[f.id()] = p.string_table(f.name());
  std::vector<std::string> out;
  for (uint64_t id : s.location_id()) {
    std::string names;
    for (const auto& line : locs.at(id)->line()) names += (names.empty() ? "" : "<-") + funcs.at(line.function_id());
    out.push_back(names);
  }
  return out;
}

Frame frame(uint64_t address, std::string function, std::string module, std::string file, uint32_t line) {
  Frame f;
  f.address = address;
  f.function = std::move(function);
  f.module = std::move(module);
  f.file = std::move(file);
  f.line = line;
  return f;
}

TEST(Gzip, RoundTrips) {
  std::string data(100000, 'a');
  data += "tail";
  std::string gz = gzip_compress(data);
  EXPECT_LT(gz.size(), 1000u);
  EXPECT_EQ(gzip_decompress(gz), data);
}

TEST(PprofWriter, FoldedStacksLeafFirstWithKernelMappingAndInlines) {
  std::vector<FoldedStack> stacks = {
      {{"app", "main", "helper_[i]", "write", "do_syscall_64_[k]"}, 7},
      {{"app", "main", "compute"}, 3},
      {{"app", "main", "compute"}, 2},  // same stack again: same locations
  };
  PprofOptions o;
  o.sample_type = "off_cpu";
  o.sample_unit = "microseconds";
  pb::Profile p = decode(pprof_profile(stacks, o));
  ASSERT_GE(p.string_table_size(), 1);
  EXPECT_EQ(p.string_table(0), "");
  ASSERT_EQ(p.sample_type_size(), 1);
  EXPECT_EQ(p.string_table(p.sample_type(0).type()), "off_cpu");
  EXPECT_EQ(p.string_table(p.sample_type(0).unit()), "microseconds");
  ASSERT_EQ(p.sample_size(), 3);
  EXPECT_EQ(p.sample(0).value(0), 7);
  EXPECT_EQ(stack_of(p, p.sample(0)), (std::vector<std::string>{"do_syscall_64", "write", "helper<-main", "app"}));
  EXPECT_EQ(stack_of(p, p.sample(1)), (std::vector<std::string>{"compute", "main", "app"}));
  EXPECT_EQ(p.sample(1).location_id(0), p.sample(2).location_id(0));
  // The kernel frame is on the kernel's mapping, the others on the user one.
  std::map<uint64_t, std::string> mapping_file;
  for (const auto& m : p.mapping()) mapping_file[m.id()] = p.string_table(m.filename());
  for (const auto& l : p.location()) {
    std::string fn = p.string_table(p.function(static_cast<int>(l.line(0).function_id() - 1)).name());
    EXPECT_EQ(mapping_file.at(l.mapping_id()), fn == "do_syscall_64" ? "[kernel.kallsyms]" : "[user]") << fn;
  }
  // Functions are interned: app, main, helper, write, do_syscall_64, compute.
  EXPECT_EQ(p.function_size(), 6);
}

TEST(PprofWriter, ResolvedSamplesKeepFilesLinesModulesAndLabels) {
  StackSample s;
  s.tgid = 42;
  s.tid = 43;
  s.process_name = "server";
  s.thread_name = "worker";
  s.count = 5;
  Frame inl = frame(0x401234, "parse_header", "/usr/bin/server", "http.cc", 88);
  inl.inlined = true;
  inl.build_id = "abcd";
  Frame outer = frame(0x401234, "handle", "/usr/bin/server", "server.cc", 120);
  outer.build_id = "abcd";
  Frame lib = frame(0x7f0000001000, "", "/usr/lib/x86_64-linux-gnu/libc.so.6", "", 0);
  lib.module_offset = 0x29d90;
  s.frames = {inl, outer, lib};
  StackSample off = s;
  off.kind = StackKind::kOffCpu;
  off.count = 2;
  off.off_ns = 3'000'000;
  off.label = "io-stall";
  pb::Profile p = decode(pprof_profile(std::vector<StackSample>{s, off}));
  ASSERT_EQ(p.sample_type_size(), 2);
  EXPECT_EQ(p.string_table(p.sample_type(1).type()), "off_cpu");
  EXPECT_EQ(p.string_table(p.sample_type(1).unit()), "nanoseconds");
  ASSERT_EQ(p.sample_size(), 2);
  EXPECT_EQ(p.sample(0).value(0), 5);
  EXPECT_EQ(p.sample(0).value(1), 0);
  EXPECT_EQ(p.sample(1).value(0), 2);
  EXPECT_EQ(p.sample(1).value(1), 3'000'000);
  EXPECT_EQ(stack_of(p, p.sample(0)), (std::vector<std::string>{"parse_header<-handle", "libc.so.6+0x29d90"}));
  // File and line per inlined level.
  const pb::Location& top = p.location(0);
  ASSERT_EQ(top.line_size(), 2);
  EXPECT_EQ(top.line(0).line(), 88);
  EXPECT_EQ(top.line(1).line(), 120);
  EXPECT_EQ(top.address(), 0x401234u);
  const pb::Function& f0 = p.function(static_cast<int>(top.line(0).function_id() - 1));
  EXPECT_EQ(p.string_table(f0.filename()), "http.cc");
  // Mappings by module, with build-ids and what is known.
  ASSERT_EQ(p.mapping_size(), 2);
  EXPECT_EQ(p.string_table(p.mapping(0).filename()), "/usr/bin/server");
  EXPECT_EQ(p.string_table(p.mapping(0).build_id()), "abcd");
  EXPECT_TRUE(p.mapping(0).has_functions());
  EXPECT_TRUE(p.mapping(0).has_line_numbers());
  EXPECT_TRUE(p.mapping(0).has_inline_frames());
  EXPECT_FALSE(p.mapping(1).has_line_numbers());
  std::map<std::string, std::string> labels;
  for (const auto& l : p.sample(1).label())
    labels[p.string_table(l.key())] = l.str() ? p.string_table(l.str()) : std::to_string(l.num());
  EXPECT_EQ(labels["pid"], "42");
  EXPECT_EQ(labels["tid"], "43");
  EXPECT_EQ(labels["comm"], "server");
  EXPECT_EQ(labels["thread"], "worker");
  EXPECT_EQ(labels["kind"], "off");
  EXPECT_EQ(labels["anomaly"], "io-stall");
}

TEST(PprofWriter, InvalidUtf8NamesAreRepaired) {
  pb::Profile p = decode(pprof_profile(std::vector<FoldedStack>{{{"bad\xff"}, 1}}));
  bool found = false;
  for (const auto& s : p.string_table()) found |= s == "bad\xEF\xBF\xBD";
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace stackwatch::flamegraph
