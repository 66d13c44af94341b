// The streaming stacks.json writer: the file it writes is the text of
// stacks_to_json(...).dump(1), byte for byte, with the document's key order
// (keys sort as strings: "10" before "9"), ids numbered per process in the
// order given, the process named by its first stack, and the metadata last.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "recording/error.h"
#include "recording/stacks_json.h"

namespace fs = std::filesystem;

namespace stackwatch {
namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Frame frame(uint64_t address, std::string function, std::string module, bool kernel = false) {
  Frame f;
  f.address = address;
  f.function = std::move(function);
  f.module = std::move(module);
  f.module_offset = address & 0xffff;
  f.kernel = kernel;
  return f;
}

// Every kind of entry and frame field, several processes and threads whose
// decimal keys sort differently as strings and as numbers, and more than ten
// stacks in one process (ids "10", "11" sort before "2").
std::vector<StackSample> varied_stacks() {
  std::vector<StackSample> out;
  for (int i = 0; i < 14; ++i) {
    StackSample s;
    s.tgid = i % 3 == 0 ? 9 : (i % 3 == 1 ? 10 : 1234);
    s.tid = s.tgid + static_cast<uint32_t>(i % 2) * 91;
    s.process_name = s.tgid == 9 ? "sh" : (s.tgid == 10 ? "tab\there \"quoted\"" : "redis-serv\xc3\xa9r");
    s.thread_name = i % 4 == 0 ? "" : "worker/" + std::to_string(i);
    s.count = static_cast<uint64_t>(i) * 7 + 1;
    Frame k = frame(0xffffffff81000010ULL + i, "do_syscall_64", "[kernel]", true);
    Frame u = frame(0x7fab3b4dd97bULL + i, "__clock_gettime", "/usr/lib/x86_64-linux-gnu/libc.so.6");
    u.file = "clock_gettime.c";
    u.line = 42;
    u.column = i % 2 ? 7 : 0;
    u.inlined = i % 5 == 0;
    u.build_id = i % 3 ? "0123456789abcdef" : "";
    Frame unknown = frame(0x55550000abcdULL, "", "/usr/bin/redis-server");
    unknown.unknown_reason = "no symbol";
    s.frames = {k, u, unknown};
    switch (i % 4) {
      case 0:
        break;
      case 1:
        s.kind = StackKind::kOffCpu;
        s.off_ns = 123456789ULL * static_cast<uint64_t>(i);
        s.off_state = OffCpuState::kUninterruptible;
        break;
      case 2:
        s.kind = StackKind::kMemory;
        s.bytes = 4096ULL * static_cast<uint64_t>(i);
        s.detail = i % 3 ? "" : "page-fault";
        break;
      case 3:
        s.kind = StackKind::kIo;
        s.bytes = 1ULL << 40;
        s.latency_ns = 99;
        s.detail = "write file";
        break;
    }
    if (i % 6 == 5) s.label = "anomaly@" + std::to_string(i);
    out.push_back(std::move(s));
  }
  // Ten more stacks of one process, so its ids reach "10" and beyond.
  for (int i = 0; i < 10; ++i) {
    StackSample s = out[2];
    s.tid = 1234 + static_cast<uint32_t>(i);
    s.frames.resize(static_cast<size_t>(i % 3));
    out.push_back(std::move(s));
  }
  return out;
}

StacksFileMeta varied_meta() {
  StacksFileMeta meta;
  meta.started_at = "2026-11-23T19:00:00Z";
  meta.duration_s = 12.345;
  meta.intervals = 3;
  meta.sample_hz = 49;
  meta.sampling_event = "cpu-clock";
  meta.drops.user_stack_errors = 3;
  meta.drops.other = 1;
  meta.stale_thread_entries = 2;
  meta.extra["unwind"] = {{"method", "frame pointers"}};
  meta.extra["aged_out"] = {{"live_entries", 4}, {"note", "a \"note\"\n"}};
  return meta;
}

class StacksJsonStream : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sw_stream_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(StacksJsonStream, WritesTheDocumentsTextByteForByte) {
  std::vector<StackSample> stacks = varied_stacks();
  StacksFileMeta meta = varied_meta();
  fs::path p = dir_ / "stacks.json";
  write_stacks_json(p, stacks, meta);
  nlohmann::json doc = stacks_to_json(stacks, meta);
  std::string text = slurp(p);
  EXPECT_EQ(text, doc.dump(1) + "\n");
  EXPECT_EQ(nlohmann::json::parse(text), doc);
  // And it reads back as the stacks written (in the file's order).
  StacksFileMeta back_meta;
  std::vector<StackSample> back = stacks_from_json(nlohmann::json::parse(text), &back_meta);
  EXPECT_EQ(back.size(), stacks.size());
  EXPECT_EQ(back_meta.sample_hz, 49u);
  EXPECT_EQ(back_meta.drops.user_stack_errors, 3u);
}

TEST_F(StacksJsonStream, NamesAProcessAfterItsFirstStack) {
  std::vector<StackSample> stacks = varied_stacks();
  // The first stack of 1234 is not the first in key order once there are ten.
  stacks[2].process_name = "first";
  fs::path p = dir_ / "stacks.json";
  write_stacks_json(p, stacks, {});
  nlohmann::json back = nlohmann::json::parse(slurp(p));
  EXPECT_EQ(back["1234"]["name"], "first");
  EXPECT_EQ(slurp(p), stacks_to_json(stacks, {}).dump(1) + "\n");
}

TEST_F(StacksJsonStream, NoStacksIsOnlyTheMetadata) {
  fs::path p = dir_ / "stacks.json";
  write_stacks_json(p, std::vector<StackSample>{}, varied_meta());
  EXPECT_EQ(slurp(p), stacks_to_json({}, varied_meta()).dump(1) + "\n");
}

TEST_F(StacksJsonStream, ANameThatIsNotUtf8IsReplacedNotFatal) {
  std::vector<StackSample> stacks = varied_stacks();
  stacks[0].process_name = "bad\xff";
  fs::path p = dir_ / "stacks.json";
  write_stacks_json(p, stacks, {});
  nlohmann::json back = nlohmann::json::parse(slurp(p));
  EXPECT_EQ(back["9"]["name"], "bad\xef\xbf\xbd");
}

// Frame and entry strings that need escaping (quotes, backslashes, control
// characters, UTF-8, and bytes that are not UTF-8) come out as nlohmann's
// dump with error_handler_t::replace writes them.
TEST_F(StacksJsonStream, EscapedAndInvalidStringsInFramesAreWrittenAsNlohmannDoes) {
  std::vector<StackSample> stacks = varied_stacks();
  stacks[1].frames[1].function = "operator\"\"_x<\\n>\x01\x1f";
  stacks[1].frames[1].file = "/src/caf\xc3\xa9/\x7f.c";
  stacks[3].frames[0].module = "/tmp/bad\xff\xfe.so";
  stacks[3].detail = "write \xe2\x82";  // a truncated UTF-8 sequence
  stacks[4].thread_name = "\t";
  stacks[5].label = "label \"quoted\"";
  fs::path p = dir_ / "stacks.json";
  write_stacks_json(p, stacks, varied_meta());
  nlohmann::json doc = stacks_to_json(stacks, varied_meta());
  EXPECT_EQ(slurp(p), doc.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  nlohmann::json back = nlohmann::json::parse(slurp(p));
  EXPECT_EQ(back["10"]["pids"]["101"]["0"]["frames"][1]["function"], "operator\"\"_x<\\n>\x01\x1f");
}

// A write that fails halfway (a full disk; here the file size limit, which
// fails write(2) the same way) is one Error naming the file, never a crash,
// and no temporary file is left. (The writer once wrote a closing brace from
// a destructor while that Error unwound: std::terminate.)
TEST_F(StacksJsonStream, AWriteThatFailsHalfwayIsAnErrorNotACrash) {
  std::vector<StackSample> stacks;
  for (int i = 0; i < 200; ++i) {
    std::vector<StackSample> more = varied_stacks();
    stacks.insert(stacks.end(), more.begin(), more.end());
  }
  fs::path p = dir_ / "stacks.json";
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGXFSZ, SIG_IGN);  // write(2) then fails with EFBIG instead
    rlimit limit{200 * 1024, 200 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(3);
    try {
      write_stacks_json(p, stacks, varied_meta());
    } catch (const Error& e) {
      _exit(std::string(e.what()).find("stacks.json") != std::string::npos ? 0 : 2);
    }
    _exit(1);  // it fit: the test would prove nothing
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  int files = 0;
  for (auto& e : fs::directory_iterator(dir_)) (void)e, ++files;
  EXPECT_EQ(files, 0) << "no temporary file left, no partial stacks.json";
}

TEST_F(StacksJsonStream, FailureNamesThePathAndLeavesNothing) {
  fs::path p = dir_ / "missing" / "stacks.json";
  try {
    write_stacks_json(p, varied_stacks(), {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
  }
  int files = 0;
  for (auto& e : fs::directory_iterator(dir_)) (void)e, ++files;
  EXPECT_EQ(files, 0);
}

}  // namespace
}  // namespace stackwatch
